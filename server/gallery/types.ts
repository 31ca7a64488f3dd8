/**
 * Shapes shared by the gallery's store (SQLite, the source of truth), its per-organization HNSW
 * indexes (a cache rebuilt from the store) and the open-set decision.
 */
import type { Metadata, PolicyBasis } from '../../protocol/wire.js'

export interface Identity {
  id: string
  org: string
  name: string
  externalId: string | null
  metadata: Metadata
  /** Faces currently enrolled for this identity. */
  faceCount: number
  createdAt: string
  updatedAt: string
}

export interface NewIdentity {
  name: string
  externalId?: string | null | undefined
  metadata?: Metadata | undefined
}

/** Fields left undefined are not changed. */
export interface IdentityPatch {
  name?: string | undefined
  externalId?: string | null | undefined
  metadata?: Metadata | undefined
}

export interface Face {
  id: string
  identityId: string
  org: string
  /** Integer label of this face in its organization's HNSW index (unique across the store). */
  label: number
  quality: number
  /** Embedder model id from models/manifest.json; faces of another model are not searched. */
  modelId: string
  createdAt: string
  /**
   * sha256 (hex) of the image bytes the face was enrolled from (the image itself is never
   * stored), so the same photo is not enrolled twice; null when not recorded (faces enrolled
   * before it was).
   */
  sourceSha256: string | null
}

export interface NewFace {
  embedding: Float32Array
  quality: number
  modelId: string
  sourceSha256?: string | null | undefined
}

/** A face with its (decrypted) embedding, as the index is built from. */
export interface StoredEmbedding {
  label: number
  faceId: string
  identityId: string
  org: string
  modelId: string
  embedding: Float32Array
}

/**
 * One row of the change log the index replays after loading a snapshot. `identity` rows (an
 * identity created, renamed or deleted; label 0, no face) are written by the PostgreSQL store
 * only, for the other instances' name caches.
 */
export type GalleryChange =
  | { seq: number; kind: 'add'; org: string; label: number; faceId: string; identityId: string }
  | { seq: number; kind: 'delete'; org: string; label: number; faceId: string; identityId: string }
  | { seq: number; kind: 'identity'; org: string; label: number; faceId: string; identityId: string }

/** Who did something, for the audit log (the token's `sub`, or `cli`/`system`). */
export interface Actor {
  sub: string
}

export interface AuditEntry {
  seq: number
  at: string
  org: string
  actor: string
  action: 'identity.create' | 'identity.update' | 'identity.delete' | 'face.add' | 'face.delete'
  identityId: string | null
  faceId: string | null
}

export interface Page<T> {
  items: T[]
  /** Opaque; absent on the last page. */
  nextCursor?: string
}

/** A nearest neighbour from an index: the face's label and cosine similarity in [-1, 1]. */
export interface Neighbour {
  label: number
  similarity: number
}

export interface DecisionPolicy {
  /** Similarity at or above which the best identity may be a match. */
  threshold: number
  /** Required lead of the best identity over the second-best for `match`; less gives `uncertain`. */
  margin: number
  /** Candidates returned (distinct identities). */
  topK: number
}

/** What an org does with the liveness score: nothing, show it, or refuse a match without it. */
export type LivenessMode = 'off' | 'report' | 'require'

/** How an organization decides: what it asked for and the threshold that follows. */
export interface OrgPolicy extends DecisionPolicy {
  liveness: { mode: LivenessMode; threshold: number }
  /** Share of strangers the org accepts being matched to someone (FPIR). */
  targetFpir: number
  basis: PolicyBasis
  /** Identities searched when the threshold was derived. */
  identities: number
  /** Gallery impostor scores computed (0 below MIN_CALIBRATION_IDENTITIES identities). */
  galleryPairs: number
  /** The threshold each source gives; the higher one is used. */
  cohortThreshold?: number
  galleryThreshold?: number
}

/** The default decision policy (FACEWIRE_TARGET_FPIR, FACEWIRE_MATCH_*...). */
export interface PolicyOptions {
  targetFpir: number
  /** A fixed threshold instead of the calibrated one. */
  threshold?: number | undefined
  margin: number
  topK: number
  liveness?: { mode: LivenessMode; threshold: number } | undefined
}

/** An organization's own policy fields (FACEWIRE_ORG_POLICIES); unset fields keep the default. */
export interface OrgPolicyOverride {
  targetFpir?: number | undefined
  threshold?: number | undefined
  margin?: number | undefined
  liveness?: LivenessMode | undefined
  livenessThreshold?: number | undefined
}
