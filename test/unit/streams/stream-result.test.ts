import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { AnalyzedFace, FrameAnalysis } from '../../../server/pipeline/index.js'
import { toStreamResult, type StreamResultInput } from '../../../server/streams/stream-result.js'
import { createTrackTable, type Recognition, type TrackRef } from '../../../server/streams/tracks.js'

const ADA = { id: 'id-ada', name: 'Ada' }

function face(x: number, embedding: readonly number[], liveness?: number): AnalyzedFace {
  const norm = Math.hypot(...embedding)
  const analyzed: AnalyzedFace = {
    box: { x, y: 10, width: 100, height: 100 },
    score: 0.99,
    landmarks: [{ x: x + 30.04, y: 40 }],
    quality: { score: 0.8, factors: {}, pose: { roll: 0, yaw: 0, pitch: 0 } },
    embedding: Float32Array.from(embedding, (v) => v / norm),
  }
  if (liveness !== undefined) analyzed.liveness = liveness
  return analyzed
}

function analysis(faces: AnalyzedFace[]): FrameAnalysis & { queueMs: number } {
  const timings = {
    decodeMs: 1.26,
    detectMs: 2,
    landmarksMs: 3,
    alignMs: 4,
    embedMs: 5,
    livenessMs: 0,
    totalMs: 15,
    inferenceMs: 10,
  }
  return { width: 640, height: 480, faces, timings, queueMs: 0.04 }
}

/** Ada is whoever looks along the first axis; everyone else is unknown. */
function recognize(embedding: Float32Array): Recognition {
  const similarity = embedding[0] ?? 0
  return similarity > 0.9
    ? {
        decision: { status: 'match', identity: ADA, similarity, margin: 0.5, threshold: 0.5 },
        candidates: [],
      }
    : { decision: { status: 'unknown', similarity, margin: similarity, threshold: 0.5 }, candidates: [] }
}

function input(overrides: Partial<StreamResultInput>): StreamResultInput {
  return {
    frameId: 1,
    trackId: undefined,
    analysis: analysis([]),
    tracks: createTrackTable(),
    recognize,
    liveness: { mode: 'report', threshold: 0.5 },
    // Arrival in the past of this process's clock, whenever the test runs (performance.now() starts
    // near 0 in a fresh process).
    receivedAt: performance.now() - 50,
    startedAt: performance.now() - 50 + 12.36,
    onDecided: () => undefined,
    ...overrides,
  }
}

test('each face of a frame is answered with its track and the track decision, and every decision is reported once', () => {
  const tracks = createTrackTable({ windowFrames: 5, switchFrames: 2 })
  const decided: TrackRef[] = []
  const frame = (frameId: number) =>
    toStreamResult(
      input({
        frameId,
        tracks,
        analysis: analysis([face(0, [1, 0, 0]), face(300, [0, 1, 0], 0.9)]),
        onDecided: (track) => decided.push(track),
      }),
    )
  const first = frame(1)
  assert.equal(first.type, 'result')
  assert.equal(first.frameId, 1)
  assert.deepEqual(
    first.faces.map((f) => [f.track.id, f.track.source, f.track.frames, f.decision.status]),
    [
      [1, 'server', 1, 'match'],
      [2, 'server', 1, 'unknown'],
    ],
  )
  assert.equal(first.faces[0]?.decision.identity?.id, ADA.id)
  assert.equal(first.faces[1]?.liveness?.score, 0.9, 'the track liveness is shown in report mode')
  assert.equal(first.faces[0]?.liveness, undefined, 'a face never scored shows none')
  const second = frame(2)
  assert.deepEqual(
    second.faces.map((f) => [f.track.id, f.track.frames]),
    [
      [1, 2],
      [2, 2],
    ],
    'the same faces keep their tracks, whose windows grow',
  )
  assert.equal(decided.length, 4, 'one decision per face per frame')
})

test('a kiosk track id names the track, and the timings are rounded and measured from arrival', () => {
  const result = toStreamResult(input({ trackId: 7, analysis: analysis([face(0, [1, 0, 0])]) }))
  assert.deepEqual(result.faces[0]?.track, { id: 7, source: 'client', frames: 1 })
  const { timings } = result
  assert.equal(timings.waitMs, 12.4, 'from arrival to the pipeline')
  assert.equal(timings.queueMs, 0)
  assert.equal(timings.decodeMs, 1.3)
  assert.ok(timings.totalMs >= timings.waitMs)
  assert.ok(timings.searchMs >= 0)
})

test('with liveness off, no liveness or eyes are shown; with require, an unscored match is uncertain', () => {
  const scored = face(0, [1, 0, 0], 0.9)
  scored.eyesOpen = 0.8
  const off = toStreamResult(
    input({ liveness: { mode: 'off', threshold: 0.5 }, analysis: analysis([scored]) }),
  )
  assert.equal(off.faces[0]?.liveness, undefined)
  assert.equal(off.faces[0]?.eyes, undefined)
  const required = toStreamResult(
    input({ liveness: { mode: 'require', threshold: 0.5 }, analysis: analysis([face(0, [1, 0, 0])]) }),
  )
  assert.equal(required.faces[0]?.decision.status, 'uncertain')
  assert.equal(required.faces[0]?.decision.reason, 'liveness')
})
