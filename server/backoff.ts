/**
 * Retry delays: exponential backoff with jitter, so clients that failed together do not retry in
 * step. Full jitter (webhook deliveries: anywhere below the cap) or equal jitter (reconnections to
 * Redis and PostgreSQL: between half the cap and the cap, so a retry never comes at once).
 */

export interface BackoffPolicy {
  /** The cap of the first retry's delay; it doubles with each further attempt. */
  readonly baseMs: number
  /** No delay is longer. */
  readonly maxMs: number
}

/**
 * The delay before retry number `retry` (1 = after the first failed attempt): uniform in
 * [0, min(maxMs, baseMs * 2^(retry - 1))). `random` returns [0, 1) like Math.random.
 */
export function backoffDelayMs(
  retry: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCapMs(retry, policy))
}

/**
 * The delay before retry number `retry` with equal jitter: uniform in [cap / 2, cap], at least
 * 1 ms (the cap as in backoffDelayMs).
 */
export function equalJitterDelayMs(
  retry: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  return Math.max(1, Math.round(backoffCapMs(retry, policy) * (0.5 + 0.5 * random())))
}

/** min(maxMs, baseMs * 2^(retry - 1)), retry counted from 1. */
function backoffCapMs(retry: number, policy: BackoffPolicy): number {
  // 2^(retry - 1) overflows to Infinity long after it passed any sane maxMs; min() absorbs it.
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1))
}
