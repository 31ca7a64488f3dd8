/**
 * npm run bench:gallery — the per-organization HNSW index (server/gallery/hnsw-index.ts): recall@1
 * against exact search, p50/p99 search latency against an exact scan of the same vectors in the
 * same run, build time, memory per identity and snapshot save/load time, at several gallery sizes.
 * A sweep over M, efConstruction and ef picks the defaults: the lowest p50 latency with
 * recall@1 >= 0.99. Prints tables, then one JSON object on the last line.
 *
 * The vectors are synthetic 128-d unit vectors whose same-identity and different-identity cosine
 * distributions are fitted to those of the real embeddings (dlib ResNet through this pipeline, on
 * LFW View 1): the recorded statistics below, or measured again in this run with --real. Each
 * identity is enrolled with one face; queries are another face of an enrolled identity.
 *
 *   npm run bench:gallery -- [--sizes 10000,100000,1000000] [--queries 1000] [--sweep-size 100000]
 *     [--sweep-m 8,16,32,48] [--sweep-ef-construction 100,200] [--sweep-ef 32,64,128,256,512]
 *     [--params M,efConstruction,ef] [--real] [--real-pairs 250] [--seed 1]
 *
 * --params skips the choice; --sweep-size 0 skips the sweep (then --params, or the config
 * defaults, are used). The full run takes over an hour on 2 vCPUs, most of it building 1M.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { parsePairs } from '../server/cli/verification.js'
import { parseConfig } from '../server/config.js'
import { decide, searchDepth } from '../server/gallery/decide.js'
import {
  createIndexSet,
  loadSnapshot,
  type IndexParams,
  type OrgIndex,
} from '../server/gallery/hnsw-index.js'
import { createLogger } from '../server/logger.js'
import { layoutFromManifest, primaryPart } from '../server/pipeline/embedding-layout.js'
import { createPipeline, DEFAULT_MODELS_DIR } from '../server/pipeline/index.js'
import { loadManifest } from '../server/pipeline/manifest.js'
import type { Neighbour } from '../server/gallery/types.js'
import type { IdentityRef } from '../protocol/wire.js'
import { seededRandom } from '../test/helpers/random.js'
import { percentile, round, table } from './stats.js'

const DIM = 128
/** The server's defaults: decision policy (it fetches searchDepth(topK) neighbours) and HNSW. */
const DEFAULTS = parseConfig({})
/**
 * These are 128-d vectors like dlib's part of the embedding alone, so decisions use dlib's own FAR
 * 1e-3 threshold (docs/models.md); the server decides on fused scores after re-ranking the
 * index's neighbours (npm run bench:rerank measures that step).
 */
const DLIB_ALONE_THRESHOLD = 0.924
const POLICY = { ...DEFAULTS.match, threshold: DLIB_ALONE_THRESHOLD }
const K = searchDepth(POLICY.topK)
const RECALL_BAR = 0.99

// RSS deltas mean something only after a full collection.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000,1000000' },
    queries: { type: 'string', default: '1000' },
    'sweep-size': { type: 'string', default: '100000' },
    'sweep-m': { type: 'string', default: '8,16,32,48' },
    'sweep-ef-construction': { type: 'string', default: '100,200' },
    'sweep-ef': { type: 'string', default: '32,64,128,256,512' },
    params: { type: 'string' },
    real: { type: 'boolean', default: false },
    'real-pairs': { type: 'string', default: '250' },
    seed: { type: 'string', default: '1' },
    faces: { type: 'string', default: process.env['FACEWIRE_FACES'] ?? '../shared/faces' },
  },
})
const sizes = values.sizes.split(',').map(Number)
const queryCount = Number(values.queries)
const sweepSize = Number(values['sweep-size'])
const seed = Number(values.seed)
for (const [name, n] of [...sizes.map((s) => ['--sizes', s] as const), ['--queries', queryCount] as const]) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be positive integers`)
}
if (!Number.isInteger(sweepSize) || sweepSize < 0) throw new Error('--sweep-size must be an integer >= 0')
const list = (text: string): number[] => text.split(',').map(Number)
const SWEEP = {
  M: list(values['sweep-m']),
  efConstruction: list(values['sweep-ef-construction']),
  ef: list(values['sweep-ef']),
}

// ---------------------------------------------------------------------------------------------
// Cosine statistics of real embeddings

interface Moments {
  n: number
  mean: number
  std: number
  p1: number
  p99: number
}

interface PairStats {
  intra: Moments
  inter: Moments
}

/**
 * Measured with --real on 2026-11-22 (the first 250 same-person pairs of LFW View 1
 * pairsDevTrain: 431 images, all with a face; the default pipeline). Only these aggregates are
 * kept, no embedding.
 */
const RECORDED_REAL: PairStats & { source: string } = {
  source: 'recorded 2026-11-22: LFW View 1 pairsDevTrain, first 250 same pairs, 431 images',
  intra: { n: 250, mean: 0.9539, std: 0.0171, p1: 0.8977, p99: 0.9841 },
  inter: { n: 92225, mean: 0.8357, std: 0.034, p1: 0.754, p99: 0.9061 },
}

function moments(values: number[]): Moments {
  const n = values.length
  const mean = values.reduce((a, b) => a + b, 0) / n
  const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / n)
  return { n, mean, std, p1: percentile(values, 1), p99: percentile(values, 99) }
}

function dot(a: Float32Array, b: Float32Array, bOffset = 0): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[bOffset + i] as number)
  return s
}

const LAYOUT = layoutFromManifest(await loadManifest(DEFAULT_MODELS_DIR))

/** The part of an embedding the index holds, L2-normalised. */
function searchedPart(embedding: Float32Array): Float32Array {
  const part = primaryPart(embedding, LAYOUT).slice()
  const norm = Math.hypot(...part)
  return part.map((x) => x / norm)
}

/** Runs the real pipeline (2 workers) on images of the first same-person pairs of pairsDevTrain. */
async function measureRealStats(pairCount: number): Promise<PairStats & { source: string }> {
  const root = join(values.faces, 'lfw-view1')
  const { pairs } = parsePairs(await readFile(join(root, 'pairsDevTrain.txt'), 'utf8'))
  const same = pairs.filter((p) => p.same).slice(0, pairCount)
  const key = (m: { name: string; index: number }): string => `${m.name}/${m.index}.jpg`
  const keys = [...new Set(same.flatMap((p) => [key(p.a), key(p.b)]))]
  const pipeline = createPipeline({
    workers: 2,
    maxQueue: 8,
    taskTimeoutMs: 60_000,
    limits: { maxPixels: 40_000_000, maxSide: 10_000 },
    modelsDir: DEFAULT_MODELS_DIR,
    logger: createLogger({ level: 'warn' }),
  })
  const embeddings = new Map<string, Float32Array>()
  try {
    await pipeline.ready
    let next = 0
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let k = keys[next++]; k !== undefined; k = keys[next++]) {
          const analysis = await pipeline.analyze(await readFile(join(root, k)), {
            mode: 'main',
            maxFaces: 1,
          })
          const embedding = analysis.faces[0]?.embedding
          // The index holds the first (dlib) part of a fused embedding: its statistics matter.
          if (embedding !== undefined) embeddings.set(k, searchedPart(embedding))
        }
      }),
    )
  } finally {
    await pipeline.close()
  }
  const intra: number[] = []
  for (const p of same) {
    const a = embeddings.get(key(p.a))
    const b = embeddings.get(key(p.b))
    if (a !== undefined && b !== undefined) intra.push(dot(a, b))
  }
  const found = [...embeddings.entries()]
  const inter: number[] = []
  for (let i = 0; i < found.length; i++) {
    for (let j = i + 1; j < found.length; j++) {
      const [ka, a] = found[i] ?? ['', new Float32Array(DIM)]
      const [kb, b] = found[j] ?? ['', new Float32Array(DIM)]
      if (ka.split('/')[0] !== kb.split('/')[0]) inter.push(dot(a, b))
    }
  }
  return {
    source: `measured now: LFW View 1 pairsDevTrain, ${intra.length} same pairs, ${embeddings.size} of ${keys.length} images with a face`,
    intra: moments(intra),
    inter: moments(inter),
  }
}

// ---------------------------------------------------------------------------------------------
// Synthetic embeddings

/** Seeded uniform [0, 1) (mulberry32) and standard normal (Box-Muller) generators. */
function createRandom(seedValue: number): { uniform: () => number; normal: () => number } {
  const uniform = seededRandom(seedValue)
  let spare = NaN
  const normal = (): number => {
    if (!Number.isNaN(spare)) {
      const value = spare
      spare = NaN
      return value
    }
    const r = Math.sqrt(-2 * Math.log(1 - uniform()))
    const theta = 2 * Math.PI * uniform()
    spare = r * Math.sin(theta)
    return r * Math.cos(theta)
  }
  return { uniform, normal }
}

/**
 * A face is normalise(e0 + g + s * w): every embedding shares a mean direction e0 (real ones sit
 * in a narrow cone, different people at cosine ~0.83); g is the identity's offset, Gaussian with
 * power-law variances k^-betweenDecay over the 127 other axes, total `between`; w is the face's
 * offset with total variance `within` over a power law of fixed effective dimension ~60 (the real
 * within-identity scatter's) on a shuffled axis order; s is a per-face log-normal scale
 * (spread `withinSpread`), since some photos of a person differ much more than others.
 */
interface SyntheticModel {
  between: number
  betweenDecay: number
  within: number
  withinSpread: number
}

const WITHIN_DECAY = 0.6

function powerLaw(decay: number, total: number): Float64Array {
  const raw = Array.from({ length: DIM - 1 }, (_, k) => (k + 1) ** -decay)
  const sum = raw.reduce((a, b) => a + b, 0)
  return Float64Array.from(raw, (x) => Math.sqrt((x / sum) * total))
}

function createGenerator(model: SyntheticModel, seedValue: number) {
  const betweenScale = powerLaw(model.betweenDecay, model.between)
  const withinSorted = powerLaw(WITHIN_DECAY, model.within)
  const shuffle = createRandom(0x5eed)
  const order = Array.from({ length: DIM - 1 }, (_, k) => k)
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(shuffle.uniform() * (i + 1))
    ;[order[i], order[j]] = [order[j] ?? 0, order[i] ?? 0]
  }
  const withinScale = Float64Array.from(order, (k) => withinSorted[k] ?? 0)
  const rng = createRandom(seedValue)
  const tau = model.withinSpread
  return {
    /** An identity's centre (not normalised). */
    centre(): Float64Array {
      const c = new Float64Array(DIM)
      c[0] = 1
      for (let k = 1; k < DIM; k++) c[k] = (betweenScale[k - 1] ?? 0) * rng.normal()
      return c
    },
    /** A face of that identity, L2-normalised, written into out at offset. */
    face(centre: Float64Array, out: Float32Array, offset = 0): void {
      const s = Math.exp(tau * rng.normal() - tau * tau)
      let norm = (centre[0] ?? 0) ** 2
      const v = new Float64Array(DIM)
      v[0] = centre[0] ?? 0
      for (let k = 1; k < DIM; k++) {
        const x = (centre[k] ?? 0) + s * (withinScale[k - 1] ?? 0) * rng.normal()
        v[k] = x
        norm += x * x
      }
      const inv = 1 / Math.sqrt(norm)
      for (let k = 0; k < DIM; k++) out[offset + k] = (v[k] ?? 0) * inv
    },
  }
}

function syntheticStats(model: SyntheticModel, identities: number, seedValue: number): PairStats {
  const gen = createGenerator(model, seedValue)
  const faces = new Float32Array(identities * 2 * DIM)
  for (let i = 0; i < identities; i++) {
    const c = gen.centre()
    gen.face(c, faces, 2 * i * DIM)
    gen.face(c, faces, (2 * i + 1) * DIM)
  }
  const face = (i: number): Float32Array => faces.subarray(i * DIM, (i + 1) * DIM)
  const intra: number[] = []
  for (let i = 0; i < identities; i++) intra.push(dot(face(2 * i), faces, (2 * i + 1) * DIM))
  const inter: number[] = []
  const pick = createRandom(seedValue + 1)
  for (let p = 0; p < identities * 10; p++) {
    const i = Math.floor(pick.uniform() * identities)
    const j = (i + 1 + Math.floor(pick.uniform() * (identities - 1))) % identities
    inter.push(dot(face(2 * i), faces, 2 * j * DIM))
  }
  return { intra: moments(intra), inter: moments(inter) }
}

/**
 * Fits the model's four knobs to the target means and stds by repeated bisection, one knob per
 * statistic it mostly drives, on the same random draws each time (so the fit is deterministic).
 */
function calibrate(target: PairStats): { model: SyntheticModel; achieved: PairStats } {
  const model: SyntheticModel = { between: 0.15, betweenDecay: 0.8, within: 0.05, withinSpread: 0.3 }
  const evaluate = (): PairStats => syntheticStats(model, 2000, 12345)
  const knobs: {
    key: keyof SyntheticModel
    lo: number
    hi: number
    /** Positive when the knob must go down. */
    error: (s: PairStats) => number
  }[] = [
    { key: 'between', lo: 0.01, hi: 1, error: (s) => target.inter.mean - s.inter.mean },
    { key: 'within', lo: 0.001, hi: 0.5, error: (s) => target.intra.mean - s.intra.mean },
    { key: 'betweenDecay', lo: 0, hi: 3, error: (s) => s.inter.std - target.inter.std },
    { key: 'withinSpread', lo: 0, hi: 1.5, error: (s) => s.intra.std - target.intra.std },
  ]
  for (let pass = 0; pass < 4; pass++) {
    for (const knob of knobs) {
      let { lo, hi } = knob
      for (let step = 0; step < 18; step++) {
        model[knob.key] = (lo + hi) / 2
        if (knob.error(evaluate()) > 0) hi = model[knob.key]
        else lo = model[knob.key]
      }
      model[knob.key] = (lo + hi) / 2
    }
  }
  return { model, achieved: syntheticStats(model, 5000, 777) }
}

/** One face per identity (the gallery), and another face of `queries` enrolled identities. */
function createGallery(model: SyntheticModel, size: number, queries: number, seedValue: number) {
  const gen = createGenerator(model, seedValue)
  const pick = createRandom(seedValue ^ 0x9e3779b9)
  const queryOf = new Map<number, number>()
  while (queryOf.size < Math.min(queries, size)) {
    const id = Math.floor(pick.uniform() * size)
    if (!queryOf.has(id)) queryOf.set(id, queryOf.size)
  }
  const vectors = new Float32Array(size * DIM)
  const queryVectors = new Float32Array(queryOf.size * DIM)
  const queryIdentity = new Int32Array(queryOf.size)
  for (let id = 0; id < size; id++) {
    const centre = gen.centre()
    gen.face(centre, vectors, id * DIM)
    const q = queryOf.get(id)
    if (q !== undefined) {
      gen.face(centre, queryVectors, q * DIM)
      queryIdentity[q] = id
    }
  }
  const query = (q: number): Float32Array => queryVectors.subarray(q * DIM, (q + 1) * DIM)
  return { size, vectors, queries: Array.from({ length: queryOf.size }, (_, q) => query(q)), queryIdentity }
}

type Gallery = ReturnType<typeof createGallery>

// ---------------------------------------------------------------------------------------------
// Exact search (the baseline) and HNSW measurements

/** A plain scan over the flat vectors (what the server would do without an index): the best two. */
function exactTop2(vectors: Float32Array, size: number, q: Float32Array): [Neighbour, Neighbour] {
  let best = -1
  let bestSimilarity = -Infinity
  let second = -1
  let secondSimilarity = -Infinity
  for (let id = 0, offset = 0; id < size; id++, offset += DIM) {
    let s0 = 0
    let s1 = 0
    let s2 = 0
    let s3 = 0
    for (let k = 0; k < DIM; k += 4) {
      s0 += (q[k] as number) * (vectors[offset + k] as number)
      s1 += (q[k + 1] as number) * (vectors[offset + k + 1] as number)
      s2 += (q[k + 2] as number) * (vectors[offset + k + 2] as number)
      s3 += (q[k + 3] as number) * (vectors[offset + k + 3] as number)
    }
    const s = s0 + s1 + s2 + s3
    if (s > secondSimilarity) {
      if (s > bestSimilarity) {
        second = best
        secondSimilarity = bestSimilarity
        best = id
        bestSimilarity = s
      } else {
        second = id
        secondSimilarity = s
      }
    }
  }
  return [
    { label: best, similarity: bestSimilarity },
    { label: second, similarity: secondSimilarity },
  ]
}

/** One face per identity: the label is the identity. */
const identityOf = (label: number): IdentityRef => ({ id: String(label), name: '' })

function decisionOf(neighbours: Neighbour[]): string {
  const { decision } = decide(neighbours, identityOf, POLICY)
  return `${decision.status}:${decision.identity?.id ?? ''}`
}

interface Exact {
  top1: Int32Array
  decisions: string[]
  latencyMs: number[]
  /** Queries whose exact top-1 is the identity the query was drawn from. */
  selfTop1: number
}

function exactSearch(gallery: Gallery): Exact {
  const top1 = new Int32Array(gallery.queries.length)
  const decisions: string[] = []
  const latencyMs: number[] = []
  let selfTop1 = 0
  gallery.queries.forEach((q, i) => {
    const t = performance.now()
    const top2 = exactTop2(gallery.vectors, gallery.size, q)
    latencyMs.push(performance.now() - t)
    top1[i] = top2[0].label
    decisions.push(decisionOf(top2))
    if (top1[i] === gallery.queryIdentity[i]) selfTop1++
  })
  return { top1, decisions, latencyMs, selfTop1: selfTop1 / gallery.queries.length }
}

function buildIndex(gallery: Gallery, params: IndexParams) {
  gc()
  const rssBefore = process.memoryUsage.rss()
  const set = createIndexSet(params)
  const index = set.forOrg('bench')
  const t = performance.now()
  for (let id = 0; id < gallery.size; id++) index.add(id, gallery.vectors.subarray(id * DIM, (id + 1) * DIM))
  const buildMs = performance.now() - t
  gc()
  const rssDelta = process.memoryUsage.rss() - rssBefore
  // Small indexes fit in memory the allocator kept from earlier ones: no delta to read then.
  const rssBytesPerIdentity = rssDelta > 0 ? rssDelta / gallery.size : null
  return { set, index, buildMs, rssBytesPerIdentity }
}

function searchQuality(index: OrgIndex, gallery: Gallery, exact: Exact) {
  for (const q of gallery.queries.slice(0, 50)) index.search(q, K)
  const latencyMs: number[] = []
  let agree = 0
  let sameDecision = 0
  gallery.queries.forEach((q, i) => {
    const t = performance.now()
    const found = index.search(q, K)
    latencyMs.push(performance.now() - t)
    if (found[0]?.label === exact.top1[i]) agree++
    if (decisionOf(found) === exact.decisions[i]) sameDecision++
  })
  return {
    recallAt1: agree / gallery.queries.length,
    sameDecision: sameDecision / gallery.queries.length,
    p50Ms: percentile(latencyMs, 50),
    p99Ms: percentile(latencyMs, 99),
  }
}

/** Saves the index as a snapshot, reloads it with each ef, and measures each. */
function withSnapshot<T>(
  built: ReturnType<typeof buildIndex>,
  params: IndexParams,
  efs: number[],
  measure: (index: OrgIndex, ef: number) => T,
) {
  const dir = mkdtempSync(join(tmpdir(), 'facewire-bench-gallery-'))
  try {
    let t = performance.now()
    built.set.saveSnapshot(dir, 1)
    const saveMs = performance.now() - t
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
      orgs: { bytes: number }[]
    }
    const fileBytes = manifest.orgs[0]?.bytes ?? NaN
    const results: { ef: number; loadMs: number; result: T }[] = []
    for (const ef of efs) {
      t = performance.now()
      const loaded = loadSnapshot(dir, { ...params, ef })
      const loadMs = performance.now() - t
      if (!loaded.ok) throw new Error(`snapshot did not load: ${loaded.reason}`)
      results.push({ ef, loadMs, result: measure(loaded.set.forOrg('bench'), ef) })
    }
    return { saveMs, fileBytes, results }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// Run

const log = (line: string): void => {
  process.stderr.write(line + '\n')
}
const real = values.real ? await measureRealStats(Number(values['real-pairs'])) : RECORDED_REAL
const { model, achieved } = calibrate(real)
const fmt = (m: Moments): (string | number)[] => [
  m.n,
  m.mean.toFixed(4),
  m.std.toFixed(4),
  m.p1.toFixed(4),
  m.p99.toFixed(4),
]
process.stdout.write(
  `cosine similarity, real embeddings (${real.source}) vs synthetic\n` +
    table(
      ['pairs', 'n', 'mean', 'std', 'p1', 'p99'],
      [
        ['real same identity', ...fmt(real.intra)],
        ['synthetic same identity', ...fmt(achieved.intra)],
        ['real different identities', ...fmt(real.inter)],
        ['synthetic different identities', ...fmt(achieved.inter)],
      ],
    ) +
    `\nsynthetic model: ${JSON.stringify(Object.fromEntries((Object.entries(model) as [string, number][]).map(([k, v]) => [k, round(v, 4)])))}\n\n`,
)

interface Quality {
  recallAt1: number
  sameDecision: number
  p50Ms: number
  p99Ms: number
}

interface SweepRow extends Quality {
  M: number
  efConstruction: number
  ef: number
  buildS: number
}

const sweep: SweepRow[] = []
let sweepExactP50Ms = NaN
if (sweepSize > 0) {
  log(`sweep: ${sweepSize} identities, ${queryCount} queries`)
  const gallery = createGallery(model, sweepSize, queryCount, seed)
  const exact = exactSearch(gallery)
  sweepExactP50Ms = percentile(exact.latencyMs, 50)
  for (const M of SWEEP.M) {
    for (const efConstruction of SWEEP.efConstruction) {
      const params = { dim: DIM, M, efConstruction, ef: SWEEP.ef[0] ?? 32 }
      const built = buildIndex(gallery, params)
      const { results } = withSnapshot(built, params, SWEEP.ef, (index) =>
        searchQuality(index, gallery, exact),
      )
      for (const { ef, result } of results) {
        sweep.push({ M, efConstruction, ef, buildS: built.buildMs / 1000, ...result })
        log(`  M ${M} efC ${efConstruction} ef ${ef}: ${JSON.stringify(sweep.at(-1))}`)
      }
    }
  }
  process.stdout.write(
    `sweep at ${sweepSize} identities, ${queryCount} queries, k = ${K} (searchDepth(topK ${POLICY.topK})); ` +
      `exact scan p50 ${round(sweepExactP50Ms, 3)} ms\n` +
      table(
        ['M', 'efConstruction', 'ef', 'build s', 'recall@1', 'same decision', 'p50 ms', 'p99 ms'],
        sweep.map((r) => [
          r.M,
          r.efConstruction,
          r.ef,
          r.buildS,
          r.recallAt1.toFixed(3),
          r.sameDecision.toFixed(3),
          r.p50Ms.toFixed(3),
          r.p99Ms.toFixed(3),
        ]),
      ) +
      '\n\n',
  )
}

function choose(): { params: Omit<IndexParams, 'dim'>; why: string } {
  if (values.params !== undefined) {
    const [M, efConstruction, ef] = values.params.split(',').map(Number)
    return { params: { M: M ?? NaN, efConstruction: efConstruction ?? NaN, ef: ef ?? NaN }, why: '--params' }
  }
  const passing = sweep.filter((r) => r.recallAt1 >= RECALL_BAR).sort((a, b) => a.p50Ms - b.p50Ms)
  const best = passing[0]
  if (best !== undefined) {
    return {
      params: { M: best.M, efConstruction: best.efConstruction, ef: best.ef },
      why: `lowest p50 with recall@1 >= ${RECALL_BAR} at ${sweepSize} identities`,
    }
  }
  const closest = [...sweep].sort((a, b) => b.recallAt1 - a.recallAt1 || a.p50Ms - b.p50Ms)[0]
  if (closest === undefined) return { params: DEFAULTS.hnsw, why: 'the config defaults (no sweep)' }
  return {
    params: { M: closest.M, efConstruction: closest.efConstruction, ef: closest.ef },
    why: `nothing reached recall@1 ${RECALL_BAR} at ${sweepSize} identities: the highest recall`,
  }
}

const chosen = choose()
const chosenParams: IndexParams = { dim: DIM, ...chosen.params }
process.stdout.write(
  `chosen: M ${chosenParams.M}, efConstruction ${chosenParams.efConstruction}, ef ${chosenParams.ef} (${chosen.why})\n\n`,
)

interface SizeRow extends Quality {
  identities: number
  buildS: number
  insertsPerS: number
  /** Exact search: queries whose top-1 is their own identity, and the decisions it gives. */
  exactSelfTop1: number
  exactDecisions: Record<string, number>
  exactP50Ms: number
  exactP99Ms: number
  speedupP50: number
  fileBytesPerIdentity: number
  rssBytesPerIdentity: number | null
  saveS: number
  loadS: number
}

interface EfRow extends Quality {
  identities: number
  ef: number
}

const rows: SizeRow[] = []
const efRows: EfRow[] = []
for (const size of sizes) {
  log(`size ${size}: generating`)
  const gallery = createGallery(model, size, queryCount, seed + size)
  log(`size ${size}: exact search`)
  const exact = exactSearch(gallery)
  log(`size ${size}: building`)
  const built = buildIndex(gallery, chosenParams)
  // The chosen ef, and how recall and latency move with a larger one at this size.
  const efs = [chosenParams.ef, chosenParams.ef * 2, chosenParams.ef * 4]
  const snap = withSnapshot(built, chosenParams, efs, (index) => searchQuality(index, gallery, exact))
  const [measured] = snap.results
  if (measured === undefined) throw new Error('no measurement')
  for (const { ef, result } of snap.results) efRows.push({ identities: size, ef, ...result })
  const exactP50Ms = percentile(exact.latencyMs, 50)
  const exactDecisions: Record<string, number> = { match: 0, uncertain: 0, unknown: 0 }
  for (const d of exact.decisions) {
    const status = d.split(':')[0] ?? ''
    exactDecisions[status] = (exactDecisions[status] ?? 0) + 1 / exact.decisions.length
  }
  rows.push({
    identities: size,
    buildS: built.buildMs / 1000,
    insertsPerS: size / (built.buildMs / 1000),
    ...measured.result,
    exactSelfTop1: exact.selfTop1,
    exactDecisions,
    exactP50Ms,
    exactP99Ms: percentile(exact.latencyMs, 99),
    speedupP50: exactP50Ms / measured.result.p50Ms,
    fileBytesPerIdentity: snap.fileBytes / size,
    rssBytesPerIdentity: built.rssBytesPerIdentity,
    saveS: snap.saveMs / 1000,
    loadS: measured.loadMs / 1000,
  })
  log(`size ${size}: ${JSON.stringify(rows.at(-1))}`)
}

process.stdout.write(
  `M ${chosenParams.M}, efConstruction ${chosenParams.efConstruction}, ef ${chosenParams.ef}, k = ${K}, ` +
    `${queryCount} queries per size\n` +
    table(
      [
        'identities',
        'build s',
        'recall@1',
        'same decision',
        'HNSW p50 ms',
        'HNSW p99 ms',
        'exact p50 ms',
        'exact p99 ms',
        'exact/HNSW p50',
        'file B/id',
        'RSS B/id',
        'save s',
        'load s',
      ],
      rows.map((r) => [
        r.identities,
        r.buildS,
        r.recallAt1.toFixed(3),
        r.sameDecision.toFixed(3),
        r.p50Ms.toFixed(3),
        r.p99Ms.toFixed(3),
        r.exactP50Ms.toFixed(2),
        r.exactP99Ms.toFixed(2),
        Math.round(r.speedupP50),
        Math.round(r.fileBytesPerIdentity),
        r.rssBytesPerIdentity === null ? 'n/a' : Math.round(r.rssBytesPerIdentity),
        r.saveS,
        r.loadS,
      ]),
    ) +
    '\n\n' +
    'exact search on genuine queries (another face of an enrolled identity), default policy ' +
    `(threshold ${POLICY.threshold}, margin ${POLICY.margin})\n` +
    table(
      ['identities', 'top-1 is own identity', 'match', 'uncertain', 'unknown'],
      rows.map((r) => [
        r.identities,
        r.exactSelfTop1.toFixed(3),
        (r.exactDecisions['match'] ?? 0).toFixed(3),
        (r.exactDecisions['uncertain'] ?? 0).toFixed(3),
        (r.exactDecisions['unknown'] ?? 0).toFixed(3),
      ]),
    ) +
    '\n\n' +
    'the same indexes searched with a larger ef\n' +
    table(
      ['identities', 'ef', 'recall@1', 'same decision', 'p50 ms', 'p99 ms'],
      efRows.map((r) => [
        r.identities,
        r.ef,
        r.recallAt1.toFixed(3),
        r.sameDecision.toFixed(3),
        r.p50Ms.toFixed(3),
        r.p99Ms.toFixed(3),
      ]),
    ) +
    '\n\n',
)

const report = {
  bench: 'gallery',
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    memGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
  },
  dim: DIM,
  k: K,
  policy: POLICY,
  queries: queryCount,
  seed,
  real: { source: real.source, intra: real.intra, inter: real.inter },
  synthetic: { model, intra: achieved.intra, inter: achieved.inter },
  sweep: { identities: sweepSize, exactP50Ms: sweepExactP50Ms, rows: sweep },
  chosen: { ...chosen.params, why: chosen.why },
  sizes: rows,
  byEf: efRows,
}
process.stdout.write(JSON.stringify(report) + '\n')
