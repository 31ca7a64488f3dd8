/**
 * Redis for cluster-mode tests: the machine's shared Redis (never stopped by a test; each test keys
 * everything under its own random prefix) and private `redis-server` processes a test may kill,
 * hang and restart on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './child.js'

/** The shared Redis of the development and CI machines (FACEWIRE_TEST_REDIS_URL to override). */
export const SHARED_REDIS_URL = process.env['FACEWIRE_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379'

/** A FACEWIRE_REDIS_PREFIX of its own, so tests sharing one Redis never see each other. */
export function randomPrefix(): string {
  return `facewire-test-${randomBytes(6).toString('hex')}:`
}

export interface PrivateRedis {
  readonly port: number
  /** redis://[:password@]127.0.0.1:port */
  readonly url: string
  /** Starts redis-server on the port (again after stop); resolves once it accepts connections. */
  start(): Promise<void>
  /** SIGKILL (a crash: clients see their connections reset), then the exit. */
  kill(): Promise<void>
  /** SIGSTOP / SIGCONT: a Redis that keeps its connections but answers nothing, then again. */
  pause(): void
  resume(): void
}

/**
 * A redis-server of this test's own on a free port, in memory only (no RDB, no AOF), with
 * `password` when given. Not started: call start(). Stopped by the caller (t.after(() => redis.kill())).
 */
export async function privateRedis(options: { password?: string } = {}): Promise<PrivateRedis> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`
  return {
    port,
    url: `redis://${auth}127.0.0.1:${String(port)}`,
    async start() {
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
      if (options.password !== undefined) args.push('--requirepass', options.password)
      const started = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
      child = started
      let output = ''
      const accepting = new Promise<void>((resolve, reject) => {
        started.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString('utf8')
          if (output.includes('Ready to accept connections')) resolve()
        })
        started.once('exit', (code) => {
          reject(new Error(`redis-server exited (${String(code)}) before it was ready:\n${output}`))
        })
        started.once('error', reject)
      })
      await accepting
    },
    async kill() {
      const running = child
      child = undefined
      if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
      running.kill('SIGKILL')
      await once(running, 'exit')
    },
    pause() {
      child?.kill('SIGSTOP')
    },
    resume() {
      child?.kill('SIGCONT')
    },
  }
}

/** A private Redis (not started yet) behind a random password, killed when `t` ends. */
export async function privateRedisFor(t: TestContext): Promise<PrivateRedis & { password: string }> {
  const password = randomBytes(12).toString('hex')
  const redis = await privateRedis({ password })
  t.after(() => redis.kill())
  return Object.assign(redis, { password })
}

/** Polls `condition` every 20 ms until it holds; fails with `what` after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(20)
  }
}
