import type { Point } from './types.js'

/**
 * Five landmarks in the order ArcFace, RetinaFace and MTCNN use: the eye with the smaller x in an
 * upright face (the subject's right eye), the other eye, the nose tip, then the mouth corner with
 * the smaller x and the other one.
 */
export type FivePoints = readonly [Point, Point, Point, Point, Point]

// iBUG 300-W 68-point indices (what dlib and face-api's 68-point nets emit).
const RIGHT_EYE_68 = [36, 37, 38, 39, 40, 41] as const
const LEFT_EYE_68 = [42, 43, 44, 45, 46, 47] as const
const NOSE_TIP_68 = 30
const MOUTH_RIGHT_68 = 48
const MOUTH_LEFT_68 = 54

/**
 * The five points of a 5- or 68-point landmark set (68: eye centres are the means of the six
 * points around each eye, nose tip is point 30, mouth corners are 48 and 54). Throws a RangeError
 * for any other count.
 */
export function toFivePoints(landmarks: readonly Point[]): FivePoints {
  if (landmarks.length === 5) return landmarks as unknown as FivePoints
  if (landmarks.length !== 68) {
    throw new RangeError(`toFivePoints: expected 5 or 68 landmarks, got ${landmarks.length}`)
  }
  return [
    meanOf(landmarks, RIGHT_EYE_68),
    meanOf(landmarks, LEFT_EYE_68),
    at(landmarks, NOSE_TIP_68),
    at(landmarks, MOUTH_RIGHT_68),
    at(landmarks, MOUTH_LEFT_68),
  ]
}

/** Distance between the two eye centres. */
export function interOcularDistance(five: FivePoints): number {
  return Math.hypot(five[1].x - five[0].x, five[1].y - five[0].y)
}

/** True when every coordinate is a finite number. */
export function hasFiniteCoordinates(points: readonly Point[]): boolean {
  return points.every((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
}

function at(points: readonly Point[], index: number): Point {
  const point = points[index]
  if (point === undefined) throw new RangeError(`landmark ${index} is missing`)
  return { x: point.x, y: point.y }
}

function meanOf(points: readonly Point[], indices: readonly number[]): Point {
  let x = 0
  let y = 0
  for (const index of indices) {
    const point = at(points, index)
    x += point.x
    y += point.y
  }
  return { x: x / indices.length, y: y / indices.length }
}
