import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import sharp from 'sharp'
import {
  applyAffine,
  assessQuality,
  DLIB_MEAN_FACE_68,
  DLIB_MEAN_FACE_FIVE_POINTS,
  estimatePose,
  type Point,
  type RgbImage,
} from '../../../server/pipeline/vision/index.js'
import { facesDir, makeImage, seededRandom, texturedScene } from '../../helpers/images.js'

/** The five template points placed in a 150 px chip, scaled by `scale` about the chip origin. */
function frontalFive(scale = 1): Point[] {
  return DLIB_MEAN_FACE_FIVE_POINTS.map((p) => ({
    x: ((0.25 + p.x) / 1.5) * 150 * scale,
    y: ((0.25 + p.y) / 1.5) * 150 * scale,
  }))
}

const box = { x: 10, y: 10, width: 130, height: 130 }

async function blur(image: RgbImage, sigma: number): Promise<RgbImage> {
  const { width, height } = image
  const data = await sharp(Buffer.from(image.data), { raw: { width, height, channels: 3 } })
    .blur(sigma)
    .raw()
    .toBuffer()
  return { data: new Uint8Array(data), width, height }
}

function rotateAbout(points: Point[], centre: Point, degrees: number): Point[] {
  const r = (degrees * Math.PI) / 180
  const c = Math.cos(r)
  const s = Math.sin(r)
  return points.map((p) =>
    applyAffine(
      [c, -s, centre.x - c * centre.x + s * centre.y, s, c, centre.y - s * centre.x - c * centre.y],
      p,
    ),
  )
}

test('a blurred chip scores lower sharpness and lower overall than the sharp one', async () => {
  // Broadband detail (noise softened to photo-like crispness) on a disc; no periodic pattern,
  // whose Laplacian-to-variance ratio would survive any blur.
  const random = seededRandom(8)
  const detail = makeImage(150, 150, (x, y) => {
    const v = ((x - 75) ** 2 + (y - 70) ** 2 < 50 ** 2 ? 150 : 90) + random() * 60 - 30
    return [v, v * 0.8, v * 0.6]
  })
  const sharpChip = await blur(detail, 1)
  const blurred = await blur(sharpChip, 3)
  const crisp = assessQuality(sharpChip, frontalFive(), box)
  const soft = assessQuality(blurred, frontalFive(), box)
  assert.ok(soft.sharpness < crisp.sharpness / 2, `${soft.sharpness} vs ${crisp.sharpness}`)
  assert.ok(soft.factors.sharpness < crisp.factors.sharpness)
  assert.ok(soft.score < crisp.score)
})

test('a dark chip scores lower brightness and lower overall', () => {
  const chip = texturedScene(150, 150, 4)
  const dark: RgbImage = { ...chip, data: chip.data.map((v) => Math.round(v * 0.15)) }
  const normal = assessQuality(chip, frontalFive(), box)
  const dim = assessQuality(dark, frontalFive(), box)
  assert.ok(dim.brightness < normal.brightness / 4)
  assert.ok(dim.factors.brightness < normal.factors.brightness)
  assert.equal(normal.factors.brightness, 1)
  assert.ok(dim.score < normal.score)
})

test('an overexposed or flat chip loses its brightness or contrast factor', () => {
  const white = makeImage(150, 150, () => [250, 250, 250])
  const grey = makeImage(150, 150, () => [128, 128, 128])
  const washed = assessQuality(white, frontalFive(), box)
  assert.equal(washed.factors.brightness, 0)
  assert.equal(washed.score, 0)
  const flat = assessQuality(grey, frontalFive(), box)
  assert.equal(flat.contrast, 0)
  assert.equal(flat.factors.contrast, 0)
  assert.equal(flat.sharpness, 0)
})

test('a black chip scores 0 and every score stays in [0, 1]', () => {
  const black = makeImage(150, 150, () => [0, 0, 0])
  assert.equal(assessQuality(black, frontalFive(), box).score, 0)
  const good = assessQuality(texturedScene(150, 150, 2), frontalFive(), box)
  assert.ok(good.score > 0.5 && good.score <= 1, String(good.score))
  for (const value of Object.values(good.factors)) assert.ok(value >= 0 && value <= 1)
})

test('reports the inter-ocular distance and box side, and a small face scores lower size', () => {
  const chip = texturedScene(150, 150, 4)
  const big = assessQuality(chip, frontalFive(), box)
  const [e1, e2] = frontalFive()
  assert.ok(e1 && e2)
  assert.ok(Math.abs(big.size.interOcularPx - Math.hypot(e2.x - e1.x, e2.y - e1.y)) < 1e-9)
  assert.equal(big.size.boxSidePx, 130)
  assert.equal(big.factors.size, 1)
  const small = assessQuality(chip, frontalFive(0.25), { x: 0, y: 0, width: 30, height: 30 })
  assert.ok(small.size.interOcularPx < 14)
  assert.ok(small.factors.size < 0.2)
  assert.ok(small.score < big.score)
})

test('a frontal face has no roll, yaw or pitch', () => {
  const pose = estimatePose(frontalFive())
  assert.ok(Math.abs(pose.roll) < 1e-9)
  // dlib's nose tip sits 5e-7 of the template's width off the eye midpoint.
  assert.ok(Math.abs(pose.yaw) < 1e-3, String(pose.yaw))
  assert.ok(Math.abs(pose.pitch) < 0.1, String(pose.pitch))
})

test('a rotated landmark set gives the rotation as roll and leaves yaw and pitch alone', () => {
  const five = frontalFive()
  const [e1, e2] = five
  assert.ok(e1 && e2)
  const mid = { x: (e1.x + e2.x) / 2, y: (e1.y + e2.y) / 2 }
  const upright = estimatePose(five)
  for (const degrees of [25, -40, 70]) {
    const pose = estimatePose(rotateAbout(five, mid, degrees))
    assert.ok(Math.abs(pose.roll - degrees) < 1e-9, `${pose.roll} vs ${degrees}`)
    assert.ok(Math.abs(pose.yaw - upright.yaw) < 1e-9)
    assert.ok(Math.abs(pose.pitch - upright.pitch) < 1e-9)
  }
})

test('a nose off the eye midpoint gives yaw towards it, and a raised nose gives pitch up', () => {
  const five = frontalFive()
  const [e1, e2, nose] = five
  assert.ok(e1 && e2 && nose)
  const iod = e2.x - e1.x
  const turned = five.map((p, i) => (i === 2 ? { x: p.x + 0.2 * iod, y: p.y } : p))
  const yaw = estimatePose(turned).yaw
  assert.ok(Math.abs(yaw - (Math.atan(0.2 / 0.55) * 180) / Math.PI) < 1e-3, String(yaw))
  assert.ok(estimatePose(five.map((p, i) => (i === 2 ? { x: p.x - 0.2 * iod, y: p.y } : p))).yaw < -19)
  const up = estimatePose(five.map((p, i) => (i === 2 ? { x: p.x, y: p.y - 0.1 * iod } : p))).pitch
  const down = estimatePose(five.map((p, i) => (i === 2 ? { x: p.x, y: p.y + 0.1 * iod } : p))).pitch
  assert.ok(up > 5 && down < -5, `${up} / ${down}`)
  const profile = assessQuality(
    texturedScene(150, 150),
    five.map((p, i) => (i === 2 ? { x: p.x + iod, y: p.y } : p)),
    box,
  )
  assert.ok(profile.pose.yaw > 55)
  assert.ok(profile.factors.pose < 0.2)
})

test('68 landmarks give the same pose as their five points', () => {
  const jaw = Array.from({ length: 17 }, (_, i) => ({ x: i, y: 140 }))
  const landmarks = [
    ...jaw,
    ...DLIB_MEAN_FACE_68.map((p) => ({ x: ((0.25 + p.x) / 1.5) * 150, y: ((0.25 + p.y) / 1.5) * 150 })),
  ]
  const tilted = rotateAbout(landmarks, { x: 75, y: 75 }, 12)
  const from68 = estimatePose(tilted)
  assert.ok(Math.abs(from68.roll - 12) < 1e-9)
  assert.ok(Math.abs(from68.yaw) < 1e-3)
})

test('real LFW faces lose sharpness when blurred', async (t) => {
  const dir = facesDir()
  if (dir === undefined) {
    t.skip('../shared/faces is absent (set FACEWIRE_FACES to run this test)')
    return
  }
  const lfw = path.join(dir, 'lfw-view1')
  const people = (await readdir(lfw, { withFileTypes: true })).filter((e) => e.isDirectory()).slice(0, 10)
  for (const person of people) {
    const file = path.join(lfw, person.name, (await readdir(path.join(lfw, person.name)))[0] ?? '')
    // LFW deep-funneled faces sit in the middle of the 250 px picture.
    const { data } = await sharp(file)
      .extract({ left: 65, top: 70, width: 120, height: 120 })
      .resize(150, 150)
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true })
    const chip = { data: new Uint8Array(data), width: 150, height: 150 }
    const crisp = assessQuality(chip, frontalFive(), box)
    const soft = assessQuality(await blur(chip, 2), frontalFive(), box)
    assert.ok(soft.factors.sharpness < crisp.factors.sharpness, person.name)
    assert.ok(crisp.factors.brightness > 0.5 && crisp.factors.contrast > 0.5, person.name)
  }
})
