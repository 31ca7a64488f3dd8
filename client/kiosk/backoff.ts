/**
 * Reconnect delays: exponential from `initialMs`, capped at `maxMs`, with "full jitter" (a uniform
 * draw in [delay / 2, delay]) so that every kiosk of a building does not reconnect in the same
 * instant after a server restart. Pure; the random source is passed in for tests.
 */

export interface BackoffOptions {
  initialMs: number
  maxMs: number
  factor: number
  /** Returns a number in [0, 1). */
  random: () => number
}

export const DEFAULT_BACKOFF: Omit<BackoffOptions, 'random'> = Object.freeze({
  initialMs: 1000,
  maxMs: 30_000,
  factor: 2,
})

export interface Backoff {
  /** The delay before the next attempt; each call counts one more failed attempt. */
  next: () => number
  /** A connection succeeded: start again from `initialMs`. */
  reset: () => void
  readonly attempts: number
}

export function createBackoff(options: BackoffOptions): Backoff {
  const { initialMs, maxMs, factor, random } = options
  if (!(initialMs > 0)) throw new RangeError('backoff initialMs must be positive')
  if (!(maxMs >= initialMs)) throw new RangeError('backoff maxMs must be at least initialMs')
  if (!(factor >= 1)) throw new RangeError('backoff factor must be at least 1')
  let attempts = 0
  return {
    next() {
      const ceiling = Math.min(maxMs, initialMs * factor ** attempts)
      attempts++
      return Math.round(ceiling / 2 + (ceiling / 2) * random())
    },
    reset() {
      attempts = 0
    },
    get attempts() {
      return attempts
    },
  }
}
