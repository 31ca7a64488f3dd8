/**
 * Crops and scores of the presentation-attack signals: passive liveness on a context crop around
 * the face, and eye openness on a crop per eye. Pure: the models arrive as runners.
 *
 * The crop rules follow how faceplugin's models were fed by their own code, checked on our data
 * (docs/models.md, "Liveness"): the liveness net sees a square of 2.7x a face box framed like
 * faceplugin's detector (1.19x the side of ours, centre 0.11 of its width higher), shrunk to fit
 * the image and shifted inside it, resized to 128 px by plain bilinear sampling (no
 * antialiasing: the net looks for screen and print texture that smoothing removes), BGR. The eye
 * net sees a grey square of 1.6x the eye's corner distance around the eye's centre, 0.1 of that
 * distance lower (the net is sensitive to the vertical framing), at 24 px.
 */
import type { Affine, Box, Point, RgbImage } from './vision/index.js'
import { toFloatTensorNCHW, warpAffineBilinear } from './vision/index.js'

export const LIVENESS_BOX_SCALE = 1.19
export const LIVENESS_BOX_LIFT = 0.11
export const LIVENESS_CONTEXT = 2.7
export const EYE_PADDING = 1.6
export const EYE_DROP = 0.1

export interface Rect {
  x: number
  y: number
  width: number
  height: number
}

/** The liveness net's crop of the image for a face box (faceplugin's rule, on its box framing). */
export function livenessRect(box: Box, imageWidth: number, imageHeight: number): Rect {
  const side = box.width * LIVENESS_BOX_SCALE
  const cx = box.x + box.width / 2
  const cy = box.y + box.height / 2 - LIVENESS_BOX_LIFT * box.width
  const bw = Math.max(1, Math.trunc(side))
  const bx = Math.trunc(cx - side / 2)
  const by = Math.trunc(cy - side / 2)
  const w = imageWidth
  const h = imageHeight
  const scale = Math.min((h - 1) / bw, (w - 1) / bw, LIVENESS_CONTEXT)
  const size = bw * scale
  let left = bx + bw / 2 - size / 2
  let top = by + bw / 2 - size / 2
  let right = left + size
  let bottom = top + size
  if (left < 0) {
    right -= left
    left = 0
  }
  if (top < 0) {
    bottom -= top
    top = 0
  }
  if (right > w - 1) {
    left -= right - (w - 1)
    right = w - 1
  }
  if (bottom > h - 1) {
    top -= bottom - (h - 1)
    bottom = h - 1
  }
  const x = Math.max(Math.trunc(left), 0)
  const y = Math.max(Math.trunc(top), 0)
  return {
    x,
    y,
    width: Math.max(1, Math.min(Math.trunc(right - left), w - 1 - x + 1)),
    height: Math.max(1, Math.min(Math.trunc(bottom - top), h - 1 - y + 1)),
  }
}

/** `rect` of `image` resized to size x size by bilinear sampling (pixel centres, no smoothing). */
export function sampleRect(image: RgbImage, rect: Rect, size: number): RgbImage {
  const sx = rect.width / size
  const sy = rect.height / size
  const affine: Affine = [sx, 0, rect.x + 0.5 * sx - 0.5, 0, sy, rect.y + 0.5 * sy - 0.5]
  return warpAffineBilinear(image, affine, size, size, { border: 'replicate' })
}

/** The liveness net's input for a face: [1, 3, size, size] BGR 0..255. */
export function livenessInput(image: RgbImage, box: Box, size: number): Float32Array {
  const crop = sampleRect(image, livenessRect(box, image.width, image.height), size)
  return toFloatTensorNCHW(crop, { channelOrder: 'bgr' })
}

/** iBUG 68-point index of the first of each eye's six contour points: right eye, left eye. */
const EYE_FIRST = [36, 42] as const

/** The eye net's crop of each eye from 68 landmarks (undefined when the points are missing). */
export function eyeRects(landmarks68: readonly Point[]): Rect[] {
  return EYE_FIRST.map((first) => {
    let cx = 0
    let cy = 0
    for (let i = first; i < first + 6; i++) {
      cx += (landmarks68[i]?.x ?? 0) / 6
      cy += (landmarks68[i]?.y ?? 0) / 6
    }
    const a = landmarks68[first] ?? { x: 0, y: 0 }
    const b = landmarks68[first + 3] ?? { x: 0, y: 0 }
    const width = Math.hypot(b.x - a.x, b.y - a.y)
    const side = Math.max(2, Math.round(EYE_PADDING * width))
    return {
      x: Math.round(cx - side / 2),
      y: Math.round(cy + EYE_DROP * width - side / 2),
      width: side,
      height: side,
    }
  })
}

/** The eye net's input for one eye: [1, 1, size, size] luma / 255. */
export function eyeInput(image: RgbImage, rect: Rect, size: number): Float32Array {
  const crop = sampleRect(image, rect, size)
  const out = new Float32Array(size * size)
  const { data } = crop
  for (let i = 0; i < out.length; i++) {
    const luma = 0.299 * (data[i * 3] ?? 0) + 0.587 * (data[i * 3 + 1] ?? 0) + 0.114 * (data[i * 3 + 2] ?? 0)
    out[i] = Math.round(luma) / 255
  }
  return out
}

/** Softmax probability of class `index` of a logit row. */
export function softmaxAt(logits: ArrayLike<number>, index: number): number {
  let max = -Infinity
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] ?? -Infinity)
  let sum = 0
  for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] ?? -Infinity) - max)
  return Math.exp((logits[index] ?? -Infinity) - max) / sum
}
