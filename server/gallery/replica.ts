/**
 * One instance's in-memory copy of the gallery for searching: an HNSW index per organization, which
 * face label belongs to which identity, identity templates, and the per-organization calibration
 * that turns a target FPIR into a threshold. It is a cache of the store: loaded from a snapshot
 * plus the change log, or rebuilt from every stored face, then kept current by the gallery's own
 * writes and (cluster mode) by replaying other instances' changes. Everything here is synchronous:
 * the reads a search needs (a name, a template's embeddings) come from a `ReplicaReader` that
 * answers at once (the SQLite store, or the cluster's in-memory copy of the rows).
 */
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { cosine, normalizeParts, primaryPart, type EmbeddingLayout } from '../pipeline/embedding-layout.js'
import { fitImpostorModel, galleryImpostorScores, thresholdFor, type ImpostorModel } from './calibration.js'
import { decide, RERANK_DEPTH, searchDepth } from './decide.js'
import { createIndexSet, loadSnapshot, type IndexParams, type IndexSet } from './hnsw-index.js'
import type { FaceRef } from './store.js'
import type {
  GalleryChange,
  Neighbour,
  OrgPolicy,
  OrgPolicyOverride,
  PolicyOptions,
  StoredEmbedding,
} from './types.js'
import type { Candidate, Decision, IdentityRef } from '../../protocol/wire.js'

/** Impostor scores computed per calibration at most (sampled beyond). */
export const MAX_CALIBRATION_PAIRS = 200_000
/** Fewest identities for the gallery's own scores to count at all. */
export const MIN_CALIBRATION_IDENTITIES = 20

export interface Recognition {
  decision: Decision
  candidates: Candidate[]
}

/** The synchronous reads a search and a calibration need. */
export interface ReplicaReader {
  identityName(org: string, identityId: string): string | undefined
  embeddingByLabel(label: number): StoredEmbedding | undefined
  /** Every stored face of one org with its embedding (calibration). */
  embeddings(org: string): Iterable<StoredEmbedding>
}

/** What loading reads: the rows as they are now, and the changes since a snapshot. */
export interface LoadSource {
  /** Every stored face without its embedding. */
  faceRefs(): Iterable<FaceRef>
  /** Every stored face with its embedding (a rebuild). */
  embeddings(): Iterable<StoredEmbedding>
  /** Changes with seq > afterSeq, ascending. */
  changesSince(afterSeq: number): Iterable<GalleryChange>
  embeddingByLabel(label: number): StoredEmbedding | undefined
  /** The store's change seq; a snapshot ahead of it is from another store and is not loaded. */
  lastSeq: number
}

export interface ReplicaOptions {
  layout: EmbeddingLayout
  params: IndexParams
  policy: PolicyOptions
  orgPolicies?: Readonly<Record<string, OrgPolicyOverride>> | undefined
  cohort?: ImpostorModel | undefined
  metrics?: Pick<Metrics, 'gallerySearchSeconds' | 'galleryChanges'> | undefined
  reader: ReplicaReader
  logger: Logger
}

export interface Replica {
  /** How the indexes were brought up (set by load). */
  loadedFrom: 'snapshot' | 'rebuild'
  /** Change seq of the snapshot loaded (0: rebuilt). */
  loadedSnapshotSeq: number
  /** Loads from the snapshot in `snapshotDir` (plus the changes since) or rebuilds from `source`. */
  load(snapshotDir: string, source: LoadSource): void
  /** Indexes a stored face (a face of another model is counted stale, not indexed); idempotent. */
  add(face: StoredEmbedding): void
  /** Takes a face out of the index; false when it was not there. */
  remove(face: { org: string; label: number }): boolean
  /** Applies one change-log row: add (its embedding read from `source`) or delete. */
  apply(change: GalleryChange, embeddingByLabel: (label: number) => StoredEmbedding | undefined): void
  recognize(org: string, embedding: Float32Array): Recognition
  /** Similarity with the identity's template; undefined when it has no searchable face here. */
  similarityToIdentity(org: string, identityId: string, embedding: Float32Array): number | undefined
  policyFor(org: string): OrgPolicy
  calibrate(org: string): OrgPolicy
  counts(): { orgs: number; indexedFaces: number; staleFaces: number }
  saveSnapshot(dir: string, seq: number): void
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

export function createReplica(options: ReplicaOptions): Replica {
  const { logger, layout, reader, params } = options
  const { modelId } = layout
  const fused = layout.parts.length > 1
  const searched = (embedding: Float32Array): Float32Array => primaryPart(embedding, layout)
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
  let set: IndexSet = createIndexSet(params)

  const add = (face: StoredEmbedding): void => {
    if (face.modelId !== modelId) {
      staleFaces++
      return
    }
    const orgIndex = set.forOrg(face.org)
    if (!orgIndex.has(face.label)) orgIndex.add(face.label, searched(face.embedding))
    track(face.label, { org: face.org, identityId: face.identityId })
  }

  const remove = (face: { org: string; label: number }): boolean => {
    const removed = set.get(face.org)?.remove(face.label) ?? false
    untrack(face.label)
    return removed
  }

  const apply = (
    change: GalleryChange,
    embeddingByLabel: (label: number) => StoredEmbedding | undefined,
  ): void => {
    if (change.kind === 'delete') {
      remove(change)
      return
    }
    if (change.kind !== 'add' || set.get(change.org)?.has(change.label) === true) return
    const face = embeddingByLabel(change.label)
    // Deleted since (its delete comes later in the log), or embedded by another model.
    if (face === undefined || face.modelId !== modelId) return
    add(face)
  }

  const replica: Replica = {
    loadedFrom: 'rebuild',
    loadedSnapshotSeq: 0,
    load(snapshotDir, source) {
      labels.clear()
      members.clear()
      templates.clear()
      identityCounts.clear()
      staleFaces = 0
      const started = performance.now()
      const loaded = loadSnapshot(snapshotDir, params)
      if (loaded.ok && loaded.seq <= source.lastSeq) {
        set = loaded.set
        replica.loadedFrom = 'snapshot'
        replica.loadedSnapshotSeq = loaded.seq
        // Labels and stale counts come from the store's rows; vectors come from the snapshot.
        for (const ref of source.faceRefs()) {
          if (ref.modelId !== modelId) {
            // Snapshotted under another embedder: its vector must not be searched.
            staleFaces++
            set.get(ref.org)?.remove(ref.label)
          } else {
            track(ref.label, { org: ref.org, identityId: ref.identityId })
          }
        }
        let replayed = 0
        for (const change of source.changesSince(loaded.seq)) {
          replayed++
          apply(change, (label) => source.embeddingByLabel(label))
        }
        logger.info({ snapshotSeq: loaded.seq, replayed, seq: source.lastSeq }, 'gallery.snapshot_loaded')
      } else {
        const reason = loaded.ok
          ? `snapshot seq ${String(loaded.seq)} is ahead of the store (${String(source.lastSeq)})`
          : loaded.reason
        if (source.lastSeq > 0) logger.warn({ reason }, 'gallery.index_rebuild')
        set = createIndexSet(params)
        for (const face of source.embeddings()) add(face)
        replica.loadedFrom = 'rebuild'
        replica.loadedSnapshotSeq = 0
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
          loadedFrom: replica.loadedFrom,
        },
        'gallery.ready',
      )
    },
    add,
    remove,
    apply,
    recognize: (org, embedding) => recognize(org, embedding),
    similarityToIdentity(org, identityId, embedding) {
      const template = templateOf(org, identityId)
      if (template === undefined) return undefined
      return cosine(normalizeParts(Float32Array.from(embedding), layout), template)
    },
    policyFor: (org) => policyFor(org),
    calibrate(org) {
      fit(org)
      return policyFor(org)
    },
    counts() {
      let indexedFaces = 0
      for (const org of set.orgs()) indexedFaces += set.get(org)?.size ?? 0
      return { orgs: set.orgs().length, indexedFaces, staleFaces }
    },
    saveSnapshot: (dir, seq) => {
      set.saveSnapshot(dir, seq)
    },
    close() {
      closed = true
    },
  }

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

  /** The org's templates and faces, read through the reader (calibration only). */
  const orgFaces = (
    org: string,
  ): { faces: { identity: number; embedding: Float32Array }[]; templates: Float32Array[] } => {
    const byIdentity = new Map<string, Float32Array[]>()
    for (const face of reader.embeddings(org)) {
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

  /** An identity's template, from its faces' embeddings (cached until its faces change). */
  const templateOf = (org: string, identityId: string): Float32Array | undefined => {
    const key = memberKey(org, identityId)
    const cached = templates.get(key)
    if (cached !== undefined) return cached
    const embeddings: Float32Array[] = []
    for (const label of members.get(key) ?? []) {
      const stored = reader.embeddingByLabel(label)
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
      const name = reader.identityName(org, ref.identityId)
      return name === undefined ? undefined : { id: ref.identityId, name }
    }

  const recognize = (org: string, embedding: Float32Array): Recognition => {
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
  }

  return replica
}
