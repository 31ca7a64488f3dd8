/**
 * MQTT events (docs/integrations.md, "MQTT"): the events of each organization in
 * FACEWIRE_MQTT_ORGS are published at QoS 1 on `<prefix>/<org>/<camera>/match|unknown`, and a
 * retained `<prefix>/<org>/status` says `online` or `offline`.
 *
 * One broker connection per organization, because a connection has one last will: each carries
 * `offline` for its organization's status, so the broker itself reports an instance that crashed.
 * Several instances share the status topic: each listens to it and answers another's `offline`
 * with `online` while it is connected itself, so the status reads `offline` only when no instance
 * is. The mqtt client reconnects on its own; meanwhile events wait in a bounded queue per
 * organization (full: the oldest is dropped and counted), never on the frame path.
 */
import { randomBytes } from 'node:crypto'
import { connect, type MqttClient } from 'mqtt'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { Readiness } from '../readiness.js'
import type { OutboundEvent } from '../../protocol/wire.js'
import { createBoundedQueue, type BoundedQueue } from './bounded-queue.js'
import { eventTopic, STATUS_OFFLINE, STATUS_ONLINE, statusTopic } from './topics.js'
import { within } from './within.js'

export interface MqttPublisherOptions {
  /** The broker (mqtt://, mqtts://, ws://, wss://; credentials in it are never logged). */
  url: string
  prefix: string
  orgs: readonly string[]
  /** Events held per organization while the broker is away. */
  queueSize: number
  logger: Logger
  metrics: Metrics
  readiness: Readiness
}

export interface MqttPublisher {
  /** Publishes `event` if its organization is bridged, or queues it. Never blocks. */
  send(event: OutboundEvent): void
  /**
   * Lets the queues drain for up to `graceMs`, publishes `offline` on each status topic, and
   * disconnects; what is left is dropped and counted (reason `shutdown`).
   */
  close(graceMs: number): Promise<void>
}

/** QoS 1 publishes awaiting their PUBACK per connection; more wait in the queue. */
const MAX_IN_FLIGHT = 64
const RECONNECT_PERIOD_MS = 2000
const CONNECT_TIMEOUT_MS = 10_000
const KEEPALIVE_S = 30

/** The readiness component marked degraded while a connection is down. */
export const MQTT_COMPONENT = 'mqtt'

interface Pending {
  topic: string
  payload: string
}

interface Link {
  org: string
  status: string
  client: MqttClient
  queue: BoundedQueue<Pending>
  inFlight: number
  connected: boolean
  /** Logged once per outage, not once per reconnect attempt or dropped event. */
  outageLogged: boolean
  dropLogged: boolean
}

/** The broker as logs may show it: scheme, host and port, never credentials, path or query. */
export function brokerForLogs(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}`
  } catch {
    return '(unparsable URL)'
  }
}

export function createMqttPublisher(options: MqttPublisherOptions): MqttPublisher {
  const { logger, metrics, readiness, prefix } = options
  const broker = brokerForLogs(options.url)
  const links = new Map<string, Link>()
  let closing = false
  /** Called whenever a queue shrinks or a publish completes, while close() waits for the drain. */
  let onProgress: (() => void) | undefined

  const updateHealth = (): void => {
    const down = [...links.values()].filter((link) => !link.connected).length
    metrics.mqttConnected.set(links.size - down)
    readiness.setDegraded(
      MQTT_COMPONENT,
      down === 0 || closing ? undefined : `${String(down)} of ${String(links.size)} broker connections down`,
    )
  }

  const flush = (link: Link): void => {
    while (link.connected && link.inFlight < MAX_IN_FLIGHT && link.queue.size > 0) {
      const next = link.queue.shift()
      if (next === undefined) break
      link.inFlight++
      link.client.publish(next.topic, next.payload, { qos: 1 }, (error) => {
        link.inFlight--
        const failed = error instanceof Error
        metrics.mqttPublishes.inc({ outcome: failed ? 'failed' : 'sent' })
        if (failed) logger.debug({ org: link.org, err: error.message }, 'mqtt.publish_failed')
        flush(link)
        onProgress?.()
      })
    }
  }

  /** Publishes the organization's retained status; resolves with whether the broker acknowledged it. */
  const publishStatus = (link: Link, status: string): Promise<boolean> =>
    new Promise((resolve) => {
      link.client.publish(link.status, status, { qos: 1, retain: true }, (error) => {
        resolve(!(error instanceof Error))
      })
    })

  for (const org of options.orgs) {
    const status = statusTopic(prefix, org)
    const client = connect(options.url, {
      clientId: `facewire-${randomBytes(6).toString('hex')}`,
      clean: true,
      keepalive: KEEPALIVE_S,
      reconnectPeriod: RECONNECT_PERIOD_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      resubscribe: false,
      will: { topic: status, payload: Buffer.from(STATUS_OFFLINE), qos: 1, retain: true },
    })
    const link: Link = {
      org,
      status,
      client,
      queue: createBoundedQueue(options.queueSize),
      inFlight: 0,
      connected: false,
      outageLogged: false,
      dropLogged: false,
    }
    links.set(org, link)
    client.on('connect', () => {
      // A reconnection while stopping: the connection is about to be cut (close() ends it).
      if (closing) return
      link.connected = true
      link.outageLogged = false
      link.dropLogged = false
      logger.info({ org, broker }, 'mqtt.connected')
      void publishStatus(link, STATUS_ONLINE)
      client.subscribe(status, { qos: 1 }, (error) => {
        if (error !== null) logger.warn({ org, err: error.message }, 'mqtt.subscribe_failed')
      })
      flush(link)
      updateHealth()
    })
    client.on('message', (topic, payload) => {
      // Another instance's last will, or its clean stop: this one still serves the organization.
      if (topic !== status || payload.toString() !== STATUS_OFFLINE || !link.connected || closing) return
      logger.debug({ org }, 'mqtt.status_reasserted')
      void publishStatus(link, STATUS_ONLINE)
    })
    client.on('close', () => {
      const wasConnected = link.connected
      link.connected = false
      if (wasConnected && !closing) {
        logger.warn({ org, broker, queued: link.queue.size }, 'mqtt.disconnected')
        link.outageLogged = true
      }
      updateHealth()
    })
    // Connection errors repeat at every reconnect attempt: the first of an outage is logged.
    client.on('error', (error) => {
      if (link.outageLogged || closing) return
      link.outageLogged = true
      logger.warn({ org, broker, err: error.message }, 'mqtt.error')
    })
  }
  updateHealth()

  const drained = (): boolean =>
    [...links.values()].every((link) => !link.connected || (link.queue.size === 0 && link.inFlight === 0))

  return {
    send(event) {
      const link = links.get(event.org)
      if (link === undefined) return
      if (closing) {
        metrics.mqttDropped.inc({ reason: 'shutdown' })
        return
      }
      const pending = {
        topic: eventTopic(prefix, event.org, event.camera, event.type),
        payload: JSON.stringify(event),
      }
      if (link.queue.push(pending) !== undefined) {
        metrics.mqttDropped.inc({ reason: 'queue_full' })
        if (!link.dropLogged) {
          link.dropLogged = true
          logger.warn({ org: link.org, queueSize: link.queue.capacity }, 'mqtt.queue_full')
        }
      }
      flush(link)
    },
    async close(graceMs) {
      closing = true
      const drain = new Promise<void>((resolve) => {
        onProgress = () => {
          if (drained()) resolve()
        }
        onProgress()
      })
      await within(drain, graceMs)
      onProgress = undefined
      await Promise.all(
        [...links.values()].map(async (link) => {
          let saidOffline = false
          if (link.connected) {
            // Bounded like the drain: a broker that went away meanwhile does not hold the stop.
            saidOffline =
              (await within(publishStatus(link, STATUS_OFFLINE), Math.min(graceMs, 1000))) ?? false
          }
          const left = link.queue.drain().length
          if (left > 0) metrics.mqttDropped.inc({ reason: 'shutdown' }, left)
          // A clean DISCONNECT once `offline` is acknowledged and nothing else waits; otherwise the
          // connection is cut, so the broker publishes the will (`offline`) itself. Publishes still
          // unacknowledged then fail (counted).
          const clean = saidOffline && link.inFlight === 0
          await link.client.endAsync(!clean).catch((error: unknown) => {
            logger.debug({ org: link.org, err: error }, 'mqtt.end_failed')
          })
        }),
      )
      metrics.mqttConnected.set(0)
      readiness.setDegraded(MQTT_COMPONENT, undefined)
    },
  }
}
