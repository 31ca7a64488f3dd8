#!/usr/bin/env node
/**
 * The one `facewire` binary. Commands that only talk to a server over the wire (enroll, replay,
 * identities, faces, audit) live in client/cli/; operator tools that run server code (token, eval,
 * serve, backup, restore, rotate-key) live here in server/cli/. Each is loaded on demand so
 * `facewire --help` stays instant.
 */
import { facewireVersion } from './version.js'

interface Command {
  summary: string
  run: (args: string[]) => Promise<number>
}

const COMMANDS: Record<string, Command> = {
  enroll: {
    summary: 'enroll a folder per identity through the REST API (facewire enroll --help)',
    run: async (args) => (await import('../../client/cli/enroll.js')).runEnroll(args),
  },
  identities: {
    summary: 'list, show, rename or delete identities (facewire identities --help)',
    run: async (args) => (await import('../../client/cli/admin.js')).runIdentities(args),
  },
  faces: {
    summary: "list or delete an identity's faces (facewire faces --help)",
    run: async (args) => (await import('../../client/cli/admin.js')).runFaces(args),
  },
  audit: {
    summary: "print the organization's audit log (facewire audit --help)",
    run: async (args) => (await import('../../client/cli/admin.js')).runAudit(args),
  },
  eval: {
    summary: 'measure verification accuracy of the pipeline on LFW pairs (facewire eval lfw --help)',
    run: async (args) => (await import('./eval.js')).runEval(args),
  },
  replay: {
    summary: 'stream a folder of frames or an MJPEG file to /ws/detect (facewire replay --help)',
    run: async (args) => (await import('../../client/cli/replay.js')).runReplay(args),
  },
  token: {
    summary: 'mint a bearer token: facewire token --org ORG --scope "detect enroll" --ttl 1h',
    run: async (args) => (await import('./token.js')).runToken(args),
  },
  serve: {
    summary: 'run the server (configured by environment variables, see docs/configuration.md)',
    run: async (args) => (await import('./serve.js')).runServe(args),
  },
  backup: {
    summary: 'copy the gallery of a data folder while the server serves (facewire backup --help)',
    run: async (args) => (await import('./backup.js')).runBackup(args),
  },
  restore: {
    summary: 'restore a backup into a data folder no server runs on (facewire restore --help)',
    run: async (args) => (await import('./restore.js')).runRestore(args),
  },
  'rotate-key': {
    summary: 're-encrypt every embedding under a new key, serving meanwhile (facewire rotate-key --help)',
    run: async (args) => (await import('./rotate-key.js')).runRotateKey(args),
  },
}

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(10)} ${command.summary}`)
  return [
    'usage: facewire <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    '  --version  print the version',
  ].join('\n')
}

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n')
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(facewireVersion() + '\n')
    return 0
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    process.stderr.write(`facewire: unknown command '${name}'\n\n${usage()}\n`)
    return 2
  }
  return command.run(rest)
}

const code = await runCli(process.argv.slice(2))
if (code !== 0) process.exitCode = code
