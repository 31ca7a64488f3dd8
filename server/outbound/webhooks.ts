/**
 * Webhook deliveries: each event of an organization goes to that organization's endpoints, signed
 * (signature.ts), one delivery at a time per endpoint and in order, retried with exponential
 * backoff and full jitter, then counted as a dead letter. Each endpoint has a bounded queue: when
 * it is full the oldest event is dropped and counted, so a slow or silent receiver costs memory
 * up to the bound and never time on the frame path (`send` only enqueues).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { OutboundEvent } from '../../protocol/wire.js'
import { backoffDelayMs } from '../backoff.js'
import { createBoundedQueue, type BoundedQueue } from './bounded-queue.js'
import { SIGNATURE_HEADER, toSignatureHeader } from './signature.js'
import type { WebhookEndpoint } from './webhooks-file.js'
import { within } from './within.js'

export const EVENT_ID_HEADER = 'facewire-event-id'
export const EVENT_TYPE_HEADER = 'facewire-event-type'
export const ATTEMPT_HEADER = 'facewire-delivery-attempt'

export interface WebhookDispatcherOptions {
  endpoints: readonly WebhookEndpoint[]
  logger: Logger
  metrics: Metrics
  /** Node's global fetch unless a unit test gives another. */
  fetch?: typeof fetch
  /** For the backoff's jitter; Math.random by default. */
  random?: () => number
  /** Unix time in ms for the signature's timestamp; Date.now by default. */
  now?: () => number
}

export interface WebhookDispatcher {
  /** Queues `event` for each endpoint of its organization that takes its type. Never blocks. */
  send(event: OutboundEvent): void
  /**
   * Stops taking events, lets the queues drain for up to `graceMs`, then aborts what is left
   * (counted as dropped, reason `shutdown`). Resolves once every endpoint has stopped.
   */
  close(graceMs: number): Promise<void>
}

type AttemptOutcome = 'delivered' | 'http_error' | 'timeout' | 'network_error'

interface Attempt {
  outcome: AttemptOutcome
  /** The HTTP status, when there was an answer. */
  status?: number
}

interface Delivery {
  event: OutboundEvent
  body: string
}

interface EndpointState {
  endpoint: WebhookEndpoint
  queue: BoundedQueue<Delivery>
  /** Whether the loop delivering this endpoint's queue runs; `running` settles when it stops. */
  busy: boolean
  running: Promise<void>
  /** Whether the last drop has been logged (once per stretch of drops, not once per event). */
  dropLogged: boolean
}

/** A receiver's 4xx other than these refuses the event itself: retrying would not help. */
const RETRYABLE_4XX = new Set([408, 409, 425, 429])

export function createWebhookDispatcher(options: WebhookDispatcherOptions): WebhookDispatcher {
  const { logger, metrics } = options
  const doFetch = options.fetch ?? fetch
  const random = options.random ?? Math.random
  const now = options.now ?? Date.now
  const stopping = new AbortController()
  let closed = false

  const byOrg = new Map<string, EndpointState[]>()
  for (const endpoint of options.endpoints) {
    const state: EndpointState = {
      endpoint,
      queue: createBoundedQueue(endpoint.queueSize),
      busy: false,
      running: Promise.resolve(),
      dropLogged: false,
    }
    byOrg.set(endpoint.org, [...(byOrg.get(endpoint.org) ?? []), state])
    metrics.webhookQueueDepth.set({ endpoint: endpoint.id }, 0)
  }
  const states = [...byOrg.values()].flat()

  const attempt = async (endpoint: WebhookEndpoint, delivery: Delivery, n: number): Promise<Attempt> => {
    const timestampS = Math.floor(now() / 1000)
    const timeout = new AbortController()
    const timer = setTimeout(() => {
      timeout.abort()
    }, endpoint.timeoutMs)
    try {
      const response = await doFetch(endpoint.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'facewire-webhooks',
          [EVENT_ID_HEADER]: delivery.event.id,
          [EVENT_TYPE_HEADER]: delivery.event.type,
          [ATTEMPT_HEADER]: String(n),
          [SIGNATURE_HEADER]: toSignatureHeader(endpoint.secret, timestampS, delivery.body),
        },
        body: delivery.body,
        // A redirect is an answer that is not 2xx: the signed body goes to the configured URL only.
        redirect: 'manual',
        signal: AbortSignal.any([stopping.signal, timeout.signal]),
      })
      // The answer's body is not read: free the connection for the next delivery.
      await response.body?.cancel().catch(() => undefined)
      const ok = response.status >= 200 && response.status < 300
      return { outcome: ok ? 'delivered' : 'http_error', status: response.status }
    } catch {
      return { outcome: timeout.signal.aborted && !stopping.signal.aborted ? 'timeout' : 'network_error' }
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Every attempt of one event, until it is delivered or given up on (a dead letter); `stopped`
   * when close() aborted it.
   */
  const deliver = async (state: EndpointState, delivery: Delivery): Promise<'done' | 'stopped'> => {
    const { endpoint } = state
    let last: Attempt = { outcome: 'network_error' }
    let attempts = 0
    for (let n = 1; n <= endpoint.maxAttempts; n++) {
      if (n > 1) {
        metrics.webhookRetries.inc({ endpoint: endpoint.id })
        const policy = { baseMs: endpoint.backoffBaseMs, maxMs: endpoint.backoffMaxMs }
        const waited = await sleep(backoffDelayMs(n - 1, policy, random), true, {
          signal: stopping.signal,
        }).catch(() => false)
        if (!waited) return 'stopped'
      }
      last = await attempt(endpoint, delivery, n)
      attempts = n
      if (stopping.signal.aborted) return 'stopped'
      metrics.webhookDeliveries.inc({ endpoint: endpoint.id, outcome: last.outcome })
      if (last.outcome === 'delivered') {
        state.dropLogged = false
        return 'done'
      }
      logger.debug(
        {
          endpoint: endpoint.id,
          eventId: delivery.event.id,
          attempt: n,
          outcome: last.outcome,
          status: last.status,
        },
        'webhooks.attempt_failed',
      )
      const refused =
        last.status !== undefined &&
        last.status >= 400 &&
        last.status < 500 &&
        !RETRYABLE_4XX.has(last.status)
      if (refused) break
    }
    metrics.webhookDeadLetters.inc({ endpoint: endpoint.id })
    logger.warn(
      {
        endpoint: endpoint.id,
        org: endpoint.org,
        eventId: delivery.event.id,
        attempts,
        outcome: last.outcome,
        status: last.status,
      },
      'webhooks.dead_letter',
    )
    return 'done'
  }

  let droppedAtShutdown = 0
  const drop = (state: EndpointState, reason: 'queue_full' | 'shutdown', count = 1): void => {
    if (count === 0) return
    metrics.webhookDropped.inc({ endpoint: state.endpoint.id, reason }, count)
    if (reason === 'shutdown') droppedAtShutdown += count
    else if (!state.dropLogged) {
      state.dropLogged = true
      logger.warn(
        { endpoint: state.endpoint.id, org: state.endpoint.org, queueSize: state.endpoint.queueSize },
        'webhooks.queue_full',
      )
    }
  }

  /** Delivers the endpoint's queue, oldest first, until it is empty or the dispatcher stops. */
  const pump = (state: EndpointState): void => {
    if (state.busy) return
    state.busy = true
    state.running = (async () => {
      try {
        for (let next = state.queue.shift(); next !== undefined; next = state.queue.shift()) {
          metrics.webhookQueueDepth.set({ endpoint: state.endpoint.id }, state.queue.size)
          if ((await deliver(state, next)) === 'stopped') {
            drop(state, 'shutdown')
            return
          }
        }
      } catch (error) {
        // Nothing above throws on purpose; if something does, the endpoint must not stop for good.
        logger.error({ err: error, endpoint: state.endpoint.id }, 'webhooks.failed')
      } finally {
        // In the same tick as the last shift: an event queued from here on starts a new loop.
        state.busy = false
      }
    })()
  }

  return {
    send(event) {
      const targets = byOrg.get(event.org)
      if (targets === undefined) return
      const delivery: Delivery = { event, body: JSON.stringify(event) }
      for (const state of targets) {
        if (!state.endpoint.events.includes(event.type)) continue
        if (closed) {
          drop(state, 'shutdown')
          continue
        }
        if (state.queue.push(delivery) !== undefined) drop(state, 'queue_full')
        metrics.webhookQueueDepth.set({ endpoint: state.endpoint.id }, state.queue.size)
        pump(state)
      }
    },
    async close(graceMs) {
      closed = true
      await within(Promise.all(states.map((state) => state.running)), graceMs)
      stopping.abort()
      await Promise.all(states.map((state) => state.running))
      for (const state of states) {
        drop(state, 'shutdown', state.queue.drain().length)
        metrics.webhookQueueDepth.set({ endpoint: state.endpoint.id }, 0)
      }
      if (droppedAtShutdown > 0) logger.warn({ dropped: droppedAtShutdown }, 'webhooks.stopped')
    },
  }
}
