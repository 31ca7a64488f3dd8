import { rmSync } from 'node:fs'
import { createApiClient, type ApiClient } from '../../client/api-client.js'
import { Writable } from 'node:stream'
import { createApp, type App } from '../../server/app.js'
import { mintToken, type Scope } from '../../server/auth.js'
import { parseConfig, type Config } from '../../server/config.js'
import { createLogger, type Logger } from '../../server/logger.js'
import { tempDataDir } from './temp-dir.js'

/** A logger whose lines a test can read. */
export function createMemoryLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const raw: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      raw.push(chunk.toString('utf8'))
      callback()
    },
  })
  const logger = createLogger({ level: 'debug', destination })
  return {
    logger,
    lines: () =>
      raw
        .join('')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  }
}

export const TEST_SECRET = 'test-secret-that-is-long-enough-0123456789'

/** A token signed with the test apps' secret. */
export function testToken(org: string, scopes: Scope[] = ['detect', 'enroll'], ttlSeconds = 600): string {
  return mintToken({ org, scopes, sub: `test-${org}`, ttlSeconds, key: TEST_SECRET })
}

/** A fresh data directory under the OS temp dir (re-exported: tests import it from here). */
export { tempDataDir }

export interface StartedApp {
  app: App
  port: number
  config: Config
  dataDir: string
  lines: () => Record<string, unknown>[]
  /** Shuts the app down and removes its data directory unless `keepData`. */
  stop: (options?: { keepData?: boolean }) => Promise<void>
}

/**
 * The real app on 127.0.0.1, port 0, with its own temporary data directory (unless
 * FACEWIRE_DATA_DIR is given), stopped by the caller (use t.after(() => started.stop())).
 */
export async function startTestApp(
  env: Record<string, string> = {},
  options: { kioskDir?: string } = {},
): Promise<StartedApp> {
  const dataDir = env.FACEWIRE_DATA_DIR ?? tempDataDir()
  const config = parseConfig({
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    FACEWIRE_JWT_SECRET: TEST_SECRET,
    FACEWIRE_WORKERS: '1',
    FACEWIRE_DATA_DIR: dataDir,
    ...env,
  })
  const { logger, lines } = createMemoryLogger()
  const app = createApp({ config, logger, ...options })
  const port = await app.listen()
  await app.ready
  return {
    app,
    port,
    config,
    dataDir,
    lines,
    async stop(options = {}) {
      await app.shutdown()
      if (options.keepData !== true) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** A REST client of a started app for `org`, with a token of `scopes`. */
export function apiClientFor(started: StartedApp, org: string, scopes?: Scope[]): ApiClient {
  return createApiClient({
    baseUrl: `http://127.0.0.1:${String(started.port)}`,
    token: testToken(org, scopes),
  })
}
