import { Writable } from 'node:stream'
import { createApp, type App } from '../../server/app.js'
import { parseConfig, type Config } from '../../server/config.js'
import { createLogger, type Logger } from '../../server/logger.js'

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

export interface StartedApp {
  app: App
  port: number
  config: Config
  lines: () => Record<string, unknown>[]
}

/** The real app on 127.0.0.1, port 0, shut down by the caller (use t.after). */
export async function startTestApp(env: Record<string, string> = {}): Promise<StartedApp> {
  const config = parseConfig({
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    FACEWIRE_JWT_SECRET: 'test-secret-that-is-long-enough-0123456789',
    FACEWIRE_WORKERS: '1',
    ...env,
  })
  const { logger, lines } = createMemoryLogger()
  const app = createApp({ config, logger })
  const port = await app.listen()
  await app.pipeline.ready
  return { app, port, config, lines }
}
