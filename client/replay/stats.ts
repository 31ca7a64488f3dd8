/** The statistics the replay reports, shared with the benchmarks (bench/stats.ts). */

/** Times to 0.1 ms, as the server rounds its own `timings`. */
export const round1 = (value: number): number => Math.round(value * 10) / 10

/** The nearest-rank `p`th percentile of `values` (any order; not changed); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] ?? NaN
}
