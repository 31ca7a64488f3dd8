/**
 * npm run bench:rerank — what fusing two embedders costs a gallery search. Two real galleries
 * (SQLite store + HNSW index, server/gallery) hold the same identities: one with 128-d embeddings
 * (dlib's ResNet alone), one with the default fused layout (128 + 1,024 values; the index holds
 * the 128-d part and each search re-ranks its nearest faces by the whole embedding, read and
 * decrypted from the store). Reports p50/p99 of `recognize` for both, their ratio, and whether
 * the fused search put the true identity first. Prints a table, then one JSON object.
 *
 *   npm run bench:rerank -- [--sizes 1000,10000] [--queries 500] [--seed 1]
 *
 * The vectors are random unit vectors per identity with noise per probe (the gallery's cost does
 * not depend on what the numbers are). Stores are written under /dev/shm when it exists, so the
 * build is not bound by fsync; searches read through SQLite's page cache either way.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseConfig } from '../server/config.js'
import { createGallery, type Gallery } from '../server/gallery/index.js'
import { createLogger } from '../server/logger.js'
import {
  layoutFromManifest,
  singleLayout,
  type EmbeddingLayout,
} from '../server/pipeline/embedding-layout.js'
import { DEFAULT_MODELS_DIR } from '../server/pipeline/index.js'
import { loadManifest } from '../server/pipeline/manifest.js'
import { percentile, round, summarize, table } from './stats.js'

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000' },
    queries: { type: 'string', default: '500' },
    seed: { type: 'string', default: '1' },
  },
})
const sizes = values.sizes.split(',').map(Number)
const queryCount = Number(values.queries)
for (const n of [...sizes, queryCount]) {
  if (!Number.isInteger(n) || n < 1) throw new Error('--sizes and --queries must be positive integers')
}

const config = parseConfig({})
const fused = layoutFromManifest(await loadManifest(DEFAULT_MODELS_DIR))
if (fused.parts.length < 2) throw new Error('the default manifest has no secondary embedder to measure')
const single = singleLayout(fused.parts[0]?.dim ?? 128, 'single')
const logger = createLogger({ level: 'warn' })
const actor = { sub: 'bench' }

let state = Number(values.seed) >>> 0 || 1
function uniform(): number {
  // xorshift32: reproducible vectors for a given --seed.
  state ^= state << 13
  state ^= state >>> 17
  state ^= state << 5
  return (state >>> 0) / 2 ** 32
}
function normal(): number {
  return Math.sqrt(-2 * Math.log(uniform() || 1e-12)) * Math.cos(2 * Math.PI * uniform())
}
function unitVector(dim: number): Float32Array {
  const v = Float32Array.from({ length: dim }, normal)
  const norm = Math.hypot(...v)
  return v.map((x) => x / norm)
}
/** `base` plus noise, renormalised per part of `layout`. */
function noisy(base: Float32Array, layout: EmbeddingLayout, amount: number): Float32Array {
  const out = new Float32Array(base.length)
  let start = 0
  for (const part of layout.parts) {
    const noise = unitVector(part.dim)
    let sum = 0
    for (let i = 0; i < part.dim; i++) {
      const value = (base[start + i] ?? 0) + amount * Math.sqrt(part.weight) * (noise[i] ?? 0)
      out[start + i] = value
      sum += value * value
    }
    const scale = Math.sqrt(part.weight / sum)
    for (let i = start; i < start + part.dim; i++) out[i] = (out[i] ?? 0) * scale
    start += part.dim
  }
  return out
}
function identityVector(layout: EmbeddingLayout): Float32Array {
  const out = new Float32Array(layout.dim)
  let start = 0
  for (const part of layout.parts) {
    out.set(
      unitVector(part.dim).map((x) => x * Math.sqrt(part.weight)),
      start,
    )
    start += part.dim
  }
  return out
}

const scratch = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()

async function build(
  layout: EmbeddingLayout,
  bases: Float32Array[],
): Promise<{ gallery: Gallery; ids: string[]; dir: string }> {
  const dir = mkdtempSync(join(scratch, 'facewire-rerank-'))
  const gallery = createGallery({
    dataDir: dir,
    embeddingKey: randomBytes(32),
    logger,
    layout,
    hnsw: config.hnsw,
    policy: config.match,
  })
  const ids: string[] = []
  for (const [i, base] of bases.entries()) {
    const identity = await gallery.createIdentity('bench', { name: `person ${String(i)}` }, actor)
    await gallery.addFace('bench', identity.id, { embedding: noisy(base, layout, 0.3), quality: 1 }, actor)
    ids.push(identity.id)
  }
  return { gallery, ids, dir }
}

function measure(gallery: Gallery, ids: string[], probes: { who: number; embedding: Float32Array }[]) {
  for (const probe of probes.slice(0, 50)) gallery.recognize('bench', probe.embedding)
  const ms: number[] = []
  let top1 = 0
  for (const probe of probes) {
    const t = performance.now()
    const { candidates } = gallery.recognize('bench', probe.embedding)
    ms.push(performance.now() - t)
    if (candidates[0]?.identity.id === ids[probe.who]) top1++
  }
  return { ms, top1: top1 / probes.length }
}

const rows: (string | number)[][] = []
const results: unknown[] = []
for (const size of sizes) {
  const bases = Array.from({ length: size }, () => identityVector(fused))
  const whoes = Array.from({ length: queryCount }, () => Math.floor(uniform() * size))
  const fusedProbes = whoes.map((who) => ({ who, embedding: noisy(bases[who] as Float32Array, fused, 0.3) }))
  // The single-model gallery sees the same identities' first parts, renormalised.
  const firstPart = (v: Float32Array): Float32Array => {
    const part = v.slice(0, single.dim)
    const norm = Math.hypot(...part)
    return part.map((x) => x / norm)
  }
  const singleProbes = fusedProbes.map(({ who, embedding }) => ({ who, embedding: firstPart(embedding) }))
  let t = performance.now()
  const a = await build(single, bases.map(firstPart))
  const singleBuildS = (performance.now() - t) / 1000
  t = performance.now()
  const b = await build(fused, bases)
  const fusedBuildS = (performance.now() - t) / 1000
  // Alternate the two, twice, so drift on a shared machine hits both.
  const first = measure(a.gallery, a.ids, singleProbes)
  const second = measure(b.gallery, b.ids, fusedProbes)
  const third = measure(a.gallery, a.ids, singleProbes)
  const fourth = measure(b.gallery, b.ids, fusedProbes)
  const singleMs = [...first.ms, ...third.ms]
  const fusedMs = [...second.ms, ...fourth.ms]
  const ratio = percentile(fusedMs, 50) / percentile(singleMs, 50)
  rows.push([
    size,
    percentile(singleMs, 50),
    percentile(singleMs, 99),
    percentile(fusedMs, 50),
    percentile(fusedMs, 99),
    ratio,
    round(fourth.top1, 3),
  ])
  results.push({
    size,
    singleMs: summarize(singleMs),
    fusedMs: summarize(fusedMs),
    fusedOverSingleP50: ratio,
    fusedTop1: fourth.top1,
    singleTop1: third.top1,
    buildSeconds: { single: singleBuildS, fused: fusedBuildS },
  })
  for (const g of [a, b]) {
    await g.gallery.close()
    rmSync(g.dir, { recursive: true, force: true })
  }
}

process.stdout.write(
  table(
    [
      'identities',
      'single p50 ms',
      'single p99 ms',
      'fused p50 ms',
      'fused p99 ms',
      'fused / single',
      'fused top-1',
    ],
    rows,
  ) + '\n\n',
)
process.stdout.write(
  JSON.stringify({
    bench: 'rerank',
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
    layout: fused.parts,
    queries: queryCount,
    encrypted: true,
    results,
  }) + '\n',
)
