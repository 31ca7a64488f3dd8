import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { openDetectStream } from '../../client/stream-client.js'
import type { StreamAnswer } from '../../protocol/wire.js'
import { startTestApp, testToken, TEST_SECRET } from '../helpers/app.js'
import { startMain, whenReady } from '../helpers/child.js'
import { httpRequest } from '../helpers/http.js'
import { encode, texturedScene } from '../helpers/images.js'
import { flood, type FloodTally } from '../helpers/ws-flood.js'

const pollerPath = fileURLToPath(new URL('../helpers/poll-health.js', import.meta.url))

test('invalid messages past the budget close the stream with 1008 ERR_POLICY_VIOLATION, unanswered', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const stream = await openDetectStream({
    baseUrl: `http://127.0.0.1:${String(started.port)}`,
    token: testToken('acme'),
  })
  const errors: StreamAnswer[] = []
  stream.onAnswer((answer) => errors.push(answer))
  // 200 one-byte binary messages at once: each is ERR_FRAME_HEADER_INVALID.
  for (let i = 0; i < 200; i++) stream.socket.send(new Uint8Array([0]), { binary: true })
  const closed = await stream.closed
  assert.deepEqual(closed, { code: 1008, reason: 'ERR_POLICY_VIOLATION' })
  // The budget holds 10 invalid messages (refilling 10/s): those are answered, the rest are not.
  assert.ok(errors.length >= 10 && errors.length < 20, `answered ${String(errors.length)} of 200`)
  for (const answer of errors)
    assert.ok(answer.type === 'error' && answer.error.code === 'ERR_FRAME_HEADER_INVALID')
  const violation = started.lines().find((line) => line['msg'] === 'ws.policy_violation')
  assert.equal(violation?.['budget'], 'invalid')
  const closes = await started.app.metrics.registry.getSingleMetricAsString('facewire_ws_closes_total')
  assert.match(closes, /facewire_ws_closes_total\{route="detect",code="1008"\} 1/)
  // Only that connection is closed.
  const next = await openDetectStream({
    baseUrl: `http://127.0.0.1:${String(started.port)}`,
    token: testToken('acme'),
  })
  next.close()
})

test('valid frames far over the frame rate are answered throttled, then the stream is closed with 1008', async (t) => {
  const started = await startTestApp({ FACEWIRE_STREAM_MAX_FPS: '3' })
  t.after(() => started.stop())
  const stream = await openDetectStream({
    baseUrl: `http://127.0.0.1:${String(started.port)}`,
    token: testToken('acme'),
  })
  const image = await encode(texturedScene(64, 48), 'jpeg')
  for (let frameId = 1; frameId <= 100; frameId++) stream.send({ frameId }, image)
  assert.deepEqual(await stream.closed, { code: 1008, reason: 'ERR_POLICY_VIOLATION' })
  const violation = started.lines().find((line) => line['msg'] === 'ws.policy_violation')
  assert.equal(violation?.['budget'], 'messages')
})

test(
  'four connections flooding invalid messages as fast as loopback allows: /health from another process answers every 250 ms poll within 100 ms, and a legitimate stream keeps getting results',
  { timeout: 120_000 },
  async (t) => {
    const server = startMain({ FACEWIRE_JWT_SECRET: TEST_SECRET, FACEWIRE_WORKERS: '1' })
    t.after(() => server.child.kill('SIGKILL'))
    const { port, baseUrl } = await whenReady(server)
    const token = testToken('acme')

    const polls = 16
    const poller = spawn(process.execPath, [pollerPath, `${baseUrl}/health`, '250', String(polls)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    t.after(() => poller.kill('SIGKILL'))
    const pollerExited = once(poller, 'exit')
    const answers: { ms: number; status: number }[] = []
    const lines = createInterface({ input: poller.stdout })
    const pollerReady = new Promise<void>((resolve) => {
      lines.on('line', (line) => {
        const parsed = JSON.parse(line) as { ready?: true; ms: number; status: number }
        if (parsed.ready === true) resolve()
        else answers.push(parsed)
      })
    })
    await pollerReady

    // Bounded: 4 s or 100 million messages (700 MB) per connection, whichever comes first.
    const untilMs = performance.now() + polls * 250
    const floods: Promise<FloodTally>[] = Array.from({ length: 4 }, () =>
      flood({ port, path: '/ws/detect', token, maxMessages: 100_000_000, untilMs }),
    )

    const stream = await openDetectStream({ baseUrl, token })
    const image = await encode(texturedScene(160, 120), 'jpeg')
    const types: string[] = []
    for (let frameId = 1; performance.now() < untilMs; frameId++) {
      const answer = stream.answerFor(frameId)
      stream.send({ frameId }, image)
      types.push((await answer).type)
      await new Promise((resolve) => setTimeout(resolve, 100)) // within the default 15 frames/s
    }
    stream.close()
    const tallies = await Promise.all(floods)
    await pollerExited

    const slow = answers.filter((answer) => answer.status !== 200 || answer.ms >= 100)
    const times = JSON.stringify(answers.map((answer) => Math.round(answer.ms)))
    assert.deepEqual(slow, [], `/health answers (ms): ${times}`)
    assert.equal(answers.length, polls)
    assert.ok(types.length >= 5, `legitimate frames answered: ${String(types.length)}`)
    assert.deepEqual(new Set(types), new Set(['result']))
    const flooded = tallies.reduce((sum, tally) => sum + tally.messages, 0)
    const closes = tallies.flatMap((tally) => tally.closeCodes)
    t.diagnostic(
      `flooded ${String(flooded)} messages on ${String(closes.length)} connections; /health ms ${times}`,
    )
    assert.ok(flooded > 100_000, `flooded ${String(flooded)} messages`)
    assert.ok(closes.length >= 4 && closes.every((code) => code === 1008), `close codes ${String(closes)}`)
    assert.equal((await httpRequest(port, '/health')).status, 200)
  },
)
