/**
 * Pure decoding of the TinyFaceDetector output grid into face boxes, reproducing face-api's
 * `TinyYolov2Base.extractBoxes` + `detect` + `nonMaxSuppression` (src/tinyYolov2, src/ops).
 *
 * Input to the network: the image is padded with zeros at the bottom or right to a square (NOT
 * centred) and resized bilinearly to inputSize x inputSize (see TinyFaceDetector preprocessing).
 *
 * Grid layout: [rows, cols, 5 * 5] per image (NHWC, batch item sliced off); channel
 * `anchor * 5 + k` holds, for k = 0..4: tx, ty, tw, th, objectness logit.
 *   score  = sigmoid(objectness)                  (kept when score > scoreThreshold, default 0.5)
 *   cx     = (col + sigmoid(tx)) / cols * corrX   cy = (row + sigmoid(ty)) / rows * corrY
 *   w      = exp(tw) * anchorW / cols * corrX     h  = exp(th) * anchorH / rows * corrY
 *   box    = [cx - w/2, cy - h/2, w, h]           (relative to the original image, 0..1)
 *   corrX  = S / round(imageW * k), corrY = S / round(imageH * k), k = inputSize / max(imageW, imageH),
 *            S = max(round(imageW * k), round(imageH * k))  (undoes the bottom/right padding)
 * Anchors (in grid cells): (1.603231, 2.094468), (6.041143, 7.080126), (2.882459, 3.518061),
 *                          (4.266906, 5.178857), (9.041765, 10.66308).
 * Then greedy NMS (IoU threshold 0.4) in descending score order. Boxes are not clipped.
 */

import { nonMaxSuppression } from '../vision/nms.js'

export const TINY_FACE_ANCHORS: readonly (readonly [number, number])[] = [
  [1.603231, 2.094468],
  [6.041143, 7.080126],
  [2.882459, 3.518061],
  [4.266906, 5.178857],
  [9.041765, 10.66308],
]
export const TINY_FACE_IOU_THRESHOLD = 0.4
export const TINY_FACE_SCORE_THRESHOLD = 0.5

export interface RelativeBox {
  /** Left, top, width, height as fractions of the original image's width / height. */
  x: number
  y: number
  width: number
  height: number
}

export interface TinyFaceDetection {
  score: number
  /** Box relative to the original image (0..1, may slightly exceed it). */
  relativeBox: RelativeBox
  /** Same box in original-image pixels. */
  box: RelativeBox
  row: number
  col: number
  anchor: number
}

export interface TinyFaceDecodeOptions {
  /** Square network input size the grid was computed for (e.g. 416). */
  inputSize: number
  /** Original image size in pixels (before pad-to-square and resize). */
  imageWidth: number
  imageHeight: number
  /** Grid rows/cols; default inputSize / 32. */
  rows?: number
  cols?: number
  scoreThreshold?: number
  iouThreshold?: number
  anchors?: readonly (readonly [number, number])[]
}

/** A box relative to the image (0..1) in the image's pixels. */
export function toPixels(box: RelativeBox, imageWidth: number, imageHeight: number): RelativeBox {
  return {
    x: box.x * imageWidth,
    y: box.y * imageHeight,
    width: box.width * imageWidth,
    height: box.height * imageHeight,
  }
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x))

/**
 * Decodes one image's grid (`[rows, cols, anchors * 5]`, row-major, e.g. the first batch item of
 * the "grid" output) into detections after thresholding and NMS, highest score first.
 */
export function decodeTinyFaceDetectorGrid(
  grid: ArrayLike<number>,
  options: TinyFaceDecodeOptions,
): TinyFaceDetection[] {
  const { inputSize, imageWidth, imageHeight } = options
  const rows = options.rows ?? inputSize / 32
  const cols = options.cols ?? inputSize / 32
  const anchors = options.anchors ?? TINY_FACE_ANCHORS
  const scoreThreshold = options.scoreThreshold ?? TINY_FACE_SCORE_THRESHOLD
  const iouThreshold = options.iouThreshold ?? TINY_FACE_IOU_THRESHOLD
  const enc = 5
  if (grid.length !== rows * cols * anchors.length * enc) {
    throw new Error(
      `tiny face decode: grid has ${grid.length} values, expected ${rows}x${cols}x${anchors.length * enc}`,
    )
  }
  if (!(imageWidth > 0 && imageHeight > 0)) throw new Error('tiny face decode: image size must be positive')

  const k = inputSize / Math.max(imageWidth, imageHeight)
  const reshapedW = Math.round(imageWidth * k)
  const reshapedH = Math.round(imageHeight * k)
  const squared = Math.max(reshapedW, reshapedH)
  const corrX = squared / reshapedW
  const corrY = squared / reshapedH

  const found: TinyFaceDetection[] = []
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      for (let a = 0; a < anchors.length; a++) {
        const base = ((row * cols + col) * anchors.length + a) * enc
        const score = sigmoid(grid[base + 4] as number)
        if (scoreThreshold && !(score > scoreThreshold)) continue
        const [aw, ah] = anchors[a] as readonly [number, number]
        const cx = ((col + sigmoid(grid[base] as number)) / cols) * corrX
        const cy = ((row + sigmoid(grid[base + 1] as number)) / rows) * corrY
        const w = ((Math.exp(grid[base + 2] as number) * aw) / cols) * corrX
        const h = ((Math.exp(grid[base + 3] as number) * ah) / rows) * corrY
        const relativeBox = { x: cx - w / 2, y: cy - h / 2, width: w, height: h }
        found.push({
          score,
          relativeBox,
          box: toPixels(relativeBox, imageWidth, imageHeight),
          row,
          col,
          anchor: a,
        })
      }
    }
  }
  // face-api's greedy NMS: highest score first, drop boxes overlapping a kept one above the IoU.
  const keep = nonMaxSuppression(
    found.map((d) => d.relativeBox),
    found.map((d) => d.score),
    { iouThreshold, scoreThreshold: 0, maxOutput: found.length },
  )
  return keep.map((i) => found[i] as TinyFaceDetection)
}
