/** The first message of a /ws/detect stream: its limits, models, thresholds and a suggested rate. */
import type { Principal } from '../auth.js'
import type { Config } from '../config.js'
import type { OrgPolicy } from '../gallery/index.js'
import { STREAM_PROTOCOL_VERSION, type StreamHello } from '../../protocol/wire.js'

export interface DetectHelloInput {
  session: string
  principal: Principal
  limits: Config['streams']
  /** The org's policy now. */
  policy: OrgPolicy
  models: string[]
  suggestedFps: number
}

export function toDetectHello(input: DetectHelloInput): StreamHello {
  const { limits, policy } = input
  return {
    type: 'hello',
    protocol: STREAM_PROTOCOL_VERSION,
    session: input.session,
    org: input.principal.org,
    limits: {
      maxFrameBytes: limits.maxFrameBytes,
      maxFps: limits.maxFps,
      orgMaxFps: limits.orgMaxFps,
      maxFaces: limits.maxFaces,
    },
    suggestedFps: input.suggestedFps,
    models: input.models,
    thresholds: { match: policy.threshold, margin: policy.margin, targetFpir: policy.targetFpir },
    track: { windowFrames: limits.trackFrames, switchFrames: limits.trackSwitchFrames },
    tokenExpiresAt: input.principal.expiresAtMs,
  }
}

/**
 * Frames per second a stream can expect: what the workers sustain at the recent cost of a frame,
 * shared by the open streams, at most one worker per stream (one frame in flight each), at least 1
 * and at most `maxFps`.
 */
export function suggestFps(input: {
  workers: number
  frameMs: number
  streams: number
  maxFps: number
}): number {
  const capacity = (input.workers * 1000) / Math.max(1, input.frameMs)
  const share = Math.floor(capacity / Math.max(1, input.streams, input.workers))
  return Math.max(1, Math.min(input.maxFps, share))
}
