/**
 * The gallery: the SQLite store (source of truth) plus one HNSW index per organization (a cache
 * loaded from a snapshot and brought up to date from the store's change log, or rebuilt from the
 * store). Every method is synchronous, so a write reaches the store and the index in one tick.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { normalizeParts, primaryPart, type EmbeddingLayout } from '../pipeline/embedding-layout.js'
import { decide, RERANK_DEPTH, searchDepth } from './decide.js'
import { createIndexSet, loadSnapshot, type IndexParams, type IndexSet } from './hnsw-index.js'
import { openStore, type GalleryStore } from './store.js'
import type {
  Actor,
  Candidate,
  Decision,
  DecisionPolicy,
  Face,
  Identity,
  IdentityRef,
  Neighbour,
  StoredEmbedding,
} from './types.js'

export type * from './types.js'
export type { GalleryStore } from './store.js'

export interface GalleryOptions {
  dataDir: string
  embeddingKey?: Buffer | undefined
  logger: Logger
  /**
   * What embeddings are: their length, the model id faces are tagged with (faces of another id
   * are not searched), and their parts (pipeline/embedding-layout.ts; `singleLayout` for one
   * model). With more than one part, indexes hold the first part and each search re-ranks its
   * neighbours by the whole embedding read from the store.
   */
  layout: EmbeddingLayout
  hnsw: Omit<IndexParams, 'dim'>
  policy: DecisionPolicy
  orgPolicies?: Readonly<Record<string, { threshold?: number | undefined; margin?: number | undefined }>>
  metrics?: Pick<Metrics, 'gallerySearchSeconds' | 'galleryChanges'> | undefined
}

export interface GalleryStats {
  orgs: number
  /** Faces in the indexes (searchable). */
  indexedFaces: number
  /** Faces embedded by another model: stored, not searched, to be re-enrolled. */
  staleFaces: number
  /** Store change seq the indexes reflect. */
  seq: number
  /** Change seq of the last snapshot written or loaded. */
  snapshotSeq: number
}

export interface Recognition {
  decision: Decision
  candidates: Candidate[]
}

export interface Gallery {
  readonly store: GalleryStore
  readonly modelId: string
  /** How the indexes were brought up: from a snapshot (plus replayed changes) or rebuilt. */
  readonly loadedFrom: 'snapshot' | 'rebuild'
  addFace(
    org: string,
    identityId: string,
    face: { embedding: Float32Array; quality: number },
    actor: Actor,
  ): Face | undefined
  deleteFace(org: string, faceId: string, actor: Actor): Face | undefined
  deleteIdentity(
    org: string,
    identityId: string,
    actor: Actor,
  ): { identity: Identity; faces: Face[] } | undefined
  /** Whether a stored face is searchable (embedded by the current model). */
  isCurrent(face: Face): boolean
  recognize(org: string, embedding: Float32Array): Recognition
  policyFor(org: string): DecisionPolicy
  stats(): GalleryStats
  /** Writes the index snapshot if the store moved since the last one. */
  snapshot(): boolean
  /** Snapshots and closes the store. */
  close(): void
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += (a[i] ?? 0) * (b[i] ?? 0)
  return sum
}

interface LabelRef {
  org: string
  identityId: string
}

export function createGallery(options: GalleryOptions): Gallery {
  const { logger, layout } = options
  const { modelId } = layout
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 })
  const snapshotDir = join(options.dataDir, 'index')
  const store = openStore({ dataDir: options.dataDir, embeddingKey: options.embeddingKey, logger })
  const fused = layout.parts.length > 1
  const searched = (embedding: Float32Array): Float32Array => primaryPart(embedding, layout)
  const params: IndexParams = { dim: layout.parts[0]?.dim ?? layout.dim, ...options.hnsw }
  const labels = new Map<number, LabelRef>()
  let staleFaces = 0

  const index = (set: IndexSet, face: StoredEmbedding): void => {
    if (face.modelId !== modelId) {
      staleFaces++
      return
    }
    set.forOrg(face.org).add(face.label, searched(face.embedding))
    labels.set(face.label, { org: face.org, identityId: face.identityId })
  }

  const rebuild = (): IndexSet => {
    const set = createIndexSet(params)
    labels.clear()
    staleFaces = 0
    for (const face of store.embeddings()) index(set, face)
    return set
  }

  const started = performance.now()
  let set: IndexSet
  let seq = store.lastSeq()
  let snapshotSeq = 0
  let loadedFrom: Gallery['loadedFrom']
  const loaded = loadSnapshot(snapshotDir, params)
  if (loaded.ok && loaded.seq <= seq) {
    set = loaded.set
    snapshotSeq = loaded.seq
    loadedFrom = 'snapshot'
    // Labels and stale counts come from the store's rows; vectors come from the snapshot.
    for (const ref of store.faceRefs()) {
      if (ref.modelId !== modelId) {
        // Snapshotted under another embedder: its vector must not be searched.
        staleFaces++
        set.get(ref.org)?.remove(ref.label)
      } else {
        labels.set(ref.label, { org: ref.org, identityId: ref.identityId })
      }
    }
    let replayed = 0
    for (const change of store.changesSince(loaded.seq)) {
      replayed++
      if (change.kind === 'delete') {
        set.get(change.org)?.remove(change.label)
        continue
      }
      const face = store.embeddingByLabel(change.label)
      if (face === undefined || face.modelId !== modelId) continue // deleted later, or stale
      const orgIndex = set.forOrg(face.org)
      if (!orgIndex.has(face.label)) orgIndex.add(face.label, searched(face.embedding))
    }
    logger.info({ snapshotSeq, replayed, seq }, 'gallery.snapshot_loaded')
  } else {
    const reason = loaded.ok
      ? `snapshot seq ${String(loaded.seq)} is ahead of the store (${String(seq)})`
      : loaded.reason
    if (seq > 0) logger.warn({ reason }, 'gallery.index_rebuild')
    set = rebuild()
    loadedFrom = 'rebuild'
  }
  if (staleFaces > 0) {
    logger.warn(
      { staleFaces, modelId },
      'gallery.stale_faces: faces embedded by another model are not searched; re-enroll them',
    )
  }
  logger.info(
    {
      orgs: set.orgs().length,
      faces: labels.size,
      loadMs: Math.round(performance.now() - started),
      loadedFrom,
    },
    'gallery.ready',
  )

  const policyFor = (org: string): DecisionPolicy => {
    const override = options.orgPolicies?.[org]
    if (override === undefined) return options.policy
    return {
      ...options.policy,
      threshold: override.threshold ?? options.policy.threshold,
      margin: override.margin ?? options.policy.margin,
    }
  }

  const identityOf =
    (org: string) =>
    (label: number): IdentityRef | undefined => {
      const ref = labels.get(label)
      if (ref?.org !== org) return undefined
      const name = store.identityName(org, ref.identityId)
      return name === undefined ? undefined : { id: ref.identityId, name }
    }

  const unindex = (faces: readonly Face[]): void => {
    for (const face of faces) {
      set.get(face.org)?.remove(face.label)
      labels.delete(face.label)
    }
  }

  const snapshot = (): boolean => {
    seq = store.lastSeq()
    if (seq === snapshotSeq) return false
    const begun = performance.now()
    set.saveSnapshot(snapshotDir, seq)
    snapshotSeq = seq
    logger.info({ seq, ms: Math.round(performance.now() - begun) }, 'gallery.snapshot_written')
    return true
  }

  return {
    store,
    modelId,
    loadedFrom,
    addFace(org, identityId, face, actor) {
      if (face.embedding.length !== layout.dim) {
        throw new RangeError(`embedding has ${face.embedding.length} values, the gallery ${layout.dim}`)
      }
      const stored = store.addFace(org, identityId, { ...face, modelId }, actor)
      if (stored === undefined) return undefined
      set.forOrg(org).add(stored.label, searched(face.embedding))
      labels.set(stored.label, { org, identityId })
      options.metrics?.galleryChanges.inc({ kind: 'face_add' })
      return stored
    },
    deleteFace(org, faceId, actor) {
      const face = store.deleteFace(org, faceId, actor)
      if (face !== undefined) {
        unindex([face])
        options.metrics?.galleryChanges.inc({ kind: 'face_delete' })
      }
      return face
    },
    deleteIdentity(org, identityId, actor) {
      const removed = store.deleteIdentity(org, identityId, actor)
      if (removed !== undefined) {
        unindex(removed.faces)
        options.metrics?.galleryChanges.inc({ kind: 'identity_delete' })
      }
      return removed
    },
    isCurrent: (face) => face.modelId === modelId,
    recognize(org, embedding) {
      const started = performance.now()
      const policy = policyFor(org)
      const orgIndex = set.get(org)
      let neighbours: Neighbour[] = []
      if (orgIndex !== undefined && !fused) {
        neighbours = orgIndex.search(embedding, searchDepth(policy.topK))
      } else if (orgIndex !== undefined) {
        // Nearest by the first part, then scored by the whole (fused) embedding: a dot product
        // of part-normalised vectors is the weighted sum of the per-model cosines.
        const query = normalizeParts(Float32Array.from(embedding), layout)
        const depth = Math.max(searchDepth(policy.topK), RERANK_DEPTH)
        for (const { label } of orgIndex.search(searched(query), depth)) {
          const stored = store.embeddingByLabel(label)
          if (stored?.org !== org || stored.embedding.length !== query.length) continue
          neighbours.push({ label, similarity: dot(query, stored.embedding) })
        }
      }
      const result = decide(neighbours, identityOf(org), policy)
      options.metrics?.gallerySearchSeconds.observe((performance.now() - started) / 1000)
      return result
    },
    policyFor,
    stats() {
      let indexedFaces = 0
      for (const org of set.orgs()) indexedFaces += set.get(org)?.size ?? 0
      return { orgs: set.orgs().length, indexedFaces, staleFaces, seq: store.lastSeq(), snapshotSeq }
    },
    snapshot,
    close() {
      try {
        snapshot()
      } catch (error) {
        logger.error({ err: error }, 'gallery.snapshot_failed')
      }
      store.close()
    },
  }
}
