/**
 * npm run bench:pipeline — per-stage pipeline latency on face photos, against the bare ONNX
 * inference time of the same models measured in the same run, and pool throughput for 1..N
 * workers. Prints a table, then one JSON object on the last line.
 *
 *   npm run bench:pipeline -- [--images 60] [--rounds 3] [--max-workers N]
 *
 * With --in-process it runs only the pipeline code in its own thread (no pool) with each model's
 * ONNX Runtime time recorded apart, and splits the work outside inference by stage; to profile:
 *
 *   tsc -b && node --cpu-prof dist/bench/pipeline.js --in-process
 */
import { readdir, readFile } from 'node:fs/promises'
import { availableParallelism, cpus } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import sharp from 'sharp'
import { analyzeFrame, createFrameBuffers, type ModelRunner } from '../server/pipeline/analyze.js'
import { buildFaceModels, type ModelRole } from '../server/pipeline/face-models.js'
import { createOnnxRunner, SESSION_OPTIONS } from '../server/pipeline/onnx-runner.js'
import {
  findModel,
  loadManifest,
  readVerifiedModel,
  type ManifestModel,
  type ModelManifest,
} from '../server/pipeline/manifest.js'
import { DEFAULT_MODELS_DIR, type AnalyzeOptions, type Pipeline } from '../server/pipeline/index.js'
import { benchPipeline, BENCH_LIMITS } from './bench-pipeline.js'
import { percentile, round, summarize, table } from './stats.js'

const MAIN: AnalyzeOptions = { mode: 'main', maxFaces: 1 }
/** What a kiosk stream asks of each crop. */
const STREAM: AnalyzeOptions = { mode: 'all', maxFaces: 5, liveness: true }

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '3' },
    'max-workers': { type: 'string', default: String(availableParallelism()) },
    faces: { type: 'string', default: process.env['FACEWIRE_FACES'] ?? '../shared/faces' },
    'in-process': { type: 'boolean', default: false },
  },
})
const imageCount = Number(values.images)
const rounds = Number(values.rounds)
const maxWorkers = Number(values['max-workers'])
const limits = BENCH_LIMITS
// As the worker creates its sessions: the pool parallelises across frames, not inside one.
const sessionOptions = SESSION_OPTIONS

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
  crop = false,
): Promise<{ perModel: Record<string, number[]>; sequence: number[] }> {
  const sessions: {
    model: ManifestModel
    session: ort.InferenceSession
    feeds: Record<string, ort.Tensor>
  }[] = []
  for (const model of models) {
    const session = await ort.InferenceSession.create(
      await readVerifiedModel(DEFAULT_MODELS_DIR, model),
      sessionOptions,
    )
    const input = model.inputs[0]
    const shape = (input?.shape ?? []).map((d) => (typeof d === 'number' ? d : 1))
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => Math.random() * 255)
    sessions.push({
      model,
      session,
      feeds: { [input?.name ?? 'input']: new ort.Tensor('float32', data, shape) },
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
  const [detector, landmarks, embedder, secondary] = sessions
  const sequence: number[] = []
  if (crop) {
    // A crop: small detector, landmarks twice, embedder, liveness, the eye net twice.
    const [, , , liveness, eyes] = sessions
    for (let i = 0; i < runs; i++) {
      const t = performance.now()
      for (const step of [detector, landmarks, landmarks, embedder, liveness, eyes, eyes]) {
        if (step !== undefined) await step.session.run(step.feeds)
      }
      sequence.push(performance.now() - t)
    }
  } else if (detector !== undefined && landmarks !== undefined && embedder !== undefined) {
    for (let i = 0; i < runs; i++) {
      const t = performance.now()
      await detector.session.run(detector.feeds)
      await landmarks.session.run(landmarks.feeds)
      await landmarks.session.run(landmarks.feeds)
      await embedder.session.run(embedder.feeds)
      if (secondary !== undefined) await secondary.session.run(secondary.feeds)
      sequence.push(performance.now() - t)
    }
  }
  for (const { session } of sessions) await session.release()
  return { perModel, sequence }
}

/** A square of 2x each photo's main face, at most 320 px, JPEG q80: what the kiosk sends. */
async function kioskCrops(pipeline: Pipeline, photos: Uint8Array[]): Promise<Uint8Array[]> {
  const crops: Uint8Array[] = []
  for (const photo of photos) {
    const { faces, width, height } = await pipeline.analyze(new Uint8Array(photo), MAIN)
    const box = faces[0]?.box
    if (box === undefined) continue
    const side = Math.min(2 * Math.max(box.width, box.height), width, height)
    const left = Math.round(Math.min(Math.max(box.x + box.width / 2 - side / 2, 0), width - side))
    const top = Math.round(Math.min(Math.max(box.y + box.height / 2 - side / 2, 0), height - side))
    const size = Math.round(Math.min(side, 320))
    const bytes = await sharp(photo)
      .extract({ left, top, width: Math.floor(side), height: Math.floor(side) })
      .resize(size, size)
      .jpeg({ quality: 80 })
      .toBuffer()
    crops.push(new Uint8Array(bytes))
  }
  return crops
}

async function throughput(photos: Uint8Array[], workers: number): Promise<number> {
  const pipeline = benchPipeline(workers)
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

async function stageLatency(
  pipeline: Pipeline,
  photos: Uint8Array[],
  options: AnalyzeOptions | ((frame: number) => AnalyzeOptions) = MAIN,
) {
  let frame = 0
  const stages: Record<string, number[]> = {
    queue: [],
    decode: [],
    detect: [],
    landmarks: [],
    align: [],
    embed: [],
    liveness: [],
    total: [],
    inference: [],
    roundTrip: [],
  }
  // Per frame, against the ONNX Runtime time of the models that same frame ran.
  const ratios: Record<'total' | 'roundTrip', number[]> = { total: [], roundTrip: [] }
  // Per frame: the work inside the worker that is not inference, and what the pool adds.
  const extra: Record<'nonInference' | 'pool', number[]> = { nonInference: [], pool: [] }
  let faces = 0
  for (let round = 0; round < rounds; round++) {
    for (const photo of photos) {
      const t = performance.now()
      const result = await pipeline.analyze(
        new Uint8Array(photo),
        typeof options === 'function' ? options(frame++) : options,
      )
      const roundTrip = performance.now() - t
      stages['roundTrip']?.push(roundTrip)
      ratios.total.push(result.timings.totalMs / result.timings.inferenceMs)
      ratios.roundTrip.push(roundTrip / result.timings.inferenceMs)
      extra.nonInference.push(result.timings.totalMs - result.timings.inferenceMs)
      extra.pool.push(roundTrip - result.timings.totalMs)
      faces += result.faces.length
      stages['queue']?.push(result.queueMs)
      stages['decode']?.push(result.timings.decodeMs)
      stages['detect']?.push(result.timings.detectMs)
      stages['landmarks']?.push(result.timings.landmarksMs)
      stages['align']?.push(result.timings.alignMs)
      stages['embed']?.push(result.timings.embedMs)
      stages['liveness']?.push(result.timings.livenessMs)
      stages['total']?.push(result.timings.totalMs)
      stages['inference']?.push(result.timings.inferenceMs)
    }
  }
  return { stages, ratios, extra, faces }
}

type Role = 'detector' | 'landmarks' | 'embedder' | 'liveness'

/** Which timing bucket each pipeline role's inference goes to. */
const BUCKET: Record<ModelRole, Role> = {
  detector: 'detector',
  fallbackDetector: 'detector',
  landmarks: 'landmarks',
  embedder: 'embedder',
  secondaryEmbedder: 'embedder',
  liveness: 'liveness',
  eyes: 'liveness',
  smallDetector: 'detector',
}

/**
 * The frames through `analyzeFrame` in this thread, with sessions created as the worker creates
 * them and each role's ONNX Runtime time kept apart: per frame, the work outside inference of
 * each stage.
 */
async function inProcessStages(photos: Uint8Array[], manifest: ModelManifest) {
  const inference: Record<Role, number> = { detector: 0, landmarks: 0, embedder: 0, liveness: 0 }
  const runner = async (model: ManifestModel, role: ModelRole): Promise<ModelRunner> => {
    const bucket = BUCKET[role]
    return createOnnxRunner(DEFAULT_MODELS_DIR, model, (ms) => {
      inference[bucket] += ms
    })
  }
  const { models } = await buildFaceModels(manifest, runner)
  const buffers = createFrameBuffers()
  const options = { mode: 'main', maxFaces: 1 } as const
  for (const photo of photos.slice(0, 5)) await analyzeFrame(photo, models, options, limits, buffers)
  const rows: Record<string, number[]> = {
    'decode (sharp)': [],
    'detect, outside ONNX Runtime (input tensor, decoding)': [],
    'landmarks, outside ONNX Runtime (crops, face picking)': [],
    'align (every embedder crop)': [],
    'embed, outside ONNX Runtime': [],
    'quality and the rest': [],
    'all work outside ONNX Runtime': [],
    'ONNX Runtime': [],
    'total / ONNX Runtime (per frame)': [],
  }
  const push = (row: string, value: number): void => {
    rows[row]?.push(value)
  }
  for (let round = 0; round < rounds; round++) {
    for (const photo of photos) {
      inference.detector = 0
      inference.landmarks = 0
      inference.embedder = 0
      const { timings: t } = await analyzeFrame(new Uint8Array(photo), models, options, limits, buffers)
      const onnx = inference.detector + inference.landmarks + inference.embedder
      push('decode (sharp)', t.decodeMs)
      push('detect, outside ONNX Runtime (input tensor, decoding)', t.detectMs - inference.detector)
      push('landmarks, outside ONNX Runtime (crops, face picking)', t.landmarksMs - inference.landmarks)
      push('align (every embedder crop)', t.alignMs)
      push('embed, outside ONNX Runtime', t.embedMs - inference.embedder)
      push(
        'quality and the rest',
        t.totalMs - t.decodeMs - t.detectMs - t.landmarksMs - t.alignMs - t.embedMs,
      )
      push('all work outside ONNX Runtime', t.totalMs - onnx)
      push('ONNX Runtime', onnx)
      push('total / ONNX Runtime (per frame)', t.totalMs / onnx)
    }
  }
  return rows
}

const photos = await loadPhotos()
const manifest = await loadManifest(DEFAULT_MODELS_DIR)

if (values['in-process']) {
  const rows = await inProcessStages(photos, manifest)
  process.stdout.write(
    table(
      ['in-process, per frame', 'p50 ms', 'p99 ms'],
      Object.entries(rows).map(([row, v]) => [row, percentile(v, 50), percentile(v, 99)]),
    ) + '\n\n',
  )
  process.stdout.write(
    JSON.stringify({
      bench: 'pipeline-in-process',
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
      images: photos.length,
      rounds,
      perFrameMs: Object.fromEntries(Object.entries(rows).map(([row, v]) => [row, summarize(v)])),
    }) + '\n',
  )
} else {
  await poolReport(photos, manifest)
}

async function poolReport(photos: Uint8Array[], manifest: ModelManifest): Promise<void> {
  const roles = manifest.pipeline
  // LFW's 250 px photos start at the small detector (models.md, "The per-frame pipeline").
  const used = [
    roles.smallDetector ?? roles.detector,
    roles.landmarks,
    roles.embedder,
    ...(roles.secondaryEmbedder === undefined ? [] : [roles.secondaryEmbedder.model]),
  ].map((id) => findModel(manifest, id))

  // Single worker, sequential: per-stage latency inside the worker and the round trip.
  const single = benchPipeline(1)
  await single.ready
  for (const photo of photos.slice(0, 5))
    await single.analyze(new Uint8Array(photo), { mode: 'main', maxFaces: 1 })
  const { stages, ratios, extra, faces } = await stageLatency(single, photos)
  // Kiosk-like crops: a square of 2x the face found in each photo, at most 320 px, JPEG q80, as
  // the kiosk sends them; analysed as a stream asks (all faces, liveness and eyes).
  const crops = await kioskCrops(single, photos)
  for (const crop of crops.slice(0, 5)) await single.analyze(new Uint8Array(crop), STREAM)
  const kiosk = await stageLatency(single, crops, STREAM)
  // Liveness `report` mode (the default): a stream scores liveness on every other frame.
  const reportMode = await stageLatency(single, crops, (frame) => ({ ...STREAM, liveness: frame % 2 === 0 }))
  await single.close()

  const { perModel: bare, sequence } = await bareInference(used, photos.length * rounds)
  const cropModels = [
    roles.smallDetector ?? roles.detector,
    roles.landmarks,
    roles.embedder,
    ...(roles.liveness === undefined ? [] : [roles.liveness]),
    ...(roles.eyes === undefined ? [] : [roles.eyes]),
  ].map((id) => findModel(manifest, id))
  const { perModel: cropBare, sequence: cropSequence } = await bareInference(
    cropModels,
    crops.length * rounds,
    true,
  )
  const kioskP50 = (stage: string): number => percentile(kiosk.stages[stage] ?? [], 50)
  const kioskReport = {
    crops: crops.length,
    meanBytes: Math.round(crops.reduce((sum, c) => sum + c.byteLength, 0) / Math.max(1, crops.length)),
    facesFound: kiosk.faces,
    models: cropModels.map((m) => m.id),
    stagesMs: Object.fromEntries(Object.entries(kiosk.stages).map(([stage, v]) => [stage, summarize(v)])),
    bareInferenceMs: Object.fromEntries(Object.entries(cropBare).map(([id, v]) => [id, summarize(v)])),
    bareSequenceMs: summarize(cropSequence),
    ratioPipelineToOwnInference: {
      totalP50OfFrames: percentile(kiosk.ratios.total, 50),
      totalP99OfFrames: percentile(kiosk.ratios.total, 99),
      roundTripP50OfFrames: percentile(kiosk.ratios.roundTrip, 50),
      roundTripP99OfFrames: percentile(kiosk.ratios.roundTrip, 99),
    },
    ratioPipelineToBare: kioskP50('total') / percentile(cropSequence, 50),
    reportMode: {
      totalMs: summarize(reportMode.stages['total'] ?? []),
      roundTripMs: summarize(reportMode.stages['roundTrip'] ?? []),
      ratioTotalP50OfFrames: percentile(reportMode.ratios.total, 50),
    },
  }
  const bareP50 = percentile(sequence, 50)
  const p50 = (stage: string): number => percentile(stages[stage] ?? [], 50)
  // The bar: pipeline time per frame / ONNX Runtime time of the models that frame ran (the landmark
  // net twice, the SSD detector too when the tiny one is unsure), both for the work inside the
  // worker and for the round trip through the pool. Reported two ways: p50 of the times over p50
  // of the inference, and p50 of the per-frame ratios.
  const honest = {
    totalOverInference: {
      ofP50s: p50('total') / p50('inference'),
      p50OfFrames: percentile(ratios.total, 50),
      p99OfFrames: percentile(ratios.total, 99),
    },
    roundTripOverInference: {
      ofP50s: p50('roundTrip') / p50('inference'),
      p50OfFrames: percentile(ratios.roundTrip, 50),
      p99OfFrames: percentile(ratios.roundTrip, 99),
    },
  }
  const overheadMs = { nonInference: summarize(extra.nonInference), pool: summarize(extra.pool) }

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
    pipelineRoundTripP50Ms: p50('roundTrip'),
    ratioPipelineToOwnInference: honest,
    overheadMs,
    ratioPipelineToBare: p50('roundTrip') / bareP50,
    scaling,
    kiosk: kioskReport,
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
        [
          `sequence: detector, landmarks x2, ${used.length > 3 ? 'both embedders' : 'embedder'}`,
          percentile(sequence, 50),
          percentile(sequence, 99),
        ],
      ],
    ) + '\n\n',
  )
  process.stdout.write(
    table(
      [
        'pipeline time / ONNX Runtime time of the same frames',
        'p50s ratio',
        'p50 of frames',
        'p99 of frames',
      ],
      [
        [
          'in-worker total',
          honest.totalOverInference.ofP50s,
          honest.totalOverInference.p50OfFrames,
          honest.totalOverInference.p99OfFrames,
        ],
        [
          'round trip through the pool',
          honest.roundTripOverInference.ofP50s,
          honest.roundTripOverInference.p50OfFrames,
          honest.roundTripOverInference.p99OfFrames,
        ],
      ],
    ) +
      `\n(bar: 1.5x) per frame p50: ${round(overheadMs.nonInference.p50)} ms of work inside the worker ` +
      `outside ONNX Runtime, ${round(overheadMs.pool.p50)} ms added by the pool\n` +
      `pipeline round trip p50 ${round(p50('roundTrip'))} ms / bare ONNX sequence p50 ${round(bareP50)} ms = ` +
      `${round(report.ratioPipelineToBare)}x (the bare sequence leaves out the retries at 416 px and with the SSD, and runs warm)\n\n`,
  )
  process.stdout.write(
    table(
      [
        `kiosk-like crops (${String(crops.length)}, mean ${String(kioskReport.meanBytes)} B), as a stream`,
        'p50 ms',
        'p99 ms',
      ],
      [
        ...Object.entries(kiosk.stages).map(([stage, v]): [string, number, number] => [
          stage,
          percentile(v, 50),
          percentile(v, 99),
        ]),
        ...Object.entries(cropBare).map(([id, v]): [string, number, number] => [
          `bare ${id}`,
          percentile(v, 50),
          percentile(v, 99),
        ]),
        [
          'bare sequence: small detector, landmarks x2, embedder, liveness, eyes x2',
          percentile(cropSequence, 50),
          percentile(cropSequence, 99),
        ],
        [
          'in-worker total / own ONNX time (per frame)',
          kioskReport.ratioPipelineToOwnInference.totalP50OfFrames,
          kioskReport.ratioPipelineToOwnInference.totalP99OfFrames,
        ],
        [
          'liveness on every other frame (report mode): in-worker total',
          percentile(reportMode.stages['total'] ?? [], 50),
          percentile(reportMode.stages['total'] ?? [], 99),
        ],
        [
          'round trip / own ONNX time (per frame)',
          kioskReport.ratioPipelineToOwnInference.roundTripP50OfFrames,
          kioskReport.ratioPipelineToOwnInference.roundTripP99OfFrames,
        ],
      ],
    ) + `\n(bars: crop p50 <= 25 ms of one core; within 1.3x of the ONNX time the frame runs)\n\n`,
  )
  process.stdout.write(
    table(
      ['workers', 'images/s', 'speedup'],
      scaling.map((s) => [s.workers, s.imagesPerSecond, s.speedup]),
    ) + '\n\n',
  )
  process.stdout.write(JSON.stringify(report) + '\n')
}
