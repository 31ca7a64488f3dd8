import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  cropPadSquare,
  letterbox,
  letterboxTensor,
  toFloatTensorNHWC,
  warpAffineBilinear,
} from '../../../server/pipeline/vision/index.js'
import { makeImage, texturedScene } from '../../helpers/images.js'

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length)
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] ?? 0) - (b[i] ?? 0)))
  return worst
}

test('letterboxTensor equals the 8-bit letterbox converted to floats, up to its rounding', () => {
  for (const [width, height] of [
    [250, 250],
    [320, 180],
    [180, 400],
  ] as const) {
    const image = texturedScene(width, height, width + height)
    const fast = letterboxTensor(image, 416)
    const slow = toFloatTensorNHWC(letterbox(image, 416, { align: 'top-left', antialias: false }).image, {
      channelOrder: 'rgb',
    })
    assert.ok(maxAbsDiff(fast, slow) <= 0.5 + 1e-4, `${width}x${height}`)
  }
})

test('letterboxTensor pads with zeros at the right and bottom only', () => {
  const image = texturedScene(200, 100, 3)
  const tensor = letterboxTensor(image, 64)
  // 200x100 fits as 64x32: rows 32.. are padding, row 0 is image.
  assert.ok(tensor.subarray(0, 64 * 3).some((v) => v > 0))
  assert.ok(tensor.subarray(32 * 64 * 3).every((v) => v === 0))
})

test('cropPadSquare equals cropping, centring on a black square and resizing', () => {
  // Smooth content: the two differ only in sub-pixel placement of the padding offset.
  const image = makeImage(300, 200, (x, y) => [x * 0.8, y, 128 + 60 * Math.sin(x / 40)])
  for (const rect of [
    { x: 40, y: 30, width: 120, height: 90 },
    { x: 100, y: 20, width: 60, height: 150 },
  ]) {
    const fast = cropPadSquare(image, rect, 112)
    const crop = warpAffineBilinear(image, [1, 0, rect.x, 0, 1, rect.y], rect.width, rect.height)
    const slow = letterbox(crop, 112, { align: 'center', antialias: false }).image
    // Both round to 8 bits; the padding edge may differ by one pixel column of blending.
    let different = 0
    for (let i = 0; i < fast.data.length; i++)
      if (Math.abs((fast.data[i] ?? 0) - (slow.data[i] ?? 0)) > 1) different++
    assert.ok(different / fast.data.length < 0.03, `${different} of ${fast.data.length} values differ`)
  }
})

test('cropPadSquare clips a box that leaves the image and fills the rest with black', () => {
  const image = texturedScene(100, 100, 5)
  // Half the box is left of the image: the visible 50x100 part is centred on a black square.
  const out = cropPadSquare(image, { x: -50, y: 0, width: 100, height: 100 }, 50)
  assert.equal(out.width, 50)
  const pixel = (x: number, y: number) => [...out.data.subarray((y * 50 + x) * 3, (y * 50 + x) * 3 + 3)]
  assert.deepEqual(pixel(0, 25), [0, 0, 0])
  assert.deepEqual(pixel(49, 25), [0, 0, 0])
  assert.ok(pixel(25, 25).some((v) => v > 0))
})
