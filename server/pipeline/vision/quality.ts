/*
 * Face quality: how much to trust an embedding made from this face.
 *
 * Measured on the central FACE_REGION of the aligned chip's luma Y (BT.601, 0..255):
 *   sharpness  = var(L) / (var(Y) + SHARPNESS_VARIANCE_FLOOR), L = 3x3 Laplacian [0 1 0; 1 -4 1; 0 1 0]
 *                of Y. Dividing by the variance of Y makes it measure how much of the face's
 *                detail is fine detail, so it does not rise with contrast or lighting.
 *   brightness = mean(Y) / 255
 *   contrast   = std(Y) / 255 (RMS contrast)
 * From the landmarks, in source pixels (eye centres E1, E2, nose tip N, mouth-corner midpoint M,
 * taken after rotating the eye line horizontal; u along it, v down from the eye midpoint):
 *   interOcular = |E2 - E1|, boxSide = sqrt(box.width * box.height)
 *   roll  = atan2(E2.y - E1.y, E2.x - E1.x)                      positive: image-right eye lower
 *   yaw   = atan2(u(N), NOSE_DEPTH_IOD * interOcular)              positive: nose towards image right
 *   pitch = atan2((FRONTAL_NOSE_RATIO * v(M) - v(N)) * EYE_MOUTH_OVER_NOSE_DEPTH, v(M))
 *                                                                  positive: face tilted up
 *   (yaw and pitch model the nose tip as standing NOSE_DEPTH_IOD inter-ocular distances in front
 *   of the eye/mouth plane; FRONTAL_NOSE_RATIO is v(N)/v(M) on dlib's mean face. They are rough.)
 * Factors, each in [0, 1], ramp(x, lo, hi) = clamp((x - lo) / (hi - lo), 0, 1):
 *   size       = ramp(interOcular, MIN_INTER_OCULAR_PX, GOOD_INTER_OCULAR_PX)
 *   sharpness  = ramp(sharpness, MIN_SHARPNESS, GOOD_SHARPNESS)
 *   brightness = ramp(brightness, DARKEST, DARK) * (1 - ramp(brightness, BRIGHT, BRIGHTEST))
 *   contrast   = ramp(contrast, MIN_CONTRAST, GOOD_CONTRAST)
 *   pose       = cone(yaw, MAX_YAW_DEG) * cone(pitch, MAX_PITCH_DEG) * cone(roll, MAX_ROLL_DEG),
 *                cone(a, max) = max(0, 1 - (a / max)^2)
 * score = size^0.25 * sharpness^0.25 * pose^0.25 * brightness^0.125 * contrast^0.125
 * A weighted geometric mean: any factor at 0 (a tiny, flat, black or profile face) makes the
 * score 0, whatever the others say; the weights sum to 1 so the score stays in [0, 1].
 */
import { toGray } from './image.js'
import { interOcularDistance, toFivePoints } from './landmarks.js'
import type { Box, Point, RgbImage } from './types.js'

/** Fraction of the chip cut off each side before measuring: keeps background and border out. */
export const FACE_REGION_MARGIN = 0.2
export const MIN_INTER_OCULAR_PX = 10
export const GOOD_INTER_OCULAR_PX = 40
export const SHARPNESS_VARIANCE_FLOOR = 25
// Calibrated on 150 LFW faces cut to 150 px: median 0.044, 5th percentile 0.018; the same faces
// blurred with a Gaussian of sigma 1 give a median of 0.023, sigma 2 give 0.009.
export const MIN_SHARPNESS = 0.005
export const GOOD_SHARPNESS = 0.04
export const DARKEST = 0.05
export const DARK = 0.25
export const BRIGHT = 0.75
export const BRIGHTEST = 0.95
// LFW faces: RMS contrast median 0.14, 5th percentile 0.09.
export const MIN_CONTRAST = 0.02
export const GOOD_CONTRAST = 0.06
export const MAX_YAW_DEG = 60
export const MAX_PITCH_DEG = 45
export const MAX_ROLL_DEG = 90
export const NOSE_DEPTH_IOD = 0.55
export const FRONTAL_NOSE_RATIO = 0.531
export const EYE_MOUTH_OVER_NOSE_DEPTH = 1.94
export const QUALITY_WEIGHTS = Object.freeze({
  size: 0.25,
  sharpness: 0.25,
  pose: 0.25,
  brightness: 0.125,
  contrast: 0.125,
})

export interface FacePose {
  /** Degrees; see the formula at the top of quality.ts for signs. */
  roll: number
  yaw: number
  pitch: number
}

export interface QualityFactors {
  size: number
  sharpness: number
  brightness: number
  contrast: number
  pose: number
}

export interface FaceQuality {
  /** Weighted geometric mean of `factors`, in [0, 1]. */
  score: number
  size: { interOcularPx: number; boxSidePx: number }
  /** Laplacian variance over luma variance (see quality.ts); higher is sharper. */
  sharpness: number
  /** Mean luma in [0, 1]. */
  brightness: number
  /** Standard deviation of luma in [0, 1]. */
  contrast: number
  pose: FacePose
  /** Each in [0, 1]. */
  factors: QualityFactors
}

/**
 * Scores one face: `chip` is the aligned chip (any framing that centres the face), `landmarks`
 * (5 or 68) and `box` are in source-image pixels.
 */
export function assessQuality(chip: RgbImage, landmarks: readonly Point[], box: Box): FaceQuality {
  const five = toFivePoints(landmarks)
  const interOcularPx = interOcularDistance(five)
  const boxSidePx = Math.sqrt(Math.max(0, box.width) * Math.max(0, box.height))
  const stats = chipStatistics(chip)
  const pose = estimatePose(landmarks)
  const factors: QualityFactors = {
    size: ramp(interOcularPx, MIN_INTER_OCULAR_PX, GOOD_INTER_OCULAR_PX),
    sharpness: ramp(stats.sharpness, MIN_SHARPNESS, GOOD_SHARPNESS),
    brightness: ramp(stats.brightness, DARKEST, DARK) * (1 - ramp(stats.brightness, BRIGHT, BRIGHTEST)),
    contrast: ramp(stats.contrast, MIN_CONTRAST, GOOD_CONTRAST),
    pose: cone(pose.yaw, MAX_YAW_DEG) * cone(pose.pitch, MAX_PITCH_DEG) * cone(pose.roll, MAX_ROLL_DEG),
  }
  let score = 1
  for (const name of Object.keys(QUALITY_WEIGHTS) as (keyof QualityFactors)[]) {
    score *= factors[name] ** QUALITY_WEIGHTS[name]
  }
  return {
    score: Number.isFinite(score) ? Math.min(1, Math.max(0, score)) : 0,
    size: { interOcularPx, boxSidePx },
    sharpness: stats.sharpness,
    brightness: stats.brightness,
    contrast: stats.contrast,
    pose,
    factors,
  }
}

/** Roll, yaw and pitch in degrees from 5 or 68 landmarks (formulas at the top of quality.ts). */
export function estimatePose(landmarks: readonly Point[]): FacePose {
  const [e1, e2, nose, mouth1, mouth2] = toFivePoints(landmarks)
  const dx = e2.x - e1.x
  const dy = e2.y - e1.y
  const iod = Math.hypot(dx, dy)
  const rollRad = Math.atan2(dy, dx)
  const cos = Math.cos(rollRad)
  const sin = Math.sin(rollRad)
  const mid = { x: (e1.x + e2.x) / 2, y: (e1.y + e2.y) / 2 }
  // Coordinates along (u) and across (v, downwards) the eye line, origin at the eye midpoint.
  const u = (p: Point) => (p.x - mid.x) * cos + (p.y - mid.y) * sin
  const v = (p: Point) => -(p.x - mid.x) * sin + (p.y - mid.y) * cos
  const mouth = { x: (mouth1.x + mouth2.x) / 2, y: (mouth1.y + mouth2.y) / 2 }
  const vNose = v(nose)
  const vMouth = v(mouth)
  const yaw = Math.atan2(u(nose), NOSE_DEPTH_IOD * iod)
  const pitch = Math.atan2((FRONTAL_NOSE_RATIO * vMouth - vNose) * EYE_MOUTH_OVER_NOSE_DEPTH, vMouth)
  return {
    roll: degrees(rollRad),
    yaw: degrees(yaw),
    pitch: Math.min(90, Math.max(-90, degrees(pitch))),
  }
}

/** Sharpness, brightness and contrast of the chip's central face region (see quality.ts). */
export function chipStatistics(chip: RgbImage): { sharpness: number; brightness: number; contrast: number } {
  const gray = toGray(chip)
  const { width, height, data } = gray
  const left = Math.max(1, Math.floor(width * FACE_REGION_MARGIN))
  const top = Math.max(1, Math.floor(height * FACE_REGION_MARGIN))
  const right = Math.min(width - 1, Math.ceil(width * (1 - FACE_REGION_MARGIN)))
  const bottom = Math.min(height - 1, Math.ceil(height * (1 - FACE_REGION_MARGIN)))
  let count = 0
  let sum = 0
  let sumSquares = 0
  let lapSum = 0
  let lapSquares = 0
  // left, top >= 1 and right, bottom <= size - 1: every neighbour read is inside the chip.
  for (let y = top; y < bottom; y++) {
    for (let i = y * width + left, end = y * width + right; i < end; i++) {
      const value = data[i] as number
      const laplacian =
        (data[i - 1] as number) +
        (data[i + 1] as number) +
        (data[i - width] as number) +
        (data[i + width] as number) -
        4 * value
      count++
      sum += value
      sumSquares += value * value
      lapSum += laplacian
      lapSquares += laplacian * laplacian
    }
  }
  if (count === 0) return { sharpness: 0, brightness: 0, contrast: 0 }
  const mean = sum / count
  const variance = Math.max(0, sumSquares / count - mean * mean)
  const lapMean = lapSum / count
  const lapVariance = Math.max(0, lapSquares / count - lapMean * lapMean)
  return {
    sharpness: lapVariance / (variance + SHARPNESS_VARIANCE_FLOOR),
    brightness: mean / 255,
    contrast: Math.sqrt(variance) / 255,
  }
}

function ramp(value: number, low: number, high: number): number {
  if (!Number.isFinite(value)) return 0
  return Math.min(1, Math.max(0, (value - low) / (high - low)))
}

function cone(angle: number, max: number): number {
  if (!Number.isFinite(angle)) return 0
  return Math.max(0, 1 - (angle / max) ** 2)
}

function degrees(radians: number): number {
  return (radians * 180) / Math.PI
}
