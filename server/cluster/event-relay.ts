/**
 * /ws/events across instances (docs/scale-out.md, "Events across instances"): an event published
 * to this instance's watchers is also published once on Redis, tagged with this instance's id;
 * every instance delivers what other instances published to its own watchers of the event's
 * topic (`events/<org>`), and ignores its own messages coming back. So a watcher connected to any
 * instance receives each event once: from its own instance directly, or from Redis.
 *
 * At most once across instances: while the link is down, events stay on the instance that decided
 * them (nothing is queued to be sent later), and Redis keeps nothing for a subscriber that is away.
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from '../logger.js'
import type { RedisLink } from './redis.js'

export interface EventRelayOptions {
  link: Pick<RedisLink, 'publish' | 'subscribe'>
  /** Publishes to this instance's watchers of `topic` (the transport's pub/sub). */
  deliver: (topic: string, text: string) => void
  /** Topics that may be relayed (an event arriving on any other is dropped). */
  isTopic: (topic: string) => boolean
  logger: Logger
  /** Counts events by direction: sent (to Redis), received (from others), dropped (not sent). */
  count?: (direction: 'sent' | 'received' | 'dropped') => void
}

export interface EventRelay {
  /** Delivers `text` to this instance's watchers of `topic`, and to every other instance's. */
  publish(topic: string, text: string): void
}

/** The Redis channel (after the link's prefix) every instance publishes events on. */
export const EVENTS_CHANNEL = 'events'

/**
 * Publishes awaiting Redis's answer beyond which an event is not sent to other instances (its local
 * watchers still get it): a Redis that accepts connections but answers slowly cannot make them
 * pile up.
 */
export const MAX_PENDING_PUBLISHES = 1024

/** What travels on the channel: who published it, for which topic, and the event as sent. */
interface Envelope {
  origin: string
  topic: string
  text: string
}

export function createEventRelay(options: EventRelayOptions): EventRelay {
  const { link, deliver, logger } = options
  // This instance's id in the messages: random, new at each start, so no two instances share one.
  const instanceId = randomBytes(9).toString('base64url')
  const count = options.count ?? (() => undefined)
  let pending = 0

  link.subscribe(EVENTS_CHANNEL, (message) => {
    const envelope = parseEnvelope(message)
    if (envelope === undefined || !options.isTopic(envelope.topic)) {
      logger.warn({ bytes: message.length }, 'cluster.event_invalid')
      return
    }
    if (envelope.origin === instanceId) return // already delivered here, by publish
    count('received')
    deliver(envelope.topic, envelope.text)
  })

  return {
    publish(topic, text) {
      deliver(topic, text)
      if (pending >= MAX_PENDING_PUBLISHES) {
        count('dropped')
        return
      }
      pending++
      const envelope: Envelope = { origin: instanceId, topic, text }
      void link
        .publish(EVENTS_CHANNEL, JSON.stringify(envelope))
        .then((sent) => {
          count(sent ? 'sent' : 'dropped')
        })
        .finally(() => {
          pending--
        })
    },
  }
}

function parseEnvelope(message: string): Envelope | undefined {
  try {
    const value = JSON.parse(message) as Partial<Record<keyof Envelope, unknown>> | null
    if (
      typeof value?.origin === 'string' &&
      typeof value.topic === 'string' &&
      typeof value.text === 'string'
    ) {
      return { origin: value.origin, topic: value.topic, text: value.text }
    }
  } catch {
    // Not JSON: dropped below.
  }
  return undefined
}
