/**
 * Rate limits: the only module that imports rate-limiter-flexible. Its rejections (a thrown
 * RateLimiterRes) are translated here, once, into a wait in milliseconds; callers turn that into
 * their own answer (`rateLimited` for REST, a `throttled` message on streams).
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible'
import { FacewireError } from './errors.js'

export interface RateLimiter {
  /** Takes one point for `key`: 0 when allowed, else how many ms until a point is free (>= 1). */
  take(key: string): Promise<number>
}

/** `points` per `durationSeconds` per key, in this process's memory. */
export function createRateLimiter(options: { points: number; durationSeconds?: number }): RateLimiter {
  const limiter = new RateLimiterMemory({ points: options.points, duration: options.durationSeconds ?? 1 })
  return {
    async take(key) {
      try {
        await limiter.consume(key)
        return 0
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection
        return Math.max(1, rejection.msBeforeNext)
      }
    },
  }
}

/** ERR_RATE_LIMITED carrying the wait: the HTTP layer writes `Retry-After` from it. */
export function rateLimited(retryAfterMs: number): FacewireError {
  return new FacewireError('ERR_RATE_LIMITED', undefined, { details: { retryAfterMs } })
}
