/**
 * Webhooks to real HTTP receivers (node:http) that check every signature the way
 * docs/integrations.md tells a receiver to; and outbound targets that are stuck, which must cost
 * recognition nothing.
 */
import assert from 'node:assert/strict'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { once } from 'node:events'
import { rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { apiClientFor, startTestApp, tempDataDir } from '../helpers/app.js'
import { freePort } from '../helpers/child.js'
import { sampleValue, scrapeMetrics } from '../helpers/metrics.js'
import {
  assertKitMatch,
  enrollKit,
  examplePhoto,
  firstStatus,
  NO_FPS_LIMITS,
  noFaces,
  openStream,
  readyBody,
  streamFrames,
} from '../helpers/stream-match.js'

const SECRET = 'whsec_9c1f4e2a7b3d5c6e8f0a1b2c3d4e5f60'
const OTHER_SECRET = 'whsec_other_0a1b2c3d4e5f60718293a4b5c6d7e8f9'

interface Delivery {
  eventId: string
  attempt: string
  verified: boolean
  body: string
}

/** The receiver's check, as docs/integrations.md gives it: HMAC of "t.body", at most 5 minutes old. */
function verify(secret: string, header: string | undefined, body: string): boolean {
  const parts = new Map((header ?? '').split(',').map((part) => part.split('=', 2) as [string, string]))
  const timestamp = parts.get('t') ?? ''
  const signature = Buffer.from(parts.get('v1') ?? '', 'hex')
  const expected = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest()
  const fresh = Math.abs(Date.now() / 1000 - Number(timestamp)) <= 300
  return fresh && signature.length === expected.length && timingSafeEqual(signature, expected)
}

/** An HTTP receiver on 127.0.0.1; `answer` gets each delivery, in order, once its body is read. */
async function startReceiver(
  secret: string,
  answer: (delivery: Delivery, response: ServerResponse, n: number) => void,
): Promise<{ url: string; deliveries: Delivery[]; close: () => Promise<void> }> {
  const deliveries: Delivery[] = []
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const delivery: Delivery = {
        eventId: String(request.headers['facewire-event-id']),
        attempt: String(request.headers['facewire-delivery-attempt']),
        verified: verify(secret, request.headers['facewire-signature'] as string | undefined, body),
        body,
      }
      deliveries.push(delivery)
      answer(delivery, response, deliveries.length)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${String(port)}/hooks/facewire`,
    deliveries,
    close: async () => {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

/** A webhooks file in its own folder, removed after the test. */
function webhooksFile(t: { after: (fn: () => void) => void }, endpoints: object[]): string {
  const dir = tempDataDir('facewire-webhooks-')
  t.after(() => {
    rmSync(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'webhooks.json')
  writeFileSync(file, JSON.stringify({ endpoints }), { mode: 0o600 })
  return file
}

test(
  'every delivery is signed and verifies; the receiver fails the first two attempts and gets the third',
  { skip: noFaces, timeout: 120_000 },
  async (t) => {
    let third: (delivery: Delivery) => void = () => undefined
    const delivered = new Promise<Delivery>((resolve) => (third = resolve))
    const receiver = await startReceiver(SECRET, (delivery, response, n) => {
      response.statusCode = n <= 2 ? 500 : 204
      response.end()
      if (n === 3) third(delivery)
    })
    const other = await startReceiver(OTHER_SECRET, (_delivery, response) => response.end())
    t.after(() => Promise.all([receiver.close(), other.close()]))
    const file = webhooksFile(t, [
      {
        id: 'acme-door',
        org: 'acme',
        url: receiver.url,
        secret: SECRET,
        backoffBaseMs: 50,
        backoffMaxMs: 200,
      },
      { id: 'other-door', org: 'other-org', url: other.url, secret: OTHER_SECRET, backoffBaseMs: 50 },
    ])
    const started = await startTestApp({
      FACEWIRE_WEBHOOKS_FILE: file,
      ...NO_FPS_LIMITS,
    })
    t.after(() => started.stop())
    const kitId = await enrollKit(started, 'acme')
    const stream = await openStream(started, 'acme')
    t.after(() => {
      stream.close()
    })
    const answers = await streamFrames(stream, await examplePhoto('kit_harington/3.jpg'), {
      first: 1,
      count: 4,
      camera: 'front-door',
    })
    assert.ok(
      answers.some((answer) => firstStatus(answer) === 'match'),
      'matched within 4 frames',
    )

    const last = await delivered
    assert.equal(receiver.deliveries.length, 3)
    assert.deepEqual(
      receiver.deliveries.map((d) => [d.verified, d.eventId, d.attempt]),
      [
        [true, last.eventId, '1'],
        [true, last.eventId, '2'],
        [true, last.eventId, '3'],
      ],
      'three attempts of one event, each signature valid',
    )
    // A signature does not verify under another secret (the check above can fail).
    assert.equal(verify(OTHER_SECRET, `t=${String(Math.floor(Date.now() / 1000))},v1=00`, last.body), false)
    const event = assertKitMatch(last.body, {
      org: 'acme',
      identityId: kitId,
      camera: 'front-door',
      session: stream.hello.session,
    })
    assert.equal(event.id, last.eventId, 'the header and the body name the same event')
    assert.deepEqual(other.deliveries, [], "another organization's endpoint gets nothing")

    // A REST recognition is a decision too (counted), but not an event (no delivery).
    const api = apiClientFor(started, 'acme')
    const rest = await api.recognize(await examplePhoto('kit_harington/3.jpg'), 'image/jpeg')
    assert.equal(rest.faces[0]?.decision.status, 'match')

    const metrics = await scrapeMetrics(started.port)
    assert.equal(receiver.deliveries.length, 3)
    const decisions = (labels: Record<string, string>) =>
      sampleValue(metrics, 'facewire_decisions_total', { org: 'acme', ...labels })
    assert.equal(decisions({ source: 'rest', status: 'match' }), 1)
    const streamed = ['match', 'uncertain', 'unknown'].map((status) =>
      decisions({ source: 'stream', status }),
    )
    assert.equal(
      streamed.reduce((sum, n) => sum + n, 0),
      answers.reduce((sum, answer) => sum + (answer.type === 'result' ? answer.faces.length : 0), 0),
      'one per face of each stream result',
    )
    assert.equal(streamed[0], answers.filter((answer) => firstStatus(answer) === 'match').length)
    const door = { endpoint: 'acme-door' }
    assert.equal(
      sampleValue(metrics, 'facewire_webhook_deliveries_total', { ...door, outcome: 'http_error' }),
      2,
    )
    assert.equal(
      sampleValue(metrics, 'facewire_webhook_deliveries_total', { ...door, outcome: 'delivered' }),
      1,
    )
    assert.equal(sampleValue(metrics, 'facewire_webhook_retries_total', door), 2)
    assert.equal(sampleValue(metrics, 'facewire_webhook_dead_letters_total', door), 0)
    assert.equal(sampleValue(metrics, 'facewire_webhook_dropped_total', { ...door, reason: 'queue_full' }), 0)
    const logged = JSON.stringify(started.lines())
    assert.ok(logged.includes('webhooks.configured'))
    assert.ok(!logged.includes(SECRET) && !logged.includes(OTHER_SECRET), 'secrets never reach the log')
  },
)

test(
  'a receiver that never answers and a broker that is down cost recognition nothing: every frame is answered, the bounded queues drop and count',
  { skip: noFaces, timeout: 120_000 },
  async (t) => {
    let held = (): void => undefined
    const firstHeld = new Promise<void>((resolve) => (held = resolve))
    // Reads each delivery and never answers it.
    const silent = await startReceiver(SECRET, () => {
      held()
    })
    t.after(() => silent.close())
    const file = webhooksFile(t, [
      {
        id: 'silent',
        org: 'acme',
        url: silent.url,
        secret: SECRET,
        timeoutMs: 60_000,
        maxAttempts: 1,
        queueSize: 2,
      },
    ])
    const started = await startTestApp({
      FACEWIRE_WEBHOOKS_FILE: file,
      // Nothing listens there: the connection is refused, again and again.
      FACEWIRE_MQTT_URL: `mqtt://127.0.0.1:${String(await freePort())}`,
      FACEWIRE_MQTT_ORGS: 'acme',
      FACEWIRE_MQTT_QUEUE: '3',
      // An event for every matched frame.
      FACEWIRE_EVENT_COOLDOWN_MS: '0',
      ...NO_FPS_LIMITS,
    })
    let stopped = false
    t.after(async () => {
      if (!stopped) await started.stop()
    })
    await enrollKit(started, 'acme')
    const stream = await openStream(started, 'acme')
    t.after(() => {
      stream.close()
    })
    const frames = 12
    const answers = await streamFrames(stream, await examplePhoto('kit_harington/3.jpg'), {
      first: 1,
      count: frames,
      camera: 'front-door',
    })
    assert.equal(answers.filter((answer) => answer.type === 'result').length, frames, 'every frame answered')
    const events = answers.filter((answer) => firstStatus(answer) === 'match').length
    assert.ok(events >= 6, `${String(events)} matched frames`)
    await firstHeld

    const metrics = await scrapeMetrics(started.port)
    // Webhooks: one delivery held by the receiver, two waiting, the rest dropped.
    assert.equal(silent.deliveries.length, 1)
    assert.equal(sampleValue(metrics, 'facewire_webhook_queue_depth', { endpoint: 'silent' }), 2)
    assert.equal(
      sampleValue(metrics, 'facewire_webhook_dropped_total', { endpoint: 'silent', reason: 'queue_full' }),
      events - 3,
    )
    // MQTT: three held for the broker, the rest dropped; nothing published.
    assert.equal(sampleValue(metrics, 'facewire_mqtt_dropped_total', { reason: 'queue_full' }), events - 3)
    assert.equal(sampleValue(metrics, 'facewire_mqtt_publishes_total', { outcome: 'sent' }), 0)
    assert.equal(sampleValue(metrics, 'facewire_mqtt_connected'), 0)
    // Still ready, and saying what is wrong.
    const ready = await readyBody(started)
    assert.equal(ready.status, 'degraded')
    assert.match(ready.degraded?.['mqtt'] ?? '', /1 of 1 broker connections down/)
    const lines = started.lines()
    assert.equal(lines.filter((line) => line['msg'] === 'webhooks.queue_full').length, 1)
    assert.equal(lines.filter((line) => line['msg'] === 'mqtt.queue_full').length, 1)

    // Stopping does not wait for the receiver: what is held or queued is dropped and counted.
    stopped = true
    stream.close()
    await started.stop()
    const after = await started.app.metrics.registry.metrics()
    assert.equal(
      sampleValue(after, 'facewire_webhook_dropped_total', { endpoint: 'silent', reason: 'shutdown' }),
      3,
    )
    assert.equal(sampleValue(after, 'facewire_mqtt_dropped_total', { reason: 'shutdown' }), 3)
    assert.ok(started.lines().some((line) => line['msg'] === 'webhooks.stopped' && line['dropped'] === 3))
  },
)
