/**
 * Retry delays: exponential backoff with full jitter (a uniform delay between 0 and the exponential
 * cap), so endpoints that failed together do not retry in step.
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
  // 2^(retry - 1) overflows to Infinity long after it passed any sane maxMs; min() absorbs it.
  const capMs = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1))
  return Math.floor(random() * capMs)
}
