/**
 * Follows faces from one detection to the next by box overlap and gives each a track id: the id
 * the kiosk puts in every crop's frame header, so the server fuses that face's frames. Greedy
 * matching, best overlap first (a door sees a handful of faces; Hungarian matching buys nothing).
 * Pure; the caller passes the time.
 */
import { iou, type Box } from './geometry.js'

export interface TrackerOptions {
  /** A detection continues a track when their boxes overlap at least this much. */
  minIou: number
  /** A track not seen for this long is forgotten (its id is never reused). */
  maxAgeMs: number
  /** A track not seen for this long is no longer shown or sent. */
  hideAfterMs: number
}

export const DEFAULT_TRACKER: TrackerOptions = Object.freeze({
  minIou: 0.3,
  maxAgeMs: 1500,
  hideAfterMs: 400,
})

export interface Track {
  readonly id: number
  box: Box
  score: number
  /** When the track was first detected (the caller's clock, e.g. performance.now()). */
  readonly firstSeenAt: number
  lastSeenAt: number
  /** Detections that continued this track. */
  hits: number
}

export interface Detection {
  box: Box
  score: number
}

export interface Tracker {
  /** Matches one frame's detections to the tracks; returns the tracks visible now. */
  update: (detections: readonly Detection[], nowMs: number) => Track[]
  /** Tracks seen within `hideAfterMs` of `nowMs`. */
  visible: (nowMs: number) => Track[]
  get: (id: number) => Track | undefined
}

export function createTracker(options: TrackerOptions = DEFAULT_TRACKER, firstId = 1): Tracker {
  const tracks = new Map<number, Track>()
  let nextId = firstId
  const visible = (nowMs: number): Track[] =>
    [...tracks.values()].filter((t) => nowMs - t.lastSeenAt <= options.hideAfterMs)
  return {
    update(detections, nowMs) {
      for (const [id, track] of tracks) if (nowMs - track.lastSeenAt > options.maxAgeMs) tracks.delete(id)
      const pairs: { track: Track; detection: number; overlap: number }[] = []
      detections.forEach((d, detection) => {
        for (const track of tracks.values()) {
          const overlap = iou(track.box, d.box)
          if (overlap >= options.minIou) pairs.push({ track, detection, overlap })
        }
      })
      pairs.sort((a, b) => b.overlap - a.overlap)
      const usedTracks = new Set<number>()
      const usedDetections = new Set<number>()
      for (const { track, detection } of pairs) {
        if (usedTracks.has(track.id) || usedDetections.has(detection)) continue
        const d = detections[detection] as Detection
        track.box = d.box
        track.score = d.score
        track.lastSeenAt = nowMs
        track.hits++
        usedTracks.add(track.id)
        usedDetections.add(detection)
      }
      detections.forEach((d, detection) => {
        if (usedDetections.has(detection)) return
        const id = nextId
        nextId = nextId >= 0xffffffff ? 1 : nextId + 1
        tracks.set(id, { id, box: d.box, score: d.score, firstSeenAt: nowMs, lastSeenAt: nowMs, hits: 1 })
      })
      return visible(nowMs)
    },
    visible,
    get: (id) => tracks.get(id),
  }
}
