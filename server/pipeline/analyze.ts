/**
 * One frame through the face models: decode, detect, 68 landmarks, plausibility, face chip,
 * quality, embed. Pure orchestration: models arrive as runners, so this file never imports
 * onnxruntime (only the worker does).
 */
import { decodeSsdMobilenetv1, SSD_MOBILENETV1_INPUT_SIZE } from './detectors/ssd-decode.js'
import { decodeTinyFaceDetectorGrid } from './detectors/tiny-face-decode.js'
import {
  FACEPLUGIN_DETECTION_FRAME,
  FACEPLUGIN_REFINED_FRAME,
  facepluginFivePoints,
  facepluginLandmarkInput,
  facepluginLandmarkRect,
  facepluginLandmarksToImage,
} from './detectors/faceplugin-landmarks.js'
import { landmarksToImage } from './detectors/landmarks68-decode.js'
import { composeEmbedding, type EmbeddingLayout } from './embedding-layout.js'
import { eyeInput, eyeRects, livenessInput, softmaxAt } from './liveness.js'
import type { AnalyzeOptions, AnalyzedFace, FrameAnalysis, PipelineWorkerData } from './types.js'
import {
  arcFaceTransform,
  assessQuality,
  checkFace,
  decodeImage,
  extractChip,
  faceChipTransform,
  cropPadSquareTensor,
  halve,
  letterboxTensor,
  pickFaces,
  toFivePoints,
  toFloatTensorNCHW,
  toFloatTensorNHWC,
  type Box,
  type FaceChip,
  type FaceChipOptions,
  type FivePoints,
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
  detector: TinyDetector
  /** The same detector at a smaller input, for small frames in `all` mode (kiosk crops). */
  smallDetector?: TinyDetector
  /** Optional second detector tried when the first finds no plausible face (face-api SSD). */
  fallbackDetector?: { run: ModelRunner; input: string; boxes: string; scores: string }
  /**
   * 68-point landmarks, output [N,136] in 0..1 of the crop. `faceapi` (the default): input
   * [N,112,112,3] raw RGB of the box padded square; `faceplugin`: [1,1,64,64] grey / 256 of the
   * box reframed as that package's detector frames faces, and the package's five points.
   */
  landmarks: {
    run: ModelRunner
    input: string
    output: string
    inputSize: number
    framing?: LandmarkFraming
  }
  /** dlib ResNet: input [N,150,150,3] raw RGB dlib chips, output [N,128]. */
  embedder: EmbedderModel
  /** Optional second embedder (faceres: [N,224,224,3] raw RGB), fused per `layout`. */
  secondaryEmbedder?: EmbedderModel
  /** How the embedders' outputs make one embedding (embedding-layout.ts). */
  layout: EmbeddingLayout
  /** Passive liveness (faceplugin): [1,3,S,S] BGR 0..255 context crop -> logits, class 0 = real. */
  liveness?: { run: ModelRunner; input: string; output: string; inputSize: number }
  /** Eye state (faceplugin): [1,1,S,S] grey / 255 eye crop -> logits, class 1 = open. */
  eyes?: { run: ModelRunner; input: string; output: string; inputSize: number }
}

export type LandmarkFraming = 'faceapi' | 'faceplugin'

export interface TinyDetector {
  run: ModelRunner
  input: string
  output: string
  inputSize: number
}

export interface EmbedderModel {
  run: ModelRunner
  input: string
  output: string
  /** Side of the square input, in pixels. */
  chipSize: number
  /**
   * Where the crop sits on dlib's mean face (face-models.ts chipFraming), or `arcface`: the five
   * points onto the ArcFace template (insightface's norm_crop).
   */
  framing: Pick<FaceChipOptions, 'padding' | 'square'> | { template: 'arcface' }
  /** Input = pixel * scale + offset (manifest preprocessing); raw 0..255 RGB NHWC when absent. */
  tensor?: { scale: number; offset: number; channels: 'RGB' | 'BGR'; layout?: 'NHWC' | 'NCHW' }
  /** Faces per run when the graph fixes its batch size (1); any number when absent. */
  batch?: number
}

/**
 * Detector scores are low on some real faces (LFW: at 416 px face-api's 0.5 finds nothing in 15% of
 * images, 0.1 in 1%), and plausibility of the 68 landmarks separates faces from clutter better
 * than the score does. So candidates are taken from MIN_DETECTION_SCORE up, the main face (the
 * largest, most central plausible one) is kept from there, and every other face in the frame
 * needs SECONDARY_FACE_MIN_SCORE.
 */
export const MIN_DETECTION_SCORE = 0.1
export const SECONDARY_FACE_MIN_SCORE = 0.5
/** Sides (fractions of the shorter image side) of the centred squares tried when nothing is detected. */
const CENTRE_GUESS_SIDES = [0.45, 0.6, 0.75]
/** The detector score reported for a face found by the centred guess: below any detection. */
const CENTRE_GUESS_SCORE = 0.01

/**
 * Frames whose longer side is at most this (kiosk crops of ~2x the face, at most ~320 px) are
 * searched by the small detector in `all` mode: the 416 px detector would only upsample them.
 */
export const SMALL_FRAME_MAX_SIDE = 480

/** Below this main-face score the fallback detector is tried too (LFW: 13% of images, +0.6 points). */
export const RETRY_BELOW_SCORE = 0.5

interface Detection {
  box: Box
  score: number
}

interface Candidate extends Detection {
  box: Box
  landmarks68: Point[]
  landmarks: readonly Point[]
  /** The five points the embedder aligns on, as the landmark model's convention derives them. */
  five: FivePoints
}

const now = (): number => performance.now()

/**
 * Buffers one worker reuses from frame to frame: the detector inputs (2 MB at 416 px, 3 MB for
 * the 512 px fallback), which would otherwise be allocated, zeroed and collected on every frame.
 * Only one frame at a time uses them: `analyzeFrame` marks them busy, and a frame that finds them
 * busy (two frames analysed concurrently, which the worker never does) allocates its own.
 */
export interface FrameBuffers {
  busy: boolean
  /** A tensor of `length` values whose previous contents are garbage; every value gets written. */
  detectorInput(length: number): Float32Array
}

export function createFrameBuffers(): FrameBuffers {
  const inputs = new Map<number, Float32Array>()
  return {
    busy: false,
    detectorInput(length) {
      let buffer = inputs.get(length)
      if (buffer === undefined) {
        buffer = new Float32Array(length)
        inputs.set(length, buffer)
      }
      return buffer
    },
  }
}

function stack(images: RgbImage[], tensor: EmbedderModel['tensor']): TensorData {
  const first = images[0]
  if (first === undefined) throw new Error('stack: no images')
  const per = first.width * first.height * 3
  const data = new Float32Array(per * images.length)
  const planar = tensor?.layout === 'NCHW'
  const raw =
    tensor === undefined ||
    (tensor.scale === 1 && tensor.offset === 0 && tensor.channels === 'RGB' && !planar)
  const options = raw
    ? { channelOrder: 'rgb' as const }
    : {
        channelOrder: tensor.channels === 'BGR' ? ('bgr' as const) : ('rgb' as const),
        scale: tensor.scale,
        mean: [
          -tensor.offset / tensor.scale,
          -tensor.offset / tensor.scale,
          -tensor.offset / tensor.scale,
        ] as const,
      }
  images.forEach((image, i) => {
    data.set(planar ? toFloatTensorNCHW(image, options) : toFloatTensorNHWC(image, options), i * per)
  })
  return {
    data,
    dims: planar
      ? [images.length, 3, first.height, first.width]
      : [images.length, first.height, first.width, 3],
  }
}

/** The similarity that frames a face for `embedder` (face-models.ts chipFraming). */
function embedderChip(face: { landmarks68: Point[]; five: FivePoints }, embedder: EmbedderModel): FaceChip {
  if ('template' in embedder.framing) return arcFaceTransform(face.five, embedder.chipSize)
  return faceChipTransform(face.landmarks68, { size: embedder.chipSize, ...embedder.framing })
}

/** Crops each face as `embedder` wants it and returns its raw output rows. */
async function embedFaces(
  image: RgbImage,
  faces: readonly { landmarks68: Point[]; five: FivePoints }[],
  embedder: EmbedderModel,
  timings: { alignMs: number; embedMs: number },
): Promise<{ chips: RgbImage[]; rows: Float32Array[] }> {
  let t = now()
  const chips = faces.map((face) => {
    const chip = embedderChip(face, embedder)
    return extractChip(image, chip.chipToImage, chip.size, chip.size)
  })
  timings.alignMs += now() - t
  t = now()
  // A graph with a fixed batch size runs once per group of that many faces.
  const group = embedder.batch ?? chips.length
  const rows: Float32Array[] = []
  for (let start = 0; start < chips.length; start += group) {
    const part = chips.slice(start, start + group)
    const outputs = await embedder.run({ [embedder.input]: stack(part, embedder.tensor) })
    const descriptors = output(outputs, embedder.output)
    const dim = descriptors.dims.at(-1) ?? descriptors.data.length / part.length
    part.forEach((_, i) => rows.push(descriptors.data.slice(i * dim, (i + 1) * dim)))
  }
  timings.embedMs += now() - t
  return { chips, rows }
}

function output(outputs: Record<string, TensorData>, name: string): TensorData {
  const tensor = outputs[name]
  if (tensor === undefined) throw new Error(`model output '${name}' missing`)
  return tensor
}

/**
 * A square detector input, padded at the right and bottom as face-api does. Large photos are
 * first halved (box filter) until at most 2x the input, so the bilinear step does not alias.
 */
function detectorInput(
  image: RgbImage,
  size: number,
  buffers: FrameBuffers | undefined,
): { tensor: TensorData; source: RgbImage } {
  let source = image
  while (Math.max(source.width, source.height) >= 2 * size && Math.min(source.width, source.height) >= 2) {
    source = halve(source)
  }
  const data = letterboxTensor(source, size, buffers?.detectorInput(size * size * 3))
  return { tensor: { data, dims: [1, size, size, 3] }, source }
}

/** Boxes decoded against a halved source, back in the image's pixels. */
function rescale(detections: { box: Box; score: number }[], source: RgbImage, image: RgbImage): Detection[] {
  const sx = image.width / source.width
  const sy = image.height / source.height
  return detections.map(({ box, score }) => ({
    box: { x: box.x * sx, y: box.y * sy, width: box.width * sx, height: box.height * sy },
    score,
  }))
}

async function detectTiny(
  image: RgbImage,
  detector: TinyDetector,
  buffers: FrameBuffers | undefined,
): Promise<Detection[]> {
  const { tensor, source } = detectorInput(image, detector.inputSize, buffers)
  const outputs = await detector.run({ [detector.input]: tensor })
  // The decoder undoes face-api's pad-to-square from the source size.
  const found = decodeTinyFaceDetectorGrid(output(outputs, detector.output).data, {
    inputSize: detector.inputSize,
    imageWidth: source.width,
    imageHeight: source.height,
    scoreThreshold: MIN_DETECTION_SCORE,
  })
  return rescale(found, source, image)
}

async function detectSsd(
  image: RgbImage,
  models: FaceModels,
  buffers: FrameBuffers | undefined,
): Promise<Detection[]> {
  const ssd = models.fallbackDetector
  if (ssd === undefined) return []
  const { tensor, source } = detectorInput(image, SSD_MOBILENETV1_INPUT_SIZE, buffers)
  const outputs = await ssd.run({ [ssd.input]: tensor })
  const found = decodeSsdMobilenetv1(output(outputs, ssd.boxes).data, output(outputs, ssd.scores).data, {
    imageWidth: source.width,
    imageHeight: source.height,
    minConfidence: MIN_DETECTION_SCORE,
  })
  return rescale(found, source, image)
}

/** face-api's face crop: the box rounded and clipped to the image. */
function cropRect(box: Box, image: RgbImage): Box {
  const x = Math.max(0, Math.round(box.x))
  const y = Math.max(0, Math.round(box.y))
  const right = Math.min(image.width, Math.round(box.x + box.width))
  const bottom = Math.min(image.height, Math.round(box.y + box.height))
  return { x, y, width: Math.max(1, right - x), height: Math.max(1, bottom - y) }
}

/**
 * faceplugin's net, one face per run (its graph fixes the batch to 1), on each box reframed by
 * `frame` (detector boxes and refined boxes frame faces differently).
 */
async function locateFaceplugin(
  image: RgbImage,
  detections: Detection[],
  models: FaceModels,
  frame: typeof FACEPLUGIN_DETECTION_FRAME,
): Promise<Candidate[]> {
  const { landmarks } = models
  const size = landmarks.inputSize
  const candidates: Candidate[] = []
  for (const detection of detections) {
    const rect = facepluginLandmarkRect(detection.box, frame, image.width, image.height)
    const data = facepluginLandmarkInput(image, rect, size)
    const outputs = await landmarks.run({ [landmarks.input]: { data, dims: [1, 1, size, size] } })
    const points = facepluginLandmarksToImage(output(outputs, landmarks.output).data.subarray(0, 136), rect)
    candidates.push({
      ...detection,
      landmarks68: points,
      landmarks: points,
      five: facepluginFivePoints(points),
    })
  }
  return candidates
}

/** Landmarks of each detection; `refined` when the boxes come from refinedBox. */
async function locateLandmarks(
  image: RgbImage,
  detections: Detection[],
  models: FaceModels,
  refined = false,
): Promise<Candidate[]> {
  const { landmarks } = models
  if (landmarks.framing === 'faceplugin') {
    const frame = refined ? FACEPLUGIN_REFINED_FRAME : FACEPLUGIN_DETECTION_FRAME
    return locateFaceplugin(image, detections, models, frame)
  }
  const size = landmarks.inputSize
  const rects = detections.map((d) => cropRect(d.box, image))
  // The batch is written in place, one crop after the other: no 8-bit crop per face.
  const per = size * size * 3
  const batch = new Float32Array(per * rects.length)
  rects.forEach((rect, i) => cropPadSquareTensor(image, rect, size, batch, i * per))
  const input: TensorData = { data: batch, dims: [rects.length, size, size, 3] }
  const outputs = await landmarks.run({ [landmarks.input]: input })
  const raw = output(outputs, landmarks.output).data
  return detections.map((detection, i) => {
    const rect = rects[i] ?? detection.box
    const points = landmarksToImage(raw.subarray(i * 136, (i + 1) * 136), rect, size)
    return { ...detection, landmarks68: points, landmarks: points, five: toFivePoints(points) }
  })
}

/**
 * The landmark net is sensitive to how its crop frames the face, and detector boxes vary (a
 * low-score box can sit half off the face). A second pass on a square box derived from the first
 * landmarks (their bounding box, 1.1x, nudged up 5%) frames every face the same way: +0.5 points
 * on LFW View 1 DevTest.
 */
export const REFINE_BOX_SCALE = 1.1
export const REFINE_BOX_LIFT = 0.05

function refinedBox(points: readonly Point[]): Box {
  const xs = points.map((p) => p.x)
  const ys = points.map((p) => p.y)
  const left = Math.min(...xs)
  const right = Math.max(...xs)
  const top = Math.min(...ys)
  const bottom = Math.max(...ys)
  const side = Math.max(right - left, bottom - top) * REFINE_BOX_SCALE
  const cx = (left + right) / 2
  const cy = (top + bottom) / 2 - REFINE_BOX_LIFT * side
  return { x: cx - side / 2, y: cy - side / 2, width: side, height: side }
}

/** Liveness and eye-openness scores of each face, for the models the pipeline has. */
async function livenessSignals(
  image: RgbImage,
  faces: readonly { box: Box; landmarks68: Point[] }[],
  models: FaceModels,
  timings: { livenessMs: number },
): Promise<{ liveness?: number; eyesOpen?: number }[]> {
  const t = now()
  const out: { liveness?: number; eyesOpen?: number }[] = []
  for (const face of faces) {
    const signal: { liveness?: number; eyesOpen?: number } = {}
    const { liveness, eyes } = models
    if (liveness !== undefined) {
      const size = liveness.inputSize
      const data = livenessInput(image, face.box, size)
      const logits = output(
        await liveness.run({ [liveness.input]: { data, dims: [1, 3, size, size] } }),
        liveness.output,
      )
      signal.liveness = round4(softmaxAt(logits.data, 0))
    }
    if (eyes !== undefined) {
      const size = eyes.inputSize
      let open = 0
      const rects = eyeRects(face.landmarks68)
      for (const rect of rects) {
        const data = eyeInput(image, rect, size)
        const logits = output(
          await eyes.run({ [eyes.input]: { data, dims: [1, 1, size, size] } }),
          eyes.output,
        )
        open += softmaxAt(logits.data, 1) / rects.length
      }
      signal.eyesOpen = round4(open)
    }
    out.push(signal)
  }
  timings.livenessMs += now() - t
  return out
}

function round4(value: number): number {
  return Math.round(value * 1e4) / 1e4
}

function round2(value: number): number {
  return Math.round(value * 100) / 100
}

async function facesFrom(
  image: RgbImage,
  detections: Detection[],
  models: FaceModels,
  options: AnalyzeOptions,
  timings: { landmarksMs: number; alignMs: number; embedMs: number; livenessMs: number },
): Promise<AnalyzedFace[]> {
  if (detections.length === 0) return []
  const t = now()
  // Landmarks for the most confident detections only: bounded work per frame.
  const considered = detections.slice(0, Math.max(options.maxFaces * 2, 4))
  const candidates = await locateLandmarks(image, considered, models)
  const plausible = pickFaces(candidates, image).faces
  const kept = (
    options.mode === 'main'
      ? plausible.slice(0, 1)
      : plausible.filter((face, rank) => rank === 0 || face.face.score >= SECONDARY_FACE_MIN_SCORE)
  ).slice(0, options.maxFaces)
  const refinedBoxes = kept.map(({ face }) => refinedBox(face.landmarks68))
  const refined =
    kept.length === 0
      ? []
      : await locateLandmarks(
          image,
          kept.map(({ face }, i) => ({ box: refinedBoxes[i] ?? face.box, score: face.score })),
          models,
          true,
        )
  // Take the second pass (and its box, which frames the face better than a detector box does)
  // where its landmarks are plausible; otherwise keep the first.
  const picked = kept.map(({ face }, i) => {
    const second = refined[i]
    if (second === undefined || checkFace(second) !== undefined) return face
    return second
  })
  timings.landmarksMs += now() - t

  if (picked.length === 0) return []
  const signals = options.liveness === true ? await livenessSignals(image, picked, models, timings) : []
  const first = await embedFaces(image, picked, models.embedder, timings)
  const second =
    models.secondaryEmbedder === undefined
      ? undefined
      : await embedFaces(image, picked, models.secondaryEmbedder, timings)

  return picked.map((face, i) => {
    const chip = first.chips[i] as RgbImage
    const rows = [first.rows[i] as Float32Array]
    if (second !== undefined) rows.push(second.rows[i] as Float32Array)
    const quality = assessQuality(chip, face.landmarks68, face.box)
    const signal = signals[i]
    return {
      ...(signal?.liveness === undefined ? {} : { liveness: signal.liveness }),
      ...(signal?.eyesOpen === undefined ? {} : { eyesOpen: signal.eyesOpen }),
      box: {
        x: round2(face.box.x),
        y: round2(face.box.y),
        width: round2(face.box.width),
        height: round2(face.box.height),
      },
      score: face.score,
      landmarks: face.five.map((p) => ({ x: round2(p.x), y: round2(p.y) })),
      quality: { score: quality.score, factors: { ...quality.factors }, pose: { ...quality.pose } },
      embedding: composeEmbedding(rows, models.layout),
    }
  })
}

/**
 * Analyzes one encoded image. Rejects with catalogue errors for bad images. `buffers` (one set
 * per worker, from `createFrameBuffers`) saves the large per-frame allocations.
 */
export async function analyzeFrame(
  bytes: Uint8Array,
  models: FaceModels,
  options: AnalyzeOptions,
  limits: PipelineWorkerData['limits'],
  buffers?: FrameBuffers,
): Promise<FrameAnalysis> {
  const own = buffers !== undefined && !buffers.busy ? buffers : undefined
  if (own !== undefined) own.busy = true
  try {
    return await analyzeWith(bytes, models, options, limits, own)
  } finally {
    if (own !== undefined) own.busy = false
  }
}

async function analyzeWith(
  bytes: Uint8Array,
  models: FaceModels,
  options: AnalyzeOptions,
  limits: PipelineWorkerData['limits'],
  buffers: FrameBuffers | undefined,
): Promise<FrameAnalysis> {
  const started = now()
  const image = await decodeImage(bytes, limits)
  const decoded = now()
  const timings = { landmarksMs: 0, alignMs: 0, embedMs: 0, livenessMs: 0 }
  let detectMs = 0

  // Detectors from the cheapest up: the next runs only while the main face scores below
  // RETRY_BELOW_SCORE, and its faces are kept when its main face scores higher. Small frames start
  // with the 224 px detector (the 416 px one would only upsample them); small stream frames (`all`
  // mode: kiosk crops) never run the SSD (its 70 ms cost more than waiting for the next frame).
  const small =
    models.smallDetector !== undefined && Math.max(image.width, image.height) <= SMALL_FRAME_MAX_SIDE
  const steps: ((b: FrameBuffers | undefined) => Promise<Detection[]>)[] = [
    ...(small && models.smallDetector !== undefined
      ? [(b: FrameBuffers | undefined) => detectTiny(image, models.smallDetector as TinyDetector, b)]
      : []),
    (b) => detectTiny(image, models.detector, b),
    ...((options.mode === 'main' || !small) && models.fallbackDetector !== undefined
      ? [(b: FrameBuffers | undefined) => detectSsd(image, models, b)]
      : []),
  ]
  let faces: AnalyzedFace[] = []
  let mainScore = 0
  for (const step of steps) {
    if (faces.length > 0 && mainScore >= RETRY_BELOW_SCORE) break
    const t = now()
    const detections = await step(buffers)
    detectMs += now() - t
    const found = await facesFrom(image, detections, models, options, timings)
    const score = found[0]?.score ?? 0
    if (faces.length === 0 || score > mainScore) {
      faces = found
      mainScore = score
    }
  }
  if (faces.length === 0 && options.mode === 'main') {
    // Neither detector found a plausible face. A photo of one person is usually centred on them:
    // try the landmark net on centred squares, kept only if the landmarks pass the same
    // plausibility check as any detection (LFW View 1: 10 of 4,992 images reached this point before
    // the 224 px detector was tried first; then only George_Clooney/2, a near-profile, which the
    // faceplugin landmark net now finds from a detection).
    const side = Math.min(image.width, image.height)
    const guesses = CENTRE_GUESS_SIDES.map((fraction) => ({
      box: {
        x: (image.width - fraction * side) / 2,
        y: (image.height - fraction * side) / 2,
        width: fraction * side,
        height: fraction * side,
      },
      score: CENTRE_GUESS_SCORE,
    }))
    faces = await facesFrom(image, guesses, models, options, timings)
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
      livenessMs: timings.livenessMs,
      totalMs: total,
      inferenceMs: 0, // filled in by the worker, which owns the sessions
    },
  }
}
