import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  accuracyAt,
  bestThreshold,
  crossValidatedAccuracy,
  parsePairs,
  rocAuc,
  tarAtFar,
  type ScoredPair,
} from '../../server/cli/verification.js'

const same = (score: number, fold = 0): ScoredPair => ({ same: true, score, fold })
const diff = (score: number, fold = 0): ScoredPair => ({ same: false, score, fold })

test('View 1 pair files are parsed into same and different pairs', () => {
  const parsed = parsePairs('2\nAaron\t1\t2\nBob\t3\t4\nAaron\t1\tCarol\t2\nBob\t1\tDan\t7\n')
  assert.equal(parsed.format, 'view1')
  assert.equal(parsed.pairs.length, 4)
  assert.deepEqual(parsed.pairs[0], {
    same: true,
    a: { name: 'Aaron', index: 1 },
    b: { name: 'Aaron', index: 2 },
    fold: 0,
  })
  assert.deepEqual(parsed.pairs[3]?.b, { name: 'Dan', index: 7 })
})

test('View 2 pair files are split into folds of same and different pairs', () => {
  const parsed = parsePairs('2\t1\nA\t1\t2\nA\t1\tB\t1\nC\t1\t2\nC\t1\tD\t1\n')
  assert.equal(parsed.format, 'view2')
  assert.deepEqual(
    parsed.pairs.map((p) => p.fold),
    [0, 0, 1, 1],
  )
})

test('a pairs file with the wrong count is refused', () => {
  assert.throws(() => parsePairs('3\nA\t1\t2\n'), /declares 6 pairs but has 1/)
})

test('a pair with a missing face is always counted wrong', () => {
  const pairs = [same(0.9), diff(0.1), same(NaN), diff(NaN)]
  assert.equal(accuracyAt(pairs, 0.5), 0.5)
  assert.equal(bestThreshold(pairs).accuracy, 0.5)
})

test('the best threshold separates perfectly separable scores', () => {
  const { threshold, accuracy } = bestThreshold([same(0.8), same(0.7), diff(0.3), diff(0.2)])
  assert.equal(accuracy, 1)
  assert.ok(threshold > 0.3 && threshold <= 0.7)
})

test('ROC AUC is 1 for separable scores, 0.5 for constant ones, and missing faces count against', () => {
  assert.equal(rocAuc([same(0.8), same(0.7), diff(0.3), diff(0.2)]), 1)
  assert.equal(rocAuc([same(0.5), same(0.5), diff(0.5), diff(0.5)]), 0.5)
  assert.equal(rocAuc([same(NaN), diff(0.1)]), 0)
})

test('TAR at FAR counts same pairs above the strictest allowed threshold', () => {
  const pairs = [same(0.9), same(0.6), same(0.4), diff(0.5), ...Array.from({ length: 99 }, () => diff(0.1))]
  const strict = tarAtFar(pairs, 0.001)
  assert.equal(strict.measurable, false, '100 negatives cannot measure FAR 1e-3')
  assert.equal(strict.tar, 2 / 3)
  const loose = tarAtFar(pairs, 0.01)
  assert.equal(loose.measurable, true)
  assert.equal(loose.tar, 1, 'one false accept allowed among 100 negatives')
})

test('cross-validated accuracy picks each fold threshold on the other folds', () => {
  const pairs = [same(0.9, 0), diff(0.1, 0), same(0.8, 1), diff(0.2, 1), same(0.3, 2), diff(0.25, 2)]
  const { mean } = crossValidatedAccuracy(pairs, 3)
  assert.ok(mean > 0.6 && mean < 1, `mean ${mean}`)
})
