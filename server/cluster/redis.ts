/**
 * Cluster mode's Redis (docs/scale-out.md): the one module that opens ioredis connections. Two of
 * them: commands (rate-limit counters, PUBLISH, a heartbeat) and a subscriber (a connection in
 * subscribe mode can do nothing else). Both reconnect on their own, forever, with capped and
 * jittered exponential backoff; nothing is queued while Redis is away (a command fails at once and
 * its caller falls back), so the server never waits on or crashes for Redis.
 *
 * The link is up when the command connection is ready and every channel is subscribed again. Each
 * transition is logged once (`redis.up`, `redis.down` with the reason) and mirrored in readiness:
 * `degraded.redis` while down. The URL is never logged; its password is scrubbed from reasons.
 */
import { equalJitterDelayMs } from '../backoff.js'
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from '../logger.js'
import type { Readiness } from '../readiness.js'

export interface RedisLinkOptions {
  /** `redis://[:password@]host[:port][/db]` or `rediss://` (TLS). */
  url: string
  /** Every key and channel of this link starts with it. */
  prefix: string
  logger: Logger
  readiness: Readiness
  /** Reconnection backoff: the first delay and the cap (each delay jittered between half and all). */
  retry?: { baseMs: number; maxMs: number }
  /** How often the command connection is PINGed; one unanswered within `commandTimeoutMs` reconnects. */
  heartbeatMs?: number
  /** Bound on any command (a rate-limit check, a publish, the heartbeat) while Redis hangs. */
  commandTimeoutMs?: number
}

export type MessageHandler = (message: string) => void

export interface RedisLink {
  /** The command connection, for rate-limiter-flexible's Redis limiters (server/rate-limit.ts). */
  readonly client: Redis
  /** Every key and channel starts with it (FACEWIRE_REDIS_PREFIX). */
  readonly prefix: string
  /** Both connections ready and every channel subscribed. */
  isUp(): boolean
  /**
   * Publishes `message` on `prefix + channel` and resolves whether Redis took it; false at once,
   * nothing queued, while the link is down.
   */
  publish(channel: string, message: string): Promise<boolean>
  /**
   * Calls `handler` with each message on `prefix + channel`, subscribed again after every
   * reconnection (the link is not up until it is). Messages sent while the link was down are lost:
   * Redis pub/sub keeps nothing for a subscriber that is away.
   */
  subscribe(channel: string, handler: MessageHandler): void
  /** Opens both connections (nothing is opened before), then keeps them open until close. */
  connect(): void
  /** Closes both connections for good (no reconnection, no log lines after it). */
  close(): void
}

export const DEFAULT_RETRY = { baseMs: 100, maxMs: 5000 } as const
const DEFAULT_HEARTBEAT_MS = 2000
const DEFAULT_COMMAND_TIMEOUT_MS = 1000
const CONNECT_TIMEOUT_MS = 2000
const DISCONNECT_TIMEOUT_MS = 500
const MAX_REASON_CHARS = 200

/**
 * The delay before reconnection attempt `attempt` (1, 2, ...): `baseMs * 2^(attempt-1)` capped at
 * `maxMs`, then a random share of it between half and all (equal jitter, server/backoff.ts), so
 * instances that lost Redis together do not reconnect in step.
 */
export const retryDelayMs = equalJitterDelayMs

/** Where the URL points, for logs: host, port and database; never the user or password. */
export function describeRedisUrl(url: string): { target: string; db: number; tls: boolean } {
  const parsed = new URL(url)
  const db = Number(parsed.pathname.slice(1) || '0')
  return {
    target: `${parsed.hostname}:${parsed.port || '6379'}`,
    db: Number.isInteger(db) ? db : 0,
    tls: parsed.protocol === 'rediss:',
  }
}

export function createRedisLink(options: RedisLinkOptions): RedisLink {
  const { logger, readiness, prefix } = options
  const retry = options.retry ?? DEFAULT_RETRY
  const where = describeRedisUrl(options.url)
  const password = decodeURIComponent(new URL(options.url).password)
  const scrub = (text: string): string =>
    (password === '' ? text : text.split(password).join('***')).slice(0, MAX_REASON_CHARS)

  const common: RedisOptions = {
    // Nothing waits for Redis: a command while it is away fails at once (the caller falls back),
    // and one in flight when the connection drops fails then instead of being sent again later.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // A connection given up on (heartbeat) is destroyed this soon if the peer does not close it.
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    // Opened by connect(), once whoever owns the link is fully built.
    lazyConnect: true,
    // Reconnect forever: returning a number never gives up.
    retryStrategy: (attempt) => retryDelayMs(attempt, retry),
  }
  const client = new Redis(options.url, {
    ...common,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectionName: 'facewire',
  })
  // Subscriptions are made again by `resubscribe` below, so the link knows when they are back.
  const subscriber = new Redis(options.url, {
    ...common,
    autoResubscribe: false,
    connectionName: 'facewire-sub',
  })

  const handlers = new Map<string, MessageHandler>()
  let subscribed = false
  /** False from a missed heartbeat until the command connection is ready again. */
  let answering = true
  let closed = false
  let state: 'starting' | 'up' | 'down' = 'starting'
  /** Why the last connection attempt failed or the last connection ended, for `redis.down`. */
  let lastError: string | undefined
  readiness.setDegraded('redis', 'connecting')

  /**
   * Logs and mirrors in readiness each change between up and down, once. At the start, not being
   * up yet is `connecting`; it becomes down with the first failure (`failed`).
   */
  const update = (failed = false): void => {
    if (closed) return
    const up = answering && client.status === 'ready' && subscriber.status === 'ready' && subscribed
    if (up) {
      if (state === 'up') return
      state = 'up'
      lastError = undefined
      readiness.setDegraded('redis', undefined)
      logger.info({ ...where, prefix }, 'redis.up')
      return
    }
    if (state === 'starting' && !failed) return
    const reason = scrub(lastError ?? 'connection closed')
    readiness.setDegraded('redis', reason)
    // One line per transition: further failed attempts while down only refresh the reason.
    if (state !== 'down') logger.warn({ ...where, reason }, 'redis.down')
    state = 'down'
  }

  const resubscribe = async (): Promise<void> => {
    subscribed = false
    const channels = [...handlers.keys()].map((channel) => prefix + channel)
    try {
      if (channels.length > 0) await subscriber.subscribe(...channels)
      subscribed = true
    } catch (error) {
      lastError = `subscribe failed: ${reasonOf(error)}`
      update(true)
      return
    }
    update()
  }

  for (const [name, connection] of [
    ['commands', client],
    ['subscriber', subscriber],
  ] as const) {
    connection.on('error', (error: unknown) => {
      lastError = `unreachable: ${reasonOf(error)}`
      // Every failed attempt at debug only: the transition itself is logged once, by update.
      if (!closed) logger.debug({ ...where, connection: name, reason: scrub(lastError) }, 'redis.error')
    })
    connection.on('close', () => {
      if (name === 'subscriber') subscribed = false
      update(true)
    })
  }
  client.on('ready', () => {
    answering = true
    update()
  })
  subscriber.on('ready', () => {
    void resubscribe()
  })
  subscriber.on('message', (channel: string, message: string) => {
    handlers.get(channel.slice(prefix.length))?.(message)
  })

  // A Redis that stops answering (hung, or a network that drops packets without closing the
  // connection) is noticed by the heartbeat: a PING unanswered within the command timeout
  // reconnects both connections, and the link is down meanwhile.
  const heartbeat = setInterval(() => {
    if (client.status !== 'ready') return
    client.ping().catch((error: unknown) => {
      if (closed || client.status !== 'ready' || !answering) return
      answering = false
      lastError = `not answering: ${reasonOf(error)}`
      update(true)
      client.disconnect(true)
      subscriber.disconnect(true)
    })
  }, options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS)
  heartbeat.unref()

  return {
    client,
    prefix,
    isUp: () => state === 'up',
    async publish(channel, message) {
      if (state !== 'up') return false
      try {
        await client.publish(prefix + channel, message)
        return true
      } catch {
        return false
      }
    },
    subscribe(channel, handler) {
      handlers.set(channel, handler)
      if (subscriber.status === 'ready') void resubscribe()
    },
    connect() {
      if (closed) return
      // A failed first attempt is handled like any other (error and close events, then retries).
      client.connect().catch(() => undefined)
      subscriber.connect().catch(() => undefined)
    },
    close() {
      if (closed) return
      closed = true
      clearInterval(heartbeat)
      readiness.setDegraded('redis', undefined)
      // disconnect, not quit: quit would wait for (or queue behind) a Redis that may be away.
      client.disconnect()
      subscriber.disconnect()
    },
  }
}

/** A short reason from an ioredis or socket error: its code when it has one (ECONNREFUSED). */
function reasonOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return typeof code === 'string' && code !== '' ? code : error.message
  }
  return String(error)
}
