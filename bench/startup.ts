/**
 * npm run bench:startup — time from spawning the server to /ready answering 200 (models loaded in
 * every worker), against the time to spawn a bare `node -e ""` in the same run. Prints a table,
 * then one JSON object on the last line.
 *
 *   npm run bench:startup -- [--runs 5]
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'node:http'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { percentile, round, summarize, table } from './stats.js'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } })
const runs = Number(values.runs)
const mainPath = fileURLToPath(new URL('../server/entry.js', import.meta.url))

function status(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', () => {
      resolve(0)
    })
    req.end()
  })
}

async function timeToReady(port: number): Promise<{ listeningMs: number; readyMs: number }> {
  const started = performance.now()
  const child = spawn(process.execPath, [mainPath], {
    env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  })
  let listeningMs = NaN
  for (;;) {
    const code = await status(port, '/ready')
    if (code !== 0 && Number.isNaN(listeningMs)) listeningMs = performance.now() - started
    if (code === 200) break
    if (performance.now() - started > 30_000) throw new Error('server not ready within 30 s')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const readyMs = performance.now() - started
  child.kill('SIGTERM')
  await once(child, 'exit')
  return { listeningMs, readyMs }
}

async function bareNode(): Promise<number> {
  const started = performance.now()
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  return performance.now() - started
}

const ready: number[] = []
const listening: number[] = []
const bare: number[] = []
for (let i = 0; i < runs; i++) {
  bare.push(await bareNode())
  const result = await timeToReady(18_700 + i)
  ready.push(result.readyMs)
  listening.push(result.listeningMs)
}

const report = {
  bench: 'startup',
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
  runs,
  bareNodeMs: summarize(bare),
  firstAnswerMs: summarize(listening),
  readyMs: summarize(ready),
  ratioReadyToBareNode: percentile(ready, 50) / percentile(bare, 50),
}
process.stdout.write(
  table(
    ['measure', 'p50 ms', 'max ms'],
    [
      ['bare `node -e ""`', percentile(bare, 50), Math.max(...bare)],
      ['server answers HTTP', percentile(listening, 50), Math.max(...listening)],
      ['/ready 200 (models loaded)', percentile(ready, 50), Math.max(...ready)],
    ],
  ) + `\n\nready p50 / bare node p50 = ${round(report.ratioReadyToBareNode)}x\n\n`,
)
process.stdout.write(JSON.stringify(report) + '\n')
