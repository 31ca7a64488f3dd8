/**
 * Closing a stream when its token expires, for both WebSocket routes. Node's timers hold at most
 * 2^31 - 1 ms (24.8 days; a longer delay fires at once, with a warning), so a far expiry is reached
 * in steps: each timer checks the clock and re-arms until the expiry has passed.
 */

/** The longest delay one timer can hold. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** What the schedule needs of time; tests pass their own. */
export interface ExpiryClock {
  now(): number
  setTimeout(callback: () => void, ms: number): { unref?(): unknown }
  clearTimeout(handle: { unref?(): unknown }): void
}

const systemClock: ExpiryClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => {
    clearTimeout(handle as NodeJS.Timeout)
  },
}

export interface ExpiryTimer {
  /** Stops the schedule (the stream closed first). */
  cancel(): void
}

/**
 * Calls `onExpired` once, as soon as the clock reaches `expiresAtMs` (at once when it already
 * has). The timers never keep the process alive.
 */
export function scheduleExpiry(
  expiresAtMs: number,
  onExpired: () => void,
  clock: ExpiryClock = systemClock,
): ExpiryTimer {
  let handle: { unref?(): unknown } | undefined
  let cancelled = false
  const arm = (): void => {
    const left = expiresAtMs - clock.now()
    handle = clock.setTimeout(
      () => {
        if (cancelled) return
        if (clock.now() >= expiresAtMs) onExpired()
        else arm()
      },
      Math.min(Math.max(0, left), MAX_TIMER_MS),
    )
    handle.unref?.()
  }
  arm()
  return {
    cancel() {
      cancelled = true
      if (handle !== undefined) clock.clearTimeout(handle)
    },
  }
}
