/**
 * npm run bench:pipeline — per-stage pipeline latency on face photos, against the bare ONNX
 * inference time of the same models measured in the same run, and pool throughput for 1..N
 * workers. Prints a table, then one JSON object on the last line.
 *
 *   npm run bench:pipeline -- [--images 60] [--rounds 3] [--max-workers N]
 */
import { readdir, readFile } from 'node:fs/promises'
import { availableParallelism, cpus } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import { createLogger } from '../server/logger.js'
import {
  findModel,
  loadManifest,
  readVerifiedModel,
  type ManifestModel,
} from '../server/pipeline/manifest.js'
import { createPipeline, DEFAULT_MODELS_DIR, type Pipeline } from '../server/pipeline/index.js'
import { percentile, round, summarize, table } from './stats.js'

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '3' },
    'max-workers': { type: 'string', default: String(availableParallelism()) },
    faces: { type: 'string', default: process.env['FACEWIRE_FACES'] ?? '../shared/faces' },
  },
})
const imageCount = Number(values.images)
const rounds = Number(values.rounds)
const maxWorkers = Number(values['max-workers'])

async function loadPhotos(): Promise<Uint8Array[]> {
  const root = join(values.faces, 'lfw-view1')
  const names = (await readdir(root)).filter((name) => !name.includes('.')).sort()
  const photos: Uint8Array[] = []
  for (const name of names) {
    if (photos.length >= imageCount) break
    photos.push(
      new Uint8Array(
        await readFile(join(root, name, (await readdir(join(root, name))).sort()[0] ?? '1.jpg')),
      ),
    )
  }
  return photos
}

/**
 * The bare inference, measured two ways on the same ONNX files with one intra-op thread:
 * each model alone (warm, same input again and again), and the sequence one frame runs
 * (detector, landmarks twice, embedder), which pays the cache misses the pipeline pays.
 */
async function bareInference(
  models: ManifestModel[],
  runs: number,
): Promise<{ perModel: Record<string, number[]>; sequence: number[] }> {
  const sessions: {
    model: ManifestModel
    session: ort.InferenceSession
    feeds: Record<string, ort.Tensor>
  }[] = []
  for (const model of models) {
    const session = await ort.InferenceSession.create(await readVerifiedModel(DEFAULT_MODELS_DIR, model), {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    })
    const { width, height } = model.preprocessing
    const input = model.inputs[0]?.name ?? 'input'
    const data = new Float32Array(width * height * 3).map(() => Math.random() * 255)
    sessions.push({
      model,
      session,
      feeds: { [input]: new ort.Tensor('float32', data, [1, height, width, 3]) },
    })
  }
  const perModel: Record<string, number[]> = {}
  for (const { model, session, feeds } of sessions) {
    for (let i = 0; i < 3; i++) await session.run(feeds)
    const samples: number[] = []
    for (let i = 0; i < runs; i++) {
      const t = performance.now()
      await session.run(feeds)
      samples.push(performance.now() - t)
    }
    perModel[model.id] = samples
  }
  const [detector, landmarks, embedder] = sessions
  const sequence: number[] = []
  if (detector !== undefined && landmarks !== undefined && embedder !== undefined) {
    for (let i = 0; i < runs; i++) {
      const t = performance.now()
      await detector.session.run(detector.feeds)
      await landmarks.session.run(landmarks.feeds)
      await landmarks.session.run(landmarks.feeds)
      await embedder.session.run(embedder.feeds)
      sequence.push(performance.now() - t)
    }
  }
  for (const { session } of sessions) await session.release()
  return { perModel, sequence }
}

async function throughput(photos: Uint8Array[], workers: number): Promise<number> {
  const pipeline = createPipeline({
    workers,
    maxQueue: workers * 4,
    taskTimeoutMs: 60_000,
    limits: { maxPixels: 40_000_000, maxSide: 10_000 },
    modelsDir: DEFAULT_MODELS_DIR,
    logger: createLogger({ level: 'warn' }),
  })
  await pipeline.ready
  await Promise.all(
    photos
      .slice(0, workers * 2)
      .map((p) => pipeline.analyze(new Uint8Array(p), { mode: 'main', maxFaces: 1 })),
  )
  const total = photos.length * rounds
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: workers * 2 }, async () => {
      while (next < total) {
        const photo = photos[next++ % photos.length] ?? new Uint8Array()
        await pipeline.analyze(new Uint8Array(photo), { mode: 'main', maxFaces: 1 })
      }
    }),
  )
  const perSecond = total / ((performance.now() - started) / 1000)
  await pipeline.close()
  return perSecond
}

async function stageLatency(pipeline: Pipeline, photos: Uint8Array[]) {
  const stages: Record<string, number[]> = {
    queue: [],
    decode: [],
    detect: [],
    landmarks: [],
    align: [],
    embed: [],
    total: [],
    inference: [],
    roundTrip: [],
  }
  let faces = 0
  for (let round = 0; round < rounds; round++) {
    for (const photo of photos) {
      const t = performance.now()
      const result = await pipeline.analyze(new Uint8Array(photo), { mode: 'main', maxFaces: 1 })
      stages['roundTrip']?.push(performance.now() - t)
      faces += result.faces.length
      stages['queue']?.push(result.queueMs)
      stages['decode']?.push(result.timings.decodeMs)
      stages['detect']?.push(result.timings.detectMs)
      stages['landmarks']?.push(result.timings.landmarksMs)
      stages['align']?.push(result.timings.alignMs)
      stages['embed']?.push(result.timings.embedMs)
      stages['total']?.push(result.timings.totalMs)
      stages['inference']?.push(result.timings.inferenceMs)
    }
  }
  return { stages, faces }
}

const photos = await loadPhotos()
const manifest = await loadManifest(DEFAULT_MODELS_DIR)
const used = [manifest.pipeline.detector, manifest.pipeline.landmarks, manifest.pipeline.embedder].map((id) =>
  findModel(manifest, id),
)

// Single worker, sequential: per-stage latency inside the worker and the round trip.
const single = createPipeline({
  workers: 1,
  maxQueue: 4,
  taskTimeoutMs: 60_000,
  limits: { maxPixels: 40_000_000, maxSide: 10_000 },
  modelsDir: DEFAULT_MODELS_DIR,
  logger: createLogger({ level: 'warn' }),
})
await single.ready
for (const photo of photos.slice(0, 5))
  await single.analyze(new Uint8Array(photo), { mode: 'main', maxFaces: 1 })
const { stages, faces } = await stageLatency(single, photos)
await single.close()

const { perModel: bare, sequence } = await bareInference(used, photos.length * rounds)
const bareP50 = percentile(sequence, 50)
const pipelineP50 = percentile(stages['roundTrip'] ?? [], 50)

const scaling: { workers: number; imagesPerSecond: number; speedup: number }[] = []
for (let workers = 1; workers <= maxWorkers; workers++) {
  const perSecond = await throughput(photos, workers)
  scaling.push({
    workers,
    imagesPerSecond: perSecond,
    speedup: perSecond / (scaling[0]?.imagesPerSecond ?? perSecond),
  })
}

const report = {
  bench: 'pipeline',
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
  images: photos.length,
  rounds,
  facesFound: faces,
  models: used.map((m) => m.id),
  stagesMs: Object.fromEntries(Object.entries(stages).map(([stage, v]) => [stage, summarize(v)])),
  bareInferenceMs: Object.fromEntries(Object.entries(bare).map(([id, v]) => [id, summarize(v)])),
  bareSequenceMs: summarize(sequence),
  pipelineRoundTripP50Ms: pipelineP50,
  ratioPipelineToBare: pipelineP50 / bareP50,
  ratioPipelineToOwnInference:
    percentile(stages['total'] ?? [], 50) / percentile(stages['inference'] ?? [], 50),
  scaling,
}

process.stdout.write(
  table(
    ['stage', 'p50 ms', 'p99 ms'],
    Object.entries(stages).map(([stage, v]) => [stage, percentile(v, 50), percentile(v, 99)]),
  ) + '\n\n',
)
process.stdout.write(
  table(
    ['bare ONNX model', 'p50 ms', 'p99 ms'],
    [
      ...Object.entries(bare).map(([id, v]) => [id, percentile(v, 50), percentile(v, 99)]),
      ['sequence: detector, landmarks x2, embedder', percentile(sequence, 50), percentile(sequence, 99)],
    ],
  ) + '\n\n',
)
process.stdout.write(
  `pipeline round trip p50 ${round(pipelineP50)} ms / bare ONNX sequence p50 ${round(bareP50)} ms = ${round(report.ratioPipelineToBare)}x\n` +
    `in-worker total p50 / ONNX time of the same frames p50 = ${round(report.ratioPipelineToOwnInference)}x ` +
    '(the frame runs the landmark net twice, and the SSD detector when the tiny one is unsure)\n\n',
)
process.stdout.write(
  table(
    ['workers', 'images/s', 'speedup'],
    scaling.map((s) => [s.workers, s.imagesPerSecond, s.speedup]),
  ) + '\n\n',
)
process.stdout.write(JSON.stringify(report) + '\n')
