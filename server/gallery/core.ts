/**
 * What a gallery is made of, shared by its two stores: the options, the store-facing core each
 * store provides (index.ts builds the Gallery over it), the replica's options, the key report.
 */
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { EmbeddingLayout } from '../pipeline/embedding-layout.js'
import type { ImpostorModel } from './calibration.js'
import type { IndexParams } from './hnsw-index.js'
import type { Replica, ReplicaOptions, ReplicaReader } from './replica.js'
import type { GalleryOperations } from './store-common.js'
import type { Face, Identity, OrgPolicyOverride, PolicyOptions } from './types.js'

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
   * neighbours by the whole embedding.
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
  /** Cluster mode: the PostgreSQL store and how this instance follows it (cluster.ts). */
  cluster?: ClusterOptions | undefined
}

export interface ClusterOptions {
  databaseUrl: string
  /** Catch-up poll period (a missed notification delays a change by at most this). */
  pollMs: number
  /** Told when the database becomes unreachable (a reason) or reachable again (undefined). */
  onHealth?: ((problem: string | undefined) => void) | undefined
  poolSize?: number | undefined
  statementTimeoutMs?: number | undefined
  retryForMs?: number | undefined
}

/** The store-facing half of a gallery: what differs between SQLite and PostgreSQL. */
export interface GalleryCore {
  storeKind: 'sqlite' | 'postgres'
  replica: Replica
  /** The store's operations (each answers at once or with a promise). */
  store: GalleryOperations
  /** After a write reached the store: keeps the copies a search reads (cluster: names, embeddings). */
  wrote: {
    identity(identity: Identity): void
    identityDeleted(org: string, identityId: string, faces: readonly Face[]): void
    face(face: Face, embedding: Float32Array): void
    faceDeleted(face: Face): void
  }
  /** Runs after a delete (SQLite: the WAL checkpoint). */
  afterDelete(): void
  seq(): number
  sync(): Promise<void>
  snapshot(): Promise<{ written: boolean; seq: number }>
  snapshotSeq(): number
  close(): Promise<void>
}

/**
 * Says how far a key rotation has come, once the store has accepted the key ring (its checkKeys
 * refuses a ring that cannot read it, so a wrong key stops the server at startup) and recorded the
 * ring's key ids for `facewire rotate-key`.
 */
export function reportKeys(
  usage: readonly { keyId: string | null; faces: number }[],
  current: string | undefined,
  previous: readonly string[],
  logger: Logger,
): void {
  if (current === undefined) return
  const pending = usage
    .filter((entry) => entry.keyId !== current)
    .reduce((sum, entry) => sum + entry.faces, 0)
  if (pending === 0 && previous.length === 0) return
  const fields = { currentKeyId: current, previousKeyIds: previous, faces: usage, pending }
  logger.info(
    fields,
    pending === 0
      ? 'gallery.keys: every face is encrypted under FACEWIRE_EMBEDDING_KEY; FACEWIRE_EMBEDDING_KEY_PREVIOUS can be removed'
      : `gallery.keys: ${String(pending)} faces are not encrypted under FACEWIRE_EMBEDDING_KEY yet; run facewire rotate-key`,
  )
}

/** The replica's options from the gallery's. */
export function replicaOptions(options: GalleryOptions, reader: ReplicaReader): ReplicaOptions {
  const { layout } = options
  return {
    layout,
    params: { dim: layout.parts[0]?.dim ?? layout.dim, ...options.hnsw },
    policy: options.policy,
    orgPolicies: options.orgPolicies,
    cohort: options.cohort,
    metrics: options.metrics,
    reader,
    logger: options.logger,
  }
}
