import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { WireBox, Decision, IdentityRef } from '../../../protocol/wire.js'
import {
  createTrackTable,
  DEFAULT_TRACK_OPTIONS,
  iou,
  MAX_TRACKS,
  type AssignedTrack,
  type FaceObservation,
  type Recognition,
  type TrackRef,
} from '../../../server/streams/tracks.js'

const ADA: IdentityRef = { id: 'id-ada', name: 'Ada' }
const BOB: IdentityRef = { id: 'id-bob', name: 'Bob' }

function unit(values: readonly number[]): Float32Array {
  const norm = Math.hypot(...values)
  return Float32Array.from(values, (v) => v / norm)
}

function box(x: number, y: number, size = 100): WireBox {
  return { x, y, width: size, height: size }
}

function face(b: WireBox, embedding: readonly number[] = [1, 0, 0, 0], quality = 0.9): FaceObservation {
  return { box: b, embedding: unit(embedding), quality }
}

function match(identity: IdentityRef, similarity = 0.96): Recognition {
  return {
    decision: { status: 'match', identity, similarity, margin: 0.1, threshold: 0.9 },
    candidates: [{ identity, similarity }],
  }
}

function unknown(similarity = 0.4): Recognition {
  return { decision: { status: 'unknown', similarity, margin: similarity, threshold: 0.9 }, candidates: [] }
}

function uncertain(identity: IdentityRef): Recognition {
  return {
    decision: { status: 'uncertain', identity, similarity: 0.94, margin: 0.01, threshold: 0.9 },
    candidates: [],
  }
}

const CLIENT_7: TrackRef = { id: 7, source: 'client' }

test('the fused embedding is the quality-weighted mean of the last windowFrames embeddings, re-normalised', () => {
  const table = createTrackTable({ windowFrames: 3 })
  const observations: [number[], number][] = [
    [[0, 0, 0, 1], 1], // falls out of the window
    [[1, 0, 0, 0], 0.9],
    [[0, 1, 0, 0], 0.3],
    [[1, 1, 0, 0], 0.01], // weighted 0.05, the floor
  ]
  let assigned: AssignedTrack[] = []
  for (const [frame, [embedding, quality]] of observations.entries()) {
    assigned = table.assign([face(box(0, 0), embedding, quality)], 7, frame * 100)
  }
  const [only] = assigned
  assert.ok(only !== undefined)
  assert.deepEqual(only.track, CLIENT_7)
  assert.equal(only.frames, 3)

  const s = Math.SQRT1_2
  const mean = [0.9 * 1 + 0.3 * 0 + 0.05 * s, 0.9 * 0 + 0.3 * 1 + 0.05 * s, 0, 0].map((v) => v / 1.25)
  const norm = Math.hypot(...mean)
  const expected = mean.map((v) => v / norm)
  assert.equal(only.fused.length, 4)
  only.fused.forEach((value, i) => {
    assert.ok(Math.abs(value - (expected[i] ?? NaN)) < 1e-6, `component ${i}: ${value} vs ${expected[i]}`)
  })
  assert.equal(only.fused[3], 0, 'the oldest embedding no longer counts')
  assert.ok(Math.abs(Math.hypot(...only.fused) - 1) < 1e-6)
})

test('the first frame of a track fuses its one embedding unchanged', () => {
  const table = createTrackTable()
  const embedding = Array.from({ length: 128 }, (_, i) => Math.sin(i + 1))
  const [only] = table.assign([face(box(0, 0), embedding, 0.5)], undefined, 0)
  assert.ok(only !== undefined)
  assert.equal(only.frames, 1)
  const expected = unit(embedding)
  only.fused.forEach((value, i) => {
    assert.ok(Math.abs(value - (expected[i] ?? NaN)) < 1e-6)
  })
})

test('two moving faces keep their server track ids by IoU and a far box gets a new id', () => {
  const table = createTrackTable()
  const first = table.assign([face(box(0, 0)), face(box(300, 0))], undefined, 0)
  assert.deepEqual(
    first.map((a) => a.track),
    [
      { id: 1, source: 'server' },
      { id: 2, source: 'server' },
    ],
  )
  // Both moved 10 px, and they come in the other order.
  const second = table.assign([face(box(310, 5)), face(box(10, 5))], undefined, 100)
  assert.deepEqual(
    second.map((a) => a.track.id),
    [2, 1],
  )
  assert.deepEqual(
    second.map((a) => a.frames),
    [2, 2],
  )
  const third = table.assign([face(box(20, 10)), face(box(1000, 1000))], undefined, 200)
  assert.deepEqual(
    third.map((a) => a.track.id),
    [1, 3],
  )
  assert.equal(third[1]?.frames, 1)
})

test('a track continues at most one face per frame: the better overlap wins, the other face gets a new track', () => {
  const table = createTrackTable()
  table.assign([face(box(0, 0))], undefined, 0)
  const next = table.assign([face(box(40, 0)), face(box(10, 0))], undefined, 100)
  assert.deepEqual(
    next.map((a) => a.track.id),
    [2, 1],
  )
})

test('a box overlapping less than minIou starts a new track', () => {
  const table = createTrackTable({ minIou: 0.5 })
  table.assign([face(box(0, 0))], undefined, 0)
  // IoU of boxes offset by 40 px is 60*100 / (2*10000 - 6000), about 0.43.
  assert.ok(iou(box(0, 0), box(40, 0)) < 0.5)
  const [next] = table.assign([face(box(40, 0))], undefined, 100)
  assert.equal(next?.track.id, 2)
})

test('the client track id goes to the largest face and the others get server tracks', () => {
  const table = createTrackTable()
  const assigned = table.assign([face(box(0, 0, 50)), face(box(200, 0, 120)), face(box(400, 0, 80))], 7, 0)
  assert.deepEqual(
    assigned.map((a) => a.track),
    [{ id: 1, source: 'server' }, CLIENT_7, { id: 2, source: 'server' }],
  )
  const [again] = table.assign([face(box(900, 900, 60))], 7, 100)
  assert.deepEqual(again?.track, CLIENT_7, 'a client track continues wherever its box is')
  assert.equal(again.frames, 2)
})

test('client and server tracks with the same id are different tracks', () => {
  const table = createTrackTable()
  table.assign([face(box(0, 0))], undefined, 0) // server 1
  const [client] = table.assign([face(box(500, 500), [0, 1, 0, 0])], 1, 100)
  assert.deepEqual(client?.track, { id: 1, source: 'client' })
  assert.equal(client.frames, 1)
  assert.equal(table.size, 2)
  table.settle({ id: 1, source: 'server' }, match(ADA), 100)
  const settled = table.settle({ id: 1, source: 'client' }, match(BOB), 100)
  assert.equal(settled.changed, true, 'the client track has no decision of its own yet')
  assert.deepEqual(settled.decision.identity, BOB)
})

test('tracks idle longer than maxIdleMs are forgotten and a returning face gets a new id', () => {
  const table = createTrackTable({ maxIdleMs: 1000 })
  table.assign([face(box(0, 0))], undefined, 0)
  table.assign([face(box(500, 0))], 3, 500)
  assert.deepEqual(table.expire(1000), [], 'idle exactly maxIdleMs is kept')
  assert.deepEqual(table.expire(1001), [{ id: 1, source: 'server' }])
  assert.equal(table.size, 1)
  const [back] = table.assign([face(box(0, 0))], undefined, 1600)
  assert.deepEqual(back?.track, { id: 2, source: 'server' }, 'the client track expired inside assign first')
  assert.equal(table.size, 1)
})

test('the first decision of a track is stable at once and marked changed', () => {
  const table = createTrackTable()
  const [assigned] = table.assign([face(box(0, 0))], undefined, 0)
  assert.ok(assigned !== undefined)
  const settled = table.settle(assigned.track, match(ADA), 0)
  assert.deepEqual(settled, {
    decision: { status: 'match', identity: ADA, similarity: 0.96, margin: 0.1, threshold: 0.9 },
    candidates: [{ identity: ADA, similarity: 0.96 }],
    frames: 1,
    changed: true,
  })
})

test('the same outcome again takes the fresh similarity and margin without a change', () => {
  const table = createTrackTable()
  table.assign([face(box(0, 0))], 7, 0)
  table.settle(CLIENT_7, match(ADA, 0.95), 0)
  table.assign([face(box(0, 0))], 7, 100)
  const settled = table.settle(CLIENT_7, match(ADA, 0.98), 100)
  assert.equal(settled.changed, false)
  assert.equal(settled.decision.similarity, 0.98)
  assert.equal(settled.frames, 2)
  assert.equal('pending' in settled, false)
})

test('one bad frame does not flip a match: the stable decision stays and the fresh one is pending', () => {
  const table = createTrackTable()
  table.assign([face(box(0, 0))], 7, 0)
  table.settle(CLIENT_7, match(ADA), 0)
  const bad = table.settle(CLIENT_7, unknown(), 100)
  assert.equal(bad.changed, false)
  assert.deepEqual(bad.decision, {
    status: 'match',
    identity: ADA,
    similarity: 0.96,
    margin: 0.1,
    threshold: 0.9,
  })
  assert.deepEqual(bad.pending, { status: 'unknown', frames: 1 })
  assert.deepEqual(bad.candidates, [], 'candidates are this frame’s')
  const good = table.settle(CLIENT_7, match(ADA, 0.97), 200)
  assert.equal(good.changed, false)
  assert.equal(good.pending, undefined)
  assert.equal(good.decision.similarity, 0.97)
})

test('a different outcome held for switchFrames consecutive frames switches the decision once', () => {
  const table = createTrackTable({ switchFrames: 2 })
  table.assign([face(box(0, 0))], 7, 0)
  table.settle(CLIENT_7, match(ADA), 0)
  const results = [match(BOB), match(BOB), match(BOB)].map((r, i) => table.settle(CLIENT_7, r, 100 * (i + 1)))
  assert.deepEqual(
    results.map((r) => r.changed),
    [false, true, false],
  )
  assert.deepEqual(results[0]?.pending, { status: 'match', identity: BOB, frames: 1 })
  assert.deepEqual(results[0]?.decision.identity, ADA)
  assert.deepEqual(results[1]?.decision.identity, BOB)
  assert.equal(results[1]?.pending, undefined)
  assert.deepEqual(results[2]?.decision.identity, BOB)
})

test('a change of identity under the same status, or of status under the same identity, is a change', () => {
  const table = createTrackTable({ switchFrames: 1 })
  table.assign([face(box(0, 0))], 7, 0)
  table.settle(CLIENT_7, match(ADA), 0)
  const toUncertain = table.settle(CLIENT_7, uncertain(ADA), 100)
  assert.equal(toUncertain.changed, true)
  assert.equal(toUncertain.decision.status, 'uncertain')
  const toBob = table.settle(CLIENT_7, uncertain(BOB), 200)
  assert.equal(toBob.changed, true)
  assert.deepEqual(toBob.decision.identity, BOB)
})

test('alternating outcomes never switch the decision, each resetting the pending count', () => {
  const table = createTrackTable({ switchFrames: 2 })
  table.assign([face(box(0, 0))], 7, 0)
  table.settle(CLIENT_7, match(ADA), 0)
  const fresh = [unknown(), match(BOB), unknown(), uncertain(BOB), match(BOB), unknown()]
  const results = fresh.map((r, i) => table.settle(CLIENT_7, r, 100 * (i + 1)))
  for (const r of results) {
    assert.equal(r.changed, false)
    assert.deepEqual(r.decision.identity, ADA)
    assert.equal(r.pending?.frames, 1)
  }
})

test('a pending outcome interrupted by the stable one starts counting again', () => {
  const table = createTrackTable({ switchFrames: 2 })
  table.assign([face(box(0, 0))], 7, 0)
  table.settle(CLIENT_7, match(ADA), 0)
  const results = [unknown(), match(ADA), unknown(), unknown()].map((r, i) =>
    table.settle(CLIENT_7, r, 100 * (i + 1)),
  )
  assert.deepEqual(
    results.map((r) => [r.changed, r.pending?.frames]),
    [
      [false, 1],
      [false, undefined],
      [false, 1],
      [true, undefined],
    ],
  )
  assert.equal(results[3]?.decision.status, 'unknown')
  assert.equal('identity' in (results[3]?.decision ?? {}), false)
})

test('settling a track forgotten meanwhile reports the fresh decision as a new one', () => {
  const table = createTrackTable({ maxIdleMs: 100 })
  table.assign([face(box(0, 0))], 7, 0)
  table.expire(500)
  const settled = table.settle(CLIENT_7, match(ADA), 500)
  assert.equal(settled.changed, true)
  assert.equal(settled.frames, 0)
  assert.equal(table.size, 0, 'settling does not bring a track back')
})

test('the decision returned is a copy that callers cannot use to change the track', () => {
  const table = createTrackTable()
  table.assign([face(box(0, 0))], 7, 0)
  const first = table.settle(CLIENT_7, match(ADA), 0)
  const mutable: Decision = first.decision
  mutable.status = 'unknown'
  const next = table.settle(CLIENT_7, unknown(), 100)
  assert.equal(next.decision.status, 'match')
})

test(`a table keeps at most ${MAX_TRACKS} tracks, evicting the least recently seen`, () => {
  const table = createTrackTable()
  for (let i = 0; i < MAX_TRACKS; i++) table.assign([face(box(0, 0))], i, i)
  assert.equal(table.size, MAX_TRACKS)
  table.assign([face(box(0, 0))], 0, 1000) // client 0 is now the most recent
  const [newest] = table.assign([face(box(0, 0))], MAX_TRACKS, 1001)
  assert.equal(newest?.frames, 1)
  assert.equal(table.size, MAX_TRACKS)
  assert.equal(table.settle({ id: 1, source: 'client' }, match(ADA), 1002).frames, 0, 'client 1 was evicted')
  assert.equal(table.settle({ id: 0, source: 'client' }, match(ADA), 1002).frames, 2, 'client 0 was kept')
})

test('the defaults are five frames fused, two frames to switch, two seconds idle, IoU 0.3', () => {
  assert.deepEqual(DEFAULT_TRACK_OPTIONS, { windowFrames: 5, switchFrames: 2, maxIdleMs: 2000, minIou: 0.3 })
  assert.equal(Object.isFrozen(DEFAULT_TRACK_OPTIONS), true)
})

test('invalid options are refused with a message naming the option', () => {
  const cases: [Record<string, number>, RegExp][] = [
    [{ windowFrames: 0 }, /windowFrames must be a positive integer/],
    [{ windowFrames: 2.5 }, /windowFrames/],
    [{ switchFrames: -1 }, /switchFrames must be a positive integer/],
    [{ maxIdleMs: Number.NaN }, /maxIdleMs must be a positive integer/],
    [{ minIou: 0 }, /minIou must be in \(0, 1\]/],
    [{ minIou: 1.5 }, /minIou/],
  ]
  for (const [options, message] of cases) {
    assert.throws(() => createTrackTable(options), { name: 'RangeError', message })
  }
  assert.equal(createTrackTable({ minIou: 1, switchFrames: 1 }).size, 0)
})

test('IoU is the intersection over the union and 0 for disjoint or empty boxes', () => {
  assert.equal(iou(box(0, 0), box(0, 0)), 1)
  assert.equal(iou(box(0, 0), box(50, 0)), 5000 / 15000)
  assert.equal(iou(box(0, 0), box(100, 0)), 0)
  assert.equal(iou(box(0, 0), { x: 0, y: 0, width: 0, height: 10 }), 0)
})

test('a track fuses the liveness of its scored frames, and keeps none when no frame was scored', () => {
  const table = createTrackTable({ windowFrames: 3 })
  const [first] = table.assign([{ ...face(box(0, 0)), liveness: 0.9 }], undefined, 0)
  assert.equal(first?.liveness, 0.9)
  table.assign([face(box(0, 0))], undefined, 10) // not scored this frame
  const [third] = table.assign([{ ...face(box(0, 0)), liveness: 0.1 }], undefined, 20)
  assert.ok(Math.abs((third?.liveness ?? 0) - 0.5) < 1e-12, 'mean of the scored frames in the window')
  const [fresh] = table.assign([face(box(500, 500))], undefined, 30)
  assert.equal(fresh?.liveness, undefined)
})
