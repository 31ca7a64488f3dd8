/**
 * One analysed stream frame -> its `result` answer: the faces are assigned to tracks, each track's
 * fused embedding is searched in the org's gallery, and its decision is held by hysteresis.
 */
import type { OrgPolicy } from '../gallery/index.js'
import type { FrameAnalysis } from '../pipeline/index.js'
import type { StreamFace, StreamResult } from '../../protocol/wire.js'
import { requireLiveness, toFaceResult, toWireBox } from '../recognize.js'
import type { Recognition, TrackDecision, TrackRef, TrackTable } from './tracks.js'
import { round1, toWireTimings } from '../wire-timings.js'

export interface StreamResultInput {
  frameId: number
  /** The frame header's track id (a kiosk's crop), if any. */
  trackId: number | undefined
  analysis: FrameAnalysis & { queueMs: number }
  tracks: TrackTable
  /** Searches the org's gallery with a track's fused embedding. */
  recognize: (embedding: Float32Array) => Recognition
  /** The org's liveness setting. */
  liveness: OrgPolicy['liveness']
  /** `performance.now()` when the frame arrived, and when it was handed to the pipeline. */
  receivedAt: number
  startedAt: number
  /** Each track's decision on this frame, for the match events. */
  onDecided: (track: TrackRef, decided: TrackDecision, nowMs: number) => void
}

export function toStreamResult(input: StreamResultInput): StreamResult {
  const { analysis, tracks, liveness } = input
  const searchStarted = performance.now()
  const now = Date.now()
  const assigned = tracks.assign(
    analysis.faces.map((face) => ({
      box: toWireBox(face),
      embedding: face.embedding,
      quality: face.quality.score,
      liveness: face.liveness,
    })),
    input.trackId,
    now,
  )
  const faces = analysis.faces.map((face, i): StreamFace => {
    const track = assigned[i]
    if (track === undefined) throw new Error('a face without a track')
    const decided = tracks.settle(
      track.track,
      requireLiveness(input.recognize(track.fused), track.liveness, liveness),
      now,
    )
    input.onDecided(track.track, decided, now)
    const info: StreamFace['track'] = { ...track.track, frames: decided.frames }
    if (decided.pending !== undefined) info.pending = decided.pending
    return { ...toFaceResult(face, decided, { score: track.liveness, policy: liveness }), track: info }
  })
  return {
    type: 'result',
    frameId: input.frameId,
    faces,
    timings: {
      waitMs: round1(input.startedAt - input.receivedAt),
      ...toWireTimings(analysis, performance.now() - searchStarted, performance.now() - input.receivedAt),
    },
  }
}
