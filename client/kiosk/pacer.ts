/**
 * When to send a crop and of which track. The server serves one frame per connection at a time
 * and replaces a waiting frame with a newer one, so sending faster than its `suggestedFps` only
 * earns `dropped` answers: the pacer spaces frames by 1 / fps over the whole connection, keeps at
 * most one unanswered frame per track and at most `maxUnanswered` in all (one in flight and one
 * waiting on the server), serves the track that waited longest first, and pauses on `throttled`.
 * Pure; the caller passes the time.
 */

export interface PacerOptions {
  /** Frames per second for the connection (the hello's suggestedFps). */
  fps: number
  /** Unanswered frames over all tracks. */
  maxUnanswered: number
  /** A frame unanswered for this long is given up (the stream will have closed or lagged). */
  answerTimeoutMs: number
}

export const DEFAULT_PACER: Omit<PacerOptions, 'fps'> = Object.freeze({
  maxUnanswered: 2,
  answerTimeoutMs: 5000,
})

/** Send times remembered per track id (for fairness); the oldest are forgotten beyond it. */
export const MAX_REMEMBERED_TRACKS = 64

export interface SentFrame {
  frameId: number
  trackId: number
  sentAt: number
}

export interface Pacer {
  /** The track to send a crop of now (from `candidates`, the visible tracks), or undefined. */
  pick: (candidates: readonly number[], nowMs: number) => number | undefined
  /** Records a frame sent for `trackId`; returns its frame id. */
  sent: (trackId: number, nowMs: number) => number
  /** The frame an answer is for (undefined when unknown or given up); frees its track. */
  answered: (frameId: number) => SentFrame | undefined
  /** A `throttled` answer: nothing is sent for `retryAfterMs`. */
  throttle: (retryAfterMs: number, nowMs: number) => void
  /** A new connection: forget unanswered frames (their stream is gone) and take its rate. */
  reset: (fps: number) => void
  readonly unanswered: number
}

export function createPacer(options: PacerOptions): Pacer {
  let fps = options.fps
  let nextFrameId = 1
  let earliestNextAt = -Infinity
  const inFlight = new Map<number, SentFrame>()
  const byTrack = new Map<number, number>()
  const lastSentAt = new Map<number, number>()

  const forget = (frameId: number): SentFrame | undefined => {
    const frame = inFlight.get(frameId)
    if (frame === undefined) return undefined
    inFlight.delete(frameId)
    byTrack.delete(frame.trackId)
    return frame
  }

  return {
    pick(candidates, nowMs) {
      for (const frame of [...inFlight.values()]) {
        if (nowMs - frame.sentAt > options.answerTimeoutMs) forget(frame.frameId)
      }
      if (!(fps > 0) || nowMs < earliestNextAt || inFlight.size >= options.maxUnanswered) return undefined
      let best: number | undefined
      let bestAt = Infinity
      for (const trackId of candidates) {
        if (byTrack.has(trackId)) continue
        const at = lastSentAt.get(trackId) ?? -Infinity
        if (at < bestAt) {
          best = trackId
          bestAt = at
        }
      }
      return best
    },
    sent(trackId, nowMs) {
      const frameId = nextFrameId
      nextFrameId = nextFrameId >= 0xffffffff ? 1 : nextFrameId + 1
      inFlight.set(frameId, { frameId, trackId, sentAt: nowMs })
      byTrack.set(trackId, frameId)
      lastSentAt.delete(trackId)
      lastSentAt.set(trackId, nowMs)
      if (lastSentAt.size > MAX_REMEMBERED_TRACKS) {
        // Oldest first (insertion order after re-setting): drop the tracks long gone.
        const oldest = lastSentAt.keys().next().value
        if (oldest !== undefined) lastSentAt.delete(oldest)
      }
      // Never bunch up to catch up: the next frame waits a full interval after this one.
      earliestNextAt = nowMs + 1000 / fps
      return frameId
    },
    answered: forget,
    throttle(retryAfterMs, nowMs) {
      earliestNextAt = Math.max(earliestNextAt, nowMs + Math.max(0, retryAfterMs))
    },
    reset(newFps) {
      fps = newFps
      inFlight.clear()
      byTrack.clear()
      earliestNextAt = -Infinity
    },
    get unanswered() {
      return inFlight.size
    },
  }
}
