/**
 * What a track shows, from the server's answers for its crops and what the kiosk itself sees of
 * the face (its size in the frame, its brightness). The server's `decision` is the track's, with
 * hysteresis, so it is shown as is; a refusal (liveness, closed eyes, a face the server cannot use)
 * becomes a prompt the person can act on, never a silent "no". Pure.
 */
import type { StreamFace } from '../../protocol/wire.js'

export type TrackStatus = 'match' | 'checking' | 'unknown' | 'prompt'

export interface TrackView {
  status: TrackStatus
  /** The large text under the face: a name, "Checking...", "Unknown" or a prompt. */
  text: string
  /** For the aria-live region; undefined when nothing is worth announcing ("Checking..."). */
  announce: string | undefined
  /** The matched identity's id, for enrollment's "recognized" check. */
  identityId?: string
}

export const PROMPTS = Object.freeze({
  closer: 'Move closer',
  light: 'More light, please',
  glare: 'Too bright: step out of the glare',
  look: 'Look at the camera',
  blink: 'Blink, please',
  openEyes: 'Open your eyes',
})

/** Faces narrower than this (frame pixels) give the server too few pixels between the eyes. */
export const MIN_FACE_WIDTH_PX = 64
/** Mean luma (0..1) of the face below / above which the server's brightness factor drops. */
export const DARK_LUMA = 0.2
export const BRIGHT_LUMA = 0.85
/** A face whose quality is below this is not worth deciding on (the server's enroll minimum). */
export const LOW_QUALITY = 0.3
/** Answers in a row without a face before the kiosk asks the person to face the camera. */
export const FACELESS_ANSWERS_BEFORE_PROMPT = 2

/** What the kiosk measured of the face in its own frame. */
export interface FaceHints {
  widthPx: number
  /** Mean luma of the face box, 0..1. */
  luma: number
}

/** Per-track memory across answers, kept by the caller and updated by `describeTrack`. */
export interface TrackMemory {
  view: TrackView
  /** Consecutive answers for this track's crops in which the server found no face. */
  facelessAnswers: number
  /** The server has seen this track's eyes closed (a blink) at least once. */
  blinked: boolean
}

export const CHECKING: TrackView = Object.freeze({
  status: 'checking',
  text: 'Checking...',
  announce: undefined,
})

export function createTrackMemory(): TrackMemory {
  return { view: CHECKING, facelessAnswers: 0, blinked: false }
}

function prompt(text: string): TrackView {
  return { status: 'prompt', text, announce: text }
}

/** A prompt from the kiosk's own view of the face, when one explains a poor answer. */
export function hintPrompt(hints: FaceHints): TrackView | undefined {
  if (hints.widthPx < MIN_FACE_WIDTH_PX) return prompt(PROMPTS.closer)
  if (hints.luma < DARK_LUMA) return prompt(PROMPTS.light)
  if (hints.luma > BRIGHT_LUMA) return prompt(PROMPTS.glare)
  return undefined
}

/**
 * The view after one answer for the track's crop: `face` is the answer's face of this track, or
 * undefined when the server found none in the crop. `switchFrames` (the hello's) is how many
 * frames an `unknown` must rest on before it is shown.
 */
export function describeTrack(
  memory: TrackMemory,
  face: StreamFace | undefined,
  hints: FaceHints,
  switchFrames: number,
): TrackView {
  if (face === undefined) {
    memory.facelessAnswers++
    if (memory.facelessAnswers < FACELESS_ANSWERS_BEFORE_PROMPT) return memory.view
    memory.view = hintPrompt(hints) ?? prompt(PROMPTS.look)
    return memory.view
  }
  memory.facelessAnswers = 0
  if (face.eyes?.closed === true) memory.blinked = true
  memory.view = viewOf(memory, face, hints, switchFrames)
  return memory.view
}

function viewOf(memory: TrackMemory, face: StreamFace, hints: FaceHints, switchFrames: number): TrackView {
  const { decision } = face
  if (decision.status === 'match' && decision.identity !== undefined) {
    const { name, id } = decision.identity
    return { status: 'match', text: name, announce: `Welcome, ${name}`, identityId: id }
  }
  if (face.eyes?.closed === true) return prompt(PROMPTS.openEyes)
  if (decision.reason === 'liveness') {
    // Passive liveness refused the track: ask for what changes its score, size and light first.
    const hinted = hintPrompt(hints)
    if (hinted !== undefined) return hinted
    // After a blink the net still says no: the face is probably turned or partly hidden.
    return prompt(memory.blinked ? PROMPTS.look : PROMPTS.blink)
  }
  if (face.quality < LOW_QUALITY) return hintPrompt(hints) ?? prompt(PROMPTS.look)
  if (decision.status === 'unknown' && face.track.frames >= switchFrames) {
    return { status: 'unknown', text: 'Unknown', announce: 'Unknown person' }
  }
  return CHECKING
}
