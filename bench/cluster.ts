/**
 * npm run bench:cluster — cluster mode on the machine's PostgreSQL (a fresh database per part,
 * dropped after), each figure beside a baseline measured in the same run:
 *
 * 1. propagation: a face added on instance A -> searchable on instance B (two galleries on one
 *    database, each with its own pool and LISTEN connection), p50/p99, against one PostgreSQL
 *    round trip (SELECT 1).
 * 2. join: a new instance on a gallery of N identities (default 100000, one face each, 512-d):
 *    rebuilding its indexes from the rows against loading the shared snapshot another instance
 *    wrote (plus the rows a search reads).
 * 3. throughput: POST /api/v1/recognize with LFW photos on 1, 2 and 3 real servers sharing one
 *    database (requests spread evenly), results/s and the ratio to one server. This machine has
 *    few cores: more instances share them.
 * 4. event fan-out: a match decided on one server -> a watcher on another (over Redis), against a
 *    watcher on the deciding server itself.
 *
 *   npm run bench:cluster -- [--identities 100000] [--samples 200] [--seconds 15] [--parts propagation,join,throughput,events]
 *
 * Prints a table, then one JSON object on the last line.
 */
import { randomUUID } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { ApiError, createApiClient } from '../client/api-client.js'
import { mintToken } from '../server/auth.js'
import { parseConfig } from '../server/config.js'
import { toEmbeddingBlob } from '../server/gallery/embedding-crypto.js'
import { openGallery, type Gallery, type GalleryOptions } from '../server/gallery/index.js'
import { createLogger } from '../server/logger.js'
import { singleLayout } from '../server/pipeline/embedding-layout.js'
import { defaultFacesDir, parsePositive } from './args.js'
import { measureEventFanout } from './cluster-events.js'
import { requireBenchInputs, startBenchServer, stopBenchServer, type BenchServer } from './shared.js'
import { round, summarize, table } from './stats.js'

const { values } = parseArgs({
  options: {
    identities: { type: 'string', default: '100000' },
    samples: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '15' },
    parts: { type: 'string', default: 'propagation,join,throughput,events' },
    faces: { type: 'string', default: defaultFacesDir },
    'admin-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
  },
})
const identities = Math.round(parsePositive('identities', values.identities))
const samples = Math.round(parsePositive('samples', values.samples))
const seconds = parsePositive('seconds', values.seconds)
const parts = new Set(values.parts.split(',').map((part) => part.trim()))
const adminUrl = values['admin-url']
const lfwDir = join(values.faces, 'lfw-view1')
const DIM = 512
const MODEL = 'bench-model'
const SECRET = 'bench-cluster-secret-that-is-long-enough-0123456789'
const logger = createLogger({ level: 'silent' })
const config = parseConfig({ FACEWIRE_JWT_SECRET: SECRET })

/** A fresh database; returns its URL and a function that drops it. */
async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `facewire_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`
  const admin = async (text: string): Promise<void> => {
    const client = new pg.Client({ connectionString: adminUrl })
    await client.connect()
    try {
      await client.query(text)
    } finally {
      await client.end()
    }
  }
  await admin(`CREATE DATABASE ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) }
}

/** The first column of the first row of `text` on the database at `url`. */
async function queryOne(url: string, text: string): Promise<unknown> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows: found } = await client.query<Record<string, unknown>>(text)
    return Object.values(found[0] ?? {})[0]
  } finally {
    await client.end()
  }
}

/** A deterministic unit vector. */
function vector(seed: number): Float32Array {
  let state = seed * 2654435761
  const v = new Float32Array(DIM)
  for (let i = 0; i < DIM; i++) {
    state = (state * 1103515245 + 12345) >>> 0
    v[i] = state / 2 ** 32 - 0.5
  }
  const norm = Math.hypot(...v)
  return v.map((x) => x / norm)
}

async function galleryOn(url: string): Promise<{ gallery: Gallery; dataDir: string; ms: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'facewire-bench-cluster-'))
  const options: GalleryOptions = {
    dataDir,
    logger,
    layout: singleLayout(DIM, MODEL),
    hnsw: config.hnsw,
    policy: { ...config.match, threshold: 0.9 },
    cluster: { databaseUrl: url, pollMs: config.syncPollMs },
  }
  const started = performance.now()
  const gallery = await openGallery(options)
  return { gallery, dataDir, ms: performance.now() - started }
}

async function close(opened: { gallery: Gallery; dataDir: string }): Promise<void> {
  await opened.gallery.close()
  rmSync(opened.dataDir, { recursive: true, force: true })
}

const report: Record<string, unknown> = {}
const rows: (string | number)[][] = []

async function propagation(): Promise<void> {
  const db = await freshDatabase()
  const a = await galleryOn(db.url)
  const b = await galleryOn(db.url)
  const roundTrip: number[] = []
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  const lag: number[] = []
  const ack: number[] = []
  const actor = { sub: 'bench' }
  try {
    for (let i = 0; i < samples; i++) {
      let t = performance.now()
      await client.query('SELECT 1')
      roundTrip.push(performance.now() - t)
      const identity = await a.gallery.createIdentity('bench', { name: `p${String(i)}` }, actor)
      const probe = vector(1000 + i)
      // From the start of the write: B may hear the commit before A's caller does.
      t = performance.now()
      await a.gallery.addFace('bench', identity.id, { embedding: probe, quality: 1 }, actor)
      ack.push(performance.now() - t)
      for (;;) {
        const { decision } = b.gallery.recognize('bench', probe)
        if (decision.status === 'match' && decision.identity?.id === identity.id) break
        if (performance.now() - t > 10_000) throw new Error('no propagation within 10 s')
        await new Promise((resolve) => setImmediate(resolve))
      }
      lag.push(performance.now() - t)
    }
  } finally {
    await client.end()
    await close(a)
    await close(b)
    await db.drop()
  }
  const p = summarize(lag)
  const w = summarize(ack)
  const rt = summarize(roundTrip)
  report['propagation'] = {
    samples,
    p50Ms: round(p.p50),
    p99Ms: round(p.p99),
    writeAckP50Ms: round(w.p50),
    writeAckP99Ms: round(w.p99),
    roundTripP50Ms: round(rt.p50, 3),
  }
  rows.push([
    'write acknowledged on A (ms)',
    round(w.p50),
    round(w.p99),
    `${round(w.p50 / rt.p50, 1)}x a round trip`,
  ])
  rows.push([
    'searchable on B (ms, from the write)',
    round(p.p50),
    round(p.p99),
    `${round(p.p50 / w.p50, 2)}x the write`,
  ])
}

/** Writes `count` identities with one face each straight into the store's tables (clear embeddings). */
async function seed(url: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const at = new Date().toISOString()
  try {
    const batch = 2000
    for (let start = 0; start < count; start += batch) {
      const ids: string[] = []
      const faceIds: string[] = []
      const names: string[] = []
      const blobs: Buffer[] = []
      for (let i = start; i < Math.min(count, start + batch); i++) {
        const faceId = randomUUID()
        ids.push(randomUUID())
        faceIds.push(faceId)
        names.push(`p${String(i)}`)
        blobs.push(toEmbeddingBlob(vector(i), { org: 'bench', faceId }, undefined))
      }
      await client.query('BEGIN')
      await client.query(
        `INSERT INTO identities (id, org, name, created_at, updated_at)
         SELECT id, 'bench', name, $3, $3 FROM unnest($1::text[], $2::text[]) AS t(id, name)`,
        [ids, names, at],
      )
      await client.query(
        `INSERT INTO faces (id, identity_id, org, embedding, quality, model_id, created_at)
         SELECT f, i, 'bench', e, 1, $4, $5 FROM unnest($1::text[], $2::text[], $3::bytea[]) AS t(f, i, e)`,
        [faceIds, ids, blobs, MODEL, at],
      )
      await client.query('COMMIT')
    }
    await client.query(
      `INSERT INTO changes (org, kind, label, face_id, identity_id)
       SELECT org, 'add', label, id, identity_id FROM faces ORDER BY label`,
    )
  } finally {
    await client.end()
  }
}

async function joining(): Promise<void> {
  const db = await freshDatabase()
  try {
    // The schema first (an instance migrates), then the rows.
    await close(await galleryOn(db.url))
    let t = performance.now()
    await seed(db.url, identities)
    const seedS = (performance.now() - t) / 1000
    const databaseBytes = Number(
      (await queryOne(db.url, 'SELECT pg_database_size(current_database()) AS bytes')) ?? Number.NaN,
    )
    // Memory of one loaded instance (indexes plus the rows a search reads), from the process's
    // RSS around the first load (after a GC when node runs with --expose-gc, as the npm script does).
    const gc = (globalThis as { gc?: () => void }).gc
    gc?.()
    const rssBefore = process.memoryUsage().rss
    const first = await galleryOn(db.url)
    gc?.()
    const loadedMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20
    const rebuildS = first.ms / 1000
    t = performance.now()
    await first.gallery.snapshot()
    const shareS = (performance.now() - t) / 1000
    await close(first)
    const joined = await galleryOn(db.url)
    const snapshotS = joined.ms / 1000
    const from = joined.gallery.loadedFrom
    const probe = joined.gallery.recognize('bench', vector(7)).decision
    await close(joined)
    if (from !== 'snapshot' || probe.identity?.name !== 'p7')
      throw new Error(`join did not load the snapshot (${from})`)
    report['join'] = {
      identities,
      seedS: round(seedS, 1),
      rebuildS: round(rebuildS, 2),
      snapshotWriteS: round(shareS, 2),
      snapshotJoinS: round(snapshotS, 2),
      speedup: round(rebuildS / snapshotS, 1),
      loadedMiB: round(loadedMiB, 1),
      kibPerFace: round((loadedMiB * 1024) / identities, 2),
      databaseKibPerFace: round(databaseBytes / 1024 / identities, 2),
    }
    rows.push([
      `join ${String(identities)} identities (s)`,
      `rebuild ${String(round(rebuildS, 1))}`,
      `snapshot ${String(round(snapshotS, 1))}`,
      `${round(rebuildS / snapshotS, 1)}x faster from the shared snapshot`,
    ])
    rows.push([
      `memory of a loaded instance (MiB)`,
      round(loadedMiB, 1),
      '',
      `${round((loadedMiB * 1024) / identities, 2)} KiB per face`,
    ])
    rows.push([
      'database size (MiB)',
      round(databaseBytes / 2 ** 20, 1),
      '',
      `${round(databaseBytes / 1024 / identities, 2)} KiB per face`,
    ])
  } finally {
    await db.drop()
  }
}

async function throughput(): Promise<void> {
  requireBenchInputs('bench:cluster', lfwDir)
  const names = (await readdir(lfwDir))
    .filter((name) => !name.includes('.'))
    .sort()
    .slice(0, 20)
  const photos: Buffer[] = []
  for (const name of names) {
    const files = (await readdir(join(lfwDir, name))).filter((file) => file.endsWith('.jpg')).sort()
    if (files[0] !== undefined) photos.push(await readFile(join(lfwDir, name, files[0])))
  }
  const token = mintToken({
    org: 'bench',
    scopes: ['detect', 'enroll'],
    sub: 'bench',
    ttlSeconds: 3600,
    key: SECRET,
  })
  const results: { instances: number; perSecond: number; busy: number }[] = []
  for (const count of [1, 2, 3]) {
    const db = await freshDatabase()
    const servers: BenchServer[] = []
    try {
      for (let i = 0; i < count; i++) {
        servers.push(
          await startBenchServer({
            FACEWIRE_JWT_SECRET: SECRET,
            FACEWIRE_DATABASE_URL: db.url,
            FACEWIRE_WORKERS: '1',
          }),
        )
      }
      const apis = servers.map((server) => createApiClient({ baseUrl: server.baseUrl, token }))
      const first = apis[0]
      if (first === undefined) throw new Error('no server')
      for (const [i, photo] of photos.slice(0, 10).entries()) {
        const identity = await first.createIdentity({ name: names[i] ?? `p${String(i)}` })
        await first.addFace(identity.id, photo).catch(() => undefined)
      }
      let done = 0
      let busy = 0
      const deadline = performance.now() + seconds * 1000
      const worker = async (index: number): Promise<void> => {
        for (let n = index; performance.now() < deadline; n++) {
          const api = apis[n % apis.length]
          const photo = photos[n % photos.length]
          if (api === undefined || photo === undefined) return
          try {
            await api.recognize(photo)
            done++
          } catch (error) {
            // A full queue answers at once; count it and let the worker breathe.
            if (!(error instanceof ApiError) || error.code !== 'ERR_PIPELINE_BUSY') throw error
            busy++
            await new Promise((resolve) => setTimeout(resolve, 5))
          }
        }
      }
      // Two requests in flight per instance: enough to keep its one worker busy.
      await Promise.all(Array.from({ length: 2 * count }, (_, i) => worker(i)))
      results.push({ instances: count, perSecond: done / seconds, busy })
    } finally {
      for (const server of servers) await stopBenchServer(server)
      await db.drop()
    }
  }
  const one = results[0]?.perSecond ?? 1
  report['throughput'] = results.map((r) => ({
    ...r,
    perSecond: round(r.perSecond, 1),
    ratio: round(r.perSecond / one, 2),
  }))
  for (const r of results) {
    rows.push([
      `recognize, ${String(r.instances)} instance(s) (req/s)`,
      round(r.perSecond, 1),
      '',
      `${round(r.perSecond / one, 2)}x one instance`,
    ])
  }
}

async function events(): Promise<void> {
  const kit = join(values.faces, 'face_recognition-examples', 'kit_harington')
  const db = await freshDatabase()
  const servers: BenchServer[] = []
  try {
    const env = {
      FACEWIRE_JWT_SECRET: SECRET,
      FACEWIRE_DATABASE_URL: db.url,
      FACEWIRE_REDIS_URL: values['redis-url'],
      FACEWIRE_REDIS_PREFIX: `facewire-bench-${randomUUID().slice(0, 8)}:`,
      FACEWIRE_WORKERS: '1',
      FACEWIRE_STREAM_MAX_FPS: '1000',
    }
    servers.push(await startBenchServer(env), await startBenchServer(env))
    const [origin, watched] = servers
    if (origin === undefined || watched === undefined) throw new Error('no servers')
    // Both must reach Redis before the first sample.
    for (const server of servers) {
      for (;;) {
        const body = (await (await fetch(`${server.baseUrl}/ready`)).json()) as { status: string }
        if (body.status === 'ready') break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    const result = await measureEventFanout({
      origin: origin.baseUrl,
      watched: watched.baseUrl,
      token: (org, scopes) => mintToken({ org, scopes, sub: 'bench', ttlSeconds: 3600, key: SECRET }),
      enrollPhoto: await readFile(join(kit, '1.jpeg')),
      streamPhoto: await readFile(join(kit, '3.jpg')),
      samples: Math.min(samples, 100),
    })
    report['events'] = {
      samples: result.samples,
      missed: result.missed,
      acrossP50Ms: round(result.acrossMs.p50),
      acrossP99Ms: round(result.acrossMs.p99),
      localP50Ms: round(result.localMs.p50),
      localP99Ms: round(result.localMs.p99),
    }
    rows.push([
      'event: decision on A -> watcher on B (ms)',
      round(result.acrossMs.p50),
      round(result.acrossMs.p99),
      `${round(result.acrossMs.p50 / Math.max(0.01, result.localMs.p50), 2)}x a watcher on A (p50 ${String(round(result.localMs.p50))} ms)`,
    ])
  } finally {
    for (const server of servers) await stopBenchServer(server)
    await db.drop()
  }
}

if (parts.has('propagation')) await propagation()
if (parts.has('events')) await events()
if (parts.has('join')) await joining()
if (parts.has('throughput')) await throughput()
process.stdout.write(`${table(['measure', 'p50 / value', 'p99 / value', 'against the baseline'], rows)}\n`)
process.stdout.write(
  `${JSON.stringify({ bench: 'cluster', cpus: (await import('node:os')).cpus().length, ...report })}\n`,
)
