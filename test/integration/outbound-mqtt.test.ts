/**
 * MQTT events against the machine's real Mosquitto (mqtt://127.0.0.1:1883; `.ci/run` starts it),
 * each test under a topic prefix of its own.
 */
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { test } from 'node:test'
import type { OutboundEvent } from '../../protocol/wire.js'
import { startTestApp, tempDataDir, TEST_SECRET } from '../helpers/app.js'
import { freePort, startMain, stopChild, whenReady } from '../helpers/child.js'
import { sampleValue, scrapeMetrics } from '../helpers/metrics.js'
import {
  clearRetained,
  findMosquitto,
  startPrivateBroker,
  stopBroker,
  subscribe,
  TEST_BROKER,
  testPrefix,
} from '../helpers/mqtt.js'
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

const mosquitto = findMosquitto()
const noMosquitto =
  mosquitto === undefined && process.env['CI'] === undefined ? 'mosquitto is not installed' : noFaces

test(
  "an enrolled person recognized on a stream is one match message on the organization's topic, with the documented payload; another organization's topics get nothing",
  { skip: noFaces, timeout: 120_000 },
  async (t) => {
    const prefix = testPrefix()
    const subscriber = await subscribe(`${prefix}/#`)
    t.after(async () => {
      await subscriber.close()
      await clearRetained([`${prefix}/acme/status`, `${prefix}/other-org/status`])
    })
    const started = await startTestApp({
      FACEWIRE_MQTT_URL: TEST_BROKER,
      FACEWIRE_MQTT_ORGS: 'acme,other-org',
      FACEWIRE_MQTT_PREFIX: prefix,
      FACEWIRE_EVENTS_UNKNOWN: 'true',
      ...NO_FPS_LIMITS,
    })
    let stopped = false
    t.after(async () => {
      if (!stopped) await started.stop()
    })
    // Each organization's connection says it is online, retained.
    for (const org of ['acme', 'other-org']) {
      await subscriber.when((m) => m.topic === `${prefix}/${org}/status` && m.payload === 'online')
    }

    const kitId = await enrollKit(started, 'acme')
    const stream = await openStream(started, 'acme')
    const stranger = await openStream(started, 'acme')
    t.after(() => {
      stream.close()
      stranger.close()
    })
    const kitFrame = await examplePhoto('kit_harington/3.jpg')
    // Matched within a few frames; more frames of the same track repeat nothing (cooldown).
    const answers = await streamFrames(stream, kitFrame, { first: 1, count: 6, camera: 'front-door' })
    assert.ok(
      answers.slice(0, 4).some((answer) => firstStatus(answer) === 'match'),
      'matched within 4 frames',
    )

    // A stranger without a camera label, after Kit: its unknown event is published by the same
    // connection after any message of Kit's track, so once it is here, those are too.
    const [strangerAnswer] = await streamFrames(stranger, await examplePhoto('joe_biden/2.jpg'), {
      first: 1,
      count: 1,
    })
    assert.equal(strangerAnswer === undefined ? undefined : firstStatus(strangerAnswer), 'unknown')
    const unknown = await subscriber.when((m) => m.topic === `${prefix}/acme/_none/unknown`)

    const matches = subscriber.messages.filter((m) => m.topic.endsWith('/match'))
    assert.deepEqual(
      matches.map((m) => m.topic),
      [`${prefix}/acme/front-door/match`],
      'exactly one match message, on the org and camera topic',
    )
    const event = assertKitMatch(matches[0]?.payload ?? '', {
      org: 'acme',
      identityId: kitId,
      camera: 'front-door',
      session: stream.hello.session,
    })
    const unknownEvent = JSON.parse(unknown.payload) as OutboundEvent
    assert.deepEqual([unknownEvent.type, unknownEvent.org, unknownEvent.camera], ['unknown', 'acme', null])
    assert.notEqual(unknownEvent.id, event.id)
    assert.ok(!unknown.payload.includes('embedding') && !unknown.payload.includes('token'))

    assert.deepEqual(
      subscriber.messages.filter(
        (m) => m.topic.startsWith(`${prefix}/other-org/`) && !m.topic.endsWith('/status'),
      ),
      [],
      'another organization hears nothing',
    )
    const metrics = await scrapeMetrics(started.port)
    assert.equal(sampleValue(metrics, 'facewire_mqtt_connected'), 2)
    const sent = sampleValue(metrics, 'facewire_mqtt_publishes_total', { outcome: 'sent' })
    assert.equal(sent, subscriber.messages.filter((m) => /\/(match|unknown)$/.test(m.topic)).length)
    assert.ok(
      sampleValue(metrics, 'facewire_decisions_total', { source: 'stream', status: 'match', org: 'acme' }) >=
        1,
    )

    // A clean stop says offline, retained.
    stopped = true
    await started.stop()
    await subscriber.when((m) => m.topic === `${prefix}/acme/status` && m.payload === 'offline')
  },
)

test(
  'the status reads online while any instance is connected, and offline once the last one stops or crashes (its last will)',
  { timeout: 120_000 },
  async (t) => {
    const prefix = testPrefix()
    const status = `${prefix}/acme/status`
    const subscriber = await subscribe(status)
    t.after(async () => {
      await subscriber.close()
      await clearRetained([status])
    })
    const env = { FACEWIRE_MQTT_URL: TEST_BROKER, FACEWIRE_MQTT_ORGS: 'acme', FACEWIRE_MQTT_PREFIX: prefix }
    const crashing = startMain(env)
    t.after(() => {
      crashing.child.kill('SIGKILL')
      rmSync(crashing.dataDir, { recursive: true, force: true })
    })
    await whenReady(crashing)
    await crashing.waitFor(/^mqtt\.connected$/)
    const staying = await startTestApp(env)
    let stayingStopped = false
    t.after(async () => {
      if (!stayingStopped) await staying.stop()
    })
    const payloads = () => subscriber.messages.map((m) => m.payload)
    const onlineCount = async (count: number) => {
      await subscriber.when(() => payloads().filter((p) => p === 'online').length >= count)
    }
    // Both instances announced themselves.
    await onlineCount(2)

    // One stops cleanly: it says offline, the other answers online.
    stayingStopped = true
    await staying.stop()
    await subscriber.when((m) => m.payload === 'offline')
    await onlineCount(3)
    assert.deepEqual(payloads().slice(-2), ['offline', 'online'])

    // The last one is killed: the broker publishes its will.
    crashing.child.kill('SIGKILL')
    const before = subscriber.messages.length
    await subscriber.when(
      () => subscriber.messages.length > before && subscriber.messages.at(-1)?.payload === 'offline',
    )
    // A newcomer reads the retained state: offline.
    const late = await subscribe(status)
    t.after(() => late.close())
    const retained = await late.when((m) => m.retain)
    assert.equal(retained.payload, 'offline')
  },
)

test(
  'while the broker is away events wait in the bounded queue (the oldest dropped and counted), and are published when it is back',
  { skip: noMosquitto, timeout: 120_000 },
  async (t) => {
    const dir = tempDataDir('facewire-broker-')
    const port = await freePort()
    const url = `mqtt://127.0.0.1:${String(port)}`
    let broker = await startPrivateBroker(mosquitto ?? 'mosquitto', port, dir)
    t.after(async () => {
      await stopBroker(broker)
      rmSync(dir, { recursive: true, force: true })
    })
    const prefix = testPrefix()
    // A persistent session: the restarted broker keeps for it what is published before it is back.
    const subscriber = await subscribe(`${prefix}/#`, {
      url,
      clean: false,
      clientId: `${prefix}-subscriber`,
      reconnectPeriod: 100,
    })
    t.after(() => subscriber.close())
    const server = startMain({
      FACEWIRE_JWT_SECRET: TEST_SECRET,
      FACEWIRE_MQTT_URL: url,
      FACEWIRE_MQTT_ORGS: 'acme',
      FACEWIRE_MQTT_PREFIX: prefix,
      FACEWIRE_MQTT_QUEUE: '2',
      FACEWIRE_EVENT_COOLDOWN_MS: '0',
      ...NO_FPS_LIMITS,
    })
    t.after(async () => {
      await stopChild(server)
      rmSync(server.dataDir, { recursive: true, force: true })
    })
    const ready = await whenReady(server)
    await server.waitFor(/^mqtt\.connected$/)
    await enrollKit(ready, 'acme')

    await stopBroker(broker)
    await server.waitFor(/^mqtt\.disconnected$/)
    const stream = await openStream(ready, 'acme')
    t.after(() => {
      stream.close()
    })
    const answers = await streamFrames(stream, await examplePhoto('kit_harington/3.jpg'), {
      first: 1,
      count: 8,
      camera: 'front-door',
    })
    assert.equal(answers.filter((answer) => answer.type === 'result').length, 8, 'every frame answered')
    const events = answers.filter((answer) => firstStatus(answer) === 'match').length
    assert.ok(events >= 4, `${String(events)} matched frames`)
    let metrics = await scrapeMetrics(ready.port)
    assert.equal(sampleValue(metrics, 'facewire_mqtt_dropped_total', { reason: 'queue_full' }), events - 2)
    const health = await readyBody(ready)
    assert.match(health.degraded?.['mqtt'] ?? '', /1 of 1 broker connections down/)

    // Back on the same port: facewire reconnects by itself and publishes the two it kept.
    broker = await startPrivateBroker(mosquitto ?? 'mosquitto', port, dir)
    const matchesHere = () => subscriber.messages.filter((m) => m.topic === `${prefix}/acme/front-door/match`)
    await subscriber.when(() => matchesHere().length >= 2)
    await subscriber.when((m) => m.topic === `${prefix}/acme/status` && m.payload === 'online')
    const kept = matchesHere().map((m) => JSON.parse(m.payload) as OutboundEvent)
    assert.equal(new Set(kept.map((event) => event.id)).size, 2)
    assert.ok(Date.parse(kept[0]?.at ?? '') <= Date.parse(kept[1]?.at ?? ''), 'in their order')
    // The broker acknowledges to facewire and delivers to the subscriber independently: wait for
    // the count rather than assume it is there.
    for (let tries = 0; tries < 200; tries++) {
      metrics = await scrapeMetrics(ready.port)
      if (sampleValue(metrics, 'facewire_mqtt_publishes_total', { outcome: 'sent' }) >= 2) break
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    assert.equal(sampleValue(metrics, 'facewire_mqtt_publishes_total', { outcome: 'sent' }), 2)
    assert.equal(sampleValue(metrics, 'facewire_mqtt_connected'), 1)
    assert.equal(matchesHere().length, 2, 'nothing beyond the bound was kept')
  },
)
