/**
 * The gallery's source of truth in cluster mode: PostgreSQL (FACEWIRE_DATABASE_URL), shared by
 * every instance. Same semantics as the SQLite store (store.ts): identities, faces with their
 * embeddings (encrypted the same way), a change log every instance replays into its own HNSW
 * indexes, an append-only audit log (enforced by triggers), per-organization isolation in every
 * query. Every mutation is one transaction writing its rows, its change rows and its audit row.
 *
 * Change sequence numbers are handed out and committed in order: each write transaction takes one
 * transaction-level advisory lock before it writes a change row, so a follower that has read up to
 * seq N can never later see a smaller seq commit (sequences alone commit out of order). Commits
 * NOTIFY `facewire_changes`; followers also poll, so a missed notification only delays.
 *
 * Writes are retried on transient errors (connection lost, server restarting, serialization
 * failure) with the ids chosen before the first attempt, so a retry after a lost COMMIT answer
 * finds its own row instead of writing a second one. When the database stays unreachable the
 * call fails with ERR_STORE_UNAVAILABLE (503).
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID, type KeyObject } from 'node:crypto'
import { equalJitterDelayMs } from '../backoff.js'
import pg from 'pg'
import {
  checkLimit,
  checkNewFace,
  errorMessage,
  IDENTITY_SELECT,
  now,
  parseCursor,
  toAuditEntry,
  toChange,
  toFace,
  toFaceRef,
  toIdentity,
  identityPage,
  serverKeysOf,
  toStoredEmbedding as openStored,
} from './store-common.js'
import type {
  GalleryOperation,
  AuditRow,
  ChangeRow,
  EmbeddingRow,
  FaceRefRow,
  FaceRow,
  IdentityRow,
} from './store-common.js'
import {
  createEmbeddingKeyRing,
  sealEmbedding,
  unknownKey,
  type EmbeddingKeyRing,
} from './embedding-crypto.js'
import { FacewireError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { FaceRef, GalleryStore, KeyUsage, ServerKeys } from './store.js'
import type { Actor, AuditEntry, Face, GalleryChange, Identity, StoredEmbedding } from './types.js'

export interface PgStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string
  embeddingKey?: Buffer | undefined
  previousEmbeddingKeys?: readonly Buffer[] | undefined
  logger: Logger
  /** Pooled connections (default 10). */
  poolSize?: number | undefined
  /** Server-side statement timeout in ms (default 5000). */
  statementTimeoutMs?: number | undefined
  /** How long a call keeps retrying transient errors before ERR_STORE_UNAVAILABLE (default 5000 ms). */
  retryForMs?: number | undefined
  /** How long startup waits for a database that is not answering yet (default 30000 ms). */
  startupWaitMs?: number | undefined
  /** Called with the database's state after each call: undefined = reachable, else why not. */
  onHealth?: ((problem: string | undefined) => void) | undefined
}

/** A row of the shared index snapshot: one part of one file. */
export interface SnapshotPart {
  file: string
  part: number
  data: Buffer
}

export interface SharedSnapshotInfo {
  seq: number
  modelId: string
  writtenAt: string
  /** Bytes in all parts. */
  bytes: number
}

/** The PostgreSQL store: the gallery's mutations and reads, all asynchronous. */
/** A method of the SQLite store, answering with a promise. */
type Async<F> = F extends (...args: infer A) => infer R ? (...args: A) => Promise<R> : never

/** The SQLite store's operations, with the same arguments and results, asynchronous. */
type SharedOperations = {
  [K in GalleryOperation | 'getFace' | 'keyUsage' | 'checkKeys' | 'recordServerKeys' | 'serverKeys']: Async<
    GalleryStore[K]
  >
}

/** The PostgreSQL store: the SQLite store's operations (asynchronous) and what a cluster adds. */
export interface PgGalleryStore extends SharedOperations {
  readonly kind: 'postgres'
  readonly encrypted: boolean
  readonly currentKeyId: string | undefined
  /** Every face with its decrypted embedding, in label order, read in batches. */
  embeddings(): AsyncIterable<StoredEmbedding>
  /** Faces by label (those still stored), decrypted. */
  embeddingsByLabels(labels: readonly number[]): Promise<StoredEmbedding[]>
  /** Every face without its embedding, in label order. */
  faceRefs(): AsyncIterable<FaceRef>
  /** Every identity's name (org, id, name), for the instance's name cache. */
  identityNames(): AsyncIterable<{ org: string; id: string; name: string }>
  /** Identities by id (any org) with their names; absent ids are deleted. */
  namesOf(ids: readonly string[]): Promise<{ org: string; id: string; name: string }[]>
  /** Change rows with seq > afterSeq, ascending, at most `limit`. */
  changesSince(afterSeq: number, limit: number): Promise<GalleryChange[]>
  lastSeq(): Promise<number>
  /** The shared index snapshot's description, if one was written. */
  sharedSnapshot(): Promise<SharedSnapshotInfo | undefined>
  /** Reads the shared snapshot's parts (ordered by file, part). */
  readSharedSnapshot(): Promise<{ info: SharedSnapshotInfo; parts: SnapshotPart[] } | undefined>
  /**
   * Replaces the shared snapshot, in one transaction, if this instance wins the snapshot lock
   * (one writer at a time across the cluster) and `seq` is newer than the stored one. Returns
   * whether it was written.
   */
  writeSharedSnapshot(
    info: Omit<SharedSnapshotInfo, 'bytes' | 'writtenAt'>,
    parts: SnapshotPart[],
  ): Promise<boolean>
  /**
   * Listens for committed changes on a dedicated connection (reconnected with backoff); calls
   * `onChange` for each notification and after every (re)connection, so nothing missed stays
   * missed. Returns a function that stops listening.
   */
  listen(onChange: () => void): () => void
  close(): Promise<void>
}

/** Error codes after which a call may be retried (the statement did not take effect, or is idempotent). */
const TRANSIENT_SQLSTATES = new Set([
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '57P01', // admin_shutdown: the server is restarting
  '57P02',
  '57P03', // cannot_connect_now: starting up
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
])
const TRANSIENT_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
])

/** Whether an error from node-postgres means "try again" rather than "this statement is wrong". */
function isTransientPgError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_NODE_CODES.has(code)))
    return true
  const message = error instanceof Error ? error.message : ''
  return /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(
    message,
  )
}

/** ERR_STORE_UNAVAILABLE with a one-second Retry-After. */
function storeUnavailable(cause: unknown): FacewireError {
  return new FacewireError('ERR_STORE_UNAVAILABLE', undefined, { cause, details: { retryAfterMs: 1000 } })
}

const BATCH_ROWS = 1024
/** Snapshot files are stored in parts of this size (a bytea value is limited to 1 GiB). */
export const SNAPSHOT_PART_BYTES = 8 * 1024 * 1024
/** Transaction-level advisory lock serializing change-log writers ('fwch'). */
const CHANGES_LOCK = 0x66776368
/** Session-level advisory lock of the snapshot writer ('fwsn'). */
const SNAPSHOT_LOCK = 0x6677736e
/** Advisory lock held while migrating ('fwmg'). */
const MIGRATION_LOCK = 0x66776d67
/** Waits between retries: of startup, of a query, of the listening connection. */
const STARTUP_BACKOFF = { baseMs: 100, maxMs: 2000 }
const QUERY_BACKOFF = { baseMs: 50, maxMs: 1000 }
const LISTEN_BACKOFF = { baseMs: 100, maxMs: 5000 }
export const CHANGES_CHANNEL = 'facewire_changes'

/** The schema, one entry per version; append only. */
const MIGRATIONS: readonly string[] = [
  `
  -- COLLATE "C": ids and ISO timestamps order by their bytes, as in SQLite (keyset pages).
  CREATE TABLE identities (
    id TEXT COLLATE "C" PRIMARY KEY,
    org TEXT NOT NULL,
    name TEXT NOT NULL,
    external_id TEXT,
    metadata JSON NOT NULL DEFAULT '{}', -- JSON, not JSONB: kept as written (key order), as in SQLite
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX identities_by_org_created ON identities (org, created_at, id);

  -- BIGSERIAL: a label is never handed out twice, so a snapshot never confuses a deleted face with a new one.
  CREATE TABLE faces (
    label BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    org TEXT NOT NULL,
    embedding BYTEA NOT NULL,
    key_id TEXT,
    quality DOUBLE PRECISION NOT NULL,
    model_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    source_sha256 TEXT
  );
  CREATE INDEX faces_by_org_identity ON faces (org, identity_id);
  CREATE INDEX faces_by_key ON faces (key_id, label);

  -- kind 'identity': an identity was created, renamed or deleted (instances refresh its name).
  CREATE TABLE changes (
    seq BIGSERIAL PRIMARY KEY,
    org TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('add', 'delete', 'identity')),
    label BIGINT NOT NULL,
    face_id TEXT NOT NULL,
    identity_id TEXT NOT NULL
  );

  CREATE TABLE audit (
    seq BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    org TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL CHECK (
      action IN ('identity.create', 'identity.update', 'identity.delete', 'face.add', 'face.delete')
    ),
    identity_id TEXT,
    face_id TEXT
  );
  CREATE INDEX audit_by_org ON audit (org, seq);
  CREATE FUNCTION facewire_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
  CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION facewire_audit_append_only();
  CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION facewire_audit_append_only();

  CREATE TABLE store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);

  -- The shared HNSW snapshot: one description row and the files in parts.
  CREATE TABLE index_snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    model_id TEXT NOT NULL,
    written_at TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    -- The embedding key the parts are encrypted under (they hold vectors); NULL = clear.
    key_id TEXT
  );
  CREATE TABLE index_snapshot_parts (
    file TEXT NOT NULL,
    part INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (file, part)
  );
  `,
  `
  -- The photo a face came from, by its sha256 (faces.source_sha256): a second upload of the same
  -- bytes for the same identity answers the face it made.
  CREATE INDEX faces_by_source ON faces (org, identity_id, source_sha256);
  `,
]

export const PG_SCHEMA_VERSION = MIGRATIONS.length

const FACE_SELECT =
  'SELECT label, id, identity_id, org, quality, model_id, created_at, source_sha256 FROM faces'
const EMBEDDING_SELECT = 'SELECT label, id, identity_id, org, model_id, embedding, key_id FROM faces'
const SERVER_KEYS = 'server_keys'

type Queryable = Pick<pg.PoolClient, 'query'>

/**
 * Connects, migrates (once across the cluster, under an advisory lock) and returns the store.
 * Throws ERR_CONFIG_INVALID naming FACEWIRE_DATABASE_URL when the database cannot be reached or is
 * newer than this code.
 */
export async function openPgStore(options: PgStoreOptions): Promise<PgGalleryStore> {
  const { logger } = options
  const ring = createEmbeddingKeyRing(
    options.embeddingKey,
    (options.previousEmbeddingKeys ?? []).map((key) => ({
      key,
      variable: 'FACEWIRE_EMBEDDING_KEY_PREVIOUS',
    })),
  )
  const statementTimeoutMs = options.statementTimeoutMs ?? 5000
  const connection = {
    connectionString: options.url,
    statement_timeout: statementTimeoutMs,
    connectionTimeoutMillis: 3000,
    application_name: 'facewire',
  }
  const pool = new pg.Pool({ ...connection, max: options.poolSize ?? 10, idleTimeoutMillis: 30_000 })
  // An idle client losing its connection (the server restarting) must not crash the process.
  pool.on('error', (error) => {
    logger.warn({ err: redact(error) }, 'database.connection_lost')
  })
  try {
    // A database still starting (compose starts both at once) is waited for; a wrong URL,
    // password or database name is not transient and fails at once.
    const started = Date.now()
    for (let attempt = 0; ; attempt++) {
      try {
        await migrate(pool, logger)
        break
      } catch (error) {
        const waited = Date.now() - started
        if (!isTransientPgError(error) || waited >= (options.startupWaitMs ?? 30_000)) throw error
        if (attempt === 0) logger.warn({ err: redact(error) }, 'database.waiting')
        await sleep(equalJitterDelayMs(attempt + 1, STARTUP_BACKOFF))
      }
    }
  } catch (error) {
    await pool.end().catch(() => undefined)
    if (error instanceof FacewireError) throw error
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `invalid configuration: FACEWIRE_DATABASE_URL: the database could not be opened (${errorMessage(error)})`,
      { cause: error, details: { variables: ['FACEWIRE_DATABASE_URL'] } },
    )
  }
  return createPgStore(pool, connection, ring, options)
}

async function migrate(pool: pg.Pool, logger: Logger): Promise<void> {
  const client = await checkout(pool)
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    try {
      await client.query(
        'CREATE TABLE IF NOT EXISTS facewire_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)',
      )
      const found = await client.query<{ version: number | null }>(
        'SELECT max(version) AS version FROM facewire_schema',
      )
      const current = found.rows[0]?.version ?? 0
      if (current > MIGRATIONS.length) {
        throw new FacewireError(
          'ERR_CONFIG_INVALID',
          `invalid configuration: FACEWIRE_DATABASE_URL: the database has schema version ${current}, newer than this facewire supports (${MIGRATIONS.length})`,
          { details: { variables: ['FACEWIRE_DATABASE_URL'] } },
        )
      }
      for (let version = current + 1; version <= MIGRATIONS.length; version++) {
        await client.query('BEGIN')
        try {
          await client.query(MIGRATIONS[version - 1] ?? '')
          await client.query('INSERT INTO facewire_schema (version, applied_at) VALUES ($1, $2)', [
            version,
            now(),
          ])
          await client.query('COMMIT')
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined)
          throw error
        }
        logger.info({ version }, 'gallery.migrated')
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined)
    }
  } finally {
    client.release()
  }
}

function createPgStore(
  pool: pg.Pool,
  connection: pg.ClientConfig,
  ring: EmbeddingKeyRing,
  options: PgStoreOptions,
): PgGalleryStore {
  const { logger } = options
  const retryForMs = options.retryForMs ?? 5000
  let closed = false
  const health = (problem: string | undefined): void => {
    options.onHealth?.(problem)
  }

  /** Runs `fn`, retrying transient errors with backoff for up to retryForMs. */
  const retrying = async <R>(fn: () => Promise<R>): Promise<R> => {
    const started = Date.now()
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await fn()
        health(undefined)
        return result
      } catch (error) {
        if (!isTransientPgError(error)) throw error
        health(errorMessage(error))
        const waited = Date.now() - started
        if (closed || waited >= retryForMs) throw storeUnavailable(error)
        const backoff = equalJitterDelayMs(attempt + 1, QUERY_BACKOFF)
        await sleep(Math.min(backoff, retryForMs - waited))
      }
    }
  }

  const read = <R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> =>
    retrying(async () => (await pool.query<R>(text, values)).rows)

  /** One write transaction holding the change-log lock; notifies followers on commit. */
  const write = <R>(fn: (client: Queryable) => Promise<R>): Promise<R> =>
    retrying(async () => {
      const client = await checkout(pool)
      let broken = false
      try {
        await client.query('BEGIN')
        await client.query('SELECT pg_advisory_xact_lock($1)', [CHANGES_LOCK])
        const result = await fn(client)
        await client.query(`NOTIFY ${CHANGES_CHANNEL}`)
        await client.query('COMMIT')
        return result
      } catch (error) {
        broken = isTransientPgError(error)
        await client.query('ROLLBACK').catch(() => undefined)
        throw error
      } finally {
        client.release(broken)
      }
    })

  const audit = async (
    client: Queryable,
    at: string,
    org: string,
    actor: Actor,
    action: AuditEntry['action'],
    ids: { identityId: string | null; faceId: string | null },
  ): Promise<void> => {
    await client.query(
      'INSERT INTO audit (at, org, actor, action, identity_id, face_id) VALUES ($1, $2, $3, $4, $5, $6)',
      [at, org, actor.sub, action, ids.identityId, ids.faceId],
    )
  }

  const change = async (
    client: Queryable,
    kind: GalleryChange['kind'] | 'identity',
    org: string,
    ref: { label: number; faceId: string; identityId: string },
  ): Promise<void> => {
    await client.query(
      'INSERT INTO changes (org, kind, label, face_id, identity_id) VALUES ($1, $2, $3, $4, $5)',
      [org, kind, ref.label, ref.faceId, ref.identityId],
    )
  }

  const identityIn = async (client: Queryable, org: string, id: string): Promise<Identity | undefined> => {
    const { rows } = await client.query<IdentityRow>(`${IDENTITY_SELECT} WHERE i.org = $1 AND i.id = $2`, [
      org,
      id,
    ])
    const row = rows[0]
    return row === undefined ? undefined : toIdentity(row)
  }

  const faceIn = async (client: Queryable, org: string, faceId: string): Promise<Face | undefined> => {
    const { rows } = await client.query<FaceRow>(`${FACE_SELECT} WHERE org = $1 AND id = $2`, [org, faceId])
    const row = rows[0]
    return row === undefined ? undefined : toFace(row)
  }

  const toStoredEmbedding = (row: EmbeddingRow): StoredEmbedding => openStored(row, ring)

  /** Rows in label order, BATCH_ROWS at a time (keyset pagination). */
  async function* batched<R extends { label: number | string }>(select: string): AsyncGenerator<R> {
    let after = 0
    for (;;) {
      const rows = await read<R>(`${select} WHERE label > $1 ORDER BY label LIMIT $2`, [after, BATCH_ROWS])
      yield* rows
      const last = rows.at(-1)
      if (last === undefined || rows.length < BATCH_ROWS) return
      after = Number(last.label)
    }
  }

  const keyUsage = async (): Promise<KeyUsage[]> =>
    (
      await read<{ key_id: string | null; faces: string }>(
        'SELECT key_id, count(*) AS faces FROM faces GROUP BY key_id ORDER BY key_id NULLS FIRST',
      )
    ).map((row) => ({ keyId: row.key_id, faces: Number(row.faces) }))

  if (ring.current === undefined) {
    logger.warn(
      { variable: 'FACEWIRE_EMBEDDING_KEY' },
      'gallery.unencrypted: FACEWIRE_EMBEDDING_KEY is not set; new face embeddings are stored in clear',
    )
  }

  return {
    kind: 'postgres',
    encrypted: ring.current !== undefined,
    currentKeyId: ring.current?.id,

    createIdentity(org, input, actor) {
      const id = randomUUID()
      return write(async (client) => {
        // A retry after a lost COMMIT answer finds the identity it already wrote.
        const existing = await identityIn(client, org, id)
        if (existing !== undefined) return existing
        const at = now()
        await client.query(
          `INSERT INTO identities (id, org, name, external_id, metadata, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6)`,
          [id, org, input.name, input.externalId ?? null, JSON.stringify(input.metadata ?? {}), at],
        )
        await change(client, 'identity', org, { label: 0, faceId: '', identityId: id })
        await audit(client, at, org, actor, 'identity.create', { identityId: id, faceId: null })
        return mustExist(await identityIn(client, org, id))
      })
    },

    async getIdentity(org, id) {
      const rows = await read<IdentityRow>(`${IDENTITY_SELECT} WHERE i.org = $1 AND i.id = $2`, [org, id])
      const row = rows[0]
      return row === undefined ? undefined : toIdentity(row)
    },

    async listIdentities(org, options) {
      const limit = checkLimit(options.limit)
      const after = options.cursor === undefined ? undefined : parseCursor(options.cursor)
      const rows =
        after === undefined
          ? await read<IdentityRow>(
              `${IDENTITY_SELECT} WHERE i.org = $1 ORDER BY i.created_at, i.id LIMIT $2`,
              [org, limit + 1],
            )
          : await read<IdentityRow>(
              `${IDENTITY_SELECT} WHERE i.org = $1 AND (i.created_at, i.id) > ($2, $3)
               ORDER BY i.created_at, i.id LIMIT $4`,
              [org, after.createdAt, after.id, limit + 1],
            )
      return identityPage(rows, limit)
    },

    updateIdentity(org, id, patch, actor) {
      return write(async (client) => {
        const current = await identityIn(client, org, id)
        if (current === undefined) return undefined
        const at = now()
        await client.query(
          `UPDATE identities SET name = $3, external_id = $4, metadata = $5, updated_at = $6
           WHERE org = $1 AND id = $2`,
          [
            org,
            id,
            patch.name ?? current.name,
            patch.externalId === undefined ? current.externalId : patch.externalId,
            JSON.stringify(patch.metadata ?? current.metadata),
            at,
          ],
        )
        await change(client, 'identity', org, { label: 0, faceId: '', identityId: id })
        await audit(client, at, org, actor, 'identity.update', { identityId: id, faceId: null })
        return mustExist(await identityIn(client, org, id))
      })
    },

    deleteIdentity(org, id, actor) {
      return write(async (client) => {
        const identity = await identityIn(client, org, id)
        if (identity === undefined) return undefined
        const { rows } = await client.query<FaceRow>(
          `${FACE_SELECT} WHERE org = $1 AND identity_id = $2 ORDER BY label`,
          [org, id],
        )
        const faces = rows.map(toFace)
        for (const face of faces) await change(client, 'delete', org, { ...face, faceId: face.id })
        await client.query('DELETE FROM faces WHERE org = $1 AND identity_id = $2', [org, id])
        await client.query('DELETE FROM identities WHERE org = $1 AND id = $2', [org, id])
        await change(client, 'identity', org, { label: 0, faceId: '', identityId: id })
        await audit(client, now(), org, actor, 'identity.delete', { identityId: id, faceId: null })
        return { identity, faces }
      })
    },

    addFace(org, identityId, input, actor) {
      checkNewFace(input)
      const id = randomUUID()
      const sealed = sealEmbedding(input.embedding, { org, faceId: id }, ring)
      return write(async (client) => {
        const existing = await faceIn(client, org, id)
        if (existing !== undefined) return existing
        const owner = await client.query('SELECT 1 FROM identities WHERE org = $1 AND id = $2', [
          org,
          identityId,
        ])
        if (owner.rowCount === 0) return undefined
        const at = now()
        const { rows } = await client.query<FaceRow>(
          `INSERT INTO faces (id, identity_id, org, embedding, key_id, quality, model_id, created_at, source_sha256)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           RETURNING label, id, identity_id, org, quality, model_id, created_at, source_sha256`,
          [
            id,
            identityId,
            org,
            Buffer.from(sealed.blob),
            sealed.keyId,
            input.quality,
            input.modelId,
            at,
            input.sourceSha256 ?? null,
          ],
        )
        const face = toFace(mustExist(rows[0]))
        await change(client, 'add', org, { ...face, faceId: face.id })
        await audit(client, at, org, actor, 'face.add', { identityId, faceId: id })
        return face
      })
    },

    async getFace(org, faceId) {
      const rows = await read<FaceRow>(`${FACE_SELECT} WHERE org = $1 AND id = $2`, [org, faceId])
      const row = rows[0]
      return row === undefined ? undefined : toFace(row)
    },

    async listFaces(org, identityId) {
      return (
        await read<FaceRow>(`${FACE_SELECT} WHERE org = $1 AND identity_id = $2 ORDER BY label`, [
          org,
          identityId,
        ])
      ).map(toFace)
    },

    async findFaceBySource(org, identityId, sha256) {
      const rows = await read<FaceRow>(
        `${FACE_SELECT} WHERE org = $1 AND identity_id = $2 AND source_sha256 = $3 ORDER BY label DESC LIMIT 1`,
        [org, identityId, sha256],
      )
      const row = rows[0]
      return row === undefined ? undefined : toFace(row)
    },

    deleteFace(org, faceId, actor) {
      return write(async (client) => {
        const face = await faceIn(client, org, faceId)
        if (face === undefined) return undefined
        await change(client, 'delete', org, { ...face, faceId: face.id })
        await client.query('DELETE FROM faces WHERE label = $1', [face.label])
        await audit(client, now(), org, actor, 'face.delete', { identityId: face.identityId, faceId })
        return face
      })
    },

    async audit(org, options) {
      const limit = checkLimit(options.limit)
      const rows = await read<AuditRow>(
        `SELECT seq, at, org, actor, action, identity_id, face_id FROM audit
         WHERE org = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
        [org, options.afterSeq ?? 0, limit],
      )
      return rows.map(toAuditEntry)
    },

    async *embeddings() {
      for await (const row of batched<EmbeddingRow>(EMBEDDING_SELECT)) yield toStoredEmbedding(row)
    },

    async embeddingsByLabels(labels) {
      if (labels.length === 0) return []
      const rows = await read<EmbeddingRow>(
        `${EMBEDDING_SELECT} WHERE label = ANY($1::bigint[]) ORDER BY label`,
        [labels],
      )
      return rows.map(toStoredEmbedding)
    },

    async *faceRefs() {
      for await (const row of batched<FaceRefRow>(
        'SELECT label, id, identity_id, org, model_id FROM faces',
      )) {
        yield toFaceRef(row)
      }
    },

    async *identityNames() {
      let after = ''
      for (;;) {
        const rows = await read<{ org: string; id: string; name: string }>(
          'SELECT org, id, name FROM identities WHERE id > $1 ORDER BY id LIMIT $2',
          [after, BATCH_ROWS],
        )
        yield* rows
        const last = rows.at(-1)
        if (last === undefined || rows.length < BATCH_ROWS) return
        after = last.id
      }
    },

    async namesOf(ids) {
      if (ids.length === 0) return []
      return read<{ org: string; id: string; name: string }>(
        'SELECT org, id, name FROM identities WHERE id = ANY($1::text[])',
        [ids],
      )
    },

    async changesSince(afterSeq, limit) {
      const rows = await read<ChangeRow>(
        'SELECT seq, org, kind, label, face_id, identity_id FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2',
        [afterSeq, limit],
      )
      return rows.map(toChange)
    },

    async lastSeq() {
      const rows = await read<{ seq: string | null }>('SELECT max(seq) AS seq FROM changes')
      return Number(rows[0]?.seq ?? 0)
    },

    keyUsage,

    async checkKeys({ sampleRows }) {
      const usage = await keyUsage()
      for (const { keyId } of usage) {
        if (keyId !== null && !ring.keys.has(keyId)) throw unknownKey(keyId, ring)
        const sample = await read<EmbeddingRow>(
          `${EMBEDDING_SELECT} WHERE key_id IS NOT DISTINCT FROM $1 ORDER BY label LIMIT $2`,
          [keyId, keyId === null ? sampleRows : 1],
        )
        for (const row of sample) toStoredEmbedding(row)
      }
      return usage
    },

    async recordServerKeys() {
      const value = serverKeysOf(ring)
      await read(
        `INSERT INTO store_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
        [SERVER_KEYS, JSON.stringify(value)],
      )
    },

    async serverKeys() {
      const rows = await read<{ value: string }>('SELECT value FROM store_meta WHERE name = $1', [
        SERVER_KEYS,
      ])
      const value = rows[0]?.value
      return value === undefined ? undefined : (JSON.parse(value) as ServerKeys)
    },

    async sharedSnapshot() {
      const rows = await read<{ seq: string; model_id: string; written_at: string; bytes: string }>(
        'SELECT seq, model_id, written_at, bytes FROM index_snapshot WHERE id = 1',
      )
      const row = rows[0]
      return row === undefined
        ? undefined
        : { seq: Number(row.seq), modelId: row.model_id, writtenAt: row.written_at, bytes: Number(row.bytes) }
    },

    readSharedSnapshot() {
      // One repeatable-read transaction: the description and its parts are of one write.
      return retrying(async () => {
        const client = await checkout(pool)
        try {
          await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
          const head = await client.query<{
            seq: string
            model_id: string
            written_at: string
            bytes: string
            key_id: string | null
          }>('SELECT seq, model_id, written_at, bytes, key_id FROM index_snapshot WHERE id = 1')
          const row = head.rows[0]
          if (row === undefined) {
            await client.query('COMMIT')
            return undefined
          }
          const parts = await client.query<SnapshotPart>(
            'SELECT file, part, data FROM index_snapshot_parts ORDER BY file, part',
          )
          await client.query('COMMIT')
          const seq = Number(row.seq)
          // A snapshot under a key this instance does not hold cannot be read: rebuild instead.
          const key = row.key_id === null ? undefined : ring.keys.get(row.key_id)
          if (row.key_id !== null && key === undefined) return undefined
          return {
            info: { seq, modelId: row.model_id, writtenAt: row.written_at, bytes: Number(row.bytes) },
            parts: parts.rows.map((part) => ({
              ...part,
              data: key === undefined ? part.data : openPart(part, seq, key),
            })),
          }
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined)
          throw error
        } finally {
          client.release()
        }
      })
    },

    writeSharedSnapshot(info, parts) {
      return retrying(async () => {
        const client = await checkout(pool)
        try {
          await client.query('BEGIN')
          // One writer at a time across the cluster; the others skip this round.
          const locked = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [
            SNAPSHOT_LOCK,
          ])
          const current = await client.query<{ seq: string }>('SELECT seq FROM index_snapshot WHERE id = 1')
          const storedSeq = Number(current.rows[0]?.seq ?? -1)
          if (locked.rows[0]?.ok !== true || storedSeq >= info.seq) {
            await client.query('ROLLBACK')
            return false
          }
          await client.query('DELETE FROM index_snapshot_parts')
          let bytes = 0
          const key = ring.current
          for (const part of parts) {
            bytes += part.data.length
            const data = key === undefined ? part.data : sealPart(part, info.seq, key.key)
            await client.query('INSERT INTO index_snapshot_parts (file, part, data) VALUES ($1, $2, $3)', [
              part.file,
              part.part,
              data,
            ])
          }
          await client.query(
            `INSERT INTO index_snapshot (id, seq, model_id, written_at, bytes, key_id) VALUES (1, $1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, model_id = excluded.model_id,
               written_at = excluded.written_at, bytes = excluded.bytes, key_id = excluded.key_id`,
            [info.seq, info.modelId, now(), bytes, key?.id ?? null],
          )
          await client.query('COMMIT')
          return true
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined)
          throw error
        } finally {
          client.release()
        }
      })
    },

    listen(onChange) {
      let stopped = false
      let client: pg.Client | undefined
      let timer: NodeJS.Timeout | undefined
      let attempt = 0
      const connect = (): void => {
        if (stopped || closed) return
        const listener = new pg.Client(connection)
        client = listener
        const retry = (error: unknown): void => {
          if (client !== listener) return
          client = undefined
          listener.removeAllListeners()
          listener.on('error', () => undefined)
          void listener.end().catch(() => undefined)
          if (stopped || closed) return
          health(errorMessage(error))
          const delay = equalJitterDelayMs(++attempt, LISTEN_BACKOFF)
          // Once per outage at warn; the attempts after it at debug (a long outage is not a log flood).
          const level = attempt === 1 ? 'warn' : 'debug'
          logger[level]({ err: redact(error), retryInMs: Math.round(delay) }, 'database.listen_lost')
          timer = setTimeout(connect, delay)
          timer.unref()
        }
        listener.on('error', retry)
        listener.on('end', () => {
          retry(new Error('the listening connection ended'))
        })
        listener.on('notification', () => {
          onChange()
        })
        listener
          .connect()
          .then(() => listener.query(`LISTEN ${CHANGES_CHANNEL}`))
          .then(
            () => {
              if (attempt > 0) logger.info('database.listen_restored')
              attempt = 0
              health(undefined)
              // Whatever was committed while not listening.
              onChange()
            },
            (error: unknown) => {
              retry(error)
            },
          )
      }
      connect()
      return () => {
        stopped = true
        clearTimeout(timer)
        const listener = client
        client = undefined
        if (listener !== undefined) {
          listener.removeAllListeners()
          listener.on('error', () => undefined)
          void listener.end().catch(() => undefined)
        }
      }
    },

    async close() {
      closed = true
      await pool.end()
    },
  }
}

/** AES-256-GCM, bound to the part's place (file, part, seq): parts cannot be swapped or replayed. */
function partContext(part: { file: string; part: number }, seq: number): Buffer {
  return Buffer.from(`facewire snapshot part v1\0${part.file}\0${String(part.part)}\0${String(seq)}`, 'utf8')
}

function sealPart(part: SnapshotPart, seq: number, key: KeyObject): Buffer {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(partContext(part, seq))
  const body = Buffer.concat([cipher.update(part.data), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), body])
}

function openPart(part: SnapshotPart, seq: number, key: KeyObject): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, part.data.subarray(0, 12))
  decipher.setAAD(partContext(part, seq))
  decipher.setAuthTag(part.data.subarray(12, 28))
  return Buffer.concat([decipher.update(part.data.subarray(28)), decipher.final()])
}

/**
 * A pooled client for a transaction. While checked out, the pool does not listen for its errors:
 * a connection cut mid-query would be an uncaught 'error' event. The query itself rejects.
 */
async function checkout(pool: pg.Pool): Promise<pg.PoolClient> {
  const client = await pool.connect()
  client.on('error', ignoreError)
  const release = client.release.bind(client)
  client.release = (destroy?: boolean | Error) => {
    client.off('error', ignoreError)
    release(destroy)
  }
  return client
}

function ignoreError(): void {
  // The failing query rejects with the same error; it is handled there.
}

function mustExist<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('a row vanished inside its own transaction')
  return value
}

/** An error without anything that could carry the connection string's password. */
function redact(error: unknown): { message: string; code?: string } {
  const code = (error as { code?: unknown } | null)?.code
  return { message: errorMessage(error), ...(typeof code === 'string' ? { code } : {}) }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
