/**
 * Enrollment at the kiosk: which crops become the person's photos, and what to tell them when the
 * server refuses one. Photos are the crops the server has just analysed as one clear face of good
 * quality (its answer's `quality`, which includes pose: a frontal face), all from the same track,
 * taken at least `minGapMs` apart so they differ a little. Pure.
 */
import type { ErrorCode, WireError } from '../../protocol/errors.js'

export interface EnrollmentOptions {
  shots: number
  /** The answer's face quality a photo needs (the server enrolls from 0.3; the kiosk asks more). */
  minQuality: number
  minGapMs: number
}

export const DEFAULT_ENROLLMENT: EnrollmentOptions = Object.freeze({
  shots: 3,
  minQuality: 0.5,
  minGapMs: 700,
})

export interface Sample {
  trackId: number
  /** Faces the server found in the crop. */
  faces: number
  quality: number
  image: Uint8Array
  atMs: number
}

export type Verdict = 'taken' | 'low-quality' | 'too-soon' | 'not-one-face' | 'other-person' | 'complete'

export interface EnrollmentCapture {
  /** Considers one answered crop; a `taken` one is kept. */
  offer: (sample: Sample) => Verdict
  /** The person left: start over with the next track. */
  restart: () => void
  readonly photos: readonly Uint8Array[]
  readonly trackId: number | undefined
  readonly complete: boolean
}

export function createEnrollmentCapture(options: EnrollmentOptions = DEFAULT_ENROLLMENT): EnrollmentCapture {
  let photos: Uint8Array[] = []
  let trackId: number | undefined
  let lastAt = -Infinity
  return {
    offer(sample) {
      if (photos.length >= options.shots) return 'complete'
      if (sample.faces !== 1) return 'not-one-face'
      if (trackId !== undefined && sample.trackId !== trackId) return 'other-person'
      if (sample.quality < options.minQuality) return 'low-quality'
      if (sample.atMs - lastAt < options.minGapMs) return 'too-soon'
      trackId = sample.trackId
      lastAt = sample.atMs
      photos.push(sample.image)
      return photos.length >= options.shots ? 'complete' : 'taken'
    },
    restart() {
      photos = []
      trackId = undefined
      lastAt = -Infinity
    },
    get photos() {
      return photos
    },
    get trackId() {
      return trackId
    },
    get complete() {
      return photos.length >= options.shots
    },
  }
}

const FACTOR_ADVICE: Readonly<Record<string, string>> = Object.freeze({
  size: 'the face is too small: come closer',
  sharpness: 'the photo is blurred: hold still',
  brightness: 'the face is too dark or too bright: fix the light',
  contrast: 'the face is washed out: fix the light',
  pose: 'the face is turned: look straight at the camera',
})

const CODE_ADVICE: Partial<Readonly<Record<ErrorCode, string>>> = Object.freeze({
  ERR_FACE_NOT_FOUND: 'no face found in the photo',
  ERR_FACE_MULTIPLE: 'more than one face: one person at a time',
  ERR_AUTH_SCOPE: 'this kiosk may not enroll people',
})

/** Why the server refused an enrollment photo, in words for the person at the kiosk. */
export function describeEnrollError(error: WireError): string {
  if (error.code === 'ERR_FACE_LOW_QUALITY') {
    const factors = error.details?.['factors']
    if (typeof factors === 'object' && factors !== null) {
      const worst = Object.entries(factors as Record<string, unknown>)
        .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
        .sort((a, b) => a[1] - b[1])[0]
      const advice = worst === undefined ? undefined : FACTOR_ADVICE[worst[0]]
      if (advice !== undefined) return advice
    }
    return 'the photo is not good enough'
  }
  return CODE_ADVICE[error.code] ?? error.message
}
