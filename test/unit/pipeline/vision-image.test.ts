import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  applyAffine,
  halve,
  letterbox,
  mapBox,
  resizeBilinear,
  toFloatTensorNCHW,
  toFloatTensorNHWC,
  toGray,
} from '../../../server/pipeline/vision/index.js'
import { makeImage, pixelAt } from '../../helpers/images.js'

const gradient = makeImage(8, 4, (x, y) => [x * 30, y * 60, 200])

test('resizing to the same size returns an equal copy', () => {
  const same = resizeBilinear(gradient, 8, 4)
  assert.deepEqual(same.data, gradient.data)
  assert.notEqual(same.data, gradient.data)
})

test('resizing keeps a constant image constant', () => {
  const flat = makeImage(37, 23, () => [10, 120, 250])
  for (const [w, h] of [
    [5, 3],
    [100, 61],
    [37, 7],
  ] as const) {
    const out = resizeBilinear(flat, w, h)
    assert.equal(out.data.length, w * h * 3)
    for (let i = 0; i < out.data.length; i += 3)
      assert.deepEqual([...out.data.subarray(i, i + 3)], [10, 120, 250])
  }
})

test('upscaling 2x interpolates with half-pixel centres', () => {
  const row = makeImage(2, 1, (x) => [x === 0 ? 0 : 100, 0, 0])
  const out = resizeBilinear(row, 4, 1)
  // Output centres sit at source x = -0.25, 0.25, 0.75, 1.25 (edges clamp).
  assert.deepEqual(
    [0, 1, 2, 3].map((x) => pixelAt(out, x, 0)[0]),
    [0, 25, 75, 100],
  )
})

test('downscaling by 3 averages blocks instead of skipping pixels', () => {
  const checker = makeImage(18, 18, (x, y) => ((x + y) % 2 === 0 ? [255, 255, 255] : [0, 0, 0]))
  const smooth = resizeBilinear(checker, 6, 6)
  for (let i = 0; i < smooth.data.length; i++) assert.ok(Math.abs((smooth.data[i] ?? 0) - 128) <= 1)
  const aliased = resizeBilinear(checker, 6, 6, { antialias: false })
  assert.ok(
    aliased.data.some((v) => Math.abs(v - 128) > 60),
    'plain bilinear aliases on a checkerboard',
  )
})

test('halving averages 2x2 blocks and keeps an odd last column', () => {
  const image = makeImage(3, 2, (x, y) => [x * 10 + y * 100, 0, 0])
  const half = halve(image)
  assert.equal(half.width, 2)
  assert.equal(half.height, 1)
  assert.deepEqual(pixelAt(half, 0, 0)[0], 55)
  assert.deepEqual(pixelAt(half, 1, 0)[0], 70)
})

test('the NHWC tensor applies mean and scale per channel in the requested order', () => {
  const image = makeImage(2, 1, (x) => (x === 0 ? [255, 128, 0] : [0, 64, 255]))
  const rgb = toFloatTensorNHWC(image, { mean: [127.5, 127.5, 127.5], scale: 1 / 127.5, channelOrder: 'rgb' })
  assert.deepEqual(
    [...rgb].map((v) => Number(v.toFixed(4))),
    [1, 0.0039, -1, -1, -0.498, 1],
  )
  const bgr = toFloatTensorNHWC(image, { channelOrder: 'bgr' })
  assert.deepEqual([...bgr], [0, 128, 255, 255, 64, 0])
  const perChannel = toFloatTensorNHWC(image, { mean: [255, 0, 0], scale: [1, 0.5, 2], channelOrder: 'bgr' })
  assert.deepEqual([...perChannel], [0, 64, 0, 510, 32, -255])
})

test('the NCHW tensor holds the same values in planes', () => {
  const image = makeImage(2, 2, (x, y) => [x, y, 10 + x + y])
  const nchw = toFloatTensorNCHW(image, { scale: 2, channelOrder: 'rgb' })
  assert.deepEqual([...nchw], [0, 2, 0, 2, 0, 0, 2, 2, 20, 22, 22, 24])
})

test('letterbox fits the image, centres it and pads with the fill level', () => {
  const wide = makeImage(200, 100, () => [200, 100, 50])
  const boxed = letterbox(wide, 128, { fill: 7 })
  assert.equal(boxed.image.width, 128)
  assert.equal(boxed.image.height, 128)
  assert.equal(boxed.scaleX, 0.64)
  assert.equal(boxed.scaleY, 0.64)
  assert.equal(boxed.offsetX, 0)
  assert.equal(boxed.offsetY, 32)
  assert.deepEqual(pixelAt(boxed.image, 64, 10), [7, 7, 7])
  assert.deepEqual(pixelAt(boxed.image, 64, 64), [200, 100, 50])
  assert.deepEqual(pixelAt(boxed.image, 64, 120), [7, 7, 7])
})

test('letterbox top-left alignment puts the padding right and below', () => {
  const tall = makeImage(50, 100, () => [1, 2, 3])
  const boxed = letterbox(tall, { width: 64, height: 64 }, { align: 'top-left' })
  assert.equal(boxed.offsetX, 0)
  assert.equal(boxed.offsetY, 0)
  assert.deepEqual(pixelAt(boxed.image, 10, 10), [1, 2, 3])
  assert.deepEqual(pixelAt(boxed.image, 60, 10), [0, 0, 0])
})

test('letterbox toSource maps detector coordinates back onto the source image', () => {
  const source = makeImage(400, 200, () => [0, 0, 0])
  const boxed = letterbox(source, 100)
  // Source pixel centre (200, 100) is the centre of the picture: letterbox (49.5, 49.5).
  const centre = applyAffine(boxed.toSource, { x: 49.5, y: 49.5 })
  assert.ok(Math.abs(centre.x - 199.5) < 1e-9 && Math.abs(centre.y - 99.5) < 1e-9, JSON.stringify(centre))
  // The letterboxed picture spans x -0.5..99.5 and y 24.5..74.5 (pixel edges): the whole source.
  const whole = mapBox({ x: -0.5, y: 24.5, width: 100, height: 50 }, boxed.toSource)
  for (const [key, expected] of Object.entries({ x: -0.5, y: -0.5, width: 400, height: 200 })) {
    assert.ok(
      Math.abs(whole[key as keyof typeof whole] - expected) < 1e-9,
      `${key} = ${whole[key as keyof typeof whole]}`,
    )
  }
})

test('toGray weighs channels with BT.601 luma', () => {
  const colours: (readonly [number, number, number])[] = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 255, 255],
  ]
  const image = makeImage(4, 1, (x) => colours[x] ?? [0, 0, 0])
  const gray = toGray(image)
  assert.deepEqual([...gray.data], [76, 150, 29, 255])
})

test('image helpers refuse a buffer that does not match the dimensions', () => {
  const broken = { data: new Uint8Array(10), width: 2, height: 2 }
  assert.throws(() => toGray(broken), RangeError)
  assert.throws(() => resizeBilinear(gradient, 0, 4), RangeError)
  assert.throws(() => letterbox(broken, 8), RangeError)
})
