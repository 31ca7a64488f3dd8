/**
 * `node dist/test/helpers/poll-health.js URL INTERVAL_MS COUNT`: GETs URL every INTERVAL_MS, COUNT
 * times, and prints one JSON line per answer ({ ms, status }). Run as its own process so that
 * what it measures is the server, not a test's event loop busy flooding it. One request first,
 * not printed, so the first measured one does not include loading the HTTP client.
 */
const [url = '', intervalArg = '250', countArg = '10'] = process.argv.slice(2)
const intervalMs = Number(intervalArg)
const count = Number(countArg)

async function timed(): Promise<{ ms: number; status: number }> {
  const startedAt = performance.now()
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(10_000) })
    await response.arrayBuffer()
    return { ms: performance.now() - startedAt, status: response.status }
  } catch {
    return { ms: performance.now() - startedAt, status: 0 }
  }
}

await timed()
process.stdout.write('{"ready":true}\n')
for (let i = 0; i < count; i++) {
  const started = performance.now()
  process.stdout.write(`${JSON.stringify(await timed())}\n`)
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, intervalMs - (performance.now() - started))))
}
