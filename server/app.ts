import { readFileSync } from 'node:fs'
import { API_PREFIX, createApiRoutes } from './api/routes.js'
import { createAuthenticator, type Authenticator } from './auth.js'
import { createEventRelay } from './cluster/event-relay.js'
import { createRedisLink } from './cluster/redis.js'
import type { Config } from './config.js'
import { FacewireError, toFacewireError } from './errors.js'
import { galleryOptionsFromConfig } from './gallery/from-config.js'
import { openGallery, type Gallery } from './gallery/index.js'
import type { Logger } from './logger.js'
import { createMetrics, type Metrics } from './metrics.js'
import { createPipeline, pipelineOptionsFromConfig, type Pipeline } from './pipeline/index.js'
import { createKioskRoutes, DEFAULT_KIOSK_DIR } from './kiosk.js'
import { createOutbound } from './outbound/index.js'
import { createDetectRoute } from './streams/detect.js'
import { createEventHub, isEventsTopic, type EventSink } from './streams/events.js'
import { createWatchRoute } from './streams/watch.js'
import { createReadiness, type Readiness } from './readiness.js'
import {
  createTransport,
  errorReply,
  jsonReply,
  type EngineInfo,
  type HttpHandler,
  type HttpMethod,
  type Route,
} from './transport/index.js'

export interface AppOptions {
  config: Config
  logger: Logger
  /** The built kiosk page (default: dist/kiosk beside the compiled server). */
  kioskDir?: string
}

export interface App {
  readonly engine: EngineInfo
  readonly readiness: Readiness
  readonly metrics: Metrics
  readonly pipeline: Pipeline
  readonly auth: Authenticator
  /** Resolves once the models and the gallery are loaded; rejects if either fails. */
  readonly ready: Promise<void>
  /** The gallery; throws ERR_NOT_READY until it is loaded. */
  gallery(): Gallery
  /** Binds config.host:config.port (0 picks a free port) and resolves with the bound port. */
  listen(): Promise<number>
  /**
   * Stops accepting, answers or finishes in-flight work, and resolves within `timeoutMs`
   * (default config.shutdownTimeoutMs) with whether everything in flight finished.
   */
  shutdown(timeoutMs?: number): Promise<{ drained: boolean }>
}

const startedAt = Date.now()

/** At shutdown, how long queued webhook deliveries and MQTT messages may take to leave. */
const OUTBOUND_GRACE_MS = 2000

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
  const auth = createAuthenticator({
    algorithm: config.jwtAlgorithm,
    secret: config.jwtSecret,
    publicKey: config.jwtPublicKeyFile === undefined ? undefined : readPublicKey(config.jwtPublicKeyFile),
  })

  readiness.register('gallery')
  let loadedGallery: Gallery | undefined
  const galleryReady = loadGallery(config, logger, metrics, readiness).then((gallery) => {
    loadedGallery = gallery
    readiness.markReady('gallery')
    return gallery
  })
  galleryReady.catch((error: unknown) => {
    logger.fatal(
      { err: error, code: error instanceof FacewireError ? error.code : undefined },
      'gallery.failed',
    )
  })
  // Cluster mode: Redis carries events to other instances and counts shared rate limits. It never
  // holds up the start: while it is unreachable the server serves, degraded (docs/scale-out.md).
  const redis =
    config.redis === undefined ? undefined : createRedisLink({ ...config.redis, logger, readiness })
  const ready = Promise.all([pipeline.ready, galleryReady]).then(() => undefined)
  ready.catch(() => undefined)
  const gallery = (): Gallery => {
    if (loadedGallery === undefined) throw new FacewireError('ERR_NOT_READY')
    return loadedGallery
  }
  let snapshotTimer: NodeJS.Timeout | undefined
  void galleryReady.then(
    (loaded) => {
      snapshotTimer = setInterval(() => {
        loaded.snapshot().catch((error: unknown) => {
          logger.error({ err: error }, 'gallery.snapshot_failed')
        })
      }, config.snapshotIntervalMs)
      snapshotTimer.unref()
    },
    () => undefined,
  )

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
        const status = toFacewireError(error).http
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
      const degraded = readiness.degraded()
      const isDegraded = Object.keys(degraded).length > 0
      if (readiness.isReady()) {
        return jsonReply(200, {
          status: isDegraded ? 'degraded' : 'ready',
          components,
          ...(isDegraded ? { degraded } : {}),
        })
      }
      return errorReply(new FacewireError('ERR_NOT_READY'), {
        components,
        ...(isDegraded ? { degraded } : {}),
      })
    }),
    instrument('GET', '/metrics', async () => {
      if (loadedGallery !== undefined) {
        const stats = loadedGallery.stats()
        metrics.galleryFaces.set({ state: 'indexed' }, stats.indexedFaces)
        metrics.galleryFaces.set({ state: 'stale' }, stats.staleFaces)
        metrics.gallerySeq.set(stats.seq)
      }
      return {
        status: 200,
        headers: { 'content-type': metrics.registry.contentType },
        body: await metrics.registry.metrics(),
      }
    }),
  ]

  routes.push(
    ...createKioskRoutes({ dir: options.kioskDir ?? DEFAULT_KIOSK_DIR, logger }).map((route) =>
      instrument(route.method, route.pattern, route.handler),
    ),
    ...createApiRoutes({
      auth,
      gallery,
      pipeline,
      logger,
      metrics,
      rateLimit: config.apiRateLimit,
      limitStore: redis,
      minEnrollQuality: config.minEnrollQuality,
      maxFaces: config.maxFaces,
    }).map((route) => instrument(route.method, route.pattern, route.handler)),
  )

  let models: string[] = []
  void pipeline.ready.then(
    (info) => {
      models = info.models
    },
    () => undefined,
  )
  // The transport exists only after the routes; events publish through it once it does.
  let publish: (topic: string, text: string) => void = () => undefined
  // Webhooks and MQTT take events from the hub itself, on the instance that decided them, never
  // from the publish step (which may relay other instances' events); set below.
  let outboundSink: EventSink | undefined = undefined
  const events = createEventHub({
    publish: (topic, text) => {
      publish(topic, text)
    },
    sinks: [
      (org, event) => {
        outboundSink?.(org, event)
      },
    ],
    cooldownMs: config.streams.eventCooldownMs,
    unknownEvents: config.streams.unknownEvents,
  })
  const wsRoutes = [
    createDetectRoute({
      auth,
      pipeline,
      gallery,
      events,
      logger,
      metrics,
      config,
      models: () => models,
      limitStore: redis,
    }),
    createWatchRoute({
      auth,
      logger,
      metrics,
      idleTimeoutS: config.streams.idleTimeoutS,
      maxBufferedBytes: config.streams.maxBufferedBytes,
      unknownEvents: config.streams.unknownEvents,
    }),
  ]

  const transport = createTransport({
    routes,
    wsRoutes,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    trustedProxies: config.trustedProxies,
    cors: { origins: config.corsOrigins, pathPrefix: API_PREFIX },
  })
  const deliver = (topic: string, text: string): void => {
    transport.ws.publish(topic, text)
  }
  // Only what reaches WebSocket watchers goes over Redis: whatever else the event hub does with
  // an event happens once, on the instance that decided it.
  const relay =
    redis === undefined
      ? undefined
      : createEventRelay({
          link: redis,
          deliver,
          isTopic: isEventsTopic,
          logger,
          count: (direction) => {
            metrics.clusterEvents.inc({ direction })
          },
        })
  publish =
    relay === undefined
      ? deliver
      : (topic, text) => {
          relay.publish(topic, text)
        }
  // Last, once nothing else can fail: a bad webhooks file stops the start (ERR_CONFIG_INVALID),
  // and the broker connections it opens would otherwise outlive a failed start.
  const outbound = createOutbound({ config, logger, metrics, readiness })
  outboundSink = outbound.sink
  // Connections are opened only now that nothing in building the app can throw any more.
  redis?.connect()
  let shutdownPromise: Promise<{ drained: boolean }> | undefined

  return {
    engine: transport.engine,
    readiness,
    metrics,
    pipeline,
    auth,
    ready,
    gallery,
    async listen() {
      const port = await transport.listen(config.host, config.port)
      readiness.markReady('transport')
      logger.info({ host: config.host, port }, 'server.listening')
      return port
    },
    shutdown(timeoutMs = config.shutdownTimeoutMs) {
      shutdownPromise ??= (async () => {
        const stoppingAt = performance.now()
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
        redis?.close()
        // No frame is decided any more: what the queues still hold gets a short grace to leave,
        // within what is left of the shutdown timeout.
        const leftMs = timeoutMs - (performance.now() - stoppingAt)
        await outbound.close(Math.max(0, Math.min(OUTBOUND_GRACE_MS, leftMs)))
        clearInterval(snapshotTimer)
        if (loadedGallery !== undefined) {
          try {
            await loadedGallery.close()
          } catch (error) {
            logger.error({ err: error }, 'gallery.close_failed')
          }
        }
        logger.info({ drained, inFlight: transport.inFlight }, 'server.stopped')
        return { drained }
      })()
      return shutdownPromise
    },
  }
}

function readPublicKey(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (cause) {
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `invalid configuration: FACEWIRE_JWT_PUBLIC_KEY_FILE: cannot read ${file}`,
      { cause, details: { variables: ['FACEWIRE_JWT_PUBLIC_KEY_FILE'] } },
    )
  }
}

/**
 * Opens the store (SQLite in the data folder, or PostgreSQL in cluster mode) and loads (or
 * rebuilds) the indexes for the configured embedder. In cluster mode the database's health is
 * reported as the `database` component's degradation (recognition goes on without it).
 */
async function loadGallery(
  config: Config,
  logger: Logger,
  metrics: Metrics,
  readiness: Readiness,
): Promise<Gallery> {
  let lastProblem: string | undefined
  const onHealth = (problem: string | undefined): void => {
    if (problem === lastProblem) return
    if (problem === undefined) logger.info('database.up')
    else if (lastProblem === undefined) logger.warn({ reason: problem }, 'database.down')
    lastProblem = problem
    readiness.setDegraded('database', problem === undefined ? undefined : `unreachable: ${problem}`)
  }
  // The store itself warns (gallery.unencrypted) when embeddings are written in clear.
  return openGallery({
    ...(await galleryOptionsFromConfig(config, logger)),
    embeddingKey: config.embeddingKey,
    previousEmbeddingKey: config.embeddingKeyPrevious,
    metrics,
    cluster:
      config.databaseUrl === undefined
        ? undefined
        : { databaseUrl: config.databaseUrl, pollMs: config.syncPollMs, onHealth },
  })
}
