/**
 * Rate limits: the only module that imports rate-limiter-flexible. Its rejections (a thrown
 * RateLimiterRes) are translated here, once, into a wait in milliseconds; callers turn that into
 * their own answer (`rateLimited` for REST, a `throttled` message on streams).
 *
 * A limiter is counted in this process's memory, or, shared by every instance in cluster mode, in
 * Redis (docs/scale-out.md, "Shared rate limits"): then an in-memory insurance limiter with the
 * same points counts in its place whenever Redis cannot answer, so a limit never waits for Redis
 * and never lapses.
 */
import type { Redis } from 'ioredis'
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible'
import { FacewireError } from './errors.js'

export interface RateLimiter {
  /** Takes one point for `key`: 0 when allowed, else how many ms until a point is free (>= 1). */
  take(key: string): Promise<number>
}

/** Where shared limits are counted: a Redis connection (server/cluster/redis.ts) and a key prefix. */
export interface SharedLimitStore {
  readonly client: Redis
  /** Every key starts with it (FACEWIRE_REDIS_PREFIX). */
  readonly prefix: string
}

export interface RateLimiterOptions {
  points: number
  durationSeconds?: number
  /**
   * Counts in Redis, shared by every instance, under `<prefix>rl:<name>:<key>`; undefined (or no
   * store) = in this process's memory.
   */
  shared?: { store: SharedLimitStore | undefined; name: string }
}

/** `points` per `durationSeconds` per key: in this process's memory, or shared through Redis. */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const duration = options.durationSeconds ?? 1
  const memory = new RateLimiterMemory({ points: options.points, duration })
  const shared = options.shared
  const limiter =
    shared?.store === undefined
      ? memory
      : new RateLimiterRedis({
          storeClient: shared.store.client,
          keyPrefix: `${shared.store.prefix}rl:${shared.name}`,
          points: options.points,
          duration,
          // Not connected: straight to the insurance limiter instead of trying.
          rejectIfRedisNotReady: true,
          insuranceLimiter: memory,
          // A key over its limit is refused from memory for the rest of the window, so a client
          // hammering a spent limit costs Redis one round trip per window, not one per request.
          inMemoryBlockOnConsumed: options.points + 1,
        })
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
