/**
 * The gallery: the SQLite store (source of truth) plus one HNSW index per organization (a cache
 * loaded from a snapshot and brought up to date from the store's change log, or rebuilt from the
 * store). Every method is synchronous, so a write reaches the store and the index in one tick.
 * The store is private: identities, faces and the audit log are read and written only through
 * the gallery, so no write can reach the store without the index, and every delete is followed
 * by the WAL checkpoint that takes the deleted rows out of the -wal file.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { cosine, normalizeParts, primaryPart, type EmbeddingLayout } from '../pipeline/embedding-layout.js'
import { fitImpostorModel, galleryImpostorScores, thresholdFor, type ImpostorModel } from './calibration.js'
import { decide, RERANK_DEPTH, searchDepth } from './decide.js'
import { createIndexSet, loadSnapshot, type IndexParams, type IndexSet } from './hnsw-index.js'
import { openStore, type GalleryStore } from './store.js'
import type {
  Actor,
  AuditEntry,
  Face,
  Identity,
  IdentityPatch,
  Neighbour,
  LivenessMode,
  NewIdentity,
  OrgPolicy,
  Page,
  StoredEmbedding,
} from './types.js'
import type { Candidate, Decision, IdentityRef } from '../../protocol/wire.js'

export type * from './types.js'

export interface GalleryOptions {
  dataDir: string
  embeddingKey?: Buffer | undefined
  /** FACEWIRE_EMBEDDING_KEY_PREVIOUS: still read while `facewire rotate-key` moves faces off it. */
  previousEmbeddingKey?: Buffer | undefined
  logger: Logger
  /**
   * What embeddings are: their length, the model id faces are tagged with (faces of another id
   * are not searched), and their parts (pipeline/embedding-layout.ts; `singleLayout` for one
   * model). With more than one part, indexes hold the first part and each search re-ranks its
   * neighbours by the whole embedding read from the store.
   */
  layout: EmbeddingLayout
  hnsw: Omit<IndexParams, 'dim'>
  /**
   * The default policy: a target FPIR from which each org's threshold follows for its gallery
   * size (calibration.ts), or a fixed `threshold` when one is configured.
   */
  policy: PolicyOptions
  orgPolicies?: Readonly<Record<string, OrgPolicyOverride>>
  /** Impostor scores of the models' calibration cohort (models/cohort.json), for small galleries. */
  cohort?: ImpostorModel | undefined
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

export interface PolicyOptions {
  targetFpir: number
  /** A fixed threshold instead of the calibrated one. */
  threshold?: number | undefined
  margin: number
  topK: number
  liveness?: { mode: LivenessMode; threshold: number } | undefined
}

export interface OrgPolicyOverride {
  targetFpir?: number | undefined
  threshold?: number | undefined
  margin?: number | undefined
  liveness?: LivenessMode | undefined
  livenessThreshold?: number | undefined
}

/** Impostor scores computed per calibration at most (sampled beyond). */
export const MAX_CALIBRATION_PAIRS = 200_000
/** Fewest identities for the gallery's own scores to count at all. */
export const MIN_CALIBRATION_IDENTITIES = 20

export interface Recognition {
  decision: Decision
  candidates: Candidate[]
}

export interface Gallery {
  readonly modelId: string
  /** How the indexes were brought up: from a snapshot (plus replayed changes) or rebuilt. */
  readonly loadedFrom: 'snapshot' | 'rebuild'
  createIdentity(org: string, input: NewIdentity, actor: Actor): Identity
  /** undefined when the identity does not exist in this org. */
  getIdentity(org: string, identityId: string): Identity | undefined
  /**
   * Oldest first (then by id); `cursor` is a page's opaque `nextCursor`; limit 1..1000. Throws
   * ERR_REQUEST_INVALID for a limit out of range or a cursor this gallery did not hand out.
   */
  listIdentities(org: string, options: { limit: number; cursor?: string | undefined }): Page<Identity>
  /** Fields present in the patch replace the stored ones (metadata as a whole). */
  updateIdentity(org: string, identityId: string, patch: IdentityPatch, actor: Actor): Identity | undefined
  /**
   * Removes the identity and all its faces from the store and the index, then checkpoints the
   * WAL: SQLite's secure_delete zeroes the rows, the checkpoint takes them out of the -wal file.
   */
  deleteIdentity(
    org: string,
    identityId: string,
    actor: Actor,
  ): { identity: Identity; faces: Face[] } | undefined
  /** The identity's faces in enrollment order; undefined when the identity does not exist in this org. */
  listFaces(org: string, identityId: string): Face[] | undefined
  /** Stores and indexes a face of the current model; undefined when the identity does not exist in this org. */
  addFace(
    org: string,
    identityId: string,
    face: { embedding: Float32Array; quality: number },
    actor: Actor,
  ): Face | undefined
  /** Removes one face from the store and the index, then checkpoints the WAL (as deleteIdentity). */
  deleteFace(org: string, faceId: string, actor: Actor): Face | undefined
  /** The org's audit rows (ids only) with seq > afterSeq (default 0), ascending; limit 1..1000. */
  audit(org: string, options: { limit: number; afterSeq?: number | undefined }): AuditEntry[]
  /** Whether a stored face is searchable (embedded by the current model). */
  isCurrent(face: Face): boolean
  recognize(org: string, embedding: Float32Array): Recognition
  /**
   * The similarity of `embedding` with the identity's template (the score recognition gives that
   * identity); undefined when the identity has no searchable face in this org.
   */
  similarityToIdentity(org: string, identityId: string, embedding: Float32Array): number | undefined
  /**
   * The org's policy for its current gallery: the threshold follows the gallery's size on every
   * call, from the org's last impostor fit. Never fits on the caller's time: when the gallery has
   * moved by more than 5% (or 2) since the last fit, a refit is scheduled after the current task.
   */
  policyFor(org: string): OrgPolicy
  /** Fits the org's own impostor model now (at most MAX_CALIBRATION_PAIRS dot products). */
  calibrate(org: string): OrgPolicy
  stats(): GalleryStats
  /** Writes the index snapshot if the store moved since the last one. */
  snapshot(): boolean
  /** Snapshots and closes the store. */
  close(): void
}

/** The mean of an identity's embeddings, part-normalised: what it is scored by. */
export function meanTemplate(embeddings: readonly Float32Array[], layout: EmbeddingLayout): Float32Array {
  const sum = new Float32Array(layout.dim)
  for (const e of embeddings) for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] ?? 0) + (e[i] ?? 0)
  return normalizeParts(sum, layout)
}

interface LabelRef {
  org: string
  identityId: string
}

/**
 * Refuses a key ring that cannot read the store (a key id it does not hold, a sample that does not
 * decrypt), so a wrong key stops the server at startup rather than at its first recognition;
 * records the ring's key ids for `facewire rotate-key`; says how far a key rotation has come.
 */
function checkKeys(store: GalleryStore, logger: Logger): void {
  const usage = store.checkKeys({ sampleRows: 1 })
  store.recordServerKeys()
  const keys = store.serverKeys()
  const current = store.currentKeyId
  if (current === undefined) return
  const pending = usage
    .filter((entry) => entry.keyId !== current)
    .reduce((sum, entry) => sum + entry.faces, 0)
  if (pending === 0 && (keys?.previous.length ?? 0) === 0) return
  const fields = { currentKeyId: current, previousKeyIds: keys?.previous ?? [], faces: usage, pending }
  logger.info(
    fields,
    pending === 0
      ? 'gallery.keys: every face is encrypted under FACEWIRE_EMBEDDING_KEY; FACEWIRE_EMBEDDING_KEY_PREVIOUS can be removed'
      : `gallery.keys: ${String(pending)} faces are not encrypted under FACEWIRE_EMBEDDING_KEY yet; run facewire rotate-key`,
  )
}

export function createGallery(options: GalleryOptions): Gallery {
  const { logger, layout } = options
  const { modelId } = layout
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 })
  const snapshotDir = join(options.dataDir, 'index')
  const store = openStore({
    dataDir: options.dataDir,
    embeddingKey: options.embeddingKey,
    previousEmbeddingKeys: options.previousEmbeddingKey === undefined ? [] : [options.previousEmbeddingKey],
    logger,
  })
  try {
    checkKeys(store, logger)
  } catch (error) {
    store.close()
    throw error
  }
  const fused = layout.parts.length > 1
  const searched = (embedding: Float32Array): Float32Array => primaryPart(embedding, layout)
  const params: IndexParams = { dim: layout.parts[0]?.dim ?? layout.dim, ...options.hnsw }
  const labels = new Map<number, LabelRef>()
  /** Labels of each identity's searchable faces, by `org/identityId`. */
  const members = new Map<string, Set<number>>()
  /** Templates (mean of the identity's embeddings, part-normalised), filled on first use. */
  const templates = new Map<string, Float32Array>()
  /** Identities with at least one searchable face, per org. */
  const identityCounts = new Map<string, number>()
  const memberKey = (org: string, identityId: string): string => `${org}/${identityId}`
  const track = (label: number, ref: LabelRef): void => {
    labels.set(label, ref)
    const key = memberKey(ref.org, ref.identityId)
    let set = members.get(key)
    if (set === undefined) {
      members.set(key, (set = new Set()))
      identityCounts.set(ref.org, (identityCounts.get(ref.org) ?? 0) + 1)
    }
    set.add(label)
    templates.delete(key)
  }
  const untrack = (label: number): void => {
    const ref = labels.get(label)
    labels.delete(label)
    if (ref === undefined) return
    const key = memberKey(ref.org, ref.identityId)
    const set = members.get(key)
    set?.delete(label)
    if (set?.size === 0) {
      members.delete(key)
      identityCounts.set(ref.org, (identityCounts.get(ref.org) ?? 1) - 1)
    }
    templates.delete(key)
  }
  let staleFaces = 0

  const index = (set: IndexSet, face: StoredEmbedding): void => {
    if (face.modelId !== modelId) {
      staleFaces++
      return
    }
    set.forOrg(face.org).add(face.label, searched(face.embedding))
    track(face.label, { org: face.org, identityId: face.identityId })
  }

  const rebuild = (): IndexSet => {
    const set = createIndexSet(params)
    labels.clear()
    members.clear()
    templates.clear()
    identityCounts.clear()
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
        track(ref.label, { org: ref.org, identityId: ref.identityId })
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

  /**
   * Per org: the impostor model fitted on its own gallery and the size it was fitted at (undefined
   * below MIN_CALIBRATION_IDENTITIES). Refitted when the gallery has changed by more than 5% (or 2)
   * since: a fit costs up to MAX_CALIBRATION_PAIRS dot products. Thresholds are derived from the
   * models on every call, for the current size.
   */
  const galleryModels = new Map<
    string,
    { identities: number; faces: number; model: ImpostorModel | undefined }
  >()
  /** Orgs whose refit is scheduled. */
  const refitting = new Set<string>()
  let closed = false

  /** The org's templates and faces, read from the store (calibration only). */
  const orgFaces = (
    org: string,
  ): { faces: { identity: number; embedding: Float32Array }[]; templates: Float32Array[] } => {
    const byIdentity = new Map<string, Float32Array[]>()
    for (const face of store.embeddings(org)) {
      if (face.modelId !== modelId || !labels.has(face.label)) continue
      const list = byIdentity.get(face.identityId)
      if (list === undefined) byIdentity.set(face.identityId, [face.embedding])
      else list.push(face.embedding)
    }
    const faces: { identity: number; embedding: Float32Array }[] = []
    const list: Float32Array[] = []
    for (const [identityId, embeddings] of byIdentity) {
      for (const embedding of embeddings) faces.push({ identity: list.length, embedding })
      list.push(templateOf(org, identityId) ?? meanTemplate(embeddings, layout))
    }
    return { faces, templates: list }
  }

  const orgSize = (org: string): { identities: number; faces: number } => ({
    identities: identityCounts.get(org) ?? 0,
    faces: set.get(org)?.size ?? 0,
  })

  /** Fits the org's own impostor model (none below MIN_CALIBRATION_IDENTITIES) and caches it. */
  const fit = (org: string): void => {
    const size = orgSize(org)
    let model: ImpostorModel | undefined
    if (size.identities >= MIN_CALIBRATION_IDENTITIES) {
      const begun = performance.now()
      const { faces, templates: list } = orgFaces(org)
      model = fitImpostorModel(galleryImpostorScores(faces, list, MAX_CALIBRATION_PAIRS))
      logger.info(
        { org, identities: size.identities, pairs: model.pairs, ms: Math.round(performance.now() - begun) },
        'gallery.calibrated',
      )
    }
    galleryModels.set(org, { ...size, model })
  }

  /**
   * The org's last fit; when the gallery has moved since, a refit after the current task (a
   * recognition never waits for one). A gallery seen for the first time starts from the cohort.
   */
  const galleryModelFor = (
    org: string,
    size: { identities: number; faces: number },
  ): ImpostorModel | undefined => {
    const cached = galleryModels.get(org)
    const moved = (a: number, b: number): boolean => Math.abs(a - b) > Math.max(2, 0.05 * b)
    const stale =
      cached === undefined
        ? size.identities >= MIN_CALIBRATION_IDENTITIES
        : moved(size.identities, cached.identities) || moved(size.faces, cached.faces)
    if (stale && !refitting.has(org)) {
      refitting.add(org)
      setImmediate(() => {
        refitting.delete(org)
        if (closed) return
        try {
          fit(org)
        } catch (error) {
          logger.error({ err: error, org }, 'gallery.calibration_failed')
        }
      }).unref()
    }
    return cached?.model
  }

  /** The org's policy for its gallery as it is now. */
  const policyFor = (org: string): OrgPolicy => {
    const size = orgSize(org)
    const override = options.orgPolicies?.[org]
    const base = options.policy
    const targetFpir = override?.targetFpir ?? base.targetFpir
    const margin = override?.margin ?? base.margin
    const liveness = {
      mode: override?.liveness ?? base.liveness?.mode ?? 'off',
      threshold: override?.livenessThreshold ?? base.liveness?.threshold ?? 0,
    }
    const common = { targetFpir, margin, topK: base.topK, identities: size.identities, liveness }
    const fixed = override?.threshold ?? (override?.targetFpir === undefined ? base.threshold : undefined)
    if (fixed !== undefined) {
      return { ...common, threshold: fixed, basis: 'fixed', galleryPairs: 0 }
    }
    const n = Math.max(1, size.identities)
    const galleryModel = galleryModelFor(org, size)
    const fromGallery = galleryModel === undefined ? undefined : thresholdFor(galleryModel, targetFpir, n)
    const fromCohort = options.cohort === undefined ? undefined : thresholdFor(options.cohort, targetFpir, n)
    if (fromGallery === undefined && fromCohort === undefined) {
      // No cohort shipped and too few identities: the configured default threshold.
      return { ...common, threshold: base.threshold ?? 1, basis: 'fixed', galleryPairs: 0 }
    }
    // The higher estimate wins: an org whose people look more alike than the cohort's (or whose
    // camera makes everyone look alike) gets a higher threshold, and a gallery too small to
    // show it never lowers the cohort's.
    const useGallery = fromGallery !== undefined && (fromCohort === undefined || fromGallery > fromCohort)
    return {
      ...common,
      ...(fromCohort === undefined ? {} : { cohortThreshold: fromCohort }),
      ...(fromGallery === undefined ? {} : { galleryThreshold: fromGallery }),
      threshold: Math.min(1, useGallery ? (fromGallery ?? 1) : (fromCohort ?? 1)),
      basis: useGallery ? 'gallery' : 'cohort',
      galleryPairs: galleryModel?.pairs ?? 0,
    }
  }

  /** An identity's template, from its faces in the store (cached until its faces change). */
  const templateOf = (org: string, identityId: string): Float32Array | undefined => {
    const key = memberKey(org, identityId)
    const cached = templates.get(key)
    if (cached !== undefined) return cached
    const embeddings: Float32Array[] = []
    for (const label of members.get(key) ?? []) {
      const stored = store.embeddingByLabel(label)
      if (stored?.org === org && stored.embedding.length === layout.dim) embeddings.push(stored.embedding)
    }
    if (embeddings.length === 0) return undefined
    const template = meanTemplate(embeddings, layout)
    templates.set(key, template)
    return template
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
      untrack(face.label)
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
    modelId,
    loadedFrom,
    createIdentity: (org, input, actor) => store.createIdentity(org, input, actor),
    getIdentity: (org, identityId) => store.getIdentity(org, identityId),
    listIdentities: (org, page) => store.listIdentities(org, page),
    updateIdentity: (org, identityId, patch, actor) => store.updateIdentity(org, identityId, patch, actor),
    listFaces(org, identityId) {
      if (store.getIdentity(org, identityId) === undefined) return undefined
      return store.listFaces(org, identityId)
    },
    addFace(org, identityId, face, actor) {
      if (face.embedding.length !== layout.dim) {
        throw new RangeError(`embedding has ${face.embedding.length} values, the gallery ${layout.dim}`)
      }
      const stored = store.addFace(org, identityId, { ...face, modelId }, actor)
      if (stored === undefined) return undefined
      set.forOrg(org).add(stored.label, searched(face.embedding))
      track(stored.label, { org, identityId })
      options.metrics?.galleryChanges.inc({ kind: 'face_add' })
      return stored
    },
    deleteFace(org, faceId, actor) {
      const face = store.deleteFace(org, faceId, actor)
      if (face !== undefined) {
        unindex([face])
        options.metrics?.galleryChanges.inc({ kind: 'face_delete' })
        store.checkpoint()
      }
      return face
    },
    deleteIdentity(org, identityId, actor) {
      const removed = store.deleteIdentity(org, identityId, actor)
      if (removed !== undefined) {
        unindex(removed.faces)
        options.metrics?.galleryChanges.inc({ kind: 'identity_delete' })
        store.checkpoint()
      }
      return removed
    },
    audit: (org, page) => store.audit(org, page),
    isCurrent: (face) => face.modelId === modelId,
    recognize(org, embedding) {
      const started = performance.now()
      const policy = policyFor(org)
      const orgIndex = set.get(org)
      const neighbours: Neighbour[] = []
      if (orgIndex !== undefined) {
        // Nearest faces by the first part, then each of their identities scored by its template
        // (the mean of all its faces) with the whole embedding: with fused models, a dot product
        // of part-normalised vectors is the weighted sum of the per-model cosines.
        const query = normalizeParts(Float32Array.from(embedding), layout)
        const depth = fused ? Math.max(searchDepth(policy.topK), RERANK_DEPTH) : searchDepth(policy.topK)
        const seen = new Set<string>()
        for (const { label } of orgIndex.search(searched(query), depth)) {
          const ref = labels.get(label)
          if (ref?.org !== org || seen.has(ref.identityId)) continue
          seen.add(ref.identityId)
          const template = templateOf(org, ref.identityId)
          if (template !== undefined) neighbours.push({ label, similarity: cosine(query, template) })
        }
      }
      const result = decide(neighbours, identityOf(org), policy)
      options.metrics?.gallerySearchSeconds.observe((performance.now() - started) / 1000)
      return result
    },
    similarityToIdentity(org, identityId, embedding) {
      const template = templateOf(org, identityId)
      if (template === undefined) return undefined
      return cosine(normalizeParts(Float32Array.from(embedding), layout), template)
    },
    policyFor,
    calibrate(org) {
      fit(org)
      return policyFor(org)
    },
    stats() {
      let indexedFaces = 0
      for (const org of set.orgs()) indexedFaces += set.get(org)?.size ?? 0
      return { orgs: set.orgs().length, indexedFaces, staleFaces, seq: store.lastSeq(), snapshotSeq }
    },
    snapshot,
    close() {
      closed = true
      try {
        snapshot()
      } catch (error) {
        logger.error({ err: error }, 'gallery.snapshot_failed')
      }
      store.close()
    },
  }
}
