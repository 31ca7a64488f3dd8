/** Reading counters and gauges back from Prometheus text, as a scraper of /metrics sees them. */

/**
 * The value of the sample `name` whose labels are exactly `labels` in `text` (Prometheus text
 * exposition), or 0 when there is none (a counter never incremented for those labels).
 */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .sort()
    .join(',')
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match?.[1] !== name) continue
    const have = (match[2] ?? '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter((pair) => pair !== '')
      .sort()
      .join(',')
    if (have === wanted) return Number(match[3])
  }
  return 0
}

/** GET /metrics of a server on 127.0.0.1. */
export async function scrapeMetrics(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${String(port)}/metrics`)
  return response.text()
}
