import type { Config } from './config.js'
import { FacewireError, toWireError } from './errors.js'
import type { Logger } from './logger.js'
import { createMetrics, type Metrics } from './metrics.js'
import { createPipeline, pipelineOptionsFromConfig, type Pipeline } from './pipeline/index.js'
import { createReadiness, type Readiness } from './readiness.js'
import {
  createTransport,
  jsonReply,
  type EngineInfo,
  type HttpHandler,
  type HttpMethod,
  type Route,
} from './transport/index.js'

export interface AppOptions {
  config: Config
  logger: Logger
}

export interface App {
  readonly engine: EngineInfo
  readonly readiness: Readiness
  readonly metrics: Metrics
  readonly pipeline: Pipeline
  /** Binds config.host:config.port (0 picks a free port) and resolves with the bound port. */
  listen(): Promise<number>
  /**
   * Stops accepting, answers or finishes in-flight work, and resolves within `timeoutMs`
   * (default config.shutdownTimeoutMs) with whether everything in flight finished.
   */
  shutdown(timeoutMs?: number): Promise<{ drained: boolean }>
}

const startedAt = Date.now()

/** Builds the whole server without listening, so tests can run it in-process on port 0. */
export function createApp(options: AppOptions): App {
  const { config, logger } = options
  const metrics = createMetrics()
  const readiness = createReadiness()
  readiness.register('transport')
  const pipeline = createPipeline({ ...pipelineOptionsFromConfig(config), logger, metrics, readiness })
  pipeline.ready.catch((error: unknown) => {
    logger.fatal({ err: error }, 'pipeline.failed')
  })

  const instrument = (method: HttpMethod, pattern: string, handler: HttpHandler): Route => ({
    method,
    pattern,
    handler: async (request) => {
      const stop = metrics.httpDuration.startTimer({ route: pattern, method })
      try {
        const reply = await handler(request)
        metrics.httpRequests.inc({ route: pattern, method, status: String(reply.status) })
        return reply
      } catch (error) {
        const status = error instanceof FacewireError ? error.http : 500
        metrics.httpRequests.inc({ route: pattern, method, status: String(status) })
        throw error
      } finally {
        stop()
      }
    },
  })

  const routes: Route[] = [
    instrument('GET', '/health', () =>
      jsonReply(200, { status: 'ok', uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) }),
    ),
    instrument('GET', '/ready', () => {
      const components = readiness.snapshot()
      if (readiness.isReady()) return jsonReply(200, { status: 'ready', components })
      return jsonReply(503, { error: toWireError(new FacewireError('ERR_NOT_READY')), components })
    }),
    instrument('GET', '/metrics', async () => ({
      status: 200,
      headers: { 'content-type': metrics.registry.contentType },
      body: await metrics.registry.metrics(),
    })),
  ]

  const transport = createTransport({ routes, logger, maxBodyBytes: config.maxBodyBytes })
  let shutdownPromise: Promise<{ drained: boolean }> | undefined

  return {
    engine: transport.engine,
    readiness,
    metrics,
    pipeline,
    async listen() {
      const port = await transport.listen(config.host, config.port)
      readiness.markReady('transport')
      logger.info({ host: config.host, port }, 'server.listening')
      return port
    },
    shutdown(timeoutMs = config.shutdownTimeoutMs) {
      shutdownPromise ??= (async () => {
        readiness.markNotReady('transport')
        transport.stopAccepting()
        logger.info({ inFlight: transport.inFlight, timeoutMs }, 'server.stopping')
        let timer: NodeJS.Timeout | undefined
        const timedOut = new Promise<false>((resolve) => {
          timer = setTimeout(() => {
            resolve(false)
          }, timeoutMs)
          timer.unref()
        })
        const drained = await Promise.race([transport.drain().then(() => true as const), timedOut])
        clearTimeout(timer)
        await pipeline.close()
        logger.info({ drained, inFlight: transport.inFlight }, 'server.stopped')
        return { drained }
      })()
      return shutdownPromise
    },
  }
}
