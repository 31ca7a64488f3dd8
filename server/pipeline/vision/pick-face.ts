import { hasFiniteCoordinates, interOcularDistance, toFivePoints } from './landmarks.js'
import type { Box, Point } from './types.js'

/** A detection as the detector (or the landmark model after it) reports it, in image pixels. */
export interface FaceCandidate {
  box: Box
  /** 5 points (FivePoints order) or 68 iBUG points. */
  landmarks: readonly Point[]
}

export type FaceRejection =
  | 'landmarks-invalid'
  | 'eyes-not-left-to-right'
  | 'eyes-too-close'
  | 'eyes-too-far'
  | 'roll-too-large'
  | 'mouth-above-eyes'
  | 'landmarks-outside-box'

export interface PickFaceOptions {
  /** Smallest inter-ocular distance, as a fraction of the box width. Default 0.2. */
  minEyeDistanceRatio?: number
  /** Largest inter-ocular distance, as a fraction of the box width. Default 0.8. */
  maxEyeDistanceRatio?: number
  /** Largest roll of the eye line, in degrees. Default 60. */
  maxRollDeg?: number
  /** How far outside the box (fraction of its side) a landmark may sit. Default 0.25. */
  landmarkMargin?: number
  /** How much being off-centre costs in the ranking, 0 (nothing) to 1. Default 0.5. */
  centerWeight?: number
}

/** The defaults of PickFaceOptions. */
export const PICK_FACE_DEFAULTS: Readonly<Required<PickFaceOptions>> = Object.freeze({
  minEyeDistanceRatio: 0.2,
  maxEyeDistanceRatio: 0.8,
  maxRollDeg: 60,
  landmarkMargin: 0.25,
  centerWeight: 0.5,
})

export interface PickedFace<T> {
  face: T
  /** Position in the input array. */
  index: number
  /** relativeSize * (1 - centerWeight * offCenter): the main face ranks highest. */
  rank: number
  /** sqrt(box area) over that of the largest plausible face, in (0, 1]. */
  relativeSize: number
  /** Distance of the box centre from the image centre over half the image diagonal, in [0, 1]. */
  offCenter: number
}

export interface PickedFaces<T> {
  /** Plausible faces, best first: `faces[0]` is the main face. */
  faces: PickedFace<T>[]
  rejected: { index: number; reason: FaceRejection }[]
}

/**
 * Why a detection cannot be a real upright face, or undefined when it is plausible: landmarks
 * that are not finite or not 5/68 points, eyes not left-to-right in the image, inter-ocular
 * distance outside [min, max] x box width, roll beyond maxRollDeg, mouth not below the eye line,
 * or a landmark well outside the box.
 */
export function checkFace(
  candidate: FaceCandidate,
  options: PickFaceOptions = {},
): FaceRejection | undefined {
  const settings = { ...PICK_FACE_DEFAULTS, ...options }
  const { box, landmarks } = candidate
  if ((landmarks.length !== 5 && landmarks.length !== 68) || !hasFiniteCoordinates(landmarks)) {
    return 'landmarks-invalid'
  }
  if (!(box.width > 0 && box.height > 0) || !Number.isFinite(box.x) || !Number.isFinite(box.y)) {
    return 'landmarks-invalid'
  }
  const five = toFivePoints(landmarks)
  const [e1, e2, , mouth1, mouth2] = five
  if (!(e2.x > e1.x)) return 'eyes-not-left-to-right'
  const iod = interOcularDistance(five)
  if (iod < settings.minEyeDistanceRatio * box.width) return 'eyes-too-close'
  if (iod > settings.maxEyeDistanceRatio * box.width) return 'eyes-too-far'
  const roll = (Math.atan2(e2.y - e1.y, e2.x - e1.x) * 180) / Math.PI
  if (Math.abs(roll) > settings.maxRollDeg) return 'roll-too-large'
  // Signed distance below the eye line (positive = towards the chin).
  const below = (p: Point) => ((p.y - e1.y) * (e2.x - e1.x) - (p.x - e1.x) * (e2.y - e1.y)) / iod
  if (!(below({ x: (mouth1.x + mouth2.x) / 2, y: (mouth1.y + mouth2.y) / 2 }) > 0)) return 'mouth-above-eyes'
  const marginX = settings.landmarkMargin * box.width
  const marginY = settings.landmarkMargin * box.height
  for (const p of landmarks) {
    if (
      p.x < box.x - marginX ||
      p.x > box.x + box.width + marginX ||
      p.y < box.y - marginY ||
      p.y > box.y + box.height + marginY
    ) {
      return 'landmarks-outside-box'
    }
  }
  return undefined
}

/**
 * Keeps the plausible detections (see checkFace) and ranks them by size and centrality, so
 * `faces[0]` is the face a kiosk user means: the big one in the middle.
 */
export function pickFaces<T extends FaceCandidate>(
  candidates: readonly T[],
  image: { width: number; height: number },
  options: PickFaceOptions = {},
): PickedFaces<T> {
  const centerWeight = options.centerWeight ?? PICK_FACE_DEFAULTS.centerWeight
  const rejected: PickedFaces<T>['rejected'] = []
  const plausible: { face: T; index: number; side: number; offCenter: number }[] = []
  const halfDiagonal = Math.hypot(image.width, image.height) / 2
  candidates.forEach((face, index) => {
    const reason = checkFace(face, options)
    if (reason !== undefined) {
      rejected.push({ index, reason })
      return
    }
    const { box } = face
    const dx = box.x + box.width / 2 - image.width / 2
    const dy = box.y + box.height / 2 - image.height / 2
    const offCenter = halfDiagonal > 0 ? Math.min(1, Math.hypot(dx, dy) / halfDiagonal) : 0
    plausible.push({ face, index, side: Math.sqrt(box.width * box.height), offCenter })
  })
  const largest = Math.max(0, ...plausible.map((p) => p.side))
  const faces = plausible.map(({ face, index, side, offCenter }) => {
    const relativeSize = largest > 0 ? side / largest : 0
    return { face, index, rank: relativeSize * (1 - centerWeight * offCenter), relativeSize, offCenter }
  })
  faces.sort((a, b) => b.rank - a.rank || a.index - b.index)
  return { faces, rejected }
}
