import type { Box } from './types.js'

export interface NmsOptions {
  /** A box is dropped when its IoU with an already kept box is above this. */
  iouThreshold: number
  /** Boxes scoring below this are never kept. */
  scoreThreshold: number
  /** At most this many boxes are kept. */
  maxOutput: number
}

/** Intersection over union of two boxes; 0 when either has no area. */
export function iou(a: Box, b: Box): number {
  const left = Math.max(a.x, b.x)
  const top = Math.max(a.y, b.y)
  const right = Math.min(a.x + a.width, b.x + b.width)
  const bottom = Math.min(a.y + a.height, b.y + b.height)
  const intersection = Math.max(0, right - left) * Math.max(0, bottom - top)
  if (intersection <= 0) return 0
  const union = a.width * a.height + b.width * b.height - intersection
  return union > 0 ? intersection / union : 0
}

/**
 * Greedy hard non-maximum suppression. Returns the indices of the kept boxes, highest score
 * first (equal scores keep input order). Boxes with a non-finite score or coordinate are skipped.
 */
export function nonMaxSuppression(
  boxes: readonly Box[],
  scores: ArrayLike<number>,
  options: NmsOptions,
): number[] {
  if (boxes.length !== scores.length) {
    throw new RangeError(`nonMaxSuppression: ${boxes.length} boxes but ${scores.length} scores`)
  }
  const { iouThreshold, scoreThreshold, maxOutput } = options
  if (!(iouThreshold >= 0 && iouThreshold <= 1)) {
    throw new RangeError(`nonMaxSuppression: iouThreshold must be in [0, 1], got ${iouThreshold}`)
  }
  if (!Number.isSafeInteger(maxOutput) || maxOutput < 0) {
    throw new RangeError(`nonMaxSuppression: maxOutput must be a non-negative integer, got ${maxOutput}`)
  }
  const candidates: number[] = []
  for (let i = 0; i < boxes.length; i++) {
    const score = scores[i] ?? Number.NaN
    const box = boxes[i]
    if (box === undefined || !Number.isFinite(score) || score < scoreThreshold || !isFiniteBox(box)) continue
    candidates.push(i)
  }
  // Array.prototype.sort is stable, so ties keep input order.
  candidates.sort((i, j) => (scores[j] ?? 0) - (scores[i] ?? 0))
  const kept: number[] = []
  for (const index of candidates) {
    if (kept.length >= maxOutput) break
    const box = boxes[index]
    if (box === undefined) continue
    if (kept.every((other) => iou(box, boxes[other] ?? box) <= iouThreshold)) kept.push(index)
  }
  return kept
}

function isFiniteBox(box: Box): boolean {
  return (
    Number.isFinite(box.x) &&
    Number.isFinite(box.y) &&
    Number.isFinite(box.width) &&
    Number.isFinite(box.height)
  )
}
