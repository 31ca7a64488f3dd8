/**
 * What both gallery stores (SQLite: store.ts, PostgreSQL: pg-store.ts) share: the rows they select
 * and how they become gallery objects, page limits, the opaque identity cursor, the check of a new
 * face, timestamps.
 */
import { FacewireError } from '../errors.js'
import type { Metadata } from '../../protocol/wire.js'
import { openEmbedding, type EmbeddingKeyRing } from './embedding-crypto.js'
import type { FaceRef, GalleryStore, ServerKeys } from './store.js'
import type { AuditEntry, Face, GalleryChange, Identity, NewFace, Page, StoredEmbedding } from './types.js'

const MAX_PAGE_LIMIT = 1000

export function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw new FacewireError('ERR_REQUEST_INVALID', `limit must be an integer from 1 to ${MAX_PAGE_LIMIT}`, {
      details: { issues: [{ path: 'limit', message: `must be an integer from 1 to ${MAX_PAGE_LIMIT}` }] },
    })
  }
  return limit
}

export function checkNewFace(face: NewFace): void {
  // The pipeline produces these; a bad one is a bug, and NaN would poison the index.
  if (face.embedding.length === 0 || !face.embedding.every(Number.isFinite)) {
    throw new RangeError('a face embedding must be a non-empty vector of finite numbers')
  }
  if (!Number.isFinite(face.quality)) throw new RangeError('a face quality must be a finite number')
}

/** The opaque cursor after `identity` in (createdAt, id) order. */
export function toCursor(identity: Identity): string {
  return Buffer.from(JSON.stringify([identity.createdAt, identity.id]), 'utf8').toString('base64url')
}

/** Reads a cursor toCursor wrote; ERR_REQUEST_INVALID for anything else. */
export function parseCursor(cursor: string): { createdAt: string; id: string } {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    value = undefined
  }
  const parts = Array.isArray(value) ? (value as unknown[]) : []
  const [createdAt, id] = parts
  if (parts.length !== 2 || typeof createdAt !== 'string' || typeof id !== 'string') {
    throw new FacewireError('ERR_REQUEST_INVALID', 'the cursor is invalid', {
      details: { issues: [{ path: 'cursor', message: 'is not a cursor this server returned' }] },
    })
  }
  return { createdAt, id }
}

export function now(): string {
  return new Date().toISOString()
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** The operations the gallery facade calls on either store. */
export type GalleryOperation =
  | 'createIdentity'
  | 'getIdentity'
  | 'listIdentities'
  | 'updateIdentity'
  | 'deleteIdentity'
  | 'addFace'
  | 'listFaces'
  | 'findFaceBySource'
  | 'deleteFace'
  | 'audit'

/** A store method with the SQLite store's arguments, answering its result or a promise of it. */
export type MaybeAsync<F> = F extends (...args: infer A) => infer R ? (...args: A) => R | Promise<R> : never

/** The facade's operations as a store provides them (SQLite at once, PostgreSQL with promises). */
export type GalleryOperations = { [K in GalleryOperation]: MaybeAsync<GalleryStore[K]> }

/** A count or id as a driver returns it: SQLite a number, PostgreSQL's BIGINT a decimal string. */
type Num = number | string

/** The rows both stores select (same column names in both schemas). */
export interface IdentityRow {
  id: string
  org: string
  name: string
  external_id: string | null
  /** SQLite: the JSON text; PostgreSQL (JSON column): already parsed. */
  metadata: string | Metadata
  created_at: string
  updated_at: string
  face_count: Num
}

export interface FaceRow {
  label: Num
  id: string
  identity_id: string
  org: string
  quality: number
  model_id: string
  created_at: string
  source_sha256: string | null
}

export interface FaceRefRow {
  label: Num
  id: string
  identity_id: string
  org: string
  model_id: string
}

export interface EmbeddingRow extends FaceRefRow {
  embedding: Buffer
  key_id: string | null
}

export interface ChangeRow {
  seq: Num
  org: string
  kind: GalleryChange['kind']
  label: Num
  face_id: string
  identity_id: string
}

export interface AuditRow {
  seq: Num
  at: string
  org: string
  actor: string
  action: AuditEntry['action']
  identity_id: string | null
  face_id: string | null
}

export const IDENTITY_SELECT = `
  SELECT i.id, i.org, i.name, i.external_id, i.metadata, i.created_at, i.updated_at,
    (SELECT count(*) FROM faces f WHERE f.org = i.org AND f.identity_id = i.id) AS face_count
  FROM identities i`

export function toIdentity(row: IdentityRow): Identity {
  return {
    id: row.id,
    org: row.org,
    name: row.name,
    externalId: row.external_id,
    metadata: typeof row.metadata === 'string' ? (JSON.parse(row.metadata) as Metadata) : row.metadata,
    faceCount: Number(row.face_count),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}

export function toFace(row: FaceRow): Face {
  return {
    id: row.id,
    identityId: row.identity_id,
    org: row.org,
    label: Number(row.label),
    quality: row.quality,
    modelId: row.model_id,
    createdAt: row.created_at,
    sourceSha256: row.source_sha256,
  }
}

export function toFaceRef(row: FaceRefRow): FaceRef {
  return {
    label: Number(row.label),
    faceId: row.id,
    identityId: row.identity_id,
    org: row.org,
    modelId: row.model_id,
  }
}

export function toChange(row: ChangeRow): GalleryChange {
  return {
    seq: Number(row.seq),
    kind: row.kind,
    org: row.org,
    label: Number(row.label),
    faceId: row.face_id,
    identityId: row.identity_id,
  }
}

export function toAuditEntry(row: AuditRow): AuditEntry {
  return {
    seq: Number(row.seq),
    at: row.at,
    org: row.org,
    actor: row.actor,
    action: row.action,
    identityId: row.identity_id,
    faceId: row.face_id,
  }
}

/** A face row with its embedding opened by the key ring (ERR_CONFIG_INVALID when no key opens it). */
export function toStoredEmbedding(row: EmbeddingRow, ring: EmbeddingKeyRing): StoredEmbedding {
  return {
    ...toFaceRef(row),
    embedding: openEmbedding(row.embedding, { org: row.org, faceId: row.id }, row.key_id, ring),
  }
}

/** A page of identities from `limit + 1` rows (the extra one says there is a next page). */
export function identityPage(rows: readonly IdentityRow[], limit: number): Page<Identity> {
  const items = rows.slice(0, limit).map(toIdentity)
  const last = items.at(-1)
  return rows.length > limit && last !== undefined ? { items, nextCursor: toCursor(last) } : { items }
}

/** The key ids a server reads and writes with, as recorded for `facewire rotate-key`. */
export function serverKeysOf(ring: EmbeddingKeyRing): ServerKeys {
  return {
    current: ring.current?.id ?? null,
    previous: [...ring.keys.keys()].filter((id) => id !== ring.current?.id),
    recordedAt: now(),
  }
}
