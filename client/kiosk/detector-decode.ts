/**
 * The browser side of face-api's TinyFaceDetector (the project's ONNX conversion): how a video
 * frame becomes the network's input and how its output grid becomes face boxes. The kiosk's own
 * short copy of the math documented in server/pipeline/detectors/tiny-face-decode.ts (client code
 * may not import the server). Pure.
 *
 * Input: the frame padded with zeros at the bottom/right to a square, resized to size x size,
 * raw RGB 0..255 as float32 NHWC [1, size, size, 3] (the graph subtracts the mean itself).
 * Output `grid` [1, size/32, size/32, 25]: per cell and each of 5 anchors tx, ty, tw, th, score
 * logit; cx = (col + sigmoid(tx)) / cols, w = exp(tw) * anchorW / cols (likewise y, h), relative
 * to the padded square; then greedy NMS at IoU 0.4.
 */
import { iou, type Box } from './geometry.js'
import type { Detection } from './tracker.js'

export const ANCHORS: readonly (readonly [number, number])[] = [
  [1.603231, 2.094468],
  [6.041143, 7.080126],
  [2.882459, 3.518061],
  [4.266906, 5.178857],
  [9.041765, 10.66308],
]
export const SCORE_THRESHOLD = 0.5
export const NMS_IOU = 0.4
const VALUES_PER_ANCHOR = 5

/** Where the frame lands in the square network input: top-left, scaled by `scale`. */
export interface Letterbox {
  /** Input side (224 or 416). */
  size: number
  /** Network pixels per frame pixel. */
  scale: number
  /** The frame's size once scaled: draw it at (0, 0) with this size, the rest stays black. */
  width: number
  height: number
  frameWidth: number
  frameHeight: number
}

export function letterbox(frameWidth: number, frameHeight: number, size: number): Letterbox {
  if (!(frameWidth > 0 && frameHeight > 0)) throw new RangeError('frame size must be positive')
  const scale = size / Math.max(frameWidth, frameHeight)
  return {
    size,
    scale,
    width: Math.max(1, Math.round(frameWidth * scale)),
    height: Math.max(1, Math.round(frameHeight * scale)),
    frameWidth,
    frameHeight,
  }
}

/** RGBA bytes of the size x size input canvas to the network's float32 NHWC RGB tensor data. */
export function toInputTensor(rgba: ArrayLike<number>, out?: Float32Array): Float32Array {
  const pixels = Math.floor(rgba.length / 4)
  const data = out ?? new Float32Array(pixels * 3)
  if (data.length !== pixels * 3) throw new RangeError('tensor buffer does not match the image')
  for (let p = 0, o = 0, i = 0; p < pixels; p++, i += 4) {
    data[o++] = rgba[i] as number
    data[o++] = rgba[i + 1] as number
    data[o++] = rgba[i + 2] as number
  }
  return data
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x))

/**
 * Face boxes in frame pixels, best first, from the grid of one frame (`[cells, cells, 25]`
 * row-major: the output tensor's data for batch 1).
 */
export function decodeGrid(
  grid: ArrayLike<number>,
  box: Letterbox,
  scoreThreshold = SCORE_THRESHOLD,
): Detection[] {
  const cells = box.size / 32
  if (grid.length !== cells * cells * ANCHORS.length * VALUES_PER_ANCHOR) {
    throw new RangeError(`detector grid has ${grid.length} values, expected ${cells}x${cells}x25`)
  }
  // Relative to the padded square; the frame was drawn into width x height of its size x size.
  const toFrameX = (box.size * box.frameWidth) / box.width
  const toFrameY = (box.size * box.frameHeight) / box.height
  const found: Detection[] = []
  for (let row = 0; row < cells; row++) {
    for (let col = 0; col < cells; col++) {
      for (let a = 0; a < ANCHORS.length; a++) {
        const base = ((row * cells + col) * ANCHORS.length + a) * VALUES_PER_ANCHOR
        const score = sigmoid(grid[base + 4] as number)
        if (!(score > scoreThreshold)) continue
        const [anchorW, anchorH] = ANCHORS[a] as readonly [number, number]
        const cx = (col + sigmoid(grid[base] as number)) / cells
        const cy = (row + sigmoid(grid[base + 1] as number)) / cells
        const w = (Math.exp(grid[base + 2] as number) * anchorW) / cells
        const h = (Math.exp(grid[base + 3] as number) * anchorH) / cells
        found.push({
          score,
          box: {
            x: (cx - w / 2) * toFrameX,
            y: (cy - h / 2) * toFrameY,
            width: w * toFrameX,
            height: h * toFrameY,
          },
        })
      }
    }
  }
  return nonMaxSuppression(found, NMS_IOU)
}

/** Greedy NMS: best score first, dropping boxes that overlap a kept one by more than `maxIou`. */
export function nonMaxSuppression(detections: readonly Detection[], maxIou: number): Detection[] {
  const kept: Detection[] = []
  for (const d of [...detections].sort((a, b) => b.score - a.score)) {
    if (kept.every((k) => iou(k.box, d.box) <= maxIou)) kept.push(d)
  }
  return kept
}

/** Clips a box to the frame (detector boxes may run slightly past its edges). */
export function clipBox(b: Box, frameWidth: number, frameHeight: number): Box {
  const x = Math.min(Math.max(b.x, 0), frameWidth)
  const y = Math.min(Math.max(b.y, 0), frameHeight)
  return {
    x,
    y,
    width: Math.max(0, Math.min(b.x + b.width, frameWidth) - x),
    height: Math.max(0, Math.min(b.y + b.height, frameHeight) - y),
  }
}

/** Mean luma (BT.601, 0..1) of a box (frame pixels) in the input canvas's RGBA bytes. */
export function regionLuma(rgba: ArrayLike<number>, box: Letterbox, region: Box): number {
  const x0 = Math.max(0, Math.floor(region.x * (box.width / box.frameWidth)))
  const y0 = Math.max(0, Math.floor(region.y * (box.height / box.frameHeight)))
  const x1 = Math.min(box.width, Math.ceil((region.x + region.width) * (box.width / box.frameWidth)))
  const y1 = Math.min(box.height, Math.ceil((region.y + region.height) * (box.height / box.frameHeight)))
  let sum = 0
  let count = 0
  for (let y = y0; y < y1; y++) {
    for (let x = x0, i = (y * box.size + x0) * 4; x < x1; x++, i += 4) {
      sum += 0.299 * (rgba[i] as number) + 0.587 * (rgba[i + 1] as number) + 0.114 * (rgba[i + 2] as number)
      count++
    }
  }
  return count === 0 ? 0 : sum / count / 255
}
