/**
 * face-api's SSD MobileNetV1 post-processing (`SsdMobilenetv1.locateFaces`) for the ONNX model
 * built from its weights: boxes are decoded against the anchors inside the graph, so this is
 * thresholding, greedy NMS and un-padding.
 */
import { toPixels, type RelativeBox } from './tiny-face-decode.js'

/** The square input side of face-api's SSD MobileNetV1. */
export const SSD_MOBILENETV1_INPUT_SIZE = 512

export interface SsdDetection {
  score: number
  /** Relative to the original image (0..1), clipped to the padded square's [0, 1] first. */
  relativeBox: RelativeBox
  /** Original-image pixels. */
  box: RelativeBox
  index: number
}

export interface SsdDecodeOptions {
  imageWidth: number
  imageHeight: number
  inputSize?: number
  minConfidence?: number
  maxResults?: number
  iouThreshold?: number
}

function ssdIou(b: ArrayLike<number>, i: number, j: number): number {
  const v = (n: number, k: number): number => b[n * 4 + k] as number
  const yminI = Math.min(v(i, 0), v(i, 2))
  const xminI = Math.min(v(i, 1), v(i, 3))
  const ymaxI = Math.max(v(i, 0), v(i, 2))
  const xmaxI = Math.max(v(i, 1), v(i, 3))
  const yminJ = Math.min(v(j, 0), v(j, 2))
  const xminJ = Math.min(v(j, 1), v(j, 3))
  const ymaxJ = Math.max(v(j, 0), v(j, 2))
  const xmaxJ = Math.max(v(j, 1), v(j, 3))
  const areaI = (ymaxI - yminI) * (xmaxI - xminI)
  const areaJ = (ymaxJ - yminJ) * (xmaxJ - xminJ)
  if (areaI <= 0 || areaJ <= 0) return 0
  const inter =
    Math.max(Math.min(ymaxI, ymaxJ) - Math.max(yminI, yminJ), 0) *
    Math.max(Math.min(xmaxI, xmaxJ) - Math.max(xminI, xminJ), 0)
  return inter / (areaI + areaJ - inter)
}

/**
 * face-api `SsdMobilenetv1.locateFaces` post-processing for one image: `boxes` [5118 * 4] and
 * `scores` [5118] of one batch item. Greedy NMS (score > minConfidence 0.5, IoU 0.5, at most
 * maxResults 100), then boxes clipped to [0, 1] of the padded square and rescaled to the image.
 */
export function decodeSsdMobilenetv1(
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  options: SsdDecodeOptions,
): SsdDetection[] {
  const n = scores.length
  if (boxes.length !== n * 4) throw new Error(`ssd decode: ${boxes.length} box values for ${n} scores`)
  const inputSize = options.inputSize ?? SSD_MOBILENETV1_INPUT_SIZE
  const minConfidence = options.minConfidence ?? 0.5
  const maxResults = options.maxResults ?? 100
  const iouThreshold = options.iouThreshold ?? 0.5
  const { imageWidth, imageHeight } = options

  const candidates = Array.from({ length: n }, (_, i) => ({ score: scores[i] as number, index: i }))
    .filter((c) => c.score > minConfidence)
    .sort((a, b) => b.score - a.score)
  const selected: number[] = []
  const outputSize = Math.min(maxResults, n)
  for (const c of candidates) {
    if (selected.length >= outputSize) break
    let suppressed = false
    for (let j = selected.length - 1; j >= 0; --j) {
      const iou = ssdIou(boxes, c.index, selected[j] as number)
      if (iou === 0) continue
      if (iou > iouThreshold) {
        suppressed = true
        break
      }
    }
    if (!suppressed) selected.push(c.index)
  }

  const k = inputSize / Math.max(imageWidth, imageHeight)
  const padX = inputSize / Math.round(imageWidth * k)
  const padY = inputSize / Math.round(imageHeight * k)
  return selected.map((i) => {
    const top = Math.max(0, boxes[i * 4] as number) * padY
    const bottom = Math.min(1, boxes[i * 4 + 2] as number) * padY
    const left = Math.max(0, boxes[i * 4 + 1] as number) * padX
    const right = Math.min(1, boxes[i * 4 + 3] as number) * padX
    const relativeBox = { x: left, y: top, width: right - left, height: bottom - top }
    return {
      score: scores[i] as number,
      index: i,
      relativeBox,
      box: toPixels(relativeBox, imageWidth, imageHeight),
    }
  })
}
