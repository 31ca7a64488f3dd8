/**
 * `facewire eval cohort`: measures the impostor score distribution of the current models on a
 * public cohort (every pair of different people among the images an LFW pairs file references)
 * and writes it to models/cohort.json, where the gallery finds it to derive thresholds for
 * galleries too small to calibrate on their own.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fitImpostorModel, type CohortFile } from '../gallery/calibration.js'
import { embedAll, printedHelp, REPORT_OPTIONS, startEvalPipeline } from './eval.js'
import { parsePairs } from './verification.js'

const USAGE = `usage: facewire eval cohort --root DIR --pairs FILE [--out FILE]

Embeds every image FILE references (an LFW pairs file, e.g. View 1 pairsDevTrain.txt), scores
every pair of images of different people, and writes the impostor model of the current models
into --out (default: the models folder's cohort.json), keeping entries of other models.`

/** Impostor scores of every pair of embeddings whose people differ. */
export function cohortScores(items: readonly { person: string; embedding: Float32Array }[]): Float32Array {
  let count = 0
  for (let i = 0; i < items.length; i++)
    for (let j = i + 1; j < items.length; j++) if (items[i]?.person !== items[j]?.person) count++
  const out = new Float32Array(count)
  let k = 0
  for (let i = 0; i < items.length; i++) {
    const a = items[i] as (typeof items)[number]
    for (let j = i + 1; j < items.length; j++) {
      const b = items[j] as (typeof items)[number]
      if (a.person === b.person) continue
      let dot = 0
      for (let d = 0; d < a.embedding.length; d++) dot += (a.embedding[d] ?? 0) * (b.embedding[d] ?? 0)
      out[k++] = dot
    }
  }
  return out
}

export async function runEvalCohort(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      root: { type: 'string' },
      pairs: { type: 'string' },
      out: { type: 'string' },
      help: REPORT_OPTIONS.help,
    },
  })
  if (printedHelp(values.help, USAGE)) return 0
  if (values.root === undefined || values.pairs === undefined) {
    process.stderr.write(USAGE + '\n')
    return 2
  }
  const pairs = parsePairs(await readFile(values.pairs, 'utf8')).pairs
  const keys = [
    ...new Set(pairs.flatMap((p) => [`${p.a.name}/${p.a.index}.jpg`, `${p.b.name}/${p.b.index}.jpg`])),
  ].sort()
  const { config, modelsDir, layout, pipeline } = await startEvalPipeline()
  const out = values.out ?? join(modelsDir, 'cohort.json')
  try {
    await pipeline.ready
    const embeddings = await embedAll(pipeline, values.root, keys, config.workers * 2)
    const items = keys.flatMap((key) => {
      const embedding = embeddings.get(key)
      return embedding === undefined ? [] : [{ person: key.slice(0, key.lastIndexOf('/')), embedding }]
    })
    const model = fitImpostorModel(cohortScores(items))
    const people = new Set(items.map((i) => i.person)).size
    const source = `${String(items.length)} images of ${String(people)} people referenced by ${values.pairs.split('/').at(-1) ?? values.pairs} (every pair of different people)`
    let file: CohortFile = { version: 1, cohorts: [] }
    try {
      file = JSON.parse(await readFile(out, 'utf8')) as CohortFile
    } catch {
      // a new file
    }
    const entry = { modelId: layout.modelId, source, pairs: model.pairs, top: model.top.map(round6) }
    file.cohorts = [...file.cohorts.filter((c) => c.modelId !== layout.modelId), entry]
    await writeFile(out, `${JSON.stringify(file, null, 1)}\n`)
    process.stdout.write(
      `${layout.modelId}: ${model.pairs} impostor pairs from ${source}; highest ${model.top[0]?.toFixed(4) ?? '-'}, ` +
        `tail from ${model.tailStart.toFixed(4)} (rate ${model.tailRate.toExponential(2)}, scale ${model.tailScale.toFixed(4)}) -> ${out}\n`,
    )
    return 0
  } finally {
    await pipeline.close()
  }
}

function round6(value: number): number {
  return Math.round(value * 1e6) / 1e6
}
