import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  applyAffine,
  ARCFACE_112_TEMPLATE,
  arcFaceTransform,
  chipTransformFromTemplate,
  composeAffine,
  DLIB_CHIP_LANDMARKS_68,
  DLIB_FIVE_POINT_TEMPLATE,
  DLIB_MEAN_FACE_68,
  DLIB_MEAN_FACE_FIVE_POINTS,
  estimateSimilarity,
  extractChip,
  faceChipTransform,
  invertAffine,
  toFivePoints,
  warpAffineBilinear,
  type Affine,
  type Point,
} from '../../../server/pipeline/vision/index.js'
import { makeImage, pixelAt, seededRandom, texturedScene } from '../../helpers/images.js'

function similarity(scale: number, degrees: number, tx: number, ty: number): Affine {
  const r = (degrees * Math.PI) / 180
  return [scale * Math.cos(r), -scale * Math.sin(r), tx, scale * Math.sin(r), scale * Math.cos(r), ty]
}

function assertAffineClose(actual: Affine, expected: Affine, tolerance: number, label = ''): void {
  for (let i = 0; i < 6; i++) {
    assert.ok(
      Math.abs((actual[i] ?? Number.NaN) - (expected[i] ?? Number.NaN)) < tolerance,
      `${label} coefficient ${i}: ${actual[i]} vs ${expected[i]}`,
    )
  }
}

/** dlib's mean face as 68 points in a 150 px chip (padding 0.25); the jaw, which dlib has no mean for, is filler. */
function templateLandmarks68(): Point[] {
  const jaw = Array.from({ length: 17 }, (_, i) => ({ x: 20 + i * 7, y: 140 }))
  return [
    ...jaw,
    ...DLIB_MEAN_FACE_68.map((p) => ({ x: ((0.25 + p.x) / 1.5) * 150, y: ((0.25 + p.y) / 1.5) * 150 })),
  ]
}

test('estimateSimilarity recovers a known similarity from the template points', () => {
  const truth = similarity(1.7, 23, 40, -12)
  const src = templateLandmarks68()
  const dst = src.map((p) => applyAffine(truth, p))
  assertAffineClose(estimateSimilarity(src, dst), truth, 1e-6)
  assertAffineClose(estimateSimilarity(src.slice(30, 32), dst.slice(30, 32)), truth, 1e-6, 'two points')
  assertAffineClose(estimateSimilarity(dst, src), invertAffine(truth), 1e-6, 'inverse')
})

test('estimateSimilarity is the least-squares fit when the points are noisy', () => {
  const truth = similarity(0.8, -40, 5, 300)
  const random = seededRandom(3)
  const src = templateLandmarks68()
  const dst = src
    .map((p) => applyAffine(truth, p))
    .map((p) => ({ x: p.x + random() - 0.5, y: p.y + random() - 0.5 }))
  const fit = estimateSimilarity(src, dst)
  const residual = (affine: Affine) =>
    src.reduce((sum, p, i) => {
      const q = applyAffine(affine, p)
      const d = dst[i] ?? q
      return sum + (q.x - d.x) ** 2 + (q.y - d.y) ** 2
    }, 0)
  assertAffineClose(
    [fit[0], fit[1], 0, fit[3], fit[4], 0],
    [truth[0], truth[1], 0, truth[3], truth[4], 0],
    0.01,
  )
  // Nudging any of the four similarity parameters away from a least-squares optimum can only
  // increase the residual.
  const [a, minusB, tx, b, , ty] = fit
  assert.equal(minusB, -b)
  const parameters = [a, b, tx, ty]
  for (let i = 0; i < 4; i++) {
    for (const delta of [-1e-4, 1e-4]) {
      const [na = 0, nb = 0, ntx = 0, nty = 0] = parameters.map((v, j) => (j === i ? v + delta : v))
      assert.ok(residual([na, -nb, ntx, nb, na, nty]) > residual(fit))
    }
  }
})

test('estimateSimilarity never returns a reflection, even for mirrored points', () => {
  const src = templateLandmarks68()
  const mirrored = src.map((p) => ({ x: -p.x, y: p.y }))
  const fit = estimateSimilarity(src, mirrored)
  assert.equal(fit[0], fit[4])
  assert.equal(fit[1], -fit[3])
  assert.ok(fit[0] * fit[4] - fit[1] * fit[3] >= 0)
})

test('estimateSimilarity refuses too few, mismatched, coincident or non-finite points', () => {
  const p = { x: 1, y: 2 }
  assert.throws(() => estimateSimilarity([p], [p]), RangeError)
  assert.throws(() => estimateSimilarity([p, p], [p]), RangeError)
  assert.throws(() => estimateSimilarity([p, p, p], [p, { x: 3, y: 4 }, p]), /coincide/)
  assert.throws(() => estimateSimilarity([p, { x: Number.NaN, y: 0 }], [p, p]), /finite/)
})

test('invertAffine and composeAffine undo each other', () => {
  const a = similarity(2.5, 70, -3, 8)
  const shear: Affine = [1, 0.3, 2, 0.1, 0.9, -4]
  for (const affine of [a, shear, composeAffine(a, shear)]) {
    assertAffineClose(composeAffine(affine, invertAffine(affine)), [1, 0, 0, 0, 1, 0], 1e-12)
    const p = { x: 13, y: -7 }
    const back = applyAffine(invertAffine(affine), applyAffine(affine, p))
    assert.ok(Math.abs(back.x - p.x) < 1e-9 && Math.abs(back.y - p.y) < 1e-9)
  }
  assert.throws(() => invertAffine([1, 2, 0, 2, 4, 0]), RangeError)
})

test('warpAffineBilinear with an integer translation copies pixels and fills outside with black', () => {
  const scene = texturedScene(20, 16)
  const out = warpAffineBilinear(scene, [1, 0, 3, 0, 1, 2], 20, 16)
  for (let y = 0; y < 14; y++) {
    for (let x = 0; x < 17; x++)
      assert.deepEqual(pixelAt(out, x, y), pixelAt(scene, x + 3, y + 2), `(${x},${y})`)
  }
  assert.deepEqual(pixelAt(out, 19, 15), [0, 0, 0])
})

test('warpAffineBilinear rotates a quarter turn about the centre exactly', () => {
  const scene = texturedScene(9, 9, 5)
  // Output (x, y) reads input (y, 8 - x): the picture turned 90° clockwise.
  const out = warpAffineBilinear(scene, [0, 1, 0, -1, 0, 8], 9, 9)
  for (let y = 0; y < 9; y++)
    for (let x = 0; x < 9; x++) assert.deepEqual(pixelAt(out, x, y), pixelAt(scene, y, 8 - x))
})

test('warpAffineBilinear interpolates between pixels', () => {
  const image = makeImage(2, 2, (x, y) => [x * 100 + y * 20, 0, 200])
  const out = warpAffineBilinear(image, [1, 0, 0.5, 0, 1, 0.25], 1, 1)
  assert.deepEqual(pixelAt(out, 0, 0), [55, 0, 200])
})

test('the border is black and blends at the edge by default, or replicates the edge on request', () => {
  const white = makeImage(4, 4, () => [255, 255, 255])
  const beyond: Affine = [1, 0, -3, 0, 1, 0]
  assert.deepEqual(pixelAt(warpAffineBilinear(white, beyond, 4, 4), 0, 0), [0, 0, 0])
  assert.deepEqual(pixelAt(warpAffineBilinear(white, beyond, 4, 4, { fill: 9 }), 0, 0), [9, 9, 9])
  assert.deepEqual(
    pixelAt(warpAffineBilinear(white, beyond, 4, 4, { border: 'replicate' }), 0, 0),
    [255, 255, 255],
  )
  const halfOut = warpAffineBilinear(white, [1, 0, -0.5, 0, 1, 0], 4, 4)
  assert.deepEqual(pixelAt(halfOut, 0, 1), [128, 128, 128])
  assert.deepEqual(pixelAt(halfOut, 3, 1), [255, 255, 255])
})

test('extractChip filters a large footprint instead of aliasing it', () => {
  const checker = makeImage(256, 256, (x, y) => ((x + y) % 2 === 0 ? [255, 255, 255] : [0, 0, 0]))
  // A 20 px chip of a 120 px region: 6 input pixels per chip pixel, 30° turn.
  const chipToImage = composeAffine(
    [1, 0, 128, 0, 1, 128],
    composeAffine(similarity(6, 30, 0, 0), [1, 0, -9.5, 0, 1, -9.5]),
  )
  const filtered = extractChip(checker, chipToImage, 20, 20)
  for (let i = 0; i < filtered.data.length; i++) assert.ok(Math.abs((filtered.data[i] ?? 0) - 128) <= 2)
  const aliased = warpAffineBilinear(checker, chipToImage, 20, 20)
  assert.ok(aliased.data.some((v) => Math.abs(v - 128) > 40))
})

test('extractChip samples like warpAffineBilinear when the chip is not much smaller than its footprint', () => {
  const scene = texturedScene(64, 64, 9)
  const chipToImage = similarity(1.5, 10, 8, 4)
  assert.deepEqual(extractChip(scene, chipToImage, 32, 32), warpAffineBilinear(scene, chipToImage, 32, 32))
})

test('extractChip keeps framing through the pyramid and is black outside the photo', () => {
  const halves = makeImage(400, 400, (x) => (x < 200 ? [200, 40, 40] : [40, 40, 200]))
  const chipToImage: Affine = [8, 0, 0, 0, 8, 40]
  const chip = extractChip(halves, chipToImage, 40, 40)
  assert.ok((pixelAt(chip, 10, 20)[0] ?? 0) > 190, 'left of x=200 is red')
  assert.ok((pixelAt(chip, 30, 20)[2] ?? 0) > 190, 'right of x=200 is blue')
  const away = extractChip(halves, [8, 0, 5000, 0, 8, 5000], 10, 10)
  assert.ok(away.data.every((v) => v === 0))
})

test('the dlib templates hold dlib mean face shape and its 33-point subset', () => {
  assert.equal(DLIB_MEAN_FACE_68.length, 51)
  assert.deepEqual(DLIB_MEAN_FACE_68[0], { x: 0.000213256, y: 0.106454 }) // landmark 17
  assert.deepEqual(DLIB_MEAN_FACE_68[30 - 17], { x: 0.490127, y: 0.515625 }) // nose tip
  assert.deepEqual(DLIB_MEAN_FACE_68[50], { x: 0.42689, y: 0.824182 }) // landmark 67
  assert.equal(DLIB_CHIP_LANDMARKS_68.length, 33)
  for (const excluded of [17, 21, 26, 55, 59, 65, 67]) assert.ok(!DLIB_CHIP_LANDMARKS_68.includes(excluded))
  for (const included of [27, 36, 45, 48, 54, 60, 64]) assert.ok(DLIB_CHIP_LANDMARKS_68.includes(included))
  assert.equal(DLIB_FIVE_POINT_TEMPLATE.length, 5)
  const [e1, e2, nose, m1, m2] = DLIB_MEAN_FACE_FIVE_POINTS
  assert.ok(e1 && e2 && nose && m1 && m2)
  assert.ok(Math.abs(e1.x - 0.2254918) < 1e-6 && Math.abs(e2.x - 0.7547613) < 1e-6)
  assert.ok(Math.abs(e1.y - e2.y) < 1e-9)
  assert.deepEqual(nose, { x: 0.490127, y: 0.515625 })
  assert.deepEqual([m1.x, m2.x, m1.y], [0.254149, 0.726104, 0.780233])
})

test('faceChipTransform lays out the chip exactly like dlib: half a pixel off the template', () => {
  // Landmarks already on the 150 px template: dlib's chip pixel u samples image point u + 0.5,
  // because its chip centre is template point (75, 75) while pixel centres are 0..149.
  const chip = faceChipTransform(templateLandmarks68())
  assert.equal(chip.size, 150)
  assertAffineClose(chip.chipToImage, [1, 0, 0.5, 0, 1, 0.5], 1e-9)
  assertAffineClose(composeAffine(chip.imageToChip, chip.chipToImage), [1, 0, 0, 0, 1, 0], 1e-12)
})

test('faceChipTransform follows a face moved, turned and scaled in the photo', () => {
  const truth = similarity(2.2, -17, 310, 95)
  const landmarks = templateLandmarks68().map((p) => applyAffine(truth, p))
  const { chipToImage } = faceChipTransform(landmarks)
  // dlib: chip centre (74.5, 74.5) lands on template point (75, 75); steps are (150 s - 1) / 149.
  const centre = applyAffine(chipToImage, { x: 74.5, y: 74.5 })
  const expected = applyAffine(truth, { x: 75, y: 75 })
  assert.ok(Math.hypot(centre.x - expected.x, centre.y - expected.y) < 1e-6)
  const step = (150 * 2.2 - 1) / 149
  const r = (-17 * Math.PI) / 180
  assertAffineClose(
    [chipToImage[0], chipToImage[1], 0, chipToImage[3], chipToImage[4], 0],
    [step * Math.cos(r), -step * Math.sin(r), 0, step * Math.sin(r), step * Math.cos(r), 0],
    1e-9,
  )
})

test('faceChipTransform ignores brows and lower lip unless told otherwise', () => {
  const truth = similarity(1.3, 5, 20, 30)
  const landmarks = templateLandmarks68().map((p) => applyAffine(truth, p))
  // Raised brows and an open mouth move only points the default subset leaves out.
  const expressive = landmarks.map((p, i) =>
    (i >= 17 && i <= 26) || (i >= 55 && i <= 59) || i >= 65 ? { x: p.x + 9, y: p.y + 14 } : p,
  )
  assertAffineClose(faceChipTransform(expressive).chipToImage, faceChipTransform(landmarks).chipToImage, 1e-9)
  const allPoints = Array.from({ length: 51 }, (_, i) => i + 17)
  const withBrows = faceChipTransform(expressive, { useIndices: allPoints }).chipToImage
  assert.ok(Math.abs(withBrows[2] - faceChipTransform(landmarks).chipToImage[2]) > 0.5)
  assert.throws(() => faceChipTransform(landmarks, { useIndices: [3, 30, 45] }), /17\.\.67/)
  assert.throws(() => faceChipTransform(landmarks.slice(0, 5)), RangeError)
})

test("dlib's five-point mean face frames the same chip as its 68-point one", () => {
  const truth = similarity(0.9, 31, -40, 200)
  const landmarks = templateLandmarks68().map((p) => applyAffine(truth, p))
  const from68 = faceChipTransform(landmarks, { size: 150, padding: 0.25 }).chipToImage
  const fromFive = (points: readonly Point[]) =>
    chipTransformFromTemplate(toFivePoints(points), DLIB_MEAN_FACE_FIVE_POINTS).chipToImage
  assertAffineClose(fromFive(toFivePoints(landmarks)), from68, 1e-9, '5 points')
  assertAffineClose(fromFive(landmarks), from68, 1e-9, '68 reduced')
})

test('arcFaceTransform maps the ArcFace template onto the 112 px chip, and 128 px with its shift', () => {
  const atTemplate = arcFaceTransform(ARCFACE_112_TEMPLATE)
  assertAffineClose(atTemplate.imageToChip, [1, 0, 0, 0, 1, 0], 1e-9)
  assert.equal(atTemplate.size, 112)
  const truth = similarity(3, -12, 500, 60)
  const inPhoto = ARCFACE_112_TEMPLATE.map((p) => applyAffine(truth, p))
  assertAffineClose(arcFaceTransform(inPhoto).chipToImage, truth, 1e-6)
  const at128 = arcFaceTransform(ARCFACE_112_TEMPLATE, 128)
  assertAffineClose(at128.imageToChip, [1, 0, 8, 0, 1, 0], 1e-9)
  assert.throws(() => arcFaceTransform(ARCFACE_112_TEMPLATE, 100), RangeError)
})

test('a face chip cut from a transformed scene matches the scene', () => {
  // The scene is a 150 px "chip"; the photo holds it scaled by 1.5 and turned 20°.
  const scene = makeImage(150, 150, (x, y) => [
    x * 1.6,
    y * 1.6,
    128 + 60 * Math.sin(x / 9) * Math.cos(y / 11),
  ])
  const chipToPhoto = similarity(1.5, 20, 200, 40)
  const photo = warpAffineBilinear(scene, invertAffine(chipToPhoto), 500, 400)
  const landmarks = templateLandmarks68().map((p) => applyAffine(chipToPhoto, p))
  const chip = extractChip(photo, faceChipTransform(landmarks).chipToImage, 150, 150)
  let error = 0
  let count = 0
  for (let y = 20; y < 130; y++) {
    for (let x = 20; x < 130; x++) {
      // dlib's chip pixel u shows template point 75 + (u - 74.5) * (150 s - 1) / (149 s).
      const k = (150 * 1.5 - 1) / (149 * 1.5)
      const expected = warpAffineBilinear(scene, [1, 0, 75 + (x - 74.5) * k, 0, 1, 75 + (y - 74.5) * k], 1, 1)
      const got = pixelAt(chip, x, y)
      for (let c = 0; c < 3; c++) error += Math.abs((got[c] ?? 0) - (expected.data[c] ?? 0))
      count += 3
    }
  }
  assert.ok(error / count < 2, `mean absolute error ${error / count}`)
})

test('a chip square on the mean face frames like the padding it equals, and moves with its centre', () => {
  const truth = similarity(1.3, 12, 80, 140)
  const landmarks = templateLandmarks68().map((p) => applyAffine(truth, p))
  const padded = faceChipTransform(landmarks, { size: 224, padding: 0.46 }).chipToImage
  const square = faceChipTransform(landmarks, {
    size: 224,
    square: { side: 1.92, centerX: 0.5, centerY: 0.5 },
  }).chipToImage
  assertAffineClose(square, padded, 1e-9, 'side 1 + 2p at the centre')
  // Centre 0.1 mean-face units higher: the chip centre moves by 0.1 units of the face (10 px
  // in templateLandmarks68's frame, then rotated and scaled by `truth`).
  const raised = faceChipTransform(landmarks, {
    size: 224,
    square: { side: 1.92, centerX: 0.5, centerY: 0.4 },
  })
  const centre = (chip: Affine): Point => applyAffine(chip, { x: 111.5, y: 111.5 })
  const moved = centre(raised.chipToImage)
  const from = centre(square)
  const origin = applyAffine(truth, { x: 0, y: 0 })
  const up = applyAffine(truth, { x: 0, y: -10 })
  assert.ok(Math.abs(moved.x - from.x - (up.x - origin.x)) < 1e-6, `dx ${moved.x - from.x}`)
  assert.ok(Math.abs(moved.y - from.y - (up.y - origin.y)) < 1e-6, `dy ${moved.y - from.y}`)
  assert.throws(
    () => faceChipTransform(landmarks, { square: { side: 0, centerX: 0.5, centerY: 0.5 } }),
    RangeError,
  )
})
