/**
 * One frame through the face models: decode, detect, 68 landmarks, plausibility, dlib face chip,
 * quality, embed. Pure orchestration: models arrive as runners, so this file never imports
 * onnxruntime (only the worker does).
 */
import { decodeSsdMobilenetv1, SSD_MOBILENETV1_INPUT_SIZE } from './detectors/ssd-decode.js'
import { decodeTinyFaceDetectorGrid } from './detectors/tiny-face-decode.js'
import { landmarksToImage } from './detectors/landmarks68-decode.js'
import type { AnalyzeOptions, AnalyzedFace, FrameAnalysis, PipelineWorkerData } from './types.js'
import {
  assessQuality,
  decodeImage,
  extractChip,
  faceChipTransform,
  letterbox,
  pickFaces,
  toFivePoints,
  toFloatTensorNHWC,
  warpAffineBilinear,
  type Box,
  type Point,
  type RgbImage,
} from './vision/index.js'

export interface TensorData {
  data: Float32Array
  dims: readonly number[]
}

/** One ONNX session, seen from here: named float tensors in, named float tensors out. */
export type ModelRunner = (feeds: Record<string, TensorData>) => Promise<Record<string, TensorData>>

export interface FaceModels {
  /** face-api TinyFaceDetector: input [N,S,S,3] raw RGB, output grid [N,S/32,S/32,25]. */
  detector: { run: ModelRunner; input: string; output: string; inputSize: number }
  /** Optional second detector tried when the first finds no plausible face (face-api SSD). */
  fallbackDetector?: { run: ModelRunner; input: string; boxes: string; scores: string }
  /** face-api 68-point landmarks: input [N,112,112,3] raw RGB, output [N,136] in 0..1. */
  landmarks: { run: ModelRunner; input: string; output: string; inputSize: number }
  /** dlib ResNet: input [N,150,150,3] raw RGB dlib chips, output [N,128]. */
  embedder: { run: ModelRunner; input: string; output: string; chipSize: number; padding: number }
}

/**
 * Detector scores are low on some real faces (LFW: face-api's 0.5 misses 15% of faces at 416 px,
 * 0.1 misses none), and plausibility of the 68 landmarks separates faces from clutter better
 * than the score does. So candidates are taken from MIN_DETECTION_SCORE up, the main face (the
 * largest, most central plausible one) is kept from there, and every other face in the frame
 * needs SECONDARY_FACE_MIN_SCORE.
 */
export const MIN_DETECTION_SCORE = 0.1
export const SECONDARY_FACE_MIN_SCORE = 0.5

interface Detection {
  box: Box
  score: number
}

interface Candidate extends Detection {
  box: Box
  landmarks68: Point[]
  landmarks: readonly Point[]
}

const now = (): number => performance.now()

function stack(images: RgbImage[]): TensorData {
  const first = images[0]
  if (first === undefined) throw new Error('stack: no images')
  const per = first.width * first.height * 3
  const data = new Float32Array(per * images.length)
  images.forEach((image, i) => {
    data.set(toFloatTensorNHWC(image, { channelOrder: 'rgb' }), i * per)
  })
  return { data, dims: [images.length, first.height, first.width, 3] }
}

function output(outputs: Record<string, TensorData>, name: string): TensorData {
  const tensor = outputs[name]
  if (tensor === undefined) throw new Error(`model output '${name}' missing`)
  return tensor
}

async function detectTiny(image: RgbImage, models: FaceModels): Promise<Detection[]> {
  const { detector } = models
  // face-api pads bottom/right to a square, then resizes: the decoder undoes exactly that.
  const boxed = letterbox(image, detector.inputSize, { align: 'top-left' })
  const outputs = await detector.run({ [detector.input]: stack([boxed.image]) })
  return decodeTinyFaceDetectorGrid(output(outputs, detector.output).data, {
    inputSize: detector.inputSize,
    imageWidth: image.width,
    imageHeight: image.height,
    scoreThreshold: MIN_DETECTION_SCORE,
  }).map((d) => ({ box: d.box, score: d.score }))
}

async function detectSsd(image: RgbImage, models: FaceModels): Promise<Detection[]> {
  const ssd = models.fallbackDetector
  if (ssd === undefined) return []
  const boxed = letterbox(image, SSD_MOBILENETV1_INPUT_SIZE, { align: 'top-left' })
  const outputs = await ssd.run({ [ssd.input]: stack([boxed.image]) })
  return decodeSsdMobilenetv1(output(outputs, ssd.boxes).data, output(outputs, ssd.scores).data, {
    imageWidth: image.width,
    imageHeight: image.height,
    minConfidence: MIN_DETECTION_SCORE,
  }).map((d) => ({ box: d.box, score: d.score }))
}

/** face-api's face crop: the box rounded and clipped to the image. */
function cropRect(box: Box, image: RgbImage): Box {
  const x = Math.max(0, Math.round(box.x))
  const y = Math.max(0, Math.round(box.y))
  const right = Math.min(image.width, Math.round(box.x + box.width))
  const bottom = Math.min(image.height, Math.round(box.y + box.height))
  return { x, y, width: Math.max(1, right - x), height: Math.max(1, bottom - y) }
}

async function locateLandmarks(
  image: RgbImage,
  detections: Detection[],
  models: FaceModels,
): Promise<Candidate[]> {
  const { landmarks } = models
  const size = landmarks.inputSize
  const rects = detections.map((d) => cropRect(d.box, image))
  const inputs = rects.map((rect) => {
    const crop = warpAffineBilinear(image, [1, 0, rect.x, 0, 1, rect.y], rect.width, rect.height)
    return letterbox(crop, size, { align: 'center' }).image
  })
  const outputs = await landmarks.run({ [landmarks.input]: stack(inputs) })
  const raw = output(outputs, landmarks.output).data
  return detections.map((detection, i) => {
    const rect = rects[i] ?? detection.box
    const points = landmarksToImage(raw.subarray(i * 136, (i + 1) * 136), rect, size)
    return { ...detection, landmarks68: points, landmarks: points }
  })
}

function normalise(vector: Float32Array): Float32Array {
  let sum = 0
  for (const value of vector) sum += value * value
  const norm = Math.sqrt(sum) || 1
  const out = new Float32Array(vector.length)
  for (let i = 0; i < vector.length; i++) out[i] = (vector[i] ?? 0) / norm
  return out
}

function round2(value: number): number {
  return Math.round(value * 100) / 100
}

async function facesFrom(
  image: RgbImage,
  detections: Detection[],
  models: FaceModels,
  options: AnalyzeOptions,
  timings: { landmarksMs: number; alignMs: number; embedMs: number },
): Promise<AnalyzedFace[]> {
  if (detections.length === 0) return []
  let t = now()
  // Landmarks for the most confident detections only: bounded work per frame.
  const considered = detections.slice(0, Math.max(options.maxFaces * 2, 4))
  const candidates = await locateLandmarks(image, considered, models)
  timings.landmarksMs += now() - t

  t = now()
  const plausible = pickFaces(candidates, image).faces
  const picked = (
    options.mode === 'main'
      ? plausible.slice(0, 1)
      : plausible.filter((face, rank) => rank === 0 || face.face.score >= SECONDARY_FACE_MIN_SCORE)
  ).slice(0, options.maxFaces)
  const chips = picked.map(({ face }) => {
    const chip = faceChipTransform(face.landmarks68, {
      size: models.embedder.chipSize,
      padding: models.embedder.padding,
    })
    return extractChip(image, chip.chipToImage, chip.size, chip.size)
  })
  timings.alignMs += now() - t
  if (chips.length === 0) return []

  t = now()
  const outputs = await models.embedder.run({ [models.embedder.input]: stack(chips) })
  const descriptors = output(outputs, models.embedder.output)
  const dim = descriptors.dims[1] ?? descriptors.data.length / chips.length
  timings.embedMs += now() - t

  return picked.map(({ face }, i) => {
    const chip = chips[i] as RgbImage
    const quality = assessQuality(chip, face.landmarks68, face.box)
    return {
      box: {
        x: round2(face.box.x),
        y: round2(face.box.y),
        width: round2(face.box.width),
        height: round2(face.box.height),
      },
      score: face.score,
      landmarks: toFivePoints(face.landmarks68).map((p) => ({ x: round2(p.x), y: round2(p.y) })),
      quality: { score: quality.score, factors: { ...quality.factors }, pose: { ...quality.pose } },
      embedding: normalise(descriptors.data.subarray(i * dim, (i + 1) * dim)),
    }
  })
}

/** Analyzes one encoded image. Rejects with catalogue errors for bad images. */
export async function analyzeFrame(
  bytes: Uint8Array,
  models: FaceModels,
  options: AnalyzeOptions,
  limits: PipelineWorkerData['limits'],
): Promise<FrameAnalysis> {
  const started = now()
  const image = await decodeImage(bytes, limits)
  const decoded = now()
  const timings = { landmarksMs: 0, alignMs: 0, embedMs: 0 }
  let detectMs = 0

  let t = now()
  let detections = await detectTiny(image, models)
  detectMs += now() - t
  let faces = await facesFrom(image, detections, models, options, timings)
  if (faces.length === 0 && models.fallbackDetector !== undefined) {
    // The small detector misses some faces or returns broken landmarks: try the larger one.
    t = now()
    detections = await detectSsd(image, models)
    detectMs += now() - t
    faces = await facesFrom(image, detections, models, options, timings)
  }
  const total = now() - started
  return {
    width: image.width,
    height: image.height,
    faces,
    timings: {
      decodeMs: decoded - started,
      detectMs,
      landmarksMs: timings.landmarksMs,
      alignMs: timings.alignMs,
      embedMs: timings.embedMs,
      totalMs: total,
    },
  }
}
