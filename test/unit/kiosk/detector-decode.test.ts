import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  clipBox,
  decodeGrid,
  letterbox,
  nonMaxSuppression,
  regionLuma,
  toInputTensor,
} from '../../../client/kiosk/detector-decode.js'
import { decodeTinyFaceDetectorGrid } from '../../../server/pipeline/detectors/tiny-face-decode.js'
import { seededRandom } from '../../helpers/random.js'

/** A grid of random logits with a few confident cells, as the 7x7 output of the 224 model. */
function randomGrid(seed: number, cells: number): Float32Array {
  const random = seededRandom(seed)
  const grid = new Float32Array(cells * cells * 25)
  for (let i = 0; i < grid.length; i++) grid[i] = (random() - 0.5) * 4
  for (let i = 4; i < grid.length; i += 5) grid[i] = random() < 0.08 ? 1 + random() * 3 : -3
  return grid
}

test('decodes the same boxes as the server decoder, in frame pixels', () => {
  for (const [seed, width, height, size] of [
    [1, 640, 480, 224],
    [2, 1280, 720, 224],
    [3, 480, 640, 224],
    [4, 1280, 720, 416],
  ] as const) {
    const grid = randomGrid(seed, size / 32)
    const ours = decodeGrid(grid, letterbox(width, height, size))
    const server = decodeTinyFaceDetectorGrid(grid, {
      inputSize: size,
      imageWidth: width,
      imageHeight: height,
    })
    assert.ok(ours.length > 0, 'the grid has faces')
    assert.equal(ours.length, server.length, `seed ${seed}`)
    ours.forEach((d, i) => {
      const s = server[i]
      assert.ok(s)
      assert.ok(Math.abs(d.score - s.score) < 1e-6)
      for (const key of ['x', 'y', 'width', 'height'] as const) {
        // The server scales by the rounded drawn size too; equal to a small fraction of a pixel.
        assert.ok(Math.abs(d.box[key] - s.box[key]) < 0.5, `${key}: ${d.box[key]} vs ${s.box[key]}`)
      }
    })
  }
})

test('the frame is drawn at the top-left of the square input, scaled to its longer side', () => {
  assert.deepEqual(letterbox(1280, 720, 224), {
    size: 224,
    scale: 0.175,
    width: 224,
    height: 126,
    frameWidth: 1280,
    frameHeight: 720,
  })
  assert.throws(() => letterbox(0, 720, 224), RangeError)
})

test('a grid of the wrong size is refused', () => {
  assert.throws(() => decodeGrid(new Float32Array(10), letterbox(640, 480, 224)), /7x7x25/)
})

test('RGBA pixels become RGB floats, alpha dropped, values kept 0..255', () => {
  const rgba = Uint8ClampedArray.from([1, 2, 3, 255, 250, 251, 252, 0])
  assert.deepEqual([...toInputTensor(rgba)], [1, 2, 3, 250, 251, 252])
  assert.throws(() => toInputTensor(rgba, new Float32Array(5)), RangeError)
})

test('NMS keeps the best of overlapping boxes and every separate one', () => {
  const kept = nonMaxSuppression(
    [
      { score: 0.6, box: { x: 5, y: 0, width: 100, height: 100 } },
      { score: 0.9, box: { x: 0, y: 0, width: 100, height: 100 } },
      { score: 0.7, box: { x: 300, y: 0, width: 100, height: 100 } },
    ],
    0.4,
  )
  assert.deepEqual(
    kept.map((d) => d.score),
    [0.9, 0.7],
  )
})

test('boxes are clipped to the frame', () => {
  assert.deepEqual(clipBox({ x: -10, y: 700, width: 50, height: 50 }, 640, 720), {
    x: 0,
    y: 700,
    width: 40,
    height: 20,
  })
})

test('the luma of a face box is measured on the detector input', () => {
  const box = letterbox(448, 224, 224)
  const rgba = new Uint8ClampedArray(224 * 224 * 4)
  // Left half of the drawn frame white, right half black (drawn frame: 224 x 112).
  for (let y = 0; y < 112; y++)
    for (let x = 0; x < 112; x++) rgba.fill(255, (y * 224 + x) * 4, (y * 224 + x) * 4 + 3)
  assert.equal(regionLuma(rgba, box, { x: 0, y: 0, width: 224, height: 224 }), 1)
  assert.equal(regionLuma(rgba, box, { x: 224, y: 0, width: 224, height: 224 }), 0)
  assert.ok(Math.abs(regionLuma(rgba, box, { x: 112, y: 0, width: 224, height: 224 }) - 0.5) < 1e-9)
})
