import assert from 'node:assert/strict'
import { test } from 'node:test'
import { iou, nonMaxSuppression, type Box } from '../../../server/pipeline/vision/index.js'

const options = { iouThreshold: 0.5, scoreThreshold: 0.3, maxOutput: 10 }

test('iou is 1 for identical boxes, 0 for disjoint or touching ones, and the area ratio otherwise', () => {
  const a = { x: 0, y: 0, width: 10, height: 10 }
  assert.equal(iou(a, a), 1)
  assert.equal(iou(a, { x: 20, y: 20, width: 5, height: 5 }), 0)
  assert.equal(iou(a, { x: 10, y: 0, width: 10, height: 10 }), 0)
  assert.equal(iou(a, { x: 5, y: 0, width: 10, height: 10 }), 50 / 150)
  assert.equal(iou(a, { x: 2, y: 2, width: 5, height: 5 }), 25 / 100)
  assert.equal(iou(a, { x: 0, y: 0, width: 0, height: 10 }), 0)
})

test('keeps the best of overlapping boxes and every box that stands apart, best first', () => {
  const boxes: Box[] = [
    { x: 100, y: 100, width: 50, height: 50 },
    { x: 0, y: 0, width: 40, height: 40 },
    { x: 104, y: 102, width: 50, height: 50 },
    { x: 3, y: 1, width: 40, height: 40 },
    { x: 300, y: 0, width: 20, height: 20 },
  ]
  const kept = nonMaxSuppression(boxes, [0.8, 0.6, 0.95, 0.7, 0.5], options)
  assert.deepEqual(kept, [2, 3, 4])
})

test('keeps overlapping boxes whose IoU is at or under the threshold', () => {
  const boxes: Box[] = [
    { x: 0, y: 0, width: 10, height: 10 },
    { x: 5, y: 0, width: 10, height: 10 },
  ]
  assert.deepEqual(nonMaxSuppression(boxes, [0.9, 0.8], { ...options, iouThreshold: 0.34 }), [0, 1])
  assert.deepEqual(nonMaxSuppression(boxes, [0.9, 0.8], { ...options, iouThreshold: 0.33 }), [0])
})

test('drops boxes under the score threshold and with non-finite scores or coordinates', () => {
  const boxes: Box[] = [
    { x: 0, y: 0, width: 10, height: 10 },
    { x: 50, y: 0, width: 10, height: 10 },
    { x: 100, y: 0, width: 10, height: 10 },
    { x: Number.NaN, y: 0, width: 10, height: 10 },
  ]
  assert.deepEqual(nonMaxSuppression(boxes, [0.29, 0.3, Number.NaN, 0.9], options), [1])
})

test('stops at maxOutput and keeps input order between equal scores', () => {
  const boxes: Box[] = Array.from({ length: 6 }, (_, i) => ({ x: i * 20, y: 0, width: 10, height: 10 }))
  const scores = Float32Array.from([0.5, 0.9, 0.5, 0.9, 0.5, 0.4])
  assert.deepEqual(nonMaxSuppression(boxes, scores, { ...options, maxOutput: 4 }), [1, 3, 0, 2])
  assert.deepEqual(nonMaxSuppression(boxes, scores, { ...options, maxOutput: 0 }), [])
})

test('refuses mismatched inputs and impossible options', () => {
  const box = { x: 0, y: 0, width: 1, height: 1 }
  assert.throws(() => nonMaxSuppression([box], [0.5, 0.6], options), RangeError)
  assert.throws(() => nonMaxSuppression([box], [0.5], { ...options, iouThreshold: 1.5 }), RangeError)
  assert.throws(() => nonMaxSuppression([box], [0.5], { ...options, maxOutput: -1 }), RangeError)
})
