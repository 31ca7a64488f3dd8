/** `facewire serve`: the server in the foreground, configured by environment variables. */
import { startServer } from '../main.js'

const HELP = `usage: facewire serve

Runs the server in the foreground, configured by environment variables (docs/configuration.md):
FACEWIRE_PORT, FACEWIRE_HOST, FACEWIRE_DATA_DIR, FACEWIRE_JWT_SECRET and the rest. The same as
\`npm start\`. SIGTERM or SIGINT shut it down gracefully.
`

export async function runServe(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(HELP)
    return 0
  }
  if (args.length > 0) {
    process.stderr.write(`facewire serve: takes no arguments (got ${args.join(' ')})\n\n${HELP}`)
    return 2
  }
  await startServer()
  // startServer sets process.exitCode when it fails to start; otherwise the server keeps running.
  return typeof process.exitCode === 'number' ? process.exitCode : 0
}
