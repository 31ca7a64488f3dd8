/**
 * Per-organization HNSW indexes over L2-normalised face embeddings, and their snapshots on disk.
 * The indexes are a cache of the store: a snapshot that does not verify is refused, and the caller
 * rebuilds from the store instead.
 */
import { createHash, randomBytes } from 'node:crypto'
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs'
import { join } from 'node:path'
import hnswlib from 'hnswlib-node'
import { z } from 'zod'
import { FacewireError } from '../errors.js'
import { fsyncPath, sha256File, writeFileDurably } from './durable-files.js'
import type { Neighbour } from './types.js'

export interface IndexParams {
  /** Embedding dimension (128 for the default embedder). */
  dim: number
  /** Graph out-degree (hnswlib `M`); level 0 keeps twice as many links. */
  M: number
  /** Candidate list size while inserting; at least `M`. */
  efConstruction: number
  /** Candidate list size while searching; a search for k neighbours uses max(ef, k). */
  ef: number
}

/** One organization's index. Labels are the store's face labels (unsigned 32-bit integers). */
export interface OrgIndex {
  readonly org: string
  /** Live (not deleted) vectors. */
  readonly size: number
  /**
   * Adds a vector under `label`, growing the capacity (doubling) when full. A label that is live
   * already has its vector replaced; a deleted label comes back to life with the new vector. New
   * labels reuse the slots of deleted ones, so memory follows the peak live count.
   */
  add(label: number, vector: Float32Array): void
  /** Marks `label` deleted: it leaves search results at once. False when it is not live. */
  remove(label: number): boolean
  has(label: number): boolean
  /** Up to k nearest live vectors, best first. k larger than size is fine (clamped). Empty index -> []. */
  search(vector: Float32Array, k: number): Neighbour[]
}

export interface IndexSet {
  readonly params: IndexParams
  /** The organization's index, created empty on first use. */
  forOrg(org: string): OrgIndex
  get(org: string): OrgIndex | undefined
  /** Organizations with an index, sorted. */
  orgs(): string[]
  /**
   * Atomically writes every org's index plus a manifest (format version, seq, params, per org:
   * org, file, sha256, live count, labels) to dir. Index files get fresh names each time and the
   * manifest is renamed into place last, so a crash leaves the previous snapshot intact.
   */
  saveSnapshot(dir: string, seq: number): void
}

/** Capacity of a new organization's index; it doubles when full. */
export const INITIAL_CAPACITY = 1024

/** Name of the manifest inside a snapshot directory. */
export const MANIFEST_FILE = 'manifest.json'

const SNAPSHOT_FORMAT = 'facewire.hnsw-snapshot'
const SNAPSHOT_VERSION = 1
/** Per-org file names: sha256(org) hex, a per-save generation, never the raw org string. */
const INDEX_FILE_PATTERN = /^[0-9a-f]{64}\.[0-9a-f]{12}\.hnsw$/
const STALE_FILE_PATTERN = /^(?:[0-9a-f]{64}\.[0-9a-f]{12}\.hnsw(?:\.tmp)?|manifest\.json\.tmp)$/
const MAX_LABEL = 0xffff_ffff
/** hnswlib's file header: 6 size_t, 2 int32, 3 size_t, 1 double, 1 size_t. */
const HEADER_BYTES = 96
const RANDOM_SEED = 100

type Native = InstanceType<typeof hnswlib.HierarchicalNSW>

function invalid(option: keyof IndexParams, requirement: string, value: unknown): FacewireError {
  return new FacewireError(
    'ERR_CONFIG_INVALID',
    `invalid index parameter ${option}: ${requirement} (got ${String(value)})`,
    { details: { option } },
  )
}

function isInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value)
}

/** Checks index parameters; throws ERR_CONFIG_INVALID naming the first bad option. */
export function parseIndexParams(params: IndexParams): IndexParams {
  const { dim, M, efConstruction, ef } = params
  if (!isInt(dim) || dim < 1) throw invalid('dim', 'must be a positive integer', dim)
  if (!isInt(M) || M < 2 || M > 100) throw invalid('M', 'must be an integer between 2 and 100', M)
  if (!isInt(efConstruction) || efConstruction < M)
    throw invalid('efConstruction', `must be an integer at least M (${M})`, efConstruction)
  if (!isInt(ef) || ef < 1) throw invalid('ef', 'must be a positive integer', ef)
  return Object.freeze({ dim, M, efConstruction, ef })
}

function checkLabel(label: number): void {
  if (!isInt(label) || label < 0 || label > MAX_LABEL)
    throw new RangeError(`label must be an integer between 0 and ${MAX_LABEL} (got ${label})`)
}

/** hnswlib-node takes plain arrays; this also rejects wrong lengths and non-finite values. */
function toArray(vector: Float32Array, dim: number): number[] {
  if (vector.length !== dim) throw new RangeError(`vector must have ${dim} dimensions (got ${vector.length})`)
  const out = new Array<number>(dim)
  for (let i = 0; i < dim; i++) {
    const x = vector[i] ?? NaN
    if (!Number.isFinite(x)) throw new RangeError('vector values must be finite')
    out[i] = x
  }
  return out
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

function newNative(params: IndexParams, capacity: number): Native {
  // 'cosine' normalises each vector inside the addon (a copy it makes anyway), so similarities
  // stay exact cosines even when a caller's vector is slightly off unit length; on unit vectors
  // it returns the same neighbours as 'ip' at no measurable cost.
  const native = new hnswlib.HierarchicalNSW('cosine', params.dim)
  native.initIndex({
    maxElements: capacity,
    m: params.M,
    efConstruction: params.efConstruction,
    randomSeed: RANDOM_SEED,
    allowReplaceDeleted: true,
  })
  native.setEf(params.ef)
  return native
}

class HnswOrgIndex implements OrgIndex {
  readonly org: string
  readonly native: Native
  readonly live: Set<number>
  readonly #dim: number
  /** Deleted elements still holding a slot (reused by the next new labels). */
  #vacant: number

  constructor(org: string, native: Native, dim: number, live: Set<number>, vacant: number) {
    this.org = org
    this.native = native
    this.#dim = dim
    this.live = live
    this.#vacant = vacant
  }

  get size(): number {
    return this.live.size
  }

  /** Elements in the native index, deleted ones included. */
  get elements(): number {
    return this.live.size + this.#vacant
  }

  add(label: number, vector: Float32Array): void {
    checkLabel(label)
    const point = toArray(vector, this.#dim)
    if (this.live.has(label)) {
      this.native.addPoint(point, label, false)
      return
    }
    if (this.#vacant > 0) {
      // The label may still be in the graph, deleted (or its slot may have gone to another label).
      let revived = true
      try {
        this.native.unmarkDelete(label)
      } catch {
        revived = false
      }
      this.native.addPoint(point, label, !revived)
      this.#vacant--
    } else {
      const capacity = this.native.getMaxElements()
      if (this.native.getCurrentCount() >= capacity) this.native.resizeIndex(capacity * 2)
      this.native.addPoint(point, label, false)
    }
    this.live.add(label)
  }

  remove(label: number): boolean {
    if (!this.live.has(label)) return false
    this.native.markDelete(label)
    this.live.delete(label)
    this.#vacant++
    return true
  }

  has(label: number): boolean {
    return this.live.has(label)
  }

  search(vector: Float32Array, k: number): Neighbour[] {
    if (!isInt(k) || k < 0) throw new RangeError(`k must be a non-negative integer (got ${k})`)
    const point = toArray(vector, this.#dim)
    const n = Math.min(k, this.live.size)
    if (n === 0) return []
    const { neighbors, distances } = this.native.searchKnn(point, n)
    const out: Neighbour[] = []
    for (let i = 0; i < neighbors.length; i++) {
      const similarity = 1 - (distances[i] ?? 2)
      out.push({ label: neighbors[i] ?? -1, similarity: Math.max(-1, Math.min(1, similarity)) })
    }
    return out
  }
}

const manifestOrgSchema = z.strictObject({
  org: z.string().min(1),
  file: z.string().regex(INDEX_FILE_PATTERN),
  bytes: z.number().int().min(HEADER_BYTES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  live: z.number().int().min(0),
  elements: z.number().int().min(0),
  labels: z.array(z.number().int().min(0).max(MAX_LABEL)),
})

const manifestSchema = z.strictObject({
  format: z.literal(SNAPSHOT_FORMAT),
  version: z.literal(SNAPSHOT_VERSION),
  seq: z.number().int().min(0),
  createdAt: z.string(),
  space: z.literal('cosine'),
  params: z.strictObject({
    dim: z.number().int(),
    M: z.number().int(),
    efConstruction: z.number().int(),
    ef: z.number().int(),
  }),
  orgs: z.array(manifestOrgSchema),
  /** sha256 of the JSON of every other field, in this order. */
  checksum: z.string(),
})

type Manifest = z.infer<typeof manifestSchema>

function withChecksum(body: Omit<Manifest, 'checksum'>): Manifest {
  return { ...body, checksum: sha256Hex(JSON.stringify(body)) }
}

function createSet(params: IndexParams, indexes: Map<string, HnswOrgIndex>): IndexSet {
  function saveSnapshot(dir: string, seq: number): void {
    if (!isInt(seq) || seq < 0) throw new RangeError(`seq must be a non-negative integer (got ${seq})`)
    mkdirSync(dir, { recursive: true })
    const generation = randomBytes(6).toString('hex')
    const written: string[] = []
    let committed = false
    try {
      const orgs = [...indexes.values()]
        .sort((a, b) => (a.org < b.org ? -1 : a.org > b.org ? 1 : 0))
        .map((index) => {
          const file = `${sha256Hex(index.org)}.${generation}.hnsw`
          const tmp = join(dir, file + '.tmp')
          written.push(tmp, join(dir, file))
          index.native.writeIndexSync(tmp)
          fsyncPath(tmp)
          // Hashed after the write, from disk: the manifest vouches for the bytes that are there.
          const { sha256, bytes } = sha256File(tmp)
          renameSync(tmp, join(dir, file))
          return {
            org: index.org,
            file,
            bytes,
            sha256,
            live: index.size,
            elements: index.elements,
            labels: [...index.live].sort((a, b) => a - b),
          }
        })
      const manifest = withChecksum({
        format: SNAPSHOT_FORMAT,
        version: SNAPSHOT_VERSION,
        seq,
        createdAt: new Date().toISOString(),
        space: 'cosine',
        params: { ...params },
        orgs,
      })
      const tmp = join(dir, MANIFEST_FILE + '.tmp')
      written.push(tmp)
      writeFileDurably(tmp, JSON.stringify(manifest))
      renameSync(tmp, join(dir, MANIFEST_FILE))
      committed = true
      fsyncPath(dir)
    } catch (error) {
      if (!committed) for (const path of written) rmSync(path, { force: true })
      throw error
    }
    // Committed: files of older snapshots (and tmp files of crashed saves) can go.
    const keep = new Set(
      readdirSync(dir).filter((name) => name.endsWith(`.${generation}.hnsw`) || name === MANIFEST_FILE),
    )
    for (const name of readdirSync(dir)) {
      if (!keep.has(name) && STALE_FILE_PATTERN.test(name)) rmSync(join(dir, name), { force: true })
    }
  }

  return {
    params,
    forOrg(org) {
      let index = indexes.get(org)
      if (index === undefined) {
        if (typeof org !== 'string' || org.length === 0) throw new TypeError('org must be a non-empty string')
        index = new HnswOrgIndex(org, newNative(params, INITIAL_CAPACITY), params.dim, new Set(), 0)
        indexes.set(org, index)
      }
      return index
    },
    get: (org) => indexes.get(org),
    orgs: () => [...indexes.keys()].sort(),
    saveSnapshot,
  }
}

/** An empty set of per-organization indexes; throws ERR_CONFIG_INVALID on bad params. */
export function createIndexSet(params: IndexParams): IndexSet {
  return createSet(parseIndexParams(params), new Map())
}

/**
 * Checks what hnswlib would trust in a file's header against the manifest and params: a defence
 * in depth behind the sha256 (which already proves these are the bytes saveSnapshot wrote).
 */
function checkHeader(path: string, entry: Manifest['orgs'][number], params: IndexParams): string | undefined {
  const header = Buffer.alloc(HEADER_BYTES)
  const fd = openSync(path, 'r')
  try {
    if (readSync(fd, header, 0, HEADER_BYTES, 0) !== HEADER_BYTES) return 'header is truncated'
  } finally {
    closeSync(fd)
  }
  const size = (offset: number): number => Number(header.readBigUInt64LE(offset))
  const maxElements = size(8)
  const count = size(16)
  const sizePerElement = size(24)
  const maxM0 = size(64)
  const M = size(72)
  const expectedPerElement = (2 * params.M + 1) * 4 + params.dim * 4 + 8
  if (M !== params.M || maxM0 !== 2 * params.M) return `header M ${M} does not match M ${params.M}`
  if (sizePerElement !== expectedPerElement) return 'header element size does not match dim and M'
  if (count !== entry.elements || maxElements < count) return 'header element count does not match'
  if (entry.bytes < HEADER_BYTES + count * (sizePerElement + 4)) return 'file is shorter than its header says'
  return undefined
}

function readManifest(
  dir: string,
): { ok: true; manifest: Manifest; text: string } | { ok: false; reason: string } {
  let text: string
  try {
    text = readFileSync(join(dir, MANIFEST_FILE), 'utf8')
  } catch (error) {
    return { ok: false, reason: `manifest unreadable: ${(error as Error).message}` }
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return { ok: false, reason: 'manifest is not JSON' }
  }
  const parsed = manifestSchema.safeParse(json)
  if (!parsed.success)
    return { ok: false, reason: `manifest is malformed: ${parsed.error.issues[0]?.message}` }
  const { checksum, ...body } = parsed.data
  if (sha256Hex(JSON.stringify(body)) !== checksum) return { ok: false, reason: 'manifest checksum mismatch' }
  return { ok: true, manifest: parsed.data, text }
}

/** A snapshot copied by copySnapshot: its change seq and the files written (relative to toDir). */
export type CopiedSnapshot = { ok: true; seq: number; files: string[] } | { ok: false; reason: string }

/**
 * Copies the snapshot of `fromDir` (its manifest and the index files it lists) into `toDir`,
 * checking every copied file against the manifest's size and sha256, while a server may be
 * writing the next snapshot there: saveSnapshot commits a snapshot by renaming its manifest into
 * place before it removes the files of the previous one, so a file the manifest read here names
 * is either copied whole or gone (then this fails, and a retry reads the newer manifest). Nothing
 * is left in `toDir` when it fails. The native reader never sees the files.
 */
export function copySnapshot(fromDir: string, toDir: string): CopiedSnapshot {
  const read = readManifest(fromDir)
  if (!read.ok) return read
  const { manifest, text } = read
  mkdirSync(toDir, { recursive: true, mode: 0o700 })
  const written: string[] = []
  try {
    for (const entry of manifest.orgs) {
      const target = join(toDir, entry.file)
      written.push(target)
      copyFileSync(join(fromDir, entry.file), target)
      fsyncPath(target)
      const copied = sha256File(target)
      if (copied.bytes !== entry.bytes || copied.sha256 !== entry.sha256) {
        throw new Error(`${entry.file} changed while it was copied`)
      }
    }
    const target = join(toDir, MANIFEST_FILE)
    written.push(target)
    writeFileDurably(target, text)
    fsyncPath(toDir)
    return {
      ok: true,
      seq: manifest.seq,
      files: [...manifest.orgs.map((entry) => entry.file), MANIFEST_FILE],
    }
  } catch (error) {
    for (const path of written) rmSync(path, { force: true })
    return { ok: false, reason: (error as Error).message }
  }
}

/**
 * Loads a snapshot written by saveSnapshot. Never crashes the process on a corrupt, truncated or
 * missing file: every file's size and sha256 are checked before the native reader sees it (a
 * corrupt file given to hnswlib can abort the process). `ef` is applied after loading; an
 * `efConstruction` different from the snapshot's is accepted (loaded graphs keep theirs). Invalid
 * `params` throw ERR_CONFIG_INVALID, as in createIndexSet.
 */
export function loadSnapshot(
  dir: string,
  params: IndexParams,
): { ok: true; set: IndexSet; seq: number } | { ok: false; reason: string } {
  const wanted = parseIndexParams(params)
  const read = readManifest(dir)
  if (!read.ok) return read
  const { manifest } = read
  if (manifest.params.dim !== wanted.dim)
    return { ok: false, reason: `snapshot dim ${manifest.params.dim} differs from dim ${wanted.dim}` }
  if (manifest.params.M !== wanted.M)
    return { ok: false, reason: `snapshot M ${manifest.params.M} differs from M ${wanted.M}` }
  const indexes = new Map<string, HnswOrgIndex>()
  for (const entry of manifest.orgs) {
    const labels = new Set(entry.labels)
    if (indexes.has(entry.org)) return { ok: false, reason: `org ${entry.org} appears twice` }
    // An org only ever loads a file named after its own hash, whatever the manifest says.
    if (!entry.file.startsWith(sha256Hex(entry.org) + '.'))
      return { ok: false, reason: `${entry.file} is not the file of org ${entry.org}` }
    if (labels.size !== entry.labels.length || labels.size !== entry.live || entry.live > entry.elements)
      return { ok: false, reason: `labels of org ${entry.org} do not match its counts` }
    const path = join(dir, entry.file)
    try {
      if (statSync(path).size !== entry.bytes) return { ok: false, reason: `${entry.file}: size mismatch` }
      if (sha256File(path).sha256 !== entry.sha256)
        return { ok: false, reason: `${entry.file}: sha256 mismatch` }
    } catch (error) {
      return { ok: false, reason: `${entry.file}: ${(error as Error).message}` }
    }
    const bad = checkHeader(path, entry, wanted)
    if (bad !== undefined) return { ok: false, reason: `${entry.file}: ${bad}` }
    const native = new hnswlib.HierarchicalNSW('cosine', wanted.dim)
    try {
      native.readIndexSync(path, true)
    } catch (error) {
      return { ok: false, reason: `${entry.file}: ${(error as Error).message}` }
    }
    native.setEf(wanted.ef)
    if (native.getCurrentCount() !== entry.elements)
      return { ok: false, reason: `${entry.file}: element count mismatch` }
    indexes.set(
      entry.org,
      new HnswOrgIndex(entry.org, native, wanted.dim, labels, entry.elements - entry.live),
    )
  }
  return { ok: true, set: createSet(wanted, indexes), seq: manifest.seq }
}
