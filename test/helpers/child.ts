/**
 * The compiled server and CLI as child processes, for tests and benchmarks (bench:ws) alike: the
 * server's JSON log lines parsed as they come, the CLI's output and exit status.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { tempDataDir } from './temp-dir.js'

/** dist/server/entry.js: the server as `npm start` runs it. */
export const mainPath = fileURLToPath(new URL('../../server/entry.js', import.meta.url))

export interface Child {
  child: ChildProcess
  dataDir: string
  lines: Record<string, unknown>[]
  stderr: () => string
  waitFor: (msg: RegExp) => Promise<Record<string, unknown>>
}

export interface StartMainOptions {
  /** Called with each log line as it is parsed. */
  onLine?: (line: Record<string, unknown>) => void
  /**
   * The command that starts the server (default: this Node on dist/server/entry.js), run in the
   * repository root; lines it prints that are not JSON (npm's own) are kept out of `lines`.
   */
  command?: readonly [string, ...string[]]
}

/** The repository root (the folder of package.json). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))

/**
 * `node dist/server/entry.js` as a child process with its JSON log lines parsed: only PATH from
 * this process's environment, then HOST 127.0.0.1, PORT 0, one worker and its own temporary
 * FACEWIRE_DATA_DIR unless `env` says otherwise (a variable set to undefined is left unset).
 */
export function startMain(env: Record<string, string | undefined>, options: StartMainOptions = {}): Child {
  const dataDir = env['FACEWIRE_DATA_DIR'] ?? tempDataDir()
  const merged: Record<string, string | undefined> = {
    PATH: process.env['PATH'] ?? '',
    HOST: '127.0.0.1',
    PORT: '0',
    FACEWIRE_WORKERS: '1',
    FACEWIRE_DATA_DIR: dataDir,
    ...env,
  }
  const [command, ...args] = options.command ?? [process.execPath, mainPath]
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== undefined)),
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
      const text = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      if (options.command !== undefined && !text.startsWith('{')) continue
      const line = JSON.parse(text) as Record<string, unknown>
      lines.push(line)
      options.onLine?.(line)
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

export interface ReadyMain {
  port: number
  baseUrl: string
  /** The worker pool's size, from `pipeline.ready`. */
  workers: number | undefined
}

/**
 * Waits until `server` listens, has loaded its models (`pipeline.ready`) and answers /ready with
 * 200 (the gallery is loaded too). Rejects, with the server's stderr, when it exits first or is not
 * ready within `timeoutMs`; the caller kills it then.
 */
export async function whenReady(server: Child, timeoutMs = 60_000): Promise<ReadyMain> {
  let onExit: (code: number | null) => void = () => undefined
  let timer: NodeJS.Timeout | undefined
  const failed = new Promise<never>((_, reject) => {
    onExit = (code) => {
      reject(new Error(`the server exited (${String(code)}) before it was ready:\n${server.stderr()}`))
    }
    if (server.child.exitCode !== null) onExit(server.child.exitCode)
    server.child.once('exit', onExit)
    timer = setTimeout(() => {
      reject(new Error(`the server was not ready within ${String(timeoutMs / 1000)} s:\n${server.stderr()}`))
    }, timeoutMs)
  })
  try {
    const [listening, pipeline] = await Promise.race([
      Promise.all([server.waitFor(/^server\.listening$/), server.waitFor(/^pipeline\.ready$/)]),
      failed,
    ])
    const port = listening['port']
    if (typeof port !== 'number') throw new Error('server.listening names no port')
    const baseUrl = `http://127.0.0.1:${String(port)}`
    for (;;) {
      const response = await Promise.race([fetch(`${baseUrl}/ready`), failed])
      await response.body?.cancel()
      if (response.status === 200) break
      await sleep(20)
    }
    const workers = pipeline['workers']
    return { port, baseUrl, workers: typeof workers === 'number' ? workers : undefined }
  } finally {
    clearTimeout(timer)
    server.child.off('exit', onExit)
  }
}

/**
 * A TCP port free on 127.0.0.1 now, for a server that must come back on the same port after a
 * restart (PORT=0 would give it a new one).
 */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/** SIGTERM, then the exit (at once when it has exited already). */
export async function stopChild(server: Child): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  server.child.kill('SIGTERM')
  await once(server.child, 'exit')
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

export interface CliChild {
  child: ChildProcess
  /** Resolves with the first stderr line matching `pattern` (lines seen already count). */
  waitForStderr: (pattern: RegExp) => Promise<string>
  /** Resolves when the process has exited, however it ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>
}

/** Starts `facewire ARGS` (the compiled CLI) with only PATH and `env`, its stderr read by line. */
export function spawnCli(args: string[], env: Record<string, string> = {}): CliChild {
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = []
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8')
    for (const waiter of [...waiters]) {
      const line = stderr.split('\n').find((candidate) => waiter.pattern.test(candidate))
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve(line)
      }
    }
  })
  const exited = once(child, 'close').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    stdout,
    stderr,
  }))
  return {
    child,
    waitForStderr: (pattern) => {
      const seen = stderr.split('\n').find((line) => pattern.test(line))
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise((resolve) => waiters.push({ pattern, resolve }))
    },
    exited,
  }
}
