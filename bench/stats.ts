/** Small statistics and reporting helpers shared by the benchmarks. */

import { percentile } from '../client/replay/stats.js'

/** The nearest-rank percentile facewire replay reports, so both measure latency alike. */
export { percentile }

export function summarize(values: readonly number[]): { n: number; p50: number; p99: number; mean: number } {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)
  return { n: values.length, p50: percentile(values, 50), p99: percentile(values, 99), mean }
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

/** Prints rows as an aligned text table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [
    headers,
    ...rows.map((row) => row.map((cell) => (typeof cell === 'number' ? String(round(cell)) : cell))),
  ]
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)))
  const line = (row: string[]): string => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ')
  return [line(cells[0] ?? []), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join(
    '\n',
  )
}
