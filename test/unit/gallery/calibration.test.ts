import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  fitImpostorModel,
  galleryImpostorScores,
  impostorQuantile,
  perComparisonRate,
  thresholdFor,
} from '../../../server/gallery/calibration.js'
import { seededRandom } from '../../helpers/images.js'

/** Standard normal samples (Box-Muller) from a seeded generator. */
function normals(count: number, seed: number, mean = 0, sd = 1): Float64Array {
  const random = seededRandom(seed)
  return Float64Array.from({ length: count }, () => {
    const u = Math.max(random(), 1e-12)
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random())
  })
}

test('the per-comparison rate makes N independent chances add up to the target FPIR', () => {
  for (const [fpir, n] of [
    [0.01, 1],
    [0.005, 300],
    [0.001, 10_000],
  ] as const) {
    const s = perComparisonRate(fpir, n)
    assert.ok(Math.abs(1 - (1 - s) ** n - fpir) < 1e-12, `${fpir} over ${n}`)
  }
  assert.equal(perComparisonRate(0.01, 0), perComparisonRate(0.01, 1))
  assert.throws(() => perComparisonRate(0, 10), RangeError)
  assert.throws(() => perComparisonRate(1, 10), RangeError)
})

test('empirical quantiles are read off the highest scores where there are enough of them', () => {
  // 10,000 scores 0.0000..0.9999: 100 of them are >= 0.99.
  const scores = Float64Array.from({ length: 10_000 }, (_, i) => i / 10_000)
  const model = fitImpostorModel(scores)
  assert.equal(model.pairs, 10_000)
  assert.ok(Math.abs(impostorQuantile(model, 0.01) - 0.99) < 2e-4)
  assert.ok(Math.abs(impostorQuantile(model, 0.05) - 0.95) < 2e-4)
})

test('rarer levels than the data resolves are extrapolated above the empirical maximum', () => {
  const scores = normals(20_000, 7, 0, 0.1)
  const model = fitImpostorModel(scores)
  const max = model.top[0] ?? 0
  const deep = impostorQuantile(model, 1e-7)
  assert.ok(deep > max, `1e-7 quantile ${deep} should lie above the largest score ${max}`)
  // An exponential tail is heavier than the normal's: the extrapolation is conservative.
  const normalQuantile1e7 = 0.1 * 5.199
  assert.ok(deep >= normalQuantile1e7, `${deep} should not be below the true quantile ${normalQuantile1e7}`)
  // Monotone: a rarer rate never gives a lower threshold.
  let previous = -Infinity
  for (const rate of [0.1, 0.01, 1e-3, 1e-4, 1e-5, 1e-6, 1e-8]) {
    const q = impostorQuantile(model, rate)
    assert.ok(q >= previous, `quantile at ${rate} went down`)
    previous = q
  }
})

test('the threshold for a normal impostor distribution lets about the target share of strangers through', () => {
  const model = fitImpostorModel(normals(200_000, 11, 0.05, 0.08))
  for (const n of [10, 300]) {
    const threshold = thresholdFor(model, 0.01, n)
    // Simulate strangers: the best of n fresh impostor scores each.
    const strangers = 4_000
    const fresh = normals(strangers * n, 100 + n, 0.05, 0.08)
    let passed = 0
    for (let i = 0; i < strangers; i++) {
      let best = -Infinity
      for (let j = 0; j < n; j++) best = Math.max(best, fresh[i * n + j] ?? -Infinity)
      if (best >= threshold) passed++
    }
    const fpir = passed / strangers
    // Conservative by design: at most the target (plus sampling noise), and not absurdly below it.
    assert.ok(fpir <= 0.015, `${n} identities: ${fpir} of strangers passed, target 0.01`)
    assert.ok(fpir >= 0.001, `${n} identities: ${fpir} of strangers passed, far stricter than asked`)
  }
  assert.ok(
    thresholdFor(model, 0.01, 300) > thresholdFor(model, 0.01, 10),
    'a larger gallery needs a higher threshold',
  )
  assert.ok(
    thresholdFor(model, 0.001, 300) > thresholdFor(model, 0.01, 300),
    'a stricter target needs a higher threshold',
  )
})

test('gallery impostor scores pair every face with the other identities only, sampled past the cap', () => {
  const e = (x: number, y: number): Float32Array => Float32Array.from([x, y])
  const templates = [e(1, 0), e(0, 1), e(-1, 0)]
  const faces = [
    { identity: 0, embedding: e(1, 0) },
    { identity: 1, embedding: e(0, 1) },
    { identity: 2, embedding: e(-1, 0) },
  ]
  const all = [...galleryImpostorScores(faces, templates, 100)].sort()
  assert.deepEqual(all, [-1, -1, 0, 0, 0, 0])
  const sampled = galleryImpostorScores(faces, templates, 4)
  assert.equal(sampled.length, 4)
  for (const score of sampled) assert.notEqual(score, 1, 'a face was scored against its own identity')
  assert.deepEqual([...galleryImpostorScores(faces, templates, 4)], [...sampled], 'sampling is repeatable')
})

test('a model needs a few scores to fit', () => {
  assert.throws(() => fitImpostorModel([0.1, 0.2]), RangeError)
})
