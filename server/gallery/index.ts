/**
 * The gallery: a store (the source of truth: SQLite in one process, or PostgreSQL shared by a
 * cluster) plus this instance's replica (one HNSW index per organization, templates and
 * calibration; replica.ts). The store is private: identities, faces and the audit log are read
 * and written only through the gallery, so no write reaches the store without reaching the
 * replica, and (SQLite) every delete is followed by the WAL checkpoint that takes the deleted
 * rows out of the -wal file. Writes are asynchronous (the PostgreSQL store answers over the
 * network); a search is synchronous and never touches the network.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createClusterCore } from './cluster.js'
import { replicaOptions, reportKeys, type GalleryCore, type GalleryOptions } from './core.js'
import { createReplica, type Recognition, type Replica } from './replica.js'
import { openStore } from './store.js'
import type {
  Actor,
  AuditEntry,
  Face,
  Identity,
  IdentityPatch,
  NewIdentity,
  OrgPolicy,
  Page,
} from './types.js'

export type * from './types.js'
export { meanTemplate, MAX_CALIBRATION_PAIRS, MIN_CALIBRATION_IDENTITIES } from './replica.js'
export type { Recognition } from './replica.js'
export type { ClusterOptions, GalleryOptions } from './core.js'

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

export interface Gallery {
  readonly modelId: string
  /** Where the rows live: one SQLite file, or a PostgreSQL database shared by a cluster. */
  readonly storeKind: 'sqlite' | 'postgres'
  /** How the indexes were brought up: from a snapshot (plus replayed changes) or rebuilt. */
  readonly loadedFrom: 'snapshot' | 'rebuild'
  createIdentity(org: string, input: NewIdentity, actor: Actor): Promise<Identity>
  /** undefined when the identity does not exist in this org. */
  getIdentity(org: string, identityId: string): Promise<Identity | undefined>
  /**
   * Oldest first (then by id); `cursor` is a page's opaque `nextCursor`; limit 1..1000. Throws
   * ERR_REQUEST_INVALID for a limit out of range or a cursor this gallery did not hand out.
   */
  listIdentities(
    org: string,
    options: { limit: number; cursor?: string | undefined },
  ): Promise<Page<Identity>>
  /** Fields present in the patch replace the stored ones (metadata as a whole). */
  updateIdentity(
    org: string,
    identityId: string,
    patch: IdentityPatch,
    actor: Actor,
  ): Promise<Identity | undefined>
  /**
   * Removes the identity and all its faces from the store and the index (SQLite: then checkpoints
   * the WAL: secure_delete zeroes the rows, the checkpoint takes them out of the -wal file).
   */
  deleteIdentity(
    org: string,
    identityId: string,
    actor: Actor,
  ): Promise<{ identity: Identity; faces: Face[] } | undefined>
  /** The identity's faces in enrollment order; undefined when the identity does not exist in this org. */
  listFaces(org: string, identityId: string): Promise<Face[] | undefined>
  /**
   * Stores and indexes a face of the current model (with the sha256 of the image it came from,
   * when given); undefined when the identity does not exist in this org.
   */
  addFace(
    org: string,
    identityId: string,
    face: { embedding: Float32Array; quality: number; sourceSha256?: string | undefined },
    actor: Actor,
  ): Promise<Face | undefined>
  /** Removes one face from the store and the index (as deleteIdentity). */
  deleteFace(org: string, faceId: string, actor: Actor): Promise<Face | undefined>
  /**
   * Enrollment's duplicate check: the identity's newest face made from an image whose bytes have
   * this sha256 (hex), if any.
   */
  findFaceBySource(org: string, identityId: string, sha256: string): Promise<Face | undefined>
  /** The org's audit rows (ids only) with seq > afterSeq (default 0), ascending; limit 1..1000. */
  audit(org: string, options: { limit: number; afterSeq?: number | undefined }): Promise<AuditEntry[]>
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
  /**
   * Brings the replica up to date with the store now (cluster mode: replays the changes other
   * instances made; resolves once applied). SQLite: nothing to do.
   */
  sync(): Promise<void>
  /** Writes the index snapshot if the store moved since the last one (cluster mode: shares it too). */
  snapshot(): Promise<boolean>
  /** Snapshots and closes the store. */
  close(): Promise<void>
}

/** The single-process gallery on SQLite (`<dataDir>/facewire.db`), loaded synchronously. */
export function createGallery(options: GalleryOptions): Gallery {
  const { logger } = options
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 })
  const snapshotDir = join(options.dataDir, 'index')
  const store = openStore({
    dataDir: options.dataDir,
    embeddingKey: options.embeddingKey,
    previousEmbeddingKeys: options.previousEmbeddingKey === undefined ? [] : [options.previousEmbeddingKey],
    logger,
  })
  let replica: Replica
  try {
    const usage = store.checkKeys({ sampleRows: 1 })
    store.recordServerKeys()
    reportKeys(usage, store.currentKeyId, store.serverKeys()?.previous ?? [], logger)
    replica = createReplica(
      replicaOptions(options, {
        identityName: (org, id) => store.identityName(org, id),
        embeddingByLabel: (label) => store.embeddingByLabel(label),
        embeddings: (org) => store.embeddings(org),
      }),
    )
    replica.load(snapshotDir, {
      faceRefs: () => store.faceRefs(),
      embeddings: () => store.embeddings(),
      changesSince: (seq) => store.changesSince(seq),
      embeddingByLabel: (label) => store.embeddingByLabel(label),
      lastSeq: store.lastSeq(),
    })
  } catch (error) {
    store.close()
    throw error
  }
  let snapshotSeq = replica.loadedSnapshotSeq
  const ignore = (): void => undefined
  return facade(options, {
    storeKind: 'sqlite',
    replica,
    store,
    wrote: { identity: ignore, identityDeleted: ignore, face: ignore, faceDeleted: ignore },
    afterDelete: () => {
      store.checkpoint()
    },
    seq: () => store.lastSeq(),
    sync: () => Promise.resolve(),
    snapshot() {
      const seq = store.lastSeq()
      if (seq === snapshotSeq) return Promise.resolve({ written: false, seq })
      replica.saveSnapshot(snapshotDir, seq)
      snapshotSeq = seq
      return Promise.resolve({ written: true, seq })
    },
    snapshotSeq: () => snapshotSeq,
    close() {
      store.close()
      return Promise.resolve()
    },
  })
}

/**
 * Opens the gallery the options ask for: PostgreSQL (cluster mode) when `cluster` is set, else
 * SQLite in `dataDir`.
 */
export async function openGallery(options: GalleryOptions): Promise<Gallery> {
  if (options.cluster === undefined) return createGallery(options)
  return facade(options, await createClusterCore(options, options.cluster))
}

/** The Gallery over a core: writes go to the store, then to the replica. */
export function facade(options: GalleryOptions, core: GalleryCore): Gallery {
  const { logger, layout } = options
  const { modelId } = layout
  const { replica, store } = core

  const unindex = (faces: readonly Face[]): void => {
    for (const face of faces) replica.remove(face)
  }

  const snapshot = async (): Promise<boolean> => {
    const begun = performance.now()
    const { written, seq } = await core.snapshot()
    if (written) logger.info({ seq, ms: Math.round(performance.now() - begun) }, 'gallery.snapshot_written')
    return written
  }

  return {
    modelId,
    storeKind: core.storeKind,
    loadedFrom: replica.loadedFrom,
    async createIdentity(org, input, actor) {
      const identity = await store.createIdentity(org, input, actor)
      core.wrote.identity(identity)
      return identity
    },
    getIdentity: async (org, identityId) => store.getIdentity(org, identityId),
    listIdentities: async (org, page) => store.listIdentities(org, page),
    async updateIdentity(org, identityId, patch, actor) {
      const identity = await store.updateIdentity(org, identityId, patch, actor)
      if (identity !== undefined) core.wrote.identity(identity)
      return identity
    },
    async listFaces(org, identityId) {
      if ((await store.getIdentity(org, identityId)) === undefined) return undefined
      return store.listFaces(org, identityId)
    },
    async addFace(org, identityId, face, actor) {
      if (face.embedding.length !== layout.dim) {
        throw new RangeError(`embedding has ${face.embedding.length} values, the gallery ${layout.dim}`)
      }
      const stored = await store.addFace(org, identityId, { ...face, modelId }, actor)
      if (stored === undefined) return undefined
      core.wrote.face(stored, face.embedding)
      replica.add({
        label: stored.label,
        faceId: stored.id,
        identityId,
        org,
        modelId,
        embedding: face.embedding,
      })
      options.metrics?.galleryChanges.inc({ kind: 'face_add' })
      return stored
    },
    findFaceBySource: async (org, identityId, sha256) => store.findFaceBySource(org, identityId, sha256),
    async deleteFace(org, faceId, actor) {
      const face = await store.deleteFace(org, faceId, actor)
      if (face !== undefined) {
        unindex([face])
        core.wrote.faceDeleted(face)
        options.metrics?.galleryChanges.inc({ kind: 'face_delete' })
        core.afterDelete()
      }
      return face
    },
    async deleteIdentity(org, identityId, actor) {
      const removed = await store.deleteIdentity(org, identityId, actor)
      if (removed !== undefined) {
        unindex(removed.faces)
        core.wrote.identityDeleted(org, identityId, removed.faces)
        options.metrics?.galleryChanges.inc({ kind: 'identity_delete' })
        core.afterDelete()
      }
      return removed
    },
    audit: async (org, page) => store.audit(org, page),
    isCurrent: (face) => face.modelId === modelId,
    recognize: (org, embedding) => replica.recognize(org, embedding),
    similarityToIdentity: (org, identityId, embedding) =>
      replica.similarityToIdentity(org, identityId, embedding),
    policyFor: (org) => replica.policyFor(org),
    calibrate: (org) => replica.calibrate(org),
    stats() {
      return { ...replica.counts(), seq: core.seq(), snapshotSeq: core.snapshotSeq() }
    },
    sync: () => core.sync(),
    snapshot,
    async close() {
      replica.close()
      try {
        await snapshot()
      } catch (error) {
        logger.error({ err: error }, 'gallery.snapshot_failed')
      }
      await core.close()
    },
  }
}
