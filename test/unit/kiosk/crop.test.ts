import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MAX_CROP_SIDE_PX, planCrop } from '../../../client/kiosk/crop.js'

test('the crop is a square of twice the face around its centre', () => {
  const plan = planCrop({ x: 300, y: 200, width: 100, height: 120 }, 1280, 720)
  assert.deepEqual(plan.source, { x: 230, y: 140, width: 240, height: 240 })
  assert.equal(plan.side, 240)
})

test('the crop is shifted to stay inside the frame', () => {
  const plan = planCrop({ x: 10, y: 650, width: 80, height: 80 }, 1280, 720)
  assert.deepEqual(plan.source, { x: 0, y: 560, width: 160, height: 160 })
})

test('a face larger than half the frame gets the largest square the frame holds', () => {
  const plan = planCrop({ x: 200, y: 100, width: 500, height: 500 }, 1280, 720)
  assert.equal(plan.source.width, 720)
  assert.equal(plan.source.y, 0)
  assert.equal(plan.side, MAX_CROP_SIDE_PX, 'scaled down to 320 px')
})
