import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createTracker, type Detection } from '../../../client/kiosk/tracker.js'

const face = (x: number, y: number, side = 100, score = 0.9): Detection => ({
  box: { x, y, width: side, height: side },
  score,
})

test('a face that moves a little keeps its track id; a new face gets the next id', () => {
  const tracker = createTracker()
  const [first] = tracker.update([face(100, 100)], 0)
  assert.equal(first?.id, 1)
  const moved = tracker.update([face(110, 105), face(400, 100)], 66)
  assert.deepEqual(
    moved.map((t) => [t.id, t.box.x, t.hits]),
    [
      [1, 110, 2],
      [2, 400, 1],
    ],
  )
  assert.equal(tracker.get(1)?.firstSeenAt, 0, 'first seen when first detected')
})

test('each detection continues at most one track, the best-overlapping one first', () => {
  const tracker = createTracker()
  tracker.update([face(100, 100), face(160, 100)], 0)
  const next = tracker.update([face(150, 100)], 50)
  const continued = next.filter((t) => t.lastSeenAt === 50)
  assert.deepEqual(
    continued.map((t) => t.id),
    [2],
    'the box at 150 overlaps the one at 160 most',
  )
})

test('a track missing briefly is hidden, then forgotten, and its id is never reused', () => {
  const tracker = createTracker({ minIou: 0.3, hideAfterMs: 400, maxAgeMs: 1500 })
  tracker.update([face(100, 100)], 0)
  assert.deepEqual(
    tracker.update([], 300).map((t) => t.id),
    [1],
    'still shown within hideAfterMs',
  )
  assert.deepEqual(tracker.update([], 500), [], 'hidden after hideAfterMs')
  assert.deepEqual(
    tracker.update([face(100, 100)], 1000).map((t) => t.id),
    [1],
    'the same face within maxAgeMs resumes its track',
  )
  tracker.update([], 2600)
  assert.equal(tracker.get(1), undefined, 'forgotten after maxAgeMs')
  assert.deepEqual(
    tracker.update([face(100, 100)], 2700).map((t) => t.id),
    [2],
  )
})

test('boxes that overlap less than minIou start separate tracks', () => {
  const tracker = createTracker()
  tracker.update([face(0, 0)], 0)
  const next = tracker.update([face(70, 0)], 10)
  assert.deepEqual(
    next.map((t) => t.id),
    [1, 2],
  )
})
