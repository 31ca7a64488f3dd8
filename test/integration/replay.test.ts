import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import jwt from 'jsonwebtoken'
import { createApiClient } from '../../client/api-client.js'
import { splitMjpeg, type ReplayAnswerLine, type ReplaySummary } from '../../client/replay/index.js'
import { startTestApp, testToken, TEST_SECRET, type StartedApp } from '../helpers/app.js'
import { runCli } from '../helpers/child.js'
import { encode, facesDir, texturedScene } from '../helpers/images.js'

const faces = facesDir()
const noFaces = faces === undefined ? 'the shared face photos (../shared/faces) are absent' : false
/** Every frame goes through the pipeline: these tests are about the replay, not the rate limits. */
const unlimited = { FACEWIRE_STREAM_MAX_FPS: '1000', FACEWIRE_ORG_MAX_FPS: '1000' }

const example = (path: string): string => join(faces ?? '', 'face_recognition-examples', path)
const server = (started: StartedApp): string => `http://127.0.0.1:${String(started.port)}`

const facewire = runCli

/** --json output: the answer lines, then the summary. */
function parseJsonOutput(stdout: string): { answers: ReplayAnswerLine[]; summary: ReplaySummary } {
  const lines = stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ReplayAnswerLine | ReplaySummary)
  const summary = lines.pop()
  assert.ok(summary?.type === 'summary', 'the last line is the summary')
  return { answers: lines as ReplayAnswerLine[], summary }
}

/** Asserts each frame id of each stream got exactly one answer and returns them by stream. */
function onePerFrame(answers: ReplayAnswerLine[], streams: number, frames: number): ReplayAnswerLine[][] {
  const byStream = Array.from({ length: streams }, () => [] as ReplayAnswerLine[])
  for (const answer of answers) byStream[answer.streamIndex]?.push(answer)
  for (const [streamIndex, list] of byStream.entries()) {
    const ids = list.map((answer) => answer.frameId).sort((a, b) => (a ?? 0) - (b ?? 0))
    assert.deepEqual(
      ids,
      Array.from({ length: frames }, (_, i) => i + 1),
      `stream ${String(streamIndex)}: one answer per frame`,
    )
  }
  return byStream.map((list) => [...list].sort((a, b) => (a.frameId ?? 0) - (b.frameId ?? 0)))
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'facewire-replay-'))
  t.after(() => {
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

async function enrollKit(started: StartedApp): Promise<void> {
  const api = createApiClient({ baseUrl: server(started), token: testToken('acme', ['enroll']) })
  const kit = await api.createIdentity({ name: 'Kit Harington' })
  await api.addFace(kit.id, await readFile(example('kit_harington/1.jpeg')))
}

test(
  'a directory replayed at --max gets one answer per frame in name order, and the summary counts them and names the enrolled person',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp(unlimited)
    t.after(() => started.stop())
    await enrollKit(started)
    const dir = tempDir(t)
    const frames = [
      'kit_harington/2.jpeg',
      'kit_harington/3.jpg',
      'kit_harington/2.jpeg',
      'joe_biden/1.jpg',
      'joe_biden/2.jpg',
      'kit_harington/3.jpg',
    ]
    for (const [i, photo] of frames.entries())
      copyFileSync(example(photo), join(dir, `000${String(i + 1)}.jpg`))
    writeFileSync(join(dir, 'notes.txt'), 'not a frame')
    const env = { FACEWIRE_TOKEN: testToken('acme', ['detect']) }

    const replayed = await facewire(['replay', dir, '--server', server(started), '--max', '--json'], env)
    assert.equal(replayed.code, 0, replayed.stderr)
    const { answers, summary } = parseJsonOutput(replayed.stdout)
    const [stream] = onePerFrame(answers, 1, frames.length)
    assert.deepEqual(
      stream?.map((answer) => answer.file),
      frames.map((_, i) => `000${String(i + 1)}.jpg`),
    )
    assert.ok(stream?.every((answer) => answer.latencyMs !== undefined && answer.sentMs !== undefined))
    assert.equal(summary.source.kind, 'directory')
    assert.equal(summary.pace, 'max')
    assert.equal(summary.framesSent, frames.length)
    assert.deepEqual(summary.answers, { result: frames.length, dropped: 0, throttled: 0, error: 0 })
    assert.equal(summary.unanswered, 0)
    assert.equal(summary.unexpectedAnswers, 0)
    assert.ok((summary.decisions.matched['Kit Harington'] ?? 0) >= 1, JSON.stringify(summary.decisions))
    assert.deepEqual(Object.keys(summary.decisions.matched), ['Kit Harington'])
    assert.ok(summary.decisions.unknown >= 1, 'the stranger is an unknown track')
    const latency = summary.latencyMs
    assert.ok(latency !== null && latency.p50 > 0 && latency.p50 <= latency.p95 && latency.p95 <= latency.p99)
    assert.equal(summary.perStream.length, 1)
    assert.equal(summary.perStream[0]?.framesSent, frames.length)

    const human = await facewire(['replay', dir, '--server', server(started), '--max'], env)
    assert.equal(human.code, 0, human.stderr)
    assert.match(
      human.stdout,
      /^frame \d+ {2}track s\d+ {2}match {2}Kit Harington 0\.\d{3} \(\d+ frames?\)$/m,
    )
    assert.match(human.stdout, /^frames sent: 6 /m)
    assert.match(human.stdout, /^answers: 6 result, 0 dropped, 0 throttled, 0 error, 0 unanswered$/m)
    assert.match(human.stdout, /^frame \d+ {2}track s\d+ {2}unknown {2}0\.\d{3} \(1 frame\)$/m)
    assert.match(human.stdout, /^decisions \(\d+ tracks\): Kit Harington \d+, uncertain \d+, unknown [1-9]/m)
    assert.match(human.stdout, /^latency \(send to result\): p50 [\d.]+ ms, p95 [\d.]+ ms, p99 [\d.]+ ms$/m)
    const decisionLines = human.stdout.split('\n').filter((line) => line.startsWith('frame '))
    assert.ok(decisionLines.length < frames.length, 'a line per decision change, not per answer')
  },
)

test(
  'frames.jsonl sets the order, the pace and the client track ids of the frames',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    t.after(() => started.stop())
    const dir = tempDir(t)
    copyFileSync(example('kit_harington/2.jpeg'), join(dir, 'a.jpg'))
    copyFileSync(example('kit_harington/3.jpg'), join(dir, 'b.jpg'))
    copyFileSync(example('joe_biden/1.jpg'), join(dir, 'c.jpg'))
    const manifest = [
      { file: 'c.jpg', t: 0, track: 7, camera: 'door' },
      { file: 'a.jpg', t: 400, track: 9 },
      { file: 'b.jpg', t: 800, track: 9 },
    ]
    writeFileSync(join(dir, 'frames.jsonl'), manifest.map((line) => JSON.stringify(line)).join('\n') + '\n')

    const replayed = await facewire(['replay', dir, '--server', server(started), '--json'], {
      FACEWIRE_TOKEN: testToken('acme', ['detect']),
    })
    assert.equal(replayed.code, 0, replayed.stderr)
    const { answers, summary } = parseJsonOutput(replayed.stdout)
    const [stream] = onePerFrame(answers, 1, manifest.length)
    assert.equal(summary.source.kind, 'frames.jsonl')
    assert.equal(summary.pace, 'recorded')
    assert.deepEqual(
      stream?.map((answer) => answer.file),
      manifest.map((line) => line.file),
    )
    for (const [i, answer] of (stream ?? []).entries()) {
      const line = manifest[i]
      assert.ok(line !== undefined && answer.sentMs !== undefined)
      assert.ok(answer.sentMs >= line.t, `${line.file} sent at ${String(answer.sentMs)} ms, not before its t`)
      if (answer.type !== 'result') continue
      assert.ok(answer.faces.length >= 1)
      assert.ok(
        answer.faces.some((face) => face.track.source === 'client' && face.track.id === line.track),
        `${line.file}: the client track ${String(line.track)} comes back`,
      )
    }
    assert.equal(stream?.[manifest.length - 1]?.type, 'result', 'the last frame is never replaced')

    writeFileSync(join(dir, 'frames.jsonl'), '{"file": "a.jpg", "t": 50}\n{"file": "b.jpg", "t": 10}\n')
    const backwards = await facewire(['replay', dir, '--server', server(started), '--token', 'unused'])
    assert.equal(backwards.code, 2)
    assert.match(backwards.stderr, /frames\.jsonl line 2: t goes back in time/)
  },
)

/** A JPEG with a comment segment holding an EOI and an SOI: a naive split on the markers cuts it. */
function withTrickyComment(jpeg: Uint8Array): Uint8Array {
  const payload = Buffer.from([0x78, 0xff, 0xd9, 0xff, 0xd8, 0xff, 0xe0, 0x79])
  const segment = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, payload.length + 2]), payload])
  return Buffer.concat([jpeg.subarray(0, 2), segment, jpeg.subarray(2)])
}

test('an MJPEG file is split into its JPEGs, across multipart headers and markers inside segments', async (t) => {
  const started = await startTestApp(unlimited)
  t.after(() => started.stop())
  const dir = tempDir(t)
  const jpegs = [
    await encode(texturedScene(160, 120, 1), 'jpeg'),
    withTrickyComment(await encode(texturedScene(120, 90, 2), 'jpeg')),
    await encode(texturedScene(96, 64, 3), 'jpeg', { quality: 60 }),
    await encode(texturedScene(200, 100, 4), 'jpeg'),
  ]
  const boundary = Buffer.from('\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n')
  const file = Buffer.concat([
    jpegs[0] ?? new Uint8Array(),
    jpegs[1] ?? new Uint8Array(),
    boundary,
    jpegs[2] ?? new Uint8Array(),
    jpegs[3] ?? new Uint8Array(),
    (jpegs[0] ?? new Uint8Array()).subarray(0, 200), // a recording cut off mid-frame
  ])
  const path = join(dir, 'camera.mjpeg')
  writeFileSync(path, file)

  const split = splitMjpeg(file)
  assert.equal(split.frames.length, jpegs.length)
  assert.equal(split.truncatedTail, true)
  for (const [i, frame] of split.frames.entries())
    assert.deepEqual(Buffer.from(frame), Buffer.from(jpegs[i] ?? []))

  const replayed = await facewire(['replay', path, '--server', server(started), '--max', '--json'], {
    FACEWIRE_TOKEN: testToken('acme', ['detect']),
  })
  assert.equal(replayed.code, 0, replayed.stderr)
  assert.match(replayed.stderr, /cut short; left out/)
  const { answers, summary } = parseJsonOutput(replayed.stdout)
  const [stream] = onePerFrame(answers, 1, jpegs.length)
  assert.deepEqual(
    stream?.map((answer) => answer.sourceIndex),
    [0, 1, 2, 3],
  )
  assert.deepEqual(summary.source, { kind: 'mjpeg', frames: jpegs.length })
  assert.equal(summary.framesSent, jpegs.length)
  assert.deepEqual(summary.answers, { result: jpegs.length, dropped: 0, throttled: 0, error: 0 })
})

test('a refused upgrade or a stream closed by the server exits 1 with the code; usage errors exit 2', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const dir = tempDir(t)
  writeFileSync(join(dir, 'scene.jpg'), await encode(texturedScene(96, 64), 'jpeg'))
  const base = ['replay', dir, '--server', server(started)]

  const invalid = await facewire([...base, '--token', 'not-a-jwt'])
  assert.equal(invalid.code, 1)
  assert.match(invalid.stderr, /refused the stream: ERR_AUTH_INVALID \(HTTP 401\)/)
  const scope = await facewire(base, { FACEWIRE_TOKEN: testToken('acme', ['enroll']) })
  assert.equal(scope.code, 1)
  assert.match(scope.stderr, /ERR_AUTH_SCOPE/)

  // The token expires while frames are still to be sent: the server closes the stream with 4401.
  const shortLived = jwt.sign({ org: 'acme', scope: 'detect' }, TEST_SECRET, { expiresIn: 2 })
  const expired = await facewire([...base, '--token', shortLived, '--fps', '10', '--loop', '60', '--json'])
  assert.equal(expired.code, 1)
  assert.match(expired.stderr, /closed stream 0 before the end: 4401 ERR_AUTH_EXPIRED/)
  const { summary } = parseJsonOutput(expired.stdout)
  assert.deepEqual(summary.closed, { streamIndex: 0, code: 4401, reason: 'ERR_AUTH_EXPIRED' })
  assert.ok(summary.framesSent < 60)

  const token = { FACEWIRE_TOKEN: testToken('acme', ['detect']) }
  for (const args of [
    ['replay'],
    [...base, '--max', '--fps', '5'],
    [...base, '--streams', '0'],
    [...base, '--fps', 'fast'],
    [...base, '--camera', 'x'.repeat(65)],
    [...base, '--bogus'],
    ['replay', join(dir, 'missing'), '--server', server(started)],
  ]) {
    const usage = await facewire(args, token)
    assert.equal(usage.code, 2, `${args.join(' ')}: ${usage.stderr}`)
  }
  const noToken = await facewire(base)
  assert.equal(noToken.code, 2)
  assert.match(noToken.stderr, /a token is required/)
})

test(
  '--streams 2 replays the source on two sessions and attributes every answer to its stream',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp(unlimited)
    t.after(() => started.stop())
    await enrollKit(started)
    const dir = tempDir(t)
    const frames = 4
    for (let i = 1; i <= frames; i++)
      copyFileSync(example('kit_harington/3.jpg'), join(dir, `${String(i)}.jpg`))

    const replayed = await facewire(
      ['replay', dir, '--server', server(started), '--streams', '2', '--max', '--json'],
      { FACEWIRE_TOKEN: testToken('acme', ['detect']) },
    )
    assert.equal(replayed.code, 0, replayed.stderr)
    const { answers, summary } = parseJsonOutput(replayed.stdout)
    onePerFrame(answers, 2, frames)
    assert.equal(summary.streams, 2)
    assert.equal(summary.framesSent, 2 * frames)
    assert.equal(summary.answers.result, 2 * frames)
    assert.deepEqual(
      summary.perStream.map((s) => [s.streamIndex, s.framesSent, s.answers.result]),
      [
        [0, frames, frames],
        [1, frames, frames],
      ],
    )
    const sessions = new Set(summary.perStream.map((s) => s.session))
    assert.equal(sessions.size, 2, 'two sessions')
    assert.deepEqual(summary.decisions.matched, { 'Kit Harington': 2 }, 'one matched track per stream')
  },
)
