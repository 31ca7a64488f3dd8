/**
 * Face tracks of one stream: which face in this frame is which face from the previous frames, the
 * quality-weighted fusion of a track's last embeddings, and the hysteresis that keeps a track's
 * decision from flickering on one bad frame. Pure and synchronous; one table per connection.
 */
import type { WireBox, Candidate, Decision, DecisionStatus, IdentityRef } from '../../protocol/wire.js'

export interface TrackOptions {
  /** Embeddings fused per track (the last K). */
  windowFrames: number
  /** Consecutive frames a different decision must hold before the track's decision changes. */
  switchFrames: number
  /** A track not seen for this long is forgotten. */
  maxIdleMs: number
  /** Minimum IoU to continue a server-assigned track from the previous frame's box. */
  minIou: number
}

/** The options a table gets for those not given. */
export const DEFAULT_TRACK_OPTIONS: Readonly<TrackOptions> = Object.freeze({
  windowFrames: 5,
  switchFrames: 2,
  maxIdleMs: 2000,
  minIou: 0.3,
})

/** Live tracks kept per table (both namespaces together); a new track evicts the least recently seen. */
export const MAX_TRACKS = 64

/** Smallest weight an embedding gets in the fusion, so a low-quality frame still counts a little. */
export const MIN_FUSION_WEIGHT = 0.05

/** One face of a frame as the pipeline returns it. */
export interface FaceObservation {
  /** Image pixels. */
  box: WireBox
  /** L2-normalised. */
  embedding: Float32Array
  /** In [0, 1]. */
  quality: number
  /** Liveness in [0, 1], when the frame was scored. */
  liveness?: number | undefined
}

/** A track's id and namespace: client id 3 and server id 3 are different tracks. */
export interface TrackRef {
  id: number
  source: 'client' | 'server'
}

/** A face's track and the fused embedding to search the gallery with. */
export interface AssignedTrack {
  track: TrackRef
  /** Re-normalised, quality-weighted mean of the track's last embeddings (a fresh array). */
  fused: Float32Array
  /** Embeddings fused (at most windowFrames). */
  frames: number
  /** Mean liveness of the window's scored frames (undefined when none was scored). */
  liveness?: number
}

/** A gallery search's outcome, as `decide` returns it. */
export interface Recognition {
  decision: Decision
  candidates: Candidate[]
}

/** A track's decision after hysteresis. */
export interface TrackDecision {
  /** The track's (stable) decision after hysteresis. */
  decision: Decision
  /** From this frame's fused search. */
  candidates: Candidate[]
  /** Embeddings the decision rests on (the track's window; 0 when the track was forgotten meanwhile). */
  frames: number
  /** The frame's own fused decision differs from the stable one and is waiting to be confirmed. */
  pending?: { status: DecisionStatus; identity?: IdentityRef; frames: number }
  /** True when this frame changed the stable decision (status or identity), incl. the first decision of a new track. */
  changed: boolean
}

/** The tracks of one stream. */
export interface TrackTable {
  /**
   * Assigns tracks to one frame's faces, in the given order. `clientTrackId` (from the frame header) applies to the
   * largest face only (a kiosk sends one crop per track); other faces, and all faces when undefined, get server tracks
   * by greedy IoU matching against the boxes of live server tracks from earlier frames (best IoU first, each track used
   * at most once per frame, IoU >= minIou), else a new server track id (incrementing from 1 per table). Each observation
   * is appended to its track's window (drop the oldest beyond windowFrames) and the fused, re-normalised, quality-weighted
   * mean (weight = max(quality, 0.05)) is returned.
   */
  assign(faces: readonly FaceObservation[], clientTrackId: number | undefined, nowMs: number): AssignedTrack[]
  /** Applies hysteresis to a track's fresh recognition of its fused embedding. */
  settle(track: TrackRef, recognition: Recognition, nowMs: number): TrackDecision
  /** Forgets tracks idle longer than maxIdleMs; returns the forgotten refs. Also called inside assign. */
  expire(nowMs: number): TrackRef[]
  readonly size: number
}

interface WindowEntry {
  embedding: Float32Array
  weight: number
  liveness: number | undefined
}

interface Outcome {
  status: DecisionStatus
  identity?: IdentityRef | undefined
}

interface Pending {
  status: DecisionStatus
  identity: IdentityRef | undefined
  frames: number
}

interface Track {
  ref: TrackRef
  box: WireBox
  lastSeenMs: number
  window: WindowEntry[]
  stable: Decision | undefined
  pending: Pending | undefined
}

/**
 * Creates an empty table. Throws a RangeError naming the option when windowFrames, switchFrames or
 * maxIdleMs is not a positive integer, or minIou is not in (0, 1].
 */
export function createTrackTable(options: Partial<TrackOptions> = {}): TrackTable {
  const opts = parseTrackOptions(options)
  // Insertion order is recency order: a track seen again is moved to the end, so the first is the stalest.
  const tracks = new Map<string, Track>()
  let nextServerId = 1

  function touch(track: Track, nowMs: number): void {
    const key = keyOf(track.ref)
    tracks.delete(key)
    tracks.set(key, track)
    track.lastSeenMs = Math.max(track.lastSeenMs, nowMs)
  }

  function open(ref: TrackRef, box: WireBox, nowMs: number): Track {
    while (tracks.size >= MAX_TRACKS) {
      const stalest = tracks.keys().next()
      if (stalest.done === true) break
      tracks.delete(stalest.value)
    }
    const track: Track = { ref, box, lastSeenMs: nowMs, window: [], stable: undefined, pending: undefined }
    tracks.set(keyOf(ref), track)
    return track
  }

  function observe(track: Track, face: FaceObservation, nowMs: number): AssignedTrack {
    track.box = { ...face.box }
    touch(track, nowMs)
    const first = track.window[0]
    // Embeddings of another length (another embedder) cannot be fused with the old ones: start over.
    if (first !== undefined && first.embedding.length !== face.embedding.length) track.window = []
    track.window.push({
      embedding: Float32Array.from(face.embedding),
      weight: fusionWeight(face.quality),
      liveness: Number.isFinite(face.liveness) ? face.liveness : undefined,
    })
    if (track.window.length > opts.windowFrames)
      track.window.splice(0, track.window.length - opts.windowFrames)
    const assigned: AssignedTrack = {
      track: { ...track.ref },
      fused: fuse(track.window),
      frames: track.window.length,
    }
    const scored = track.window.flatMap((entry) => (entry.liveness === undefined ? [] : [entry.liveness]))
    if (scored.length > 0) assigned.liveness = scored.reduce((sum, value) => sum + value, 0) / scored.length
    return assigned
  }

  function expire(nowMs: number): TrackRef[] {
    const forgotten: TrackRef[] = []
    for (const [key, track] of tracks) {
      if (nowMs - track.lastSeenMs > opts.maxIdleMs) {
        tracks.delete(key)
        forgotten.push({ ...track.ref })
      }
    }
    return forgotten
  }

  function assign(
    faces: readonly FaceObservation[],
    clientTrackId: number | undefined,
    nowMs: number,
  ): AssignedTrack[] {
    expire(nowMs)
    const owners: (Track | undefined)[] = faces.map(() => undefined)
    const clientFace = clientTrackId === undefined ? -1 : largestIndex(faces)
    if (clientTrackId !== undefined && clientFace >= 0) {
      const ref: TrackRef = { id: clientTrackId, source: 'client' }
      const face = faces[clientFace]
      if (face !== undefined) owners[clientFace] = tracks.get(keyOf(ref)) ?? open(ref, face.box, nowMs)
    }

    // Only server tracks from earlier frames are candidates: the list is taken before any is opened.
    const pairs: { face: number; track: Track; iou: number }[] = []
    const previous = [...tracks.values()].filter((t) => t.ref.source === 'server')
    faces.forEach((face, index) => {
      if (index === clientFace) return
      for (const track of previous) {
        const overlap = iou(face.box, track.box)
        if (overlap >= opts.minIou) pairs.push({ face: index, track, iou: overlap })
      }
    })
    pairs.sort((a, b) => b.iou - a.iou || a.face - b.face || a.track.ref.id - b.track.ref.id)
    const used = new Set<Track>()
    for (const pair of pairs) {
      if (owners[pair.face] !== undefined || used.has(pair.track)) continue
      owners[pair.face] = pair.track
      used.add(pair.track)
    }

    return faces.map((face, index) => {
      const track = owners[index] ?? open({ id: nextServerId++, source: 'server' }, face.box, nowMs)
      return observe(track, face, nowMs)
    })
  }

  function settle(ref: TrackRef, recognition: Recognition, nowMs: number): TrackDecision {
    const fresh = recognition.decision
    const candidates = recognition.candidates
    const track = tracks.get(keyOf(ref))
    // Forgotten while its search ran (expired or evicted): nothing to be stable against.
    if (track === undefined) return { decision: copyDecision(fresh), candidates, frames: 0, changed: true }
    touch(track, nowMs)
    const frames = track.window.length
    const stable = track.stable
    if (stable === undefined || sameOutcome(stable, fresh)) {
      track.stable = copyDecision(fresh)
      track.pending = undefined
      return { decision: copyDecision(fresh), candidates, frames, changed: stable === undefined }
    }
    const previous = track.pending
    const waiting: Pending = {
      status: fresh.status,
      identity: fresh.identity === undefined ? undefined : { ...fresh.identity },
      frames: previous !== undefined && sameOutcome(previous, fresh) ? previous.frames + 1 : 1,
    }
    if (waiting.frames >= opts.switchFrames) {
      track.stable = copyDecision(fresh)
      track.pending = undefined
      return { decision: copyDecision(fresh), candidates, frames, changed: true }
    }
    track.pending = waiting
    const shown: NonNullable<TrackDecision['pending']> = { status: waiting.status, frames: waiting.frames }
    if (waiting.identity !== undefined) shown.identity = { ...waiting.identity }
    return { decision: copyDecision(stable), candidates, frames, pending: shown, changed: false }
  }

  return {
    assign,
    settle,
    expire,
    get size() {
      return tracks.size
    },
  }
}

/** Intersection over union of two boxes; 0 when either has no area. */
export function iou(a: WireBox, b: WireBox): number {
  if (!(a.width > 0 && a.height > 0 && b.width > 0 && b.height > 0)) return 0
  const width = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x)
  const height = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y)
  if (!(width > 0 && height > 0)) return 0
  const intersection = width * height
  return intersection / (a.width * a.height + b.width * b.height - intersection)
}

function parseTrackOptions(options: Partial<TrackOptions>): TrackOptions {
  const opts: TrackOptions = { ...DEFAULT_TRACK_OPTIONS, ...options }
  for (const name of ['windowFrames', 'switchFrames', 'maxIdleMs'] as const) {
    const value = opts[name]
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`createTrackTable: ${name} must be a positive integer, got ${String(value)}`)
    }
  }
  if (typeof opts.minIou !== 'number' || !(opts.minIou > 0 && opts.minIou <= 1)) {
    throw new RangeError(`createTrackTable: minIou must be in (0, 1], got ${String(opts.minIou)}`)
  }
  return Object.freeze(opts)
}

function keyOf(ref: TrackRef): string {
  return `${ref.source}:${ref.id}`
}

function fusionWeight(quality: number): number {
  return Number.isFinite(quality) ? Math.max(quality, MIN_FUSION_WEIGHT) : MIN_FUSION_WEIGHT
}

/** Index of the face with the largest box area (the first of equals); -1 for none. */
function largestIndex(faces: readonly FaceObservation[]): number {
  let best = -1
  let bestArea = -Infinity
  faces.forEach((face, index) => {
    const area = Math.max(face.box.width, 0) * Math.max(face.box.height, 0)
    if (area > bestArea) {
      best = index
      bestArea = area
    }
  })
  return best
}

/** The window's quality-weighted mean, re-normalised; accumulated in float64. */
function fuse(window: readonly WindowEntry[]): Float32Array {
  const newest = window[window.length - 1]
  if (newest === undefined) return new Float32Array(0)
  const sum = new Float64Array(newest.embedding.length)
  for (const { embedding, weight } of window) {
    for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] ?? 0) + weight * (embedding[i] ?? 0)
  }
  let squares = 0
  for (const value of sum) squares += value * value
  const norm = Math.sqrt(squares)
  // Embeddings that cancel out have no direction to search with: the newest alone is the best guess.
  if (!(norm > 0) || !Number.isFinite(norm)) return Float32Array.from(newest.embedding)
  return Float32Array.from(sum, (value) => value / norm)
}

/** Same status and same identity id: what a change of decision means. */
function sameOutcome(a: Outcome, b: Outcome): boolean {
  return a.status === b.status && a.identity?.id === b.identity?.id
}

function copyDecision(decision: Decision): Decision {
  const copy: Decision = {
    status: decision.status,
    similarity: decision.similarity,
    margin: decision.margin,
    threshold: decision.threshold,
  }
  if (decision.identity !== undefined) copy.identity = { ...decision.identity }
  if (decision.reason !== undefined) copy.reason = decision.reason
  return copy
}
