/**
 * How the server rounds what it measures for the wire: pixels and milliseconds to 0.1. One copy
 * for the REST recognize answer and the stream results.
 */
import type { RecognizeTimings } from '../protocol/wire.js'
import type { FrameAnalysis } from './pipeline/index.js'

/** Positions, sizes (px) and times (ms) on the wire: one decimal. */
export const round1 = (value: number): number => Math.round(value * 10) / 10

/**
 * A frame's `timings` for the wire, each to 0.1 ms: the wait for a worker and the worker's stages
 * from `analysis`, then the gallery search and the total the caller measured.
 */
export function toWireTimings(
  analysis: Pick<FrameAnalysis, 'timings'> & { queueMs: number },
  searchMs: number,
  totalMs: number,
): RecognizeTimings {
  const { decodeMs, detectMs, landmarksMs, alignMs, embedMs, livenessMs } = analysis.timings
  return {
    queueMs: round1(analysis.queueMs),
    decodeMs: round1(decodeMs),
    detectMs: round1(detectMs),
    landmarksMs: round1(landmarksMs),
    alignMs: round1(alignMs),
    embedMs: round1(embedMs),
    livenessMs: round1(livenessMs),
    searchMs: round1(searchMs),
    totalMs: round1(totalMs),
  }
}
