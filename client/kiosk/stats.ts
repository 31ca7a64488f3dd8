/**
 * `window.kioskStats`: what the kiosk did, for the end-to-end test, the benchmark and anyone
 * curious at the console. A plain object updated in place. Times are performance.now() ms. Pure.
 */
import type { TrackStatus } from './track-view.js'

/** Samples kept in `detectorMs` and `roundTripMs`. */
export const MAX_SAMPLES = 200
/** Decision entries kept (a kiosk runs for days). */
export const MAX_DECISIONS = 1000

export type ConnectionState = 'connecting' | 'open' | 'closed'

export interface DecisionEntry {
  trackId: number
  status: TrackStatus
  name?: string
  /** When the browser first detected the track. */
  firstSeenAt: number
  /** When this status was first rendered for the track. */
  decidedAt: number
}

export interface KioskStats {
  connection: ConnectionState
  framesSent: number
  bytesSent: number
  answers: { result: number; dropped: number; throttled: number; error: number }
  /** Per-frame detector time (preprocessing, inference and decoding). */
  detectorMs: number[]
  /** Send to answer, for `result` answers. */
  roundTripMs: number[]
  decisions: DecisionEntry[]
}

export function createStats(): KioskStats {
  return {
    connection: 'connecting',
    framesSent: 0,
    bytesSent: 0,
    answers: { result: 0, dropped: 0, throttled: 0, error: 0 },
    detectorMs: [],
    roundTripMs: [],
    decisions: [],
  }
}

/** Appends to a bounded list, dropping the oldest. */
export function pushBounded<T>(list: T[], value: T, bound: number): void {
  list.push(value)
  if (list.length > bound) list.splice(0, list.length - bound)
}

/** The median of a list (NaN when empty). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** Events per second over the last `windowMs`. */
export interface RateMeter {
  add: (nowMs: number) => void
  rate: (nowMs: number) => number
}

export function createRateMeter(windowMs = 2000): RateMeter {
  const times: number[] = []
  const trim = (nowMs: number): void => {
    while (times.length > 0 && nowMs - (times[0] as number) > windowMs) times.shift()
  }
  return {
    add(nowMs) {
      times.push(nowMs)
      trim(nowMs)
    },
    rate(nowMs) {
      trim(nowMs)
      return (times.length * 1000) / windowMs
    },
  }
}
