import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseConfig, type Config } from '../config.js'
import { createLogger, type Logger } from '../logger.js'
import {
  cosine,
  layoutFromManifest,
  partCosines,
  type EmbeddingLayout,
} from '../pipeline/embedding-layout.js'
import { createPipeline, pipelineOptionsFromConfig, type Pipeline } from '../pipeline/index.js'
import { loadManifest } from '../pipeline/manifest.js'
import { createProgress } from '../../client/cli/progress.js'
import {
  accuracyAt,
  bestThreshold,
  crossValidatedAccuracy,
  parsePairs,
  rocAuc,
  tarAtFar,
  type LfwPair,
  type ScoredPair,
} from './verification.js'

const USAGE = `usage: facewire eval lfw --root DIR --pairs FILE [--train FILE] [--json]

Runs the full pipeline (decode, detect, landmarks, align, embed) on every image the pairs files
reference and reports verification accuracy. A pair with no face found counts as wrong.
  --root DIR     LFW folder laid out <name>/<n>.jpg
  --pairs FILE   pairs to report (View 1: first line N; View 2: first line "folds<TAB>N")
  --train FILE   View 1 only: choose the threshold on these pairs and report --pairs at it
  --json         print one JSON object instead of a table`

export interface EvalReport {
  pairsFile: string
  format: 'view1' | 'view2'
  pairs: number
  images: number
  imagesWithoutFace: number
  pairsWithoutFace: number
  accuracy: number
  accuracyStd?: number
  threshold: number
  thresholdFrom: 'train' | 'best-on-test' | '10-fold'
  bestThresholdAccuracy: number
  auc: number
  tarAtFar1e2: number
  tarAtFar1e3: number
  tarAtFar1e3Measurable: boolean
  trainAccuracy?: number
  /**
   * Open-set operating points: the threshold giving each false-accept rate on the train pairs
   * (View 1 with --train; otherwise on the reported pairs), and the FAR/TAR it gives on the
   * reported pairs.
   */
  operatingPoints: {
    far: number
    threshold: number
    from: 'train' | 'test'
    testFar: number
    testTar: number
  }[]
  models: string[]
  /**
   * With fused embedders: each model's own cosine scored the same way (threshold from the train
   * pairs when given), and the fusion weight of the second model that is most accurate on the
   * train pairs (or on the reported pairs without --train), next to the one in use.
   */
  fusion?: {
    parts: { model: string; weight: number; accuracy: number; auc: number; threshold: number }[]
    weightInUse: number
    bestWeight: { weight: number; accuracy: number; on: 'train' | 'test' }
  }
  seconds: number
}

function imageKey(member: LfwPair['a']): string {
  return `${member.name}/${member.index}.jpg`
}

export async function embedAll(
  pipeline: Pipeline,
  root: string,
  keys: string[],
  concurrency: number,
): Promise<Map<string, Float32Array | undefined>> {
  const embeddings = new Map<string, Float32Array | undefined>()
  const progress = createProgress('embedding', keys.length)
  let next = 0
  let done = 0
  const worker = async (): Promise<void> => {
    for (;;) {
      const key = keys[next++]
      if (key === undefined) return
      const bytes = await readFile(join(root, key))
      const analysis = await pipeline.analyze(bytes, { mode: 'main', maxFaces: 1 })
      embeddings.set(key, analysis.faces[0]?.embedding)
      progress.tick(++done)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  progress.finish()
  return embeddings
}

type Similarity = (a: Float32Array, b: Float32Array) => number

function score(
  pairs: LfwPair[],
  embeddings: Map<string, Float32Array | undefined>,
  similarity: Similarity = cosine,
): ScoredPair[] {
  return pairs.map((pair) => {
    const a = embeddings.get(imageKey(pair.a))
    const b = embeddings.get(imageKey(pair.b))
    return {
      same: pair.same,
      fold: pair.fold,
      score: a === undefined || b === undefined ? NaN : similarity(a, b),
    }
  })
}

/** Accuracy on `test` at the threshold chosen on `train` (or the best on `test` without one). */
function accuracyOf(
  test: ScoredPair[],
  train: ScoredPair[] | undefined,
): { accuracy: number; threshold: number } {
  if (train === undefined) return bestThreshold(test)
  const { threshold } = bestThreshold(train)
  return { accuracy: accuracyAt(test, threshold), threshold }
}

/** Per-model scores and the best fusion weight, for a layout of two or more parts. */
function fusionReport(
  layout: EmbeddingLayout,
  testPairs: LfwPair[],
  trainPairs: LfwPair[] | undefined,
  embeddings: Map<string, Float32Array | undefined>,
): NonNullable<EvalReport['fusion']> {
  const cosinesOf = (pairs: LfwPair[]): (number[] | undefined)[] =>
    pairs.map((pair) => {
      const a = embeddings.get(imageKey(pair.a))
      const b = embeddings.get(imageKey(pair.b))
      return a === undefined || b === undefined ? undefined : partCosines(a, b, layout)
    })
  const testCosines = cosinesOf(testPairs)
  const trainCosines = trainPairs === undefined ? undefined : cosinesOf(trainPairs)
  const scored = (
    pairs: LfwPair[],
    cosines: (number[] | undefined)[],
    f: (c: number[]) => number,
  ): ScoredPair[] =>
    pairs.map((pair, i) => {
      const c = cosines[i]
      return { same: pair.same, fold: pair.fold, score: c === undefined ? NaN : f(c) }
    })
  const parts = layout.parts.map((part, index) => {
    const f = (c: number[]): number => c[index] ?? NaN
    const test = scored(testPairs, testCosines, f)
    const train =
      trainPairs === undefined || trainCosines === undefined ? undefined : scored(trainPairs, trainCosines, f)
    return { model: part.model, weight: part.weight, ...accuracyOf(test, train), auc: rocAuc(test) }
  })
  // Two parts: sweep the second's weight in steps of 0.01 on the train pairs.
  const weightInUse = layout.parts[1]?.weight ?? 0
  const [choosePairs, chooseCosines, on] =
    trainPairs === undefined || trainCosines === undefined
      ? [testPairs, testCosines, 'test' as const]
      : [trainPairs, trainCosines, 'train' as const]
  let bestWeight = { weight: weightInUse, accuracy: -1, on }
  for (let step = 0; step <= 100; step++) {
    const w = step / 100
    const f = (c: number[]): number => (1 - w) * (c[0] ?? NaN) + w * (c[1] ?? NaN)
    const { accuracy } = bestThreshold(scored(choosePairs, chooseCosines, f))
    const closer = Math.abs(w - weightInUse) < Math.abs(bestWeight.weight - weightInUse)
    if (accuracy > bestWeight.accuracy || (accuracy === bestWeight.accuracy && closer)) {
      bestWeight = { weight: w, accuracy, on }
    }
  }
  return { parts, weightInUse, bestWeight }
}

/** Runs the evaluation with an existing pipeline (tests and benchmarks reuse this). */
export async function evaluateLfw(
  pipeline: Pipeline,
  options: {
    root: string
    pairsFile: string
    trainFile?: string
    concurrency: number
    /** The embedding layout; with two parts the report adds each model alone (`fusion`). */
    layout?: EmbeddingLayout
  },
): Promise<EvalReport> {
  const started = performance.now()
  const test = parsePairs(await readFile(options.pairsFile, 'utf8'))
  const train =
    options.trainFile === undefined ? undefined : parsePairs(await readFile(options.trainFile, 'utf8'))
  if (train !== undefined && test.format !== 'view1')
    throw new Error('--train applies to View 1 pair files only')
  const keys = [
    ...new Set(
      [...test.pairs, ...(train?.pairs ?? [])].flatMap((pair) => [imageKey(pair.a), imageKey(pair.b)]),
    ),
  ].sort()
  const info = await pipeline.ready
  const embeddings = await embedAll(pipeline, options.root, keys, options.concurrency)
  const scored = score(test.pairs, embeddings)
  const best = bestThreshold(scored)
  let accuracy: number
  let accuracyStd: number | undefined
  let threshold: number
  let thresholdFrom: EvalReport['thresholdFrom']
  let trainAccuracy: number | undefined
  if (test.format === 'view2') {
    const cv = crossValidatedAccuracy(scored, test.folds)
    accuracy = cv.mean
    accuracyStd = cv.std
    threshold = best.threshold
    thresholdFrom = '10-fold'
  } else if (train !== undefined) {
    const trained = bestThreshold(score(train.pairs, embeddings))
    threshold = trained.threshold
    trainAccuracy = trained.accuracy
    accuracy = accuracyAt(scored, threshold)
    thresholdFrom = 'train'
  } else {
    threshold = best.threshold
    accuracy = best.accuracy
    thresholdFrom = 'best-on-test'
  }
  const far3 = tarAtFar(scored, 1e-3)
  // A pair with a missing face can never be a false accept in use (no face, no decision): the
  // operating thresholds are chosen on the pairs where both faces were found.
  const calibration = (train === undefined ? scored : score(train.pairs, embeddings)).filter(
    (pair) => !Number.isNaN(pair.score),
  )
  const operatingPoints = [1e-2, 1e-3].map((far) => {
    const { threshold: at } = tarAtFar(calibration, far)
    const negatives = scored.filter((pair) => !pair.same)
    const positives = scored.filter((pair) => pair.same)
    const accepted = (pair: ScoredPair): boolean => !Number.isNaN(pair.score) && pair.score >= at
    return {
      far,
      threshold: at,
      from: train === undefined ? ('test' as const) : ('train' as const),
      testFar: negatives.filter(accepted).length / Math.max(1, negatives.length),
      testTar: positives.filter(accepted).length / Math.max(1, positives.length),
    }
  })
  const report: EvalReport = {
    pairsFile: options.pairsFile,
    format: test.format,
    pairs: scored.length,
    images: keys.length,
    imagesWithoutFace: keys.filter((key) => embeddings.get(key) === undefined).length,
    pairsWithoutFace: scored.filter((pair) => Number.isNaN(pair.score)).length,
    accuracy,
    threshold,
    thresholdFrom,
    bestThresholdAccuracy: best.accuracy,
    auc: rocAuc(scored),
    tarAtFar1e2: tarAtFar(scored, 1e-2).tar,
    tarAtFar1e3: far3.tar,
    tarAtFar1e3Measurable: far3.measurable,
    operatingPoints,
    models: info.models,
    seconds: (performance.now() - started) / 1000,
  }
  if (options.layout !== undefined && options.layout.parts.length > 1) {
    report.fusion = fusionReport(options.layout, test.pairs, train?.pairs, embeddings)
  }
  if (accuracyStd !== undefined) report.accuracyStd = accuracyStd
  if (trainAccuracy !== undefined) report.trainAccuracy = trainAccuracy
  return report
}

function formatReport(report: EvalReport): string {
  const pct = (value: number): string => `${(value * 100).toFixed(2)}%`
  const rows: [string, string][] = [
    ['pairs', `${report.pairs} (${report.format}, ${report.pairsFile})`],
    ['images', `${report.images}, ${report.imagesWithoutFace} without a detected face`],
    ['pairs counted wrong for a missing face', String(report.pairsWithoutFace)],
    [
      'accuracy',
      report.accuracyStd === undefined
        ? pct(report.accuracy)
        : `${pct(report.accuracy)} ± ${pct(report.accuracyStd)}`,
    ],
    ['threshold', `${report.threshold.toFixed(4)} (${report.thresholdFrom})`],
    ['accuracy at the best threshold on these pairs', pct(report.bestThresholdAccuracy)],
    ['ROC AUC', report.auc.toFixed(4)],
    ['TAR @ FAR 1e-2', report.tarAtFar1e2.toFixed(3)],
    [
      'TAR @ FAR 1e-3',
      `${report.tarAtFar1e3.toFixed(3)}${report.tarAtFar1e3Measurable ? '' : ' (too few different pairs to measure)'}`,
    ],
    ...report.operatingPoints.map((point): [string, string] => [
      `threshold for FAR ${String(point.far)} (${point.from})`,
      `${point.threshold.toFixed(4)}: on these pairs FAR ${point.testFar.toFixed(4)}, TAR ${point.testTar.toFixed(3)}`,
    ]),
    ...(report.fusion?.parts ?? []).map((part): [string, string] => [
      `${part.model} alone`,
      `${pct(part.accuracy)} at ${part.threshold.toFixed(4)}, AUC ${part.auc.toFixed(4)} (fused at weight ${String(part.weight)})`,
    ]),
    ...(report.fusion === undefined
      ? []
      : [
          [
            'best weight of the second model',
            `${String(report.fusion.bestWeight.weight)} (${pct(report.fusion.bestWeight.accuracy)} on the ${report.fusion.bestWeight.on} pairs; in use ${String(report.fusion.weightInUse)})`,
          ] as [string, string],
        ]),
    ['models', report.models.join(', ')],
    ['time', `${report.seconds.toFixed(1)} s`],
  ]
  if (report.trainAccuracy !== undefined)
    rows.splice(4, 0, ['accuracy on the train pairs', pct(report.trainAccuracy)])
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')
}

/**
 * What every `facewire eval` command runs on: the configuration from the environment (logs at
 * `warn` unless LOG_LEVEL says otherwise), the models' embedding layout and a started pipeline.
 */
/** The options every eval command reads besides its own: --json and --help. */
export const REPORT_OPTIONS = {
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const

/** Prints `usage` on --help; true when it did, and the command is done (exit status 0). */
export function printedHelp(help: boolean, usage: string): boolean {
  if (help) process.stdout.write(usage + '\n')
  return help
}

export async function startEvalPipeline(): Promise<{
  config: Config
  logger: Logger
  modelsDir: string
  layout: EmbeddingLayout
  pipeline: Pipeline
}> {
  const config = parseConfig({ ...process.env, LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'warn' })
  const logger = createLogger({ level: config.logLevel })
  const pipelineOptions = pipelineOptionsFromConfig(config)
  const layout = layoutFromManifest(await loadManifest(pipelineOptions.modelsDir))
  const pipeline = createPipeline({ ...pipelineOptions, logger })
  return { config, logger, modelsDir: pipelineOptions.modelsDir, layout, pipeline }
}

export async function runEval(args: string[]): Promise<number> {
  if (args[0] === 'openset') return (await import('./eval-openset.js')).runEvalOpenSet(args.slice(1))
  if (args[0] === 'cohort') return (await import('./eval-cohort.js')).runEvalCohort(args.slice(1))
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      root: { type: 'string' },
      pairs: { type: 'string' },
      train: { type: 'string' },
      ...REPORT_OPTIONS,
    },
  })
  if (printedHelp(values.help, USAGE)) return 0
  if (positionals[0] !== 'lfw' || values.root === undefined || values.pairs === undefined) {
    process.stderr.write(USAGE + '\n')
    return 2
  }
  const { config, layout, pipeline } = await startEvalPipeline()
  try {
    const report = await evaluateLfw(pipeline, {
      layout,
      root: values.root,
      pairsFile: values.pairs,
      ...(values.train === undefined ? {} : { trainFile: values.train }),
      concurrency: config.workers * 2,
    })
    process.stdout.write((values.json ? JSON.stringify(report) : formatReport(report)) + '\n')
    return 0
  } finally {
    await pipeline.close()
  }
}
