/** Shapes of what the pipeline returns; shared by the worker, the server and the CLI. */
import type { Box, Point } from './vision/types.js'

/** Boxes and points are in pixels of the decoded (EXIF-oriented) image. */
export type { Box, Point }

export interface QualitySummary {
  /** Combined score in [0, 1]; see docs/models.md for the formula. */
  score: number
  /** Sub-scores in [0, 1]. */
  factors: Record<string, number>
  pose: { roll: number; yaw: number; pitch: number }
}

export interface AnalyzedFace {
  box: Box
  /** Detector confidence in [0, 1]. */
  score: number
  /** Five points in image pixels: left eye, right eye, nose tip, left and right mouth corner. */
  landmarks: Point[]
  quality: QualitySummary
  /** L2-normalised embedding. */
  embedding: Float32Array
  /** Passive liveness in [0, 1] (real-face probability), when asked for and a model is configured. */
  liveness?: number
  /** Mean open probability of the two eyes in [0, 1], likewise. */
  eyesOpen?: number
}

export interface StageTimings {
  decodeMs: number
  detectMs: number
  landmarksMs: number
  alignMs: number
  embedMs: number
  /** Liveness and eye models (0 when not asked for). */
  livenessMs: number
  totalMs: number
  /** Of totalMs, the time spent inside ONNX Runtime (every model the frame ran). */
  inferenceMs: number
}

export interface FrameAnalysis {
  width: number
  height: number
  faces: AnalyzedFace[]
  timings: StageTimings
}

export interface AnalyzeOptions {
  /** `all`: every plausible face (streams); `main`: only the most central large face (enrollment, eval). */
  mode: 'all' | 'main'
  maxFaces: number
  /** Also score liveness and eye openness per face (streams and recognition, not enrollment). */
  liveness?: boolean
}

/** What each worker receives at start. */
export interface PipelineWorkerData {
  modelsDir: string
  limits: { maxPixels: number; maxSide: number }
}
