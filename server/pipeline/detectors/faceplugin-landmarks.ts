/**
 * Pure pre- and post-processing of faceplugin's 68-point landmark net (fr_landmark.onnx, from the
 * package's lib/fr_landmark.js): the face box of the package's own detector, kept inside the image,
 * resized to 64x64 (bilinear), grey, pixel / 256, planar [1,1,64,64]; the output [1,136] holds x, y
 * in 0..1 of that box.
 *
 * The pipeline's boxes are framed differently from that detector's, so each is first reframed to
 * look like one. The package derives its five points from the 68 its own way (lib/fr_feature.js),
 * and the embedder scores best on them (docs/models.md).
 */
import {
  warpAffineBilinear,
  type Affine,
  type Box,
  type FivePoints,
  type Point,
  type RgbImage,
} from '../vision/index.js'

/**
 * A box reframed as the package's detector frames the same face: `width` and `height` times the
 * box's, its centre `lift` box widths higher.
 */
export interface FacepluginFrame {
  width: number
  height: number
  lift: number
}

/**
 * TinyFaceDetector and SSD boxes against the package detector's box of the same face (medians over
 * 500 LFW View 1 DevTest photos): narrower, taller and higher.
 */
export const FACEPLUGIN_DETECTION_FRAME: Readonly<FacepluginFrame> = Object.freeze({
  width: 0.755,
  height: 1.11,
  lift: 0.116,
})

/** The same for the pipeline's refined box (refinedBox in analyze.ts: a square around 68 points). */
export const FACEPLUGIN_REFINED_FRAME: Readonly<FacepluginFrame> = Object.freeze({
  width: 0.86,
  height: 1.2,
  lift: 0.094,
})

/**
 * The rectangle the net sees for `box`: reframed, shrunk (about its centre) to fit in the image,
 * then shifted inside it, as the package's alignLandmarkImage does.
 */
export function facepluginLandmarkRect(
  box: Box,
  frame: FacepluginFrame,
  imageWidth: number,
  imageHeight: number,
): Box {
  const fit = Math.min(
    1,
    (imageHeight - 1) / (box.height * frame.height),
    (imageWidth - 1) / (box.width * frame.width),
  )
  const width = box.width * frame.width * fit
  const height = box.height * frame.height * fit
  const left = box.x + box.width / 2 - width / 2
  const top = box.y + box.height / 2 - frame.lift * box.width - height / 2
  return {
    x: Math.min(Math.max(0, left), imageWidth - 1 - width),
    y: Math.min(Math.max(0, top), imageHeight - 1 - height),
    width,
    height,
  }
}

/** The net's input for `rect` of `image`: [size * size] luma / 256, bilinear, pixel centres. */
export function facepluginLandmarkInput(image: RgbImage, rect: Box, size: number): Float32Array {
  const sx = rect.width / size
  const sy = rect.height / size
  const affine: Affine = [sx, 0, rect.x + 0.5 * sx - 0.5, 0, sy, rect.y + 0.5 * sy - 0.5]
  const { data } = warpAffineBilinear(image, affine, size, size, { border: 'replicate' })
  const out = new Float32Array(size * size)
  for (let i = 0; i < out.length; i++) {
    const luma =
      0.299 * (data[i * 3] as number) +
      0.587 * (data[i * 3 + 1] as number) +
      0.114 * (data[i * 3 + 2] as number)
    out[i] = Math.round(luma) / 256
  }
  return out
}

/** The 136 output values (x, y in 0..1 of `rect`) as 68 points in image pixels. */
export function facepluginLandmarksToImage(raw: ArrayLike<number>, rect: Box): Point[] {
  if (raw.length !== 136) throw new Error(`landmarks: expected 136 values, got ${raw.length}`)
  const points: Point[] = []
  for (let i = 0; i < 68; i++) {
    points.push({
      x: rect.x + (raw[2 * i] as number) * rect.width,
      y: rect.y + (raw[2 * i + 1] as number) * rect.height,
    })
  }
  return points
}

function meanOf(points: readonly Point[], indices: readonly number[]): Point {
  let x = 0
  let y = 0
  for (const index of indices) {
    const point = points[index]
    if (point === undefined) throw new RangeError(`landmark ${index} is missing`)
    x += point.x
    y += point.y
  }
  return { x: x / indices.length, y: y / indices.length }
}

/**
 * The package's five points of its 68 (lib/fr_feature.js convert68pts5pts): each eye the mean of
 * its four upper and lower lid points (37, 38, 40, 41 and 43, 44, 46, 47; not the corners), the
 * nose tip 30, each mouth corner the mean of its outer and inner corner (48 and 60, 54 and 64).
 */
export function facepluginFivePoints(landmarks68: readonly Point[]): FivePoints {
  if (landmarks68.length !== 68) {
    throw new RangeError(`facepluginFivePoints: expected 68 landmarks, got ${landmarks68.length}`)
  }
  return [
    meanOf(landmarks68, [37, 38, 40, 41]),
    meanOf(landmarks68, [43, 44, 46, 47]),
    meanOf(landmarks68, [30]),
    meanOf(landmarks68, [48, 60]),
    meanOf(landmarks68, [54, 64]),
  ]
}
