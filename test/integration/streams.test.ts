import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import jwt from 'jsonwebtoken'
import WebSocket from 'ws'
import { createApiClient } from '../../client/api-client.js'
import { openDetectStream, openEventStream, UpgradeRefused } from '../../client/stream-client.js'
import type { StreamAnswer } from '../../protocol/wire.js'
import { encodeFrame } from '../../protocol/frame.js'
import { startTestApp, testToken, TEST_SECRET, type StartedApp } from '../helpers/app.js'
import { encode, facesDir, seededBytes, texturedScene } from '../helpers/images.js'

const faces = facesDir()
const noFaces = faces === undefined ? 'the shared face photos (../shared/faces) are absent' : false

function photo(path: string): Promise<Buffer> {
  return readFile(join(faces ?? '', 'face_recognition-examples', path))
}

const base = (started: StartedApp): string => `http://127.0.0.1:${String(started.port)}`

async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await promise
  } catch (error) {
    if (error instanceof UpgradeRefused) return { status: error.status, code: error.code }
    throw error
  }
  assert.fail('expected the upgrade to be refused')
}

test('upgrades without a valid token or scope are refused before the socket opens, with their status and code', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const open = (token: string, query = false) =>
    openDetectStream({ baseUrl: base(started), token, tokenInQuery: query })

  // Missing: a bare upgrade with no token at all.
  const bare = new WebSocket(`ws://127.0.0.1:${String(started.port)}/ws/detect`)
  const status = await new Promise<number>((resolve) => {
    bare.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
    })
    bare.on('error', () => undefined)
  })
  assert.equal(status, 401)

  assert.deepEqual(await refusal(open('not-a-jwt')), { status: 401, code: 'ERR_AUTH_INVALID' })
  const expired = jwt.sign(
    { org: 'acme', scope: 'detect', exp: Math.floor(Date.now() / 1000) - 30 },
    TEST_SECRET,
  )
  assert.deepEqual(await refusal(open(expired)), { status: 401, code: 'ERR_AUTH_EXPIRED' })
  // Expired a second ago: the upgrade succeeded (a 5 s leeway) and the stream closed with 4401.
  const justExpired = jwt.sign(
    { org: 'acme', scope: 'detect', exp: Math.floor(Date.now() / 1000) - 1 },
    TEST_SECRET,
  )
  assert.deepEqual(await refusal(open(justExpired)), { status: 401, code: 'ERR_AUTH_EXPIRED' })
  assert.deepEqual(await refusal(open(justExpired, true)), { status: 401, code: 'ERR_AUTH_EXPIRED' })
  const early = jwt.sign({ org: 'acme', scope: 'detect' }, TEST_SECRET, { expiresIn: 600, notBefore: 300 })
  assert.deepEqual(await refusal(open(early)), { status: 401, code: 'ERR_AUTH_INVALID' })
  const forged = jwt.sign({ org: 'acme', scope: 'detect' }, 'x'.repeat(48), { expiresIn: 60 })
  assert.deepEqual(await refusal(open(forged)), { status: 401, code: 'ERR_AUTH_INVALID' })
  const unsigned = jwt.sign({ org: 'acme', scope: 'detect' }, '', { algorithm: 'none', expiresIn: 60 })
  assert.deepEqual(await refusal(open(unsigned, true)), { status: 401, code: 'ERR_AUTH_INVALID' })
  assert.deepEqual(await refusal(open(testToken('acme', ['enroll']))), {
    status: 403,
    code: 'ERR_AUTH_SCOPE',
  })
  assert.deepEqual(
    await refusal(openEventStream({ baseUrl: base(started), token: testToken('acme', ['detect']) })),
    { status: 403, code: 'ERR_AUTH_SCOPE' },
  )
  const logged = JSON.stringify(started.lines())
  assert.ok(!logged.includes(expired) && !logged.includes(forged), 'tokens never reach the log')
})

test('hello announces limits, models, thresholds and a suggested rate; the token may come in the query', async (t) => {
  const started = await startTestApp({ FACEWIRE_STREAM_MAX_FPS: '9', FACEWIRE_MAX_FRAME_BYTES: '100000' })
  t.after(() => started.stop())
  const stream = await openDetectStream({
    baseUrl: base(started),
    token: testToken('acme'),
    tokenInQuery: true,
  })
  t.after(() => {
    stream.close()
  })
  const hello = stream.hello
  assert.equal(hello.type, 'hello')
  assert.equal(hello.protocol, 1)
  assert.equal(hello.org, 'acme')
  assert.equal(hello.limits.maxFps, 9)
  assert.equal(hello.limits.maxFrameBytes, 100000)
  assert.ok(hello.suggestedFps >= 1 && hello.suggestedFps <= 9)
  assert.ok(hello.models.includes('faceplugin-feature'))
  const policy = started.app.gallery().policyFor('acme')
  assert.equal(hello.thresholds.match, policy.threshold)
  assert.equal(hello.thresholds.targetFpir, started.config.match.targetFpir)
  assert.ok(hello.tokenExpiresAt > Date.now())
})

test(
  'a burst gets exactly one answer per frame: the newest frame wins, replaced frames are answered dropped',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp({ FACEWIRE_STREAM_MAX_FPS: '1000', FACEWIRE_ORG_MAX_FPS: '1000' })
    t.after(() => started.stop())
    const stream = await openDetectStream({ baseUrl: base(started), token: testToken('acme') })
    t.after(() => {
      stream.close()
    })
    const image = await photo('kit_harington/2.jpeg')
    const answers = new Map<number, StreamAnswer[]>()
    stream.onAnswer((answer) => {
      if (!('frameId' in answer) || answer.frameId === undefined) return
      answers.set(answer.frameId, [...(answers.get(answer.frameId) ?? []), answer])
    })
    const count = 25
    for (let frameId = 1; frameId <= count; frameId++) stream.send({ frameId }, image)
    const last = await stream.answerFor(count)
    await sleep(300) // anything late or duplicated would show up here
    assert.equal(answers.size, count, 'every frame answered')
    for (const [frameId, list] of answers)
      assert.equal(list.length, 1, `frame ${String(frameId)} answered once`)
    const types = [...answers.values()].map((list) => list[0]?.type)
    assert.equal(last.type, 'result', 'the newest frame is never replaced')
    const dropped = types.filter((type) => type === 'dropped').length
    const results = types.filter((type) => type === 'result').length
    assert.ok(dropped >= count - 5, `most of a burst is replaced (dropped ${String(dropped)})`)
    assert.equal(dropped + results, count)
    const result = last
    assert.equal(result.faces.length, 1)
    assert.ok(result.timings.totalMs >= result.timings.decodeMs)
  },
)

test('over its frame rate a connection is answered throttled with retryAfterMs, and others are not', async (t) => {
  const started = await startTestApp({ FACEWIRE_STREAM_MAX_FPS: '3' })
  t.after(() => started.stop())
  const stream = await openDetectStream({ baseUrl: base(started), token: testToken('acme') })
  const other = await openDetectStream({ baseUrl: base(started), token: testToken('acme') })
  t.after(() => {
    stream.close()
    other.close()
  })
  const image = await encode(texturedScene(96, 64), 'jpeg')
  const pending = Array.from({ length: 8 }, (_, i) => stream.answerFor(i + 1))
  for (let i = 1; i <= 8; i++) stream.send({ frameId: i }, image)
  const answers = await Promise.all(pending)
  const throttled = answers.filter((answer) => answer.type === 'throttled')
  assert.ok(throttled.length >= 5, `throttled ${String(throttled.length)} of 8`)
  for (const answer of throttled) {
    assert.ok(answer.type === 'throttled' && answer.retryAfterMs > 0 && answer.scope === 'connection')
  }
  const fromOther = other.answerFor(1)
  other.send({ frameId: 1 }, image)
  assert.equal((await fromOther).type, 'result')
})

test('garbage gets an error answer and the stream goes on; an oversized message closes it with 1009', async (t) => {
  const started = await startTestApp({ FACEWIRE_MAX_FRAME_BYTES: '65536' })
  t.after(() => started.stop())
  const stream = await openDetectStream({ baseUrl: base(started), token: testToken('acme') })
  const errors: StreamAnswer[] = []
  stream.onAnswer((answer) => {
    if (answer.type === 'error') errors.push(answer)
  })
  stream.socket.send('{"type":"frame"}')
  stream.socket.send(new Uint8Array([9, 0, 0, 0, 0, 7, 1, 2, 3]), { binary: true }) // version 9
  const random = stream.answerFor(8)
  stream.send({ frameId: 8 }, seededBytes(3, 500))
  assert.equal((await random).type, 'error')
  const good = stream.answerFor(9)
  stream.send({ frameId: 9, camera: 'door' }, await encode(texturedScene(96, 64), 'png'))
  assert.equal((await good).type, 'result')
  const codes = errors.map((answer) => (answer.type === 'error' ? answer.error.code : ''))
  assert.deepEqual(codes, ['ERR_MESSAGE_INVALID', 'ERR_FRAME_HEADER_INVALID', 'ERR_FRAME_UNSUPPORTED'])
  const headerError = errors[1]
  assert.ok(
    headerError?.type === 'error' && headerError.frameId === 7,
    'the frame id is echoed when readable',
  )

  stream.socket.send(encodeFrame({ frameId: 10 }, new Uint8Array(70_000)), { binary: true })
  const closed = await stream.closed
  assert.equal(closed.code, 1009)
  // The server keeps serving.
  const next = await openDetectStream({ baseUrl: base(started), token: testToken('acme') })
  next.close()
})

test(
  'an enrolled person streamed is matched within a few frames, a stranger is unknown, and only the same organization watchers get the event',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp({ FACEWIRE_STREAM_MAX_FPS: '1000', FACEWIRE_ORG_MAX_FPS: '1000' })
    t.after(() => started.stop())
    const api = createApiClient({ baseUrl: base(started), token: testToken('acme') })
    const kit = await api.createIdentity({ name: 'Kit Harington' })
    await api.addFace(kit.id, await photo('kit_harington/1.jpeg'))

    const watcher = await openEventStream({ baseUrl: base(started), token: testToken('acme', ['watch']) })
    const outsider = await openEventStream({
      baseUrl: base(started),
      token: testToken('other-org', ['watch']),
    })
    const stream = await openDetectStream({ baseUrl: base(started), token: testToken('acme') })
    t.after(() => {
      watcher.close()
      outsider.close()
      stream.close()
    })
    assert.equal(watcher.hello.org, 'acme')

    const kitFrame = await photo('kit_harington/3.jpg')
    let matchedAt: number | undefined
    for (let frameId = 1; frameId <= 4 && matchedAt === undefined; frameId++) {
      const answer = stream.answerFor(frameId)
      stream.send({ frameId, camera: 'front-door' }, kitFrame)
      const result = await answer
      assert.equal(result.type, 'result')
      const face = result.type === 'result' ? result.faces[0] : undefined
      if (face?.decision.status === 'match') {
        assert.equal(face.decision.identity?.id, kit.id)
        assert.ok(face.track.frames >= 1)
        matchedAt = frameId
      }
    }
    assert.ok(matchedAt !== undefined, 'matched within 4 frames')

    for (let wait = 0; wait < 50 && watcher.events.length === 0; wait++) await sleep(20)
    const event = watcher.events.find((e) => e.type === 'match')
    assert.ok(event?.type === 'match', 'the watcher got a match event')
    assert.equal(event.identity.id, kit.id)
    assert.equal(event.camera, 'front-door')
    assert.equal(event.track.session, stream.hello.session)

    // More frames of the same track do not repeat the event (cooldown), a stranger is unknown.
    for (let frameId = 10; frameId <= 11; frameId++) {
      const answer = stream.answerFor(frameId)
      stream.send({ frameId, camera: 'front-door' }, kitFrame)
      await answer
    }
    const stranger = await openDetectStream({ baseUrl: base(started), token: testToken('acme') })
    t.after(() => {
      stranger.close()
    })
    const strangerAnswer = stranger.answerFor(1)
    stranger.send({ frameId: 1 }, await photo('joe_biden/2.jpg'))
    const strangerResult = await strangerAnswer
    assert.ok(strangerResult.type === 'result')
    assert.equal(strangerResult.faces[0]?.decision.status, 'unknown')
    await sleep(200)
    assert.equal(watcher.events.filter((e) => e.type === 'match').length, 1, 'one event per track decision')
    assert.deepEqual(outsider.events, [], 'another organization hears nothing')
  },
)

test('a token that expires mid-stream closes the stream with 4401, and shutdown closes streams with 1001', async (t) => {
  const started = await startTestApp()
  let stopped = false
  t.after(async () => {
    if (!stopped) await started.stop()
  })
  const shortLived = jwt.sign({ org: 'acme', scope: 'detect' }, TEST_SECRET, { expiresIn: 2 })
  const expiring = await openDetectStream({ baseUrl: base(started), token: shortLived })
  const longLived = await openDetectStream({ baseUrl: base(started), token: testToken('acme') })
  const closed = await expiring.closed
  assert.equal(closed.code, 4401)
  assert.equal(closed.reason, 'ERR_AUTH_EXPIRED')
  await started.stop()
  stopped = true
  assert.equal((await longLived.closed).code, 1001)
})

test('when the pool is full, stream frames wait their turn instead of failing with ERR_PIPELINE_BUSY', async (t) => {
  const started = await startTestApp({
    FACEWIRE_WORKERS: '1',
    FACEWIRE_PIPELINE_QUEUE: '0',
    FACEWIRE_STREAM_MAX_FPS: '1000',
    FACEWIRE_ORG_MAX_FPS: '1000',
  })
  t.after(() => started.stop())
  const streams = await Promise.all(
    Array.from({ length: 4 }, () => openDetectStream({ baseUrl: base(started), token: testToken('acme') })),
  )
  t.after(() => {
    for (const stream of streams) stream.close()
  })
  const image = await encode(texturedScene(320, 240), 'jpeg')
  const answers = streams.map((stream) => stream.answerFor(1))
  for (const stream of streams) stream.send({ frameId: 1 }, image)
  const types = (await Promise.all(answers)).map((answer) => answer.type)
  assert.deepEqual(types, ['result', 'result', 'result', 'result'])
  // The hello's suggestion counts one worker per connection at most.
  assert.ok((streams[0]?.hello.suggestedFps ?? 0) <= 1000 / 20)
})

test('an open stream and an open watcher are closed with 4401 ERR_AUTH_EXPIRED when their token expires', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const token = (scopes: Parameters<typeof testToken>[1]): string => testToken('acme', scopes, 2)
  const stream = await openDetectStream({ baseUrl: base(started), token: token(['detect']) })
  const watcher = await openEventStream({ baseUrl: base(started), token: token(['watch']) })
  const [detectClosed, watchClosed] = await Promise.all([stream.closed, watcher.closed])
  assert.deepEqual(detectClosed, { code: 4401, reason: 'ERR_AUTH_EXPIRED' })
  assert.deepEqual(watchClosed, { code: 4401, reason: 'ERR_AUTH_EXPIRED' })
})
