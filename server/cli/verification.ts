/**
 * Face-verification metrics over scored pairs, as reported by `facewire eval lfw`.
 * A pair whose score is NaN (no face found in one of its images) is always counted wrong: in
 * accuracy it is neither accepted nor rejected correctly, in ROC terms a same-person pair scores
 * -Infinity (never accepted) and a different-person pair +Infinity (always accepted).
 */

export interface LfwPair {
  same: boolean
  a: { name: string; index: number }
  b: { name: string; index: number }
  /** 0-based fold for View 2 files; 0 for View 1. */
  fold: number
}

export interface ParsedPairs {
  format: 'view1' | 'view2'
  folds: number
  pairs: LfwPair[]
}

export interface ScoredPair {
  same: boolean
  score: number
  fold: number
}

/** Parses an LFW pairs file: View 1 (first line: count) or View 2 (first line: `folds\tn`). */
export function parsePairs(text: string): ParsedPairs {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '')
  const header = (lines.shift() ?? '').trim().split(/\s+/).map(Number)
  const view2 = header.length === 2
  const folds = view2 ? (header[0] ?? 0) : 1
  const perHalf = view2 ? (header[1] ?? 0) : (header[0] ?? 0)
  const pairs: LfwPair[] = lines.map((line, i) => {
    const f = line.trim().split(/\t| +/)
    const fold = view2 ? Math.floor(i / (2 * perHalf)) : 0
    if (f.length === 3) {
      const [name = '', i1 = '', i2 = ''] = f
      return { same: true, a: { name, index: Number(i1) }, b: { name, index: Number(i2) }, fold }
    }
    if (f.length === 4) {
      const [n1 = '', i1 = '', n2 = '', i2 = ''] = f
      return { same: false, a: { name: n1, index: Number(i1) }, b: { name: n2, index: Number(i2) }, fold }
    }
    throw new Error(`pairs line ${i + 2}: expected 3 or 4 fields, got ${f.length}`)
  })
  const expected = view2 ? folds * perHalf * 2 : perHalf * 2
  if (pairs.length !== expected) {
    throw new Error(`pairs file declares ${expected} pairs but has ${pairs.length}`)
  }
  return { format: view2 ? 'view2' : 'view1', folds, pairs }
}

export function isCorrect(pair: ScoredPair, threshold: number): boolean {
  if (Number.isNaN(pair.score)) return false
  return pair.same ? pair.score >= threshold : pair.score < threshold
}

export function accuracyAt(pairs: readonly ScoredPair[], threshold: number): number {
  if (pairs.length === 0) return 0
  let correct = 0
  for (const pair of pairs) if (isCorrect(pair, threshold)) correct++
  return correct / pairs.length
}

/** The threshold that maximises accuracy (midpoint between neighbouring scores). */
export function bestThreshold(pairs: readonly ScoredPair[]): { threshold: number; accuracy: number } {
  const scores = [...new Set(pairs.map((p) => p.score).filter((s) => !Number.isNaN(s)))].sort((a, b) => a - b)
  const candidates = [-Infinity]
  for (let i = 0; i < scores.length; i++) {
    const here = scores[i] ?? 0
    const next = scores[i + 1]
    candidates.push(next === undefined ? here + 1e-6 : (here + next) / 2)
  }
  let best = { threshold: 0, accuracy: -1 }
  for (const threshold of candidates) {
    const accuracy = accuracyAt(pairs, threshold)
    if (accuracy > best.accuracy) best = { threshold, accuracy }
  }
  return best
}

function rocScore(pair: ScoredPair): number {
  if (!Number.isNaN(pair.score)) return pair.score
  return pair.same ? -Infinity : Infinity
}

/** Area under the ROC curve (Mann-Whitney U, ties count half). */
export function rocAuc(pairs: readonly ScoredPair[]): number {
  const positives = pairs.filter((p) => p.same).map(rocScore)
  const negatives = pairs.filter((p) => !p.same).map(rocScore)
  if (positives.length === 0 || negatives.length === 0) return NaN
  const all = [
    ...positives.map((score) => ({ score, positive: true })),
    ...negatives.map((score) => ({ score, positive: false })),
  ].sort((a, b) => a.score - b.score)
  // Average ranks for ties.
  let rankSumPositive = 0
  for (let i = 0; i < all.length;) {
    let j = i
    while (j + 1 < all.length && all[j + 1]?.score === all[i]?.score) j++
    const rank = (i + j) / 2 + 1
    for (let k = i; k <= j; k++) if (all[k]?.positive === true) rankSumPositive += rank
    i = j + 1
  }
  const u = rankSumPositive - (positives.length * (positives.length + 1)) / 2
  return u / (positives.length * negatives.length)
}

/**
 * True-accept rate at the strictest threshold whose false-accept rate is at most `far`.
 * With n different-person pairs, FAR below 1/n cannot be measured: `measurable` says so.
 */
export function tarAtFar(
  pairs: readonly ScoredPair[],
  far: number,
): { tar: number; threshold: number; measurable: boolean } {
  const negatives = pairs
    .filter((p) => !p.same)
    .map(rocScore)
    .sort((a, b) => b - a)
  const positives = pairs.filter((p) => p.same).map(rocScore)
  const allowed = Math.floor(far * negatives.length)
  // Accept scores strictly above the (allowed+1)-th highest negative.
  const bound = negatives[allowed] ?? -Infinity
  const threshold = Number.isFinite(bound) ? bound + 1e-9 : bound
  const tar = positives.filter((s) => s >= threshold).length / Math.max(1, positives.length)
  return { tar, threshold, measurable: negatives.length * far >= 1 }
}

/** Standard LFW View 2 protocol: threshold chosen on 9 folds, accuracy measured on the 10th. */
export function crossValidatedAccuracy(
  pairs: readonly ScoredPair[],
  folds: number,
): { mean: number; std: number } {
  const accuracies: number[] = []
  for (let fold = 0; fold < folds; fold++) {
    const train = pairs.filter((p) => p.fold !== fold)
    const test = pairs.filter((p) => p.fold === fold)
    accuracies.push(accuracyAt(test, bestThreshold(train).threshold))
  }
  const mean = accuracies.reduce((a, b) => a + b, 0) / Math.max(1, accuracies.length)
  const variance = accuracies.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, accuracies.length)
  return { mean, std: Math.sqrt(variance) }
}
