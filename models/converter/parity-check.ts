/**
 * Parity + speed check of the converted human-models against TFJS (CPU backend).
 *
 *   node dist/models/converter/parity-check.js [--only id,id] [--bench] [--runs 20]
 *
 * For each recipe: convert in memory, run TFJS and onnxruntime-node on a noise and a
 * structured input, print max abs diff / cosine per output and the ONNX op histogram.
 * --bench additionally times faceres (or --bench-id) with intraOpNumThreads=1.
 * Exits with code 1 if any output is outside PARITY_TOLERANCE.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as tf from '@tensorflow/tfjs'
import * as ort from 'onnxruntime-node'
import { convertGraphDetailed } from './convert.js'
import {
  PARITY_TOLERANCE,
  checkParity,
  createSession,
  loadTfjsModel,
  optimizedOpHistogram,
  testInputs,
  timeIt,
  type ParityCase,
} from './parity.js'
import { humanRecipes, type HumanRecipe } from './recipes.js'

function fmt(n: number): string {
  return n === 0 ? '0' : n.toExponential(2)
}

/** Convert a recipe and compare it with TFJS; returns the cases and the conversion. */
export async function recipeParity(
  recipe: HumanRecipe,
  batch = 2,
): Promise<{ cases: ParityCase[]; histogram: Record<string, number>; bytes: Uint8Array }> {
  const { graph, options } = await recipe.build()
  const result = convertGraphDetailed(graph, options ?? {})
  const input = result.inputs[0]
  const tfInput = recipe.options.inputs?.[0]?.tensor ?? graph.inputs[0]?.name
  if (input === undefined || tfInput === undefined) throw new Error(`${recipe.id}: no input`)
  const shape = input.shape.map((d) => (typeof d === 'number' ? d : batch))
  const outputs = (recipe.options.outputs ?? []).map((o) => ({ tf: o.tensor, onnx: o.name ?? o.tensor }))
  const p = recipe.preprocessing
  const cases = await checkParity({
    modelJsonPath: recipe.modelJsonPath,
    onnx: result.bytes,
    input: { tf: tfInput, onnx: input.name, shape, range: p.range },
    outputs,
  })
  return { cases, histogram: result.opHistogram, bytes: result.bytes }
}

async function bench(recipe: HumanRecipe, bytes: Uint8Array, runs: number): Promise<void> {
  const input = recipe.preprocessing
  const shape = [1, input.height, input.width, 3]
  const feed = testInputs(shape, input.range)[1]?.feed
  if (feed === undefined) return
  const tfInput = recipe.options.inputs?.[0]?.tensor ?? 'input'
  const outputs = (recipe.options.outputs ?? []).map((o) => o.tensor)

  const session = await createSession(bytes, 1)
  const onnxFeed = {
    [recipe.options.inputs?.[0]?.name ?? 'input']: new ort.Tensor('float32', feed.data, feed.shape),
  }
  const ortTime = await timeIt(() => session.run(onnxFeed), runs, 3)
  await session.release()

  const model = await loadTfjsModel(recipe.modelJsonPath)
  const x = tf.tensor(feed.data, feed.shape)
  const tfTime = await timeIt(
    async () => {
      const res = model.execute({ [tfInput]: x }, outputs)
      const list = Array.isArray(res) ? res : [res]
      await Promise.all(list.map((t) => t.data()))
      tf.dispose(list)
    },
    Math.max(3, Math.floor(runs / 4)),
    1,
  )
  x.dispose()
  model.dispose()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fw-opt-'))
  const optimized = await optimizedOpHistogram(bytes, path.join(dir, 'opt.onnx'))
  await rm(dir, { recursive: true, force: true })
  process.stdout.write(`\n[bench] ${recipe.id} 1x${input.height}x${input.width}x3\n`)
  process.stdout.write(
    `  onnxruntime-node (intraOpNumThreads=1): median ${ortTime.medianMs.toFixed(1)} ms, min ${ortTime.minMs.toFixed(1)} ms\n`,
  )
  process.stdout.write(
    `  tfjs cpu backend:                       median ${tfTime.medianMs.toFixed(1)} ms, min ${tfTime.minMs.toFixed(1)} ms\n`,
  )
  process.stdout.write(`  ORT-optimised graph ops: ${JSON.stringify(optimized)}\n`)
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      bench: { type: 'boolean' },
      'bench-id': { type: 'string' },
      runs: { type: 'string' },
    },
  })
  const only = values.only?.split(',')
  const selected = humanRecipes.filter((r) => only === undefined || only.includes(r.id))
  let failed = 0
  process.stdout.write(
    `tolerance: max|diff|/max(1,max|ref|) <= ${PARITY_TOLERANCE.relMaxAbsDiff}, cosine >= ${PARITY_TOLERANCE.cosine}\n`,
  )
  const benchId = values['bench-id'] ?? 'faceres'
  for (const recipe of selected) {
    const { cases, histogram, bytes } = await recipeParity(recipe)
    process.stdout.write(
      `\n${recipe.id}  (${(bytes.length / 1024).toFixed(0)} KiB)  ops ${JSON.stringify(histogram)}\n`,
    )
    for (const c of cases) {
      for (const o of c.outputs) {
        if (!o.pass) failed++
        process.stdout.write(
          `  ${o.pass ? 'ok  ' : 'FAIL'} ${c.label.padEnd(10)} ${o.name.padEnd(16)} [${o.shape.join('x')}]  maxAbs ${fmt(o.maxAbsDiff)}  scale ${o.scale.toPrecision(4)}  cos ${o.cosine.toFixed(8)}\n`,
        )
      }
    }
    if (values.bench === true && recipe.id === benchId) await bench(recipe, bytes, Number(values.runs ?? 20))
  }
  process.stdout.write(
    failed === 0 ? '\nall outputs within tolerance\n' : `\n${failed} output(s) out of tolerance\n`,
  )
  return failed === 0 ? 0 : 1
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exitCode = 1
    },
  )
}
