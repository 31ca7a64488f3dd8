/**
 * Starting the server as a process: the only module that reads the environment, handles signals
 * and calls process.exit. Everything else receives what it needs as arguments. Importing it starts
 * nothing: the entry file (server/entry.ts, `npm start`) and `facewire serve` call startServer.
 */
import { pino } from 'pino'
import { createApp } from './app.js'
import { parseConfig, type Config } from './config.js'
import { prepareDataDir } from './data-dir.js'
import { loadDevSecret } from './dev-secret.js'
import { FacewireError } from './errors.js'
import { createLogger } from './logger.js'

export async function startServer(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  // onnxruntime-node 1.30 starts Microsoft's telemetry client on Linux unless told not to: facewire
  // sends nothing anywhere (the workers inherit the environment).
  process.env['ORT_DISABLE_TELEMETRY'] ??= '1'
  let config: Config
  try {
    config = parseConfig(env)
    // Before anything writes there (the development secret, the store) or the server listens.
    prepareDataDir(config.dataDir)
  } catch (error) {
    // No logger yet: the configuration that would choose its level is what failed. One line.
    const message = error instanceof Error ? error.message : String(error)
    process.stderr.write(`facewire: ${message}\n`)
    process.exitCode = isConfigError(error) ? 78 : 1 // EX_CONFIG
    return
  }
  const logger = createLogger({ level: config.logLevel, destination: pino.destination({ sync: true }) })
  if (config.jwtSecret === undefined && config.jwtAlgorithm === 'HS256') {
    const dev = loadDevSecret(config.dataDir)
    config = Object.freeze({ ...config, jwtSecret: dev.secret })
    logger.warn(
      { variable: 'FACEWIRE_JWT_SECRET', file: `${config.dataDir}/dev-jwt-secret`, created: dev.created },
      'config.dev_secret: FACEWIRE_JWT_SECRET is unset; using a development secret kept in the data directory (facewire token reads it too). Set FACEWIRE_JWT_SECRET in production (NODE_ENV=production refuses to start without it).',
    )
  }

  let app
  try {
    app = createApp({ config, logger })
  } catch (error) {
    if (error instanceof FacewireError) {
      logger.fatal({ code: error.code, details: error.details, err: error.cause }, error.message)
    } else {
      logger.fatal({ err: error }, 'server.start_failed')
    }
    process.exitCode = isConfigError(error) ? 78 : 1
    return
  }
  logger.info(
    { engine: app.engine },
    `transport.engine: ${app.engine.name} ${app.engine.version} (native ${app.engine.binary})`,
  )

  app.ready.catch(() => {
    // Already logged (pipeline.failed, gallery.failed): a server without its models or its
    // gallery cannot answer anything.
    logger.flush()
    process.exit(1)
  })

  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'server.signal')
    // A hard bound on exit, whatever shutdown does.
    setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'server.shutdown_timeout')
      process.exit(1)
    }, config.shutdownTimeoutMs + 1000).unref()
    void app.shutdown().then(({ drained }) => {
      logger.flush()
      process.exit(drained ? 0 : 1)
    })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)

  try {
    await app.listen()
  } catch (error) {
    // The message says why (address in use, permission denied...): a stack would add nothing.
    const reason = error instanceof Error ? error.message : String(error)
    logger.fatal({ host: config.host, port: config.port }, `server.listen_failed: ${reason}`)
    process.exitCode = 1
    await app.shutdown(0)
    process.exit(1)
  }
}

function isConfigError(error: unknown): boolean {
  return error instanceof FacewireError && error.code === 'ERR_CONFIG_INVALID'
}
