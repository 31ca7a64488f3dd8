import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  FACEPLUGIN_DETECTION_FRAME,
  facepluginFivePoints,
  facepluginLandmarkInput,
  facepluginLandmarkRect,
  facepluginLandmarksToImage,
} from '../../../server/pipeline/detectors/faceplugin-landmarks.js'
import type { Point } from '../../../server/pipeline/vision/index.js'

test("a detector box is reframed like faceplugin's detector: narrower, taller, higher", () => {
  const rect = facepluginLandmarkRect(
    { x: 400, y: 400, width: 200, height: 200 },
    FACEPLUGIN_DETECTION_FRAME,
    1000,
    1000,
  )
  assert.ok(Math.abs(rect.width - 151) < 1e-9)
  assert.ok(Math.abs(rect.height - 222) < 1e-9)
  assert.ok(Math.abs(rect.x + rect.width / 2 - 500) < 1e-9, 'centred across')
  assert.ok(Math.abs(rect.y + rect.height / 2 - (500 - 0.116 * 200)) < 1e-9, 'lifted')
})

test('the landmark crop is shrunk to fit the image, then shifted inside it', () => {
  const frame = { width: 1, height: 2, lift: 0 }
  const rect = facepluginLandmarkRect({ x: -20, y: 10, width: 80, height: 80 }, frame, 100, 100)
  // 160 px tall does not fit in 100: both sides shrink by 99 / 160, about its centre.
  assert.ok(Math.abs(rect.height - 99) < 1e-9)
  assert.ok(Math.abs(rect.width - (80 * 99) / 160) < 1e-9)
  assert.equal(rect.x, 0)
  assert.equal(rect.y, 0)
})

test('the net sees luma / 256, and its output maps back into the crop', () => {
  const data = new Uint8Array(8 * 8 * 3)
  for (let i = 0; i < 64; i++) data.set([200, 100, 50], i * 3)
  const input = facepluginLandmarkInput({ data, width: 8, height: 8 }, { x: 0, y: 0, width: 8, height: 8 }, 4)
  assert.equal(input.length, 16)
  const luma = Math.round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
  for (const v of input) assert.equal(v, luma / 256)
  const raw = new Float32Array(136).fill(0.5)
  raw[0] = 0
  raw[1] = 1
  const points = facepluginLandmarksToImage(raw, { x: 10, y: 20, width: 40, height: 60 })
  assert.equal(points.length, 68)
  assert.deepEqual(points[0], { x: 10, y: 80 })
  assert.deepEqual(points[1], { x: 30, y: 50 })
  assert.throws(() => facepluginLandmarksToImage(new Float32Array(10), { x: 0, y: 0, width: 1, height: 1 }))
})

test("faceplugin's five points: lid points for the eyes, inner and outer corners for the mouth", () => {
  const points: Point[] = Array.from({ length: 68 }, (_, i) => ({ x: i, y: 2 * i }))
  const [rightEye, leftEye, nose, mouthRight, mouthLeft] = facepluginFivePoints(points)
  assert.deepEqual(rightEye, { x: 39, y: 78 })
  assert.deepEqual(leftEye, { x: 45, y: 90 })
  assert.deepEqual(nose, { x: 30, y: 60 })
  assert.deepEqual(mouthRight, { x: 54, y: 108 })
  assert.deepEqual(mouthLeft, { x: 59, y: 118 })
  assert.throws(() => facepluginFivePoints(points.slice(0, 5)), RangeError)
})
