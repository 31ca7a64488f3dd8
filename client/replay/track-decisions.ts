/** The tracks' decisions over a replay: which changed with a result, and the tally at the end. */
import type { StreamFace, StreamResult } from '../../protocol/wire.js'

export interface DecisionCounts {
  tracks: number
  /** Distinct tracks ever decided a match, per identity name. */
  matched: Record<string, number>
  /** Tracks never matched, by their last decision. */
  uncertain: number
  unknown: number
}

export interface TrackDecisions {
  /** Records the faces of a result of stream `streamIndex`; returns those whose decision changed. */
  record(streamIndex: number, result: StreamResult): StreamFace[]
  counts(): DecisionCounts
}

interface TrackState {
  decisionKey: string
  lastStatus: StreamFace['decision']['status']
  matched: Set<string>
}

export function createTrackDecisions(): TrackDecisions {
  // By stream, track source and id: track ids are per stream.
  const tracks = new Map<string, TrackState>()
  return {
    record(streamIndex, result) {
      const changed: StreamFace[] = []
      for (const face of result.faces) {
        const key = `${String(streamIndex)}:${face.track.source}:${String(face.track.id)}`
        const decision = face.decision
        const decisionKey = `${decision.status}:${decision.identity?.id ?? ''}`
        let track = tracks.get(key)
        if (track === undefined) {
          track = { decisionKey: '', lastStatus: decision.status, matched: new Set() }
          tracks.set(key, track)
        }
        track.lastStatus = decision.status
        if (decision.status === 'match' && decision.identity !== undefined)
          track.matched.add(decision.identity.name)
        if (track.decisionKey !== decisionKey) {
          track.decisionKey = decisionKey
          changed.push(face)
        }
      }
      return changed
    },
    counts() {
      const matched: Record<string, number> = {}
      let uncertain = 0
      let unknown = 0
      for (const track of tracks.values()) {
        for (const name of track.matched) matched[name] = (matched[name] ?? 0) + 1
        if (track.matched.size > 0) continue
        if (track.lastStatus === 'uncertain') uncertain++
        else if (track.lastStatus === 'unknown') unknown++
      }
      return { tracks: tracks.size, matched, uncertain, unknown }
    },
  }
}
