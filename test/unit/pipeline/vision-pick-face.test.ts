import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkFace, pickFaces, type Box, type Point } from '../../../server/pipeline/vision/index.js'

/** A plausible upright face in `box`: eyes at 30%/70% of the width, 40% down; nose; mouth. */
function face(box: Box, options: { roll?: number } = {}): { box: Box; landmarks: Point[] } {
  const { x, y, width: w, height: h } = box
  const points = [
    { x: x + 0.3 * w, y: y + 0.4 * h },
    { x: x + 0.7 * w, y: y + 0.4 * h },
    { x: x + 0.5 * w, y: y + 0.6 * h },
    { x: x + 0.35 * w, y: y + 0.8 * h },
    { x: x + 0.65 * w, y: y + 0.8 * h },
  ]
  const r = ((options.roll ?? 0) * Math.PI) / 180
  const cx = x + w / 2
  const cy = y + h / 2
  const landmarks = points.map((p) => ({
    x: cx + (p.x - cx) * Math.cos(r) - (p.y - cy) * Math.sin(r),
    y: cy + (p.x - cx) * Math.sin(r) + (p.y - cy) * Math.cos(r),
  }))
  return { box, landmarks }
}

const box = { x: 100, y: 100, width: 100, height: 100 }

test('accepts an upright face and one rolled up to the limit', () => {
  assert.equal(checkFace(face(box)), undefined)
  assert.equal(checkFace(face(box, { roll: 55 })), undefined)
  assert.equal(checkFace(face(box, { roll: -55 })), undefined)
})

test('rejects swapped eyes, too close or too far apart', () => {
  const good = face(box)
  const [e1, e2, ...rest] = good.landmarks
  assert.ok(e1 && e2)
  assert.equal(checkFace({ box, landmarks: [e2, e1, ...rest] }), 'eyes-not-left-to-right')
  const close = [{ x: 145, y: 140 }, { x: 155, y: 140 }, ...rest]
  assert.equal(checkFace({ box, landmarks: close }), 'eyes-too-close')
  const far = [{ x: 105, y: 140 }, { x: 195, y: 140 }, ...rest]
  assert.equal(checkFace({ box, landmarks: far }), 'eyes-too-far')
  assert.equal(checkFace({ box, landmarks: far }, { maxEyeDistanceRatio: 0.95 }), undefined)
})

test('rejects a roll beyond 60 degrees', () => {
  assert.equal(checkFace(face(box, { roll: 65 })), 'roll-too-large')
  assert.equal(checkFace(face(box, { roll: -65 })), 'roll-too-large')
})

test('rejects a mouth above the eyes, landmarks far outside the box, and broken points', () => {
  const [e1, e2, nose, m1, m2] = face(box).landmarks
  assert.ok(e1 && e2 && nose && m1 && m2)
  const upsideDown = [e1, e2, nose, { x: m1.x, y: 110 }, { x: m2.x, y: 110 }]
  assert.equal(checkFace({ box, landmarks: upsideDown }), 'mouth-above-eyes')
  assert.equal(checkFace({ box, landmarks: [e1, e2, { x: 150, y: 400 }, m1, m2] }), 'landmarks-outside-box')
  assert.equal(checkFace({ box, landmarks: [e1, e2, { x: Number.NaN, y: 1 }, m1, m2] }), 'landmarks-invalid')
  assert.equal(checkFace({ box, landmarks: [e1, e2, nose] }), 'landmarks-invalid')
  assert.equal(
    checkFace({ box: { ...box, width: 0 }, landmarks: [e1, e2, nose, m1, m2] }),
    'landmarks-invalid',
  )
})

test('ranks the big central face first and keeps every plausible face, best first', () => {
  const image = { width: 640, height: 480 }
  const candidates = [
    { ...face({ x: 10, y: 10, width: 80, height: 80 }), id: 'small corner' },
    { ...face({ x: 250, y: 170, width: 140, height: 140 }), id: 'main' },
    { ...face({ x: 480, y: 300, width: 150, height: 150 }), id: 'big corner' },
    { ...face({ x: 300, y: 20, width: 60, height: 60 }, { roll: 80 }), id: 'broken' },
  ]
  const { faces, rejected } = pickFaces(candidates, image)
  assert.deepEqual(
    faces.map((f) => f.face.id),
    ['main', 'big corner', 'small corner'],
  )
  assert.deepEqual(rejected, [{ index: 3, reason: 'roll-too-large' }])
  const [main, second] = faces
  assert.ok(main && second)
  assert.equal(main.index, 1)
  assert.ok(main.rank > second.rank)
  assert.equal(faces.find((f) => f.face.id === 'big corner')?.relativeSize, 1)
  for (const f of faces) assert.ok(f.offCenter >= 0 && f.offCenter <= 1)
})

test('ranks by size alone when centrality is given no weight', () => {
  const image = { width: 640, height: 480 }
  const candidates = [
    face({ x: 250, y: 170, width: 140, height: 140 }),
    face({ x: 480, y: 300, width: 150, height: 150 }),
  ]
  assert.deepEqual(
    pickFaces(candidates, image, { centerWeight: 0 }).faces.map((f) => f.index),
    [1, 0],
  )
})

test('returns no faces for no plausible detections', () => {
  const { faces, rejected } = pickFaces([face(box, { roll: 90 })], { width: 300, height: 300 })
  assert.deepEqual(faces, [])
  assert.equal(rejected.length, 1)
})
