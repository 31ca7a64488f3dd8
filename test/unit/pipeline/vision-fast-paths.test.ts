import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  applyAffine,
  chipStatistics,
  cropPadSquare,
  cropPadSquareTensor,
  halve,
  letterbox,
  letterboxTensor,
  roundNonNegative,
  toFloatTensorNHWC,
  toGray,
  warpAffineBilinear,
  type Affine,
  type Box,
  type RgbImage,
} from '../../../server/pipeline/vision/index.js'
import { makeImage, seededRandom, texturedScene } from '../../helpers/images.js'

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

// Reference implementations: the straightforward per-sample code the fast paths replaced, kept
// here so the fast paths are checked value for value (not within a tolerance) on random inputs.

function referenceLetterboxTensor(image: RgbImage, size: number): Float32Array {
  const scale = size / Math.max(image.width, image.height)
  const innerWidth = Math.min(size, Math.max(1, Math.round(image.width * scale)))
  const innerHeight = Math.min(size, Math.max(1, Math.round(image.height * scale)))
  const position = (i: number, ratio: number, length: number) => {
    const p = Math.min(Math.max((i + 0.5) * ratio - 0.5, 0), length - 1)
    const base = Math.floor(p)
    return { i0: base, i1: Math.min(base + 1, length - 1), f: Math.fround(p - base) }
  }
  const out = new Float32Array(size * size * 3)
  const at = (x: number, y: number, k: number) => image.data[(y * image.width + x) * 3 + k] ?? NaN
  for (let y = 0; y < innerHeight; y++) {
    const sy = position(y, image.height / innerHeight, image.height)
    for (let x = 0; x < innerWidth; x++) {
      const sx = position(x, image.width / innerWidth, image.width)
      for (let k = 0; k < 3; k++) {
        const top = at(sx.i0, sy.i0, k) * (1 - sx.f) + at(sx.i1, sy.i0, k) * sx.f
        const bottom = at(sx.i0, sy.i1, k) * (1 - sx.f) + at(sx.i1, sy.i1, k) * sx.f
        out[(y * size + x) * 3 + k] = top * (1 - sy.f) + bottom * sy.f
      }
    }
  }
  return out
}

function referenceCropPadSquare(image: RgbImage, rect: Box, size: number): Uint8Array {
  const left = Math.max(0, Math.round(rect.x))
  const top = Math.max(0, Math.round(rect.y))
  const width = Math.min(image.width, Math.round(rect.x + rect.width)) - left
  const height = Math.min(image.height, Math.round(rect.y + rect.height)) - top
  const out = new Uint8Array(size * size * 3)
  if (width <= 0 || height <= 0) return out
  const side = Math.max(width, height)
  const scale = side / size
  const at = (x: number, y: number, k: number) =>
    image.data[((top + y) * image.width + left + x) * 3 + k] ?? NaN
  for (let y = 0; y < size; y++) {
    const sy = (y + 0.5) * scale - 0.5 - (side - height) / 2
    if (sy < -0.5 || sy > height - 0.5) continue
    const cy = Math.min(Math.max(sy, 0), height - 1)
    const y0 = Math.floor(cy)
    const y1 = Math.min(y0 + 1, height - 1)
    const fy = cy - y0
    for (let x = 0; x < size; x++) {
      const sx = (x + 0.5) * scale - 0.5 - (side - width) / 2
      if (sx < -0.5 || sx > width - 0.5) continue
      const cx = Math.min(Math.max(sx, 0), width - 1)
      const x0 = Math.floor(cx)
      const x1 = Math.min(x0 + 1, width - 1)
      const fx = cx - x0
      for (let k = 0; k < 3; k++) {
        const topValue = at(x0, y0, k) * (1 - fx) + at(x1, y0, k) * fx
        const bottomValue = at(x0, y1, k) * (1 - fx) + at(x1, y1, k) * fx
        out[(y * size + x) * 3 + k] = Math.round(topValue * (1 - fy) + bottomValue * fy)
      }
    }
  }
  return out
}

/** The per-pixel formula: each output pixel mapped by the affine, clamped in replicate mode, four neighbours read. */
function referenceWarp(
  image: RgbImage,
  affine: Affine,
  outWidth: number,
  outHeight: number,
  border: 'constant' | 'replicate',
  fill: number,
): Uint8Array {
  const { width, height } = image
  const read = (x: number, y: number, k: number) =>
    x < 0 || y < 0 || x >= width || y >= height ? fill : (image.data[(y * width + x) * 3 + k] ?? NaN)
  const clampTo = (value: number, max: number): number =>
    border === 'replicate' ? Math.min(Math.max(value, 0), max) : value
  const out = new Uint8Array(outWidth * outHeight * 3)
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      const source = applyAffine(affine, { x, y })
      const sx = clampTo(source.x, width - 1)
      const sy = clampTo(source.y, height - 1)
      const x0 = Math.floor(sx)
      const y0 = Math.floor(sy)
      const fx = sx - x0
      const fy = sy - y0
      for (let k = 0; k < 3; k++) {
        const top = read(x0, y0, k) * (1 - fx) + read(x0 + 1, y0, k) * fx
        const bottom = read(x0, y0 + 1, k) * (1 - fx) + read(x0 + 1, y0 + 1, k) * fx
        out[(y * outWidth + x) * 3 + k] = Math.round(top * (1 - fy) + bottom * fy)
      }
    }
  }
  return out
}

function randomImage(width: number, height: number, random: () => number): RgbImage {
  const data = new Uint8Array(width * height * 3)
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256)
  return { data, width, height }
}

function assertSameValues(actual: ArrayLike<number>, expected: ArrayLike<number>, message: string): void {
  assert.equal(actual.length, expected.length, message)
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      assert.fail(`${message}: value ${i} is ${actual[i]}, expected ${expected[i]}`)
    }
  }
}

test('letterboxTensor gives exactly the floats of the per-sample bilinear formula', () => {
  const random = seededRandom(11)
  const sizes: [number, number, number][] = [
    [250, 250, 416],
    [320, 180, 416],
    [180, 400, 416],
    [500, 333, 416],
    [700, 700, 512],
    [1, 37, 64],
    [37, 1, 64],
    [64, 64, 64],
    [3, 2, 31],
  ]
  for (const [width, height, size] of sizes) {
    const image = randomImage(width, height, random)
    assertSameValues(
      letterboxTensor(image, size),
      referenceLetterboxTensor(image, size),
      `${width}x${height}`,
    )
  }
})

test('letterboxTensor writes every value of a reused buffer, padding included', () => {
  const random = seededRandom(12)
  const out = new Float32Array(96 * 96 * 3)
  for (const [width, height] of [
    [80, 40],
    [30, 90],
    [96, 96],
    [200, 120],
  ] as const) {
    out.fill(Number.NaN)
    const image = randomImage(width, height, random)
    const tensor = letterboxTensor(image, 96, out)
    assert.equal(tensor, out)
    assertSameValues(out, referenceLetterboxTensor(image, 96), `${width}x${height} into a used buffer`)
  }
  assert.throws(() => letterboxTensor(randomImage(4, 4, random), 96, new Float32Array(10)), RangeError)
})

test('cropPadSquare gives exactly the values of the per-sample formula, for any box', () => {
  const random = seededRandom(13)
  const image = randomImage(250, 200, random)
  const boxes: Box[] = [
    { x: 40, y: 30, width: 120, height: 90 },
    { x: 100, y: 20, width: 60, height: 150 },
    { x: -50, y: -20, width: 100, height: 100 },
    { x: 200, y: 150, width: 120, height: 80 },
    { x: 10.4, y: 11.6, width: 3.2, height: 0.7 },
    { x: 0, y: 0, width: 250, height: 200 },
    { x: 300, y: 10, width: 20, height: 20 },
  ]
  for (let i = 0; i < 40; i++) {
    boxes.push({
      x: random() * 300 - 50,
      y: random() * 250 - 50,
      width: 1 + random() * 220,
      height: 1 + random() * 220,
    })
  }
  for (const box of boxes) {
    for (const size of [112, 37]) {
      const expected = referenceCropPadSquare(image, box, size)
      assertSameValues(cropPadSquare(image, box, size).data, expected, JSON.stringify(box))
      assertSameValues(cropPadSquareTensor(image, box, size), expected, `tensor ${JSON.stringify(box)}`)
    }
  }
})

test('cropPadSquareTensor fills its own slot of a batch and leaves the others alone', () => {
  const random = seededRandom(14)
  const image = randomImage(120, 90, random)
  const per = 24 * 24 * 3
  const batch = new Float32Array(per * 3).fill(-1)
  const box = { x: 20, y: 10, width: 40, height: 70 }
  cropPadSquareTensor(image, box, 24, batch, per)
  assert.ok(batch.subarray(0, per).every((v) => v === -1))
  assert.ok(batch.subarray(2 * per).every((v) => v === -1))
  assertSameValues(batch.subarray(per, 2 * per), referenceCropPadSquare(image, box, 24), 'middle slot')
  assert.throws(() => cropPadSquareTensor(image, box, 24, batch, 2 * per + 1), RangeError)
})

test('warpAffineBilinear gives exactly the values of the per-sample formula', () => {
  const random = seededRandom(15)
  const image = randomImage(160, 120, random)
  for (let i = 0; i < 30; i++) {
    const angle = (random() - 0.5) * 1.5
    const scale = 0.3 + random() * 2.5
    const affine: Affine = [
      Math.cos(angle) * scale,
      -Math.sin(angle) * scale,
      random() * 200 - 40,
      Math.sin(angle) * scale,
      Math.cos(angle) * scale,
      random() * 160 - 40,
    ]
    for (const border of ['constant', 'replicate'] as const) {
      const fill = border === 'constant' ? Math.floor(random() * 256) : 0
      assertSameValues(
        warpAffineBilinear(image, affine, 50, 40, { border, fill }).data,
        referenceWarp(image, affine, 50, 40, border, fill),
        `${border} ${affine.join(',')}`,
      )
    }
  }
  // Integer positions, the last row and column, and a map entirely outside the image.
  for (const affine of [
    [1, 0, 0, 0, 1, 0],
    [1, 0, 110, 0, 1, 80],
    [1, 0, 500, 0, 1, 500],
  ] as Affine[]) {
    assertSameValues(
      warpAffineBilinear(image, affine, 50, 40).data,
      referenceWarp(image, affine, 50, 40, 'constant', 0),
      affine.join(','),
    )
  }
})

test('roundNonNegative equals Math.round on every non-negative double it is given', () => {
  const random = seededRandom(16)
  const edges = [
    0,
    0.5,
    1.5,
    2.5,
    254.5,
    255,
    255.5,
    0.49999999999999994,
    1.4999999999999998,
    127.49999999999999,
    255.49999999999997,
    Number.MIN_VALUE,
    2 ** 52 + 1,
    2 ** 53,
    1e300,
  ]
  for (const value of edges) assert.equal(roundNonNegative(value), Math.round(value), String(value))
  for (let i = 0; i < 100_000; i++) {
    const value = random() * 256
    assert.equal(roundNonNegative(value), Math.round(value), String(value))
    const near = Math.floor(value) + 0.5 + (random() - 0.5) * 1e-12
    assert.equal(roundNonNegative(near), Math.round(near), String(near))
  }
})

test('toGray and chipStatistics give the values of the per-pixel formulas', () => {
  const random = seededRandom(17)
  for (const [width, height] of [
    [150, 150],
    [7, 5],
    [2, 2],
  ] as const) {
    const image = randomImage(width, height, random)
    const gray = toGray(image)
    const expected = new Uint8Array(width * height)
    for (let i = 0; i < expected.length; i++) {
      const [r, g, b] = [image.data[i * 3] ?? 0, image.data[i * 3 + 1] ?? 0, image.data[i * 3 + 2] ?? 0]
      expected[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b)
    }
    assertSameValues(gray.data, expected, `gray ${width}x${height}`)
    const left = Math.max(1, Math.floor(width * 0.2))
    const top = Math.max(1, Math.floor(height * 0.2))
    const right = Math.min(width - 1, Math.ceil(width * 0.8))
    const bottom = Math.min(height - 1, Math.ceil(height * 0.8))
    let count = 0
    let sum = 0
    let squares = 0
    let lapSum = 0
    let lapSquares = 0
    const at = (x: number, y: number) => expected[y * width + x] ?? NaN
    for (let y = top; y < bottom; y++) {
      for (let x = left; x < right; x++) {
        const v = at(x, y)
        const lap = at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4 * v
        count++
        sum += v
        squares += v * v
        lapSum += lap
        lapSquares += lap * lap
      }
    }
    const stats = chipStatistics(image)
    if (count === 0) {
      assert.deepEqual(stats, { sharpness: 0, brightness: 0, contrast: 0 })
      continue
    }
    const mean = sum / count
    const variance = Math.max(0, squares / count - mean * mean)
    const lapMean = lapSum / count
    assert.deepEqual(stats, {
      sharpness: Math.max(0, lapSquares / count - lapMean * lapMean) / (variance + 25),
      brightness: mean / 255,
      contrast: Math.sqrt(variance) / 255,
    })
  }
})

test('halve gives exactly the rounded 2x2 means of the per-pixel formula, odd sizes included', () => {
  const random = seededRandom(18)
  for (const [width, height] of [
    [8, 6],
    [7, 5],
    [1, 1],
    [1, 9],
    [9, 1],
    [250, 173],
  ] as const) {
    const image = randomImage(width, height, random)
    for (const [alongX, alongY] of [
      [true, true],
      [true, false],
      [false, true],
    ] as const) {
      const outWidth = alongX ? (width + 1) >> 1 : width
      const outHeight = alongY ? (height + 1) >> 1 : height
      const expected = new Uint8Array(outWidth * outHeight * 3)
      const at = (x: number, y: number, k: number) =>
        image.data[(Math.min(y, height - 1) * width + Math.min(x, width - 1)) * 3 + k] ?? NaN
      for (let y = 0; y < outHeight; y++) {
        for (let x = 0; x < outWidth; x++) {
          const [x0, x1] = alongX ? [2 * x, 2 * x + 1] : [x, x]
          const [y0, y1] = alongY ? [2 * y, 2 * y + 1] : [y, y]
          for (let k = 0; k < 3; k++) {
            expected[(y * outWidth + x) * 3 + k] =
              (at(x0, y0, k) + at(x1, y0, k) + at(x0, y1, k) + at(x1, y1, k) + 2) >> 2
          }
        }
      }
      const half = halve(image, alongX, alongY)
      assert.deepEqual([half.width, half.height], [outWidth, outHeight])
      assertSameValues(
        half.data,
        expected,
        `${width}x${height} along ${alongX ? 'x' : ''}${alongY ? 'y' : ''}`,
      )
    }
  }
})
