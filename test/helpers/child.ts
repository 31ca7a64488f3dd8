import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { tempDataDir } from './app.js'

const mainPath = fileURLToPath(new URL('../../server/entry.js', import.meta.url))

export interface Child {
  child: ChildProcess
  dataDir: string
  lines: Record<string, unknown>[]
  stderr: () => string
  waitFor: (msg: RegExp) => Promise<Record<string, unknown>>
}

/**
 * `node dist/server/entry.js` as a child process with its JSON log lines parsed. It gets its own
 * temporary FACEWIRE_DATA_DIR unless `env` names one.
 */
export function startMain(env: Record<string, string>): Child {
  const dataDir = env['FACEWIRE_DATA_DIR'] ?? tempDataDir()
  const child = spawn(process.execPath, [mainPath], {
    env: {
      PATH: process.env['PATH'] ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      FACEWIRE_WORKERS: '1',
      FACEWIRE_DATA_DIR: dataDir,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: Record<string, unknown>[] = []
  const waiters: { msg: RegExp; resolve: (line: Record<string, unknown>) => void }[] = []
  let buffered = ''
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8')
    let newline
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>
      buffered = buffered.slice(newline + 1)
      lines.push(line)
      for (const waiter of [...waiters]) {
        if (waiter.msg.test(String(line['msg']))) {
          waiters.splice(waiters.indexOf(waiter), 1)
          waiter.resolve(line)
        }
      }
    }
  })
  return {
    child,
    dataDir,
    lines,
    stderr: () => stderr,
    waitFor: (msg) => {
      const seen = lines.find((line) => msg.test(String(line['msg'])))
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise((resolve) => waiters.push({ msg, resolve }))
    },
  }
}

const cliPath = fileURLToPath(new URL('../../server/cli/main.js', import.meta.url))
const execCli = promisify(execFile)

/** Runs `facewire ARGS` (the compiled CLI) with only PATH and `env`; never throws on exit codes. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execCli(process.execPath, [cliPath, ...args], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}
