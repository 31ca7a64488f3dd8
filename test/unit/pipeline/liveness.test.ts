import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  eyeInput,
  eyeRects,
  livenessInput,
  livenessRect,
  softmaxAt,
} from '../../../server/pipeline/liveness.js'
import type { Point, RgbImage } from '../../../server/pipeline/vision/index.js'

function image(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number],
): RgbImage {
  const data = new Uint8Array(width * height * 3)
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 3)
  return { data, width, height }
}

test('the liveness crop is 2.7x the face framed like faceplugin, inside the image', () => {
  // A 100 px face in the middle of a 1000 px frame: 119 px box, 2.7x = 321 px square.
  const rect = livenessRect({ x: 450, y: 450, width: 100, height: 100 }, 1000, 1000)
  assert.equal(rect.width, 321)
  assert.equal(rect.height, 321)
  assert.ok(Math.abs(rect.x + rect.width / 2 - 500) <= 2, 'centred (to the truncated pixel)')
  assert.ok(rect.y + rect.height / 2 < 500, 'framed higher, like faceplugin detector boxes')
  // A face filling a small crop: shrunk to the image, shifted inside it.
  const small = livenessRect({ x: 40, y: 30, width: 160, height: 180 }, 240, 240)
  assert.ok(small.x >= 0 && small.y >= 0)
  assert.ok(small.x + small.width <= 240 && small.y + small.height <= 240)
  assert.ok(small.width >= 230, 'most of the frame is context')
})

test('the liveness input is planar BGR 0..255 and the eye input grey / 255', () => {
  const red = image(64, 64, () => [200, 10, 20])
  const input = livenessInput(red, { x: 16, y: 16, width: 32, height: 32 }, 8)
  assert.equal(input.length, 3 * 8 * 8)
  assert.equal(input[0], 20, 'plane 0 is blue')
  assert.equal(input[64], 10, 'plane 1 is green')
  assert.equal(input[128], 200, 'plane 2 is red')
  const grey = eyeInput(red, { x: 0, y: 0, width: 10, height: 10 }, 4)
  assert.equal(grey.length, 16)
  assert.ok(Math.abs((grey[0] ?? 0) - Math.round(0.299 * 200 + 0.587 * 10 + 0.114 * 20) / 255) < 1e-6)
})

test('eye crops are squares of 1.6x the eye width around each eye, a little lower', () => {
  const points: Point[] = Array.from({ length: 68 }, () => ({ x: 0, y: 0 }))
  // Right eye 36-41 around (100, 100), 40 px wide; left eye 42-47 around (200, 100).
  const eye = (first: number, cx: number): void => {
    points[first] = { x: cx - 20, y: 100 }
    points[first + 3] = { x: cx + 20, y: 100 }
    for (const i of [1, 2]) points[first + i] = { x: cx - 10 + (i - 1) * 20, y: 95 }
    for (const i of [4, 5]) points[first + i] = { x: cx + 10 - (i - 4) * 20, y: 105 }
  }
  eye(36, 100)
  eye(42, 200)
  const [right, left] = eyeRects(points)
  assert.deepEqual(right, { x: 68, y: 72, width: 64, height: 64 })
  assert.equal(left?.x, 168)
})

test('softmax picks one class probability and is stable for large logits', () => {
  assert.ok(Math.abs(softmaxAt([0, 0], 1) - 0.5) < 1e-12)
  assert.ok(Math.abs(softmaxAt([1000, 0, -1000], 0) - 1) < 1e-12)
  const sum = [0, 1, 2].reduce((s, i) => s + softmaxAt([0.3, -1.2, 2.5], i), 0)
  assert.ok(Math.abs(sum - 1) < 1e-12)
})
