import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { test } from 'node:test'
import { createMetrics, type Metrics } from '../../../server/metrics.js'
import { createWebhookDispatcher } from '../../../server/outbound/webhooks.js'
import type { WebhookEndpoint } from '../../../server/outbound/webhooks-file.js'
import type { OutboundEvent } from '../../../protocol/wire.js'
import { createMemoryLogger } from '../../helpers/app.js'
import { sampleValue } from '../../helpers/metrics.js'

const secret = 'whsec_5f0c1d7e9a3b4c2d8e6f1a0b9c8d7e6f'

function endpointFor(overrides: Partial<WebhookEndpoint> = {}): WebhookEndpoint {
  return {
    id: 'alarm',
    org: 'acme',
    url: 'http://receiver.invalid/hook',
    secret,
    events: ['match', 'unknown'],
    timeoutMs: 5000,
    maxAttempts: 4,
    backoffBaseMs: 1,
    backoffMaxMs: 1,
    queueSize: 10,
    ...overrides,
  }
}

let seq = 0
function matchEvent(org = 'acme'): OutboundEvent {
  seq++
  return {
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    org,
    type: 'match',
    identity: { id: 'id-1', name: 'Kit' },
    camera: 'front-door',
    similarity: 0.71,
    track: { session: 's1', id: 1, source: 'server', frames: 3 },
    at: new Date(1_700_000_000_000).toISOString(),
  }
}

interface Call {
  url: string
  headers: Record<string, string>
  body: string
  signal: AbortSignal | undefined
}

/** A fetch that records each call and answers with `answer(call number)`. */
function fakeFetch(answer: (n: number, call: Call) => Promise<Response>): {
  fetch: typeof fetch
  calls: Call[]
} {
  const calls: Call[] = []
  const fake: typeof fetch = (input, init) => {
    const call: Call = {
      url: input instanceof Request ? input.url : input.toString(),
      headers: init?.headers as Record<string, string>,
      body: typeof init?.body === 'string' ? init.body : '',
      signal: init?.signal ?? undefined,
    }
    calls.push(call)
    return answer(calls.length, call)
  }
  return { fetch: fake, calls }
}

const status = (code: number): Promise<Response> => Promise.resolve(new Response(null, { status: code }))

/** Never answers; rejects like fetch when its signal aborts. */
const silent = (_n: number, call: Call): Promise<Response> =>
  new Promise((_, reject) => {
    call.signal?.addEventListener('abort', () => {
      reject(new DOMException('aborted', 'AbortError'))
    })
  })

async function counters(metrics: Metrics): Promise<string> {
  return metrics.registry.metrics()
}

test('failed attempts are retried with the same event id and a fresh signature until one is delivered', async () => {
  const metrics = createMetrics()
  const { logger } = createMemoryLogger()
  const receiver = fakeFetch((n) => status(n <= 2 ? 503 : 204))
  let clock = 1_700_000_000_000
  const dispatcher = createWebhookDispatcher({
    endpoints: [endpointFor()],
    logger,
    metrics,
    fetch: receiver.fetch,
    random: () => 0.5,
    now: () => (clock += 1000),
  })
  const event = matchEvent()
  dispatcher.send(event)
  await dispatcher.close(10_000)
  assert.equal(receiver.calls.length, 3)
  const timestamps: number[] = []
  for (const [i, call] of receiver.calls.entries()) {
    assert.equal(call.url, 'http://receiver.invalid/hook')
    assert.equal(call.body, JSON.stringify(event))
    assert.equal(call.headers['content-type'], 'application/json')
    assert.equal(call.headers['facewire-event-id'], event.id)
    assert.equal(call.headers['facewire-event-type'], 'match')
    assert.equal(call.headers['facewire-delivery-attempt'], String(i + 1))
    const parts = (call.headers['facewire-signature'] ?? '').split(',').map((part) => part.split('='))
    const { t, v1 } = Object.fromEntries(parts) as { t?: string; v1?: string }
    assert.equal(
      v1,
      createHmac('sha256', secret)
        .update(`${t ?? ''}.${call.body}`)
        .digest('hex'),
    )
    timestamps.push(Number(t))
  }
  // Signed at each attempt's own time, so a receiver's freshness check holds for retries too.
  assert.deepEqual(timestamps, [1_700_000_001, 1_700_000_002, 1_700_000_003])
  const text = await counters(metrics)
  const alarm = { endpoint: 'alarm' }
  assert.equal(sampleValue(text, 'facewire_webhook_deliveries_total', { ...alarm, outcome: 'http_error' }), 2)
  assert.equal(sampleValue(text, 'facewire_webhook_deliveries_total', { ...alarm, outcome: 'delivered' }), 1)
  assert.equal(sampleValue(text, 'facewire_webhook_retries_total', alarm), 2)
  assert.equal(sampleValue(text, 'facewire_webhook_dead_letters_total', alarm), 0)
})

test('after the last attempt an event is a dead letter; a 4xx refusal is one at once, a 429 is retried', async () => {
  const metrics = createMetrics()
  const { logger, lines } = createMemoryLogger()
  const failing = fakeFetch(() => status(500))
  const refusing = fakeFetch(() => status(400))
  const busy = fakeFetch((n) => status(n === 1 ? 429 : 200))
  const dispatchers = [
    createWebhookDispatcher({
      endpoints: [endpointFor({ id: 'down' })],
      logger,
      metrics,
      fetch: failing.fetch,
    }),
    createWebhookDispatcher({
      endpoints: [endpointFor({ id: 'picky' })],
      logger,
      metrics,
      fetch: refusing.fetch,
    }),
    createWebhookDispatcher({ endpoints: [endpointFor({ id: 'busy' })], logger, metrics, fetch: busy.fetch }),
  ]
  for (const dispatcher of dispatchers) dispatcher.send(matchEvent())
  await Promise.all(dispatchers.map((dispatcher) => dispatcher.close(10_000)))
  assert.equal(failing.calls.length, 4, 'maxAttempts')
  assert.equal(refusing.calls.length, 1)
  assert.equal(busy.calls.length, 2)
  const text = await counters(metrics)
  assert.equal(sampleValue(text, 'facewire_webhook_dead_letters_total', { endpoint: 'down' }), 1)
  assert.equal(sampleValue(text, 'facewire_webhook_retries_total', { endpoint: 'down' }), 3)
  assert.equal(sampleValue(text, 'facewire_webhook_dead_letters_total', { endpoint: 'picky' }), 1)
  assert.equal(sampleValue(text, 'facewire_webhook_dead_letters_total', { endpoint: 'busy' }), 0)
  const dead = lines().filter((line) => line['msg'] === 'webhooks.dead_letter')
  assert.deepEqual(dead.map((line) => `${String(line['endpoint'])} ${String(line['status'])}`).sort(), [
    'down 500',
    'picky 400',
  ])
  // The attempts really made: every one for `down`, the refused first one for `picky`.
  assert.deepEqual(dead.map((line) => `${String(line['endpoint'])} ${String(line['attempts'])}`).sort(), [
    'down 4',
    'picky 1',
  ])
  assert.ok(!JSON.stringify(lines()).includes(secret), 'the secret is never logged')
})

test("an organization's events go only to its own endpoints, and only of the types they take", async () => {
  const metrics = createMetrics()
  const { logger } = createMemoryLogger()
  const acme = fakeFetch(() => status(200))
  const other = fakeFetch(() => status(200))
  const acmeDispatcher = createWebhookDispatcher({
    endpoints: [endpointFor({ id: 'acme-matches', events: ['match'] })],
    logger,
    metrics,
    fetch: acme.fetch,
  })
  const otherDispatcher = createWebhookDispatcher({
    endpoints: [endpointFor({ id: 'other', org: 'other-org' })],
    logger,
    metrics,
    fetch: other.fetch,
  })
  const match = matchEvent('acme')
  const unknown: OutboundEvent = {
    id: 'u1',
    org: 'acme',
    type: 'unknown',
    camera: null,
    similarity: 0.2,
    track: { session: 's', id: 2, source: 'server', frames: 2 },
    at: match.at,
  }
  for (const dispatcher of [acmeDispatcher, otherDispatcher]) {
    dispatcher.send(match)
    dispatcher.send(unknown)
  }
  await Promise.all([acmeDispatcher.close(10_000), otherDispatcher.close(10_000)])
  assert.deepEqual(
    acme.calls.map((call) => call.headers['facewire-event-id']),
    [match.id],
  )
  assert.deepEqual(other.calls, [])
})

test('a receiver that never answers holds one delivery; the queue keeps its bound and counts what it drops', async () => {
  const metrics = createMetrics()
  const { logger, lines } = createMemoryLogger()
  const receiver = fakeFetch(silent)
  const dispatcher = createWebhookDispatcher({
    endpoints: [endpointFor({ queueSize: 2 })],
    logger,
    metrics,
    fetch: receiver.fetch,
  })
  for (let i = 0; i < 7; i++) dispatcher.send(matchEvent())
  // One in flight, two waiting, four dropped (the oldest waiting ones each time).
  assert.equal(receiver.calls.length, 1)
  let text = await counters(metrics)
  assert.equal(
    sampleValue(text, 'facewire_webhook_dropped_total', { endpoint: 'alarm', reason: 'queue_full' }),
    4,
  )
  assert.equal(sampleValue(text, 'facewire_webhook_queue_depth', { endpoint: 'alarm' }), 2)
  assert.equal(lines().filter((line) => line['msg'] === 'webhooks.queue_full').length, 1, 'logged once')
  // Stopping aborts the held request: it and the two waiting are dropped, counted as shutdown.
  await dispatcher.close(0)
  assert.equal(receiver.calls[0]?.signal?.aborted, true)
  text = await counters(metrics)
  assert.equal(
    sampleValue(text, 'facewire_webhook_dropped_total', { endpoint: 'alarm', reason: 'shutdown' }),
    3,
  )
  assert.equal(sampleValue(text, 'facewire_webhook_queue_depth', { endpoint: 'alarm' }), 0)
  dispatcher.send(matchEvent())
  assert.equal(receiver.calls.length, 1, 'nothing is sent after close')
})

test('an attempt past its timeout is aborted and counted as a timeout', async () => {
  const metrics = createMetrics()
  const { logger } = createMemoryLogger()
  const receiver = fakeFetch(silent)
  const dispatcher = createWebhookDispatcher({
    endpoints: [endpointFor({ timeoutMs: 100, maxAttempts: 2 })],
    logger,
    metrics,
    fetch: receiver.fetch,
  })
  dispatcher.send(matchEvent())
  await dispatcher.close(30_000)
  assert.equal(receiver.calls.length, 2)
  const text = await counters(metrics)
  assert.equal(
    sampleValue(text, 'facewire_webhook_deliveries_total', { endpoint: 'alarm', outcome: 'timeout' }),
    2,
  )
  assert.equal(sampleValue(text, 'facewire_webhook_dead_letters_total', { endpoint: 'alarm' }), 1)
})
