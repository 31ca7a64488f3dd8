/**
 * The gallery's source of truth: one SQLite file (`<dataDir>/facewire.db`) holding identities,
 * faces (with their embeddings, encrypted when a key is configured), the change log the HNSW
 * indexes replay, and an append-only audit log of ids. Every method is synchronous; every
 * mutation is one transaction writing its rows, its change rows and its audit row.
 */
import { randomUUID } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { FacewireError } from '../errors.js'
import type { Logger } from '../logger.js'
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
  type AuditRow,
  type ChangeRow,
  type EmbeddingRow,
  type FaceRefRow,
  type FaceRow,
  type IdentityRow,
  identityPage,
  serverKeysOf,
  toStoredEmbedding as openStored,
} from './store-common.js'
import {
  createEmbeddingKeyRing,
  openEmbedding,
  sealEmbedding,
  unknownKey,
  type EmbeddingKeyRing,
} from './embedding-crypto.js'
import type {
  Actor,
  AuditEntry,
  Face,
  GalleryChange,
  Identity,
  IdentityPatch,
  NewFace,
  NewIdentity,
  Page,
  StoredEmbedding,
} from './types.js'

export interface GalleryStoreOptions {
  /** Folder of the database file (created if missing): <dataDir>/facewire.db */
  dataDir: string
  /** 32-byte AES-256-GCM key new embeddings are written under; undefined = stored in clear. */
  embeddingKey?: Buffer | undefined
  /**
   * Older keys still read (FACEWIRE_EMBEDDING_KEY_PREVIOUS while a key rotation runs; the rotation
   * itself passes every key it was given). Needs `embeddingKey`.
   */
  previousEmbeddingKeys?: readonly Buffer[] | undefined
  logger: Logger
}

/** How many faces are stored under each key id (null: no key id recorded, see MIGRATIONS[1]). */
export interface KeyUsage {
  keyId: string | null
  faces: number
}

/** The key ids the last server (a Gallery) opened the store with, as it recorded them. */
export interface ServerKeys {
  current: string | null
  previous: string[]
  recordedAt: string
}

/** What a store holds, in counts (for a backup's manifest). */
export interface StoreSummary {
  schemaVersion: number
  seq: number
  identities: number
  faces: number
  embeddingKeys: KeyUsage[]
}

/** A face without its embedding: what the index needs besides the vectors of a snapshot. */
export type FaceRef = Omit<StoredEmbedding, 'embedding'>

/** The connection settings as SQLite reports them (read back, not as requested). */
export interface StorePragmas {
  journalMode: string
  synchronous: string
  foreignKeys: boolean
  secureDelete: boolean
  busyTimeoutMs: number
  schemaVersion: number
}

export interface GalleryStore {
  readonly path: string
  /** Whether new embeddings are written encrypted. */
  readonly encrypted: boolean
  /** Id of the key new embeddings are written under (undefined: written in clear). */
  readonly currentKeyId: string | undefined
  createIdentity(org: string, input: NewIdentity, actor: Actor): Identity
  getIdentity(org: string, id: string): Identity | undefined
  /** Ordered by creation (then id); cursor is opaque (base64url); limit 1..1000. */
  listIdentities(org: string, options: { limit: number; cursor?: string | undefined }): Page<Identity>
  /** Fields present in the patch replace the stored ones (metadata as a whole). */
  updateIdentity(org: string, id: string, patch: IdentityPatch, actor: Actor): Identity | undefined
  /** Removes the identity and all its faces (rows and embeddings), logs one change row 'delete' per face. */
  deleteIdentity(org: string, id: string, actor: Actor): { identity: Identity; faces: Face[] } | undefined
  /** undefined when the identity does not exist in this org. Logs a change row 'add'. */
  addFace(org: string, identityId: string, face: NewFace, actor: Actor): Face | undefined
  getFace(org: string, faceId: string): Face | undefined
  /** Ordered by label (enrollment order). */
  listFaces(org: string, identityId: string): Face[]
  /** The identity's newest face enrolled from an image with this sha256 (hex), if any. */
  findFaceBySource(org: string, identityId: string, sha256: string): Face | undefined
  deleteFace(org: string, faceId: string, actor: Actor): Face | undefined
  /**
   * Every face with its decrypted embedding (all orgs, or one), ordered by label; for index
   * rebuilds. Read in batches, so the store stays usable while iterating; faces changed meanwhile
   * are also in the change log (take lastSeq() before iterating and replay from it).
   */
  embeddings(org?: string): Iterable<StoredEmbedding>
  /** Every face without its embedding (nothing is decrypted), ordered by label. */
  faceRefs(): Iterable<FaceRef>
  /** One face's embedding by label (undefined if deleted). */
  embeddingByLabel(label: number): StoredEmbedding | undefined
  /** Change-log rows with seq > afterSeq, ascending. */
  changesSince(afterSeq: number): GalleryChange[]
  /** Highest change seq so far (0 for an empty store). */
  lastSeq(): number
  /** Identity id -> name lookup for building decisions, for one org. */
  identityName(org: string, identityId: string): string | undefined
  /** Audit rows of one org with seq > afterSeq (default 0), ascending; limit 1..1000. */
  audit(org: string, options: { limit: number; afterSeq?: number | undefined }): AuditEntry[]
  /** Faces per key id, from the key-id index (no embedding is read). */
  keyUsage(): KeyUsage[]
  /**
   * Checks that the key ring opens the store: every key id recorded must be one of its keys, and
   * one face per key id (up to `sampleRows` faces without one) must decrypt. Throws
   * ERR_CONFIG_INVALID naming the key variables otherwise. Returns the usage it checked.
   */
  checkKeys(options: { sampleRows: number }): KeyUsage[]
  /**
   * Re-encrypts up to `limit` faces stored under `fromKeyId` (null: faces without a key id) under
   * the current key, in one transaction; returns how many. The vectors do not change, so neither
   * the change log nor an index does.
   */
  reencrypt(fromKeyId: string | null, limit: number): number
  /** Records the key ids this process reads and writes with (a server, for `facewire rotate-key`). */
  recordServerKeys(): void
  /** What the last recordServerKeys() wrote; undefined if nothing was recorded. */
  serverKeys(): ServerKeys | undefined
  /** Counts for a backup manifest. */
  summary(): StoreSummary
  /** Runs a WAL checkpoint(TRUNCATE) so deleted data leaves the -wal file too. */
  checkpoint(): void
  /** The connection's durability settings, read back from SQLite (diagnostics and tests). */
  pragmas(): StorePragmas
  close(): void
}

/** Name of the database file inside the data folder. */
export const DATABASE_FILE = 'facewire.db'

const BUSY_TIMEOUT_MS = 5000
/** Rows read per query while iterating embeddings (bounds memory, keeps the connection free). */
const EMBEDDING_BATCH_ROWS = 1024
const DATA_DIR_VARIABLE = 'FACEWIRE_DATA_DIR'

/**
 * The schema, one entry per version (`PRAGMA user_version` = entries applied). Append only: never
 * edit an entry that has shipped. Each runs in its own transaction with the version bump.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE identities (
    id TEXT PRIMARY KEY NOT NULL,
    org TEXT NOT NULL,
    name TEXT NOT NULL,
    external_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  ) STRICT;
  CREATE INDEX identities_by_org_created ON identities (org, created_at, id);

  -- AUTOINCREMENT: a label is never handed out twice, even after the highest face is deleted,
  -- so an index snapshot can never confuse a deleted face with a new one.
  CREATE TABLE faces (
    label INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    org TEXT NOT NULL,
    embedding BLOB NOT NULL,
    quality REAL NOT NULL,
    model_id TEXT NOT NULL,
    created_at TEXT NOT NULL
  ) STRICT;
  CREATE INDEX faces_by_org_identity ON faces (org, identity_id);
  CREATE INDEX faces_by_org ON faces (org);

  CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('add', 'delete')),
    label INTEGER NOT NULL,
    face_id TEXT NOT NULL,
    identity_id TEXT NOT NULL
  ) STRICT;

  -- Ids only: no names, no embeddings, so it can be kept after a person is forgotten.
  CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    org TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL CHECK (
      action IN ('identity.create', 'identity.update', 'identity.delete', 'face.add', 'face.delete')
    ),
    identity_id TEXT,
    face_id TEXT
  ) STRICT;
  CREATE INDEX audit_by_org ON audit (org, seq);
  CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  `,
  `
  -- The id of the key that encrypted each embedding (embedding-crypto.ts, embeddingKeyId): what a
  -- key rotation selects by and resumes from. NULL: written in clear, or encrypted before key ids
  -- were recorded (any key of the ring may open those). Not backfilled here: that would rewrite
  -- every row at startup; a rotation records them.
  ALTER TABLE faces ADD COLUMN key_id TEXT;
  CREATE INDEX faces_by_key ON faces (key_id, label);

  -- Small facts about the store itself, by name (the key ids the last server opened it with).
  CREATE TABLE store_meta (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
  ) STRICT;
  `,
  `
  -- sha256 (hex) of the image bytes each face was enrolled from, never the image: a second
  -- upload of the same photo for the same identity answers the face it made. NULL for faces
  -- enrolled before this column (nothing to backfill: the images were never kept).
  ALTER TABLE faces ADD COLUMN source_sha256 TEXT;
  CREATE INDEX faces_by_source ON faces (org, identity_id, source_sha256);
  `,
]

/** Schema version this code writes; a database with a higher one is refused. */
export const GALLERY_SCHEMA_VERSION = MIGRATIONS.length

const FACE_SELECT =
  'SELECT label, id, identity_id, org, quality, model_id, created_at, source_sha256 FROM faces'
const FACE_REF_SELECT = 'SELECT label, id, identity_id, org, model_id FROM faces'
const EMBEDDING_SELECT = 'SELECT label, id, identity_id, org, model_id, embedding, key_id FROM faces'
/** store_meta name of the server's key ids. */
const SERVER_KEYS = 'server_keys'

/**
 * Opens (creating if needed) and migrates the gallery database. Throws ERR_CONFIG_INVALID when the
 * file cannot be opened, does not accept the durability settings, is newer than this code, or the
 * embedding key is not 32 bytes.
 */
export function openStore(options: GalleryStoreOptions): GalleryStore {
  const { logger } = options
  const ring = createEmbeddingKeyRing(
    options.embeddingKey,
    (options.previousEmbeddingKeys ?? []).map((key) => ({
      key,
      variable: 'FACEWIRE_EMBEDDING_KEY_PREVIOUS',
    })),
  )
  const path = join(options.dataDir, DATABASE_FILE)
  const db = openDatabase(options.dataDir, path)
  try {
    migrate(db, path, logger)
    return createStore(db, path, ring, logger)
  } catch (error) {
    db.close()
    throw error
  }
}

/**
 * Whether another connection holds the gallery database of `dataDir` open (a running server, a
 * backup being taken). Probes for an exclusive lock without waiting: every connection to a WAL
 * database keeps a shared lock while it is open, so the probe fails while any is. False when
 * there is no database. The probe itself never waits and, when it wins, releases the lock at once.
 */
export function isDatabaseInUse(dataDir: string): boolean {
  const path = join(dataDir, DATABASE_FILE)
  if (!existsSync(path)) return false
  const db = new Database(path, { fileMustExist: true, timeout: 0 })
  try {
    // Exclusive locking mode before the first read: SQLite then wants the database file's own
    // exclusive lock instead of the shared-memory index other connections coordinate through.
    db.pragma('locking_mode = EXCLUSIVE')
    db.exec('BEGIN EXCLUSIVE')
    db.exec('COMMIT')
    return false
  } catch (error) {
    if ((error as { code?: unknown }).code === 'SQLITE_BUSY') return true
    throw error
  } finally {
    db.close()
  }
}

/** Pages per backup step: all of them, so the copy is taken in one read transaction. */
const ALL_PAGES = 0x7fffffff

/**
 * Copies the gallery database of `dataDir` into `destDir` (as DATABASE_FILE) with SQLite's online
 * backup API while other connections (a serving server) keep reading and writing: the pages are
 * copied in one step, inside one read transaction, so the copy is the database as of one commit.
 * The copy is then migrated to this code's schema (an older server may still be running) and
 * turned into a single self-contained file (journal_mode DELETE, no -wal). Nothing is decrypted.
 */
export async function backupDatabase(
  dataDir: string,
  destDir: string,
  logger: Logger,
): Promise<StoreSummary> {
  const source = join(dataDir, DATABASE_FILE)
  if (!existsSync(source)) throw new Error(`there is no gallery database in ${dataDir} (${DATABASE_FILE})`)
  const db = new Database(source, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS })
  try {
    const found = schemaVersion(db)
    if (found === 0) throw new Error(`${source} is not a facewire gallery (schema version 0)`)
    refuseNewer(found, source)
    await db.backup(join(destDir, DATABASE_FILE), { progress: () => ALL_PAGES })
  } finally {
    db.close()
  }
  // The copy's own store: nothing is decrypted, so no key; its warnings are not the operator's.
  const store = openStore({ dataDir: destDir, logger: logger.child({}, { level: 'error' }) })
  let summary: StoreSummary
  try {
    summary = store.summary()
    store.checkpoint()
  } finally {
    store.close()
  }
  const copy = new Database(join(destDir, DATABASE_FILE), { fileMustExist: true })
  try {
    copy.pragma('journal_mode = DELETE')
  } finally {
    copy.close()
  }
  return summary
}

function openDatabase(dataDir: string, path: string): Database.Database {
  let db: Database.Database | undefined
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    // SQLite creates -wal and -shm with the database file's mode: creating it 0600 keeps all
    // three private. An empty file is a valid empty database.
    closeSync(openSync(path, 'a', 0o600))
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS })
    // Checked before anything is written: a database from a newer facewire is left as it was.
    refuseNewer(schemaVersion(db), path)
    db.pragma('journal_mode = WAL')
    // FULL: every commit fsyncs the WAL, so an acknowledged write survives power loss.
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    // Deleted rows are overwritten with zeros (a forgotten face leaves no embedding behind).
    db.pragma('secure_delete = ON')
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
  } catch (error) {
    db?.close()
    if (error instanceof FacewireError) throw error
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `invalid configuration: ${DATA_DIR_VARIABLE}: the gallery database ${path} could not be opened (${errorMessage(error)})`,
      { cause: error, details: { variables: [DATA_DIR_VARIABLE] } },
    )
  }
  const applied = readPragmas(db)
  if (
    applied.journalMode !== 'wal' ||
    applied.synchronous !== 'full' ||
    !applied.foreignKeys ||
    !applied.secureDelete
  ) {
    db.close()
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `invalid configuration: ${DATA_DIR_VARIABLE}: the gallery database ${path} refused its durability settings ` +
        `(journal_mode=${applied.journalMode}, synchronous=${applied.synchronous}); use a local filesystem`,
      { details: { variables: [DATA_DIR_VARIABLE] } },
    )
  }
  return db
}

function refuseNewer(found: number, path: string): void {
  if (found > MIGRATIONS.length) {
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `invalid configuration: ${DATA_DIR_VARIABLE}: the gallery database ${path} has schema version ${found}, ` +
        `newer than this facewire supports (${MIGRATIONS.length}); run the newer facewire or use another data folder`,
      { details: { variables: [DATA_DIR_VARIABLE] } },
    )
  }
}

function migrate(db: Database.Database, path: string, logger: Logger): void {
  MIGRATIONS.forEach((sql, index) => {
    const version = index + 1
    // IMMEDIATE and re-checked inside: two processes opening the same file migrate once.
    const applied = db
      .transaction(() => {
        const found = schemaVersion(db)
        refuseNewer(found, path)
        if (found >= version) return false
        db.exec(sql)
        db.pragma(`user_version = ${version}`)
        return true
      })
      .immediate()
    if (applied) logger.info({ path, version }, 'gallery.migrated')
  })
}

function createStore(
  db: Database.Database,
  path: string,
  ring: EmbeddingKeyRing,
  logger: Logger,
): GalleryStore {
  const statements = {
    insertIdentity: db.prepare<{
      id: string
      org: string
      name: string
      externalId: string | null
      metadata: string
      at: string
    }>(
      `INSERT INTO identities (id, org, name, external_id, metadata, created_at, updated_at)
       VALUES (@id, @org, @name, @externalId, @metadata, @at, @at)`,
    ),
    selectIdentity: db.prepare<{ org: string; id: string }, IdentityRow>(
      `${IDENTITY_SELECT} WHERE i.org = @org AND i.id = @id`,
    ),
    listIdentitiesFirst: db.prepare<{ org: string; limit: number }, IdentityRow>(
      `${IDENTITY_SELECT} WHERE i.org = @org ORDER BY i.created_at, i.id LIMIT @limit`,
    ),
    listIdentitiesAfter: db.prepare<
      { org: string; createdAt: string; id: string; limit: number },
      IdentityRow
    >(
      `${IDENTITY_SELECT} WHERE i.org = @org AND (i.created_at, i.id) > (@createdAt, @id)
       ORDER BY i.created_at, i.id LIMIT @limit`,
    ),
    updateIdentity: db.prepare<{
      org: string
      id: string
      name: string
      externalId: string | null
      metadata: string
      at: string
    }>(
      `UPDATE identities SET name = @name, external_id = @externalId, metadata = @metadata, updated_at = @at
       WHERE org = @org AND id = @id`,
    ),
    deleteIdentity: db.prepare<{ org: string; id: string }>(
      'DELETE FROM identities WHERE org = @org AND id = @id',
    ),
    identityName: db.prepare<{ org: string; id: string }, string>(
      'SELECT name FROM identities WHERE org = @org AND id = @id',
    ),
    insertFace: db.prepare<{
      id: string
      identityId: string
      org: string
      embedding: Buffer
      keyId: string | null
      quality: number
      modelId: string
      at: string
      sourceSha256: string | null
    }>(
      `INSERT INTO faces (id, identity_id, org, embedding, key_id, quality, model_id, created_at, source_sha256)
       VALUES (@id, @identityId, @org, @embedding, @keyId, @quality, @modelId, @at, @sourceSha256)`,
    ),
    selectFace: db.prepare<{ org: string; id: string }, FaceRow>(
      `${FACE_SELECT} WHERE org = @org AND id = @id`,
    ),
    listFaces: db.prepare<{ org: string; identityId: string }, FaceRow>(
      `${FACE_SELECT} WHERE org = @org AND identity_id = @identityId ORDER BY label`,
    ),
    faceBySource: db.prepare<{ org: string; identityId: string; sha256: string }, FaceRow>(
      `${FACE_SELECT} WHERE org = @org AND identity_id = @identityId AND source_sha256 = @sha256
       ORDER BY label DESC LIMIT 1`,
    ),
    deleteFace: db.prepare<{ label: number }>('DELETE FROM faces WHERE label = @label'),
    deleteFacesOfIdentity: db.prepare<{ org: string; identityId: string }>(
      'DELETE FROM faces WHERE org = @org AND identity_id = @identityId',
    ),
    embeddings: db.prepare<{ after: number; limit: number }, EmbeddingRow>(
      `${EMBEDDING_SELECT} WHERE label > @after ORDER BY label LIMIT @limit`,
    ),
    embeddingsOfOrg: db.prepare<{ org: string; after: number; limit: number }, EmbeddingRow>(
      `${EMBEDDING_SELECT} WHERE org = @org AND label > @after ORDER BY label LIMIT @limit`,
    ),
    faceRefs: db.prepare<{ after: number; limit: number }, FaceRefRow>(
      `${FACE_REF_SELECT} WHERE label > @after ORDER BY label LIMIT @limit`,
    ),
    embeddingByLabel: db.prepare<{ label: number }, EmbeddingRow>(`${EMBEDDING_SELECT} WHERE label = @label`),
    // `IS`: also matches NULL, and is served by faces_by_key like `=`.
    embeddingsUnderKey: db.prepare<{ keyId: string | null; limit: number }, EmbeddingRow>(
      `${EMBEDDING_SELECT} WHERE key_id IS @keyId ORDER BY label LIMIT @limit`,
    ),
    keyUsage: db.prepare<[], { keyId: string | null; faces: number }>(
      'SELECT key_id AS keyId, count(*) AS faces FROM faces GROUP BY key_id ORDER BY key_id',
    ),
    updateEmbedding: db.prepare<{ label: number; embedding: Buffer; keyId: string | null }>(
      'UPDATE faces SET embedding = @embedding, key_id = @keyId WHERE label = @label',
    ),
    countIdentities: db.prepare<[], number>('SELECT count(*) FROM identities'),
    readMeta: db.prepare<{ name: string }, string>('SELECT value FROM store_meta WHERE name = @name'),
    writeMeta: db.prepare<{ name: string; value: string }>(
      `INSERT INTO store_meta (name, value) VALUES (@name, @value)
       ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
    ),
    insertChange: db.prepare<{
      org: string
      kind: GalleryChange['kind']
      label: number
      faceId: string
      identityId: string
    }>(
      `INSERT INTO changes (org, kind, label, face_id, identity_id)
       VALUES (@org, @kind, @label, @faceId, @identityId)`,
    ),
    changesSince: db.prepare<{ after: number }, ChangeRow>(
      'SELECT seq, org, kind, label, face_id, identity_id FROM changes WHERE seq > @after ORDER BY seq',
    ),
    // sqlite_sequence keeps the highest seq even if old change rows are ever pruned.
    lastSeq: db.prepare<[], number>("SELECT seq FROM sqlite_sequence WHERE name = 'changes'"),
    insertAudit: db.prepare<{
      at: string
      org: string
      actor: string
      action: AuditEntry['action']
      identityId: string | null
      faceId: string | null
    }>(
      `INSERT INTO audit (at, org, actor, action, identity_id, face_id)
       VALUES (@at, @org, @actor, @action, @identityId, @faceId)`,
    ),
    audit: db.prepare<{ org: string; after: number; limit: number }, AuditRow>(
      `SELECT seq, at, org, actor, action, identity_id, face_id FROM audit
       WHERE org = @org AND seq > @after ORDER BY seq LIMIT @limit`,
    ),
  }
  statements.identityName.pluck()
  statements.lastSeq.pluck()
  statements.countIdentities.pluck()
  statements.readMeta.pluck()

  /** Wraps a mutation in one IMMEDIATE transaction (the write lock up front: no upgrade deadlock). */
  const write = <A extends unknown[], R>(fn: (...args: A) => R): ((...args: A) => R) => {
    const transaction = db.transaction(fn)
    return (...args: A) => transaction.immediate(...args)
  }

  const audit = (
    at: string,
    org: string,
    actor: Actor,
    action: AuditEntry['action'],
    ids: { identityId: string | null; faceId: string | null },
  ): void => {
    statements.insertAudit.run({ at, org, actor: actor.sub, action, ...ids })
  }

  const change = (kind: GalleryChange['kind'], face: Face): void => {
    statements.insertChange.run({
      org: face.org,
      kind,
      label: face.label,
      faceId: face.id,
      identityId: face.identityId,
    })
  }

  const getIdentity = (org: string, id: string): Identity | undefined => {
    const row = statements.selectIdentity.get({ org, id })
    return row === undefined ? undefined : toIdentity(row)
  }

  const mustGetIdentity = (org: string, id: string): Identity => {
    const identity = getIdentity(org, id)
    if (identity === undefined) throw new Error(`identity ${id} vanished inside its own transaction`)
    return identity
  }

  const getFace = (org: string, faceId: string): Face | undefined => {
    const row = statements.selectFace.get({ org, id: faceId })
    return row === undefined ? undefined : toFace(row)
  }

  const toStoredEmbedding = (row: EmbeddingRow): StoredEmbedding => openStored(row, ring)

  const keyUsage = (): KeyUsage[] => statements.keyUsage.all()

  const reencrypt = write((fromKeyId: string | null, limit: number): number => {
    if (ring.current === undefined) throw new Error('re-encryption needs a current key')
    // Faces already under the current key would be selected again and again.
    if (fromKeyId === ring.current.id)
      throw new RangeError('faces under the current key need no re-encryption')
    const rows = statements.embeddingsUnderKey.all({ keyId: fromKeyId, limit })
    for (const row of rows) {
      const owner = { org: row.org, faceId: row.id }
      const sealed = sealEmbedding(openEmbedding(row.embedding, owner, row.key_id, ring), owner, ring)
      statements.updateEmbedding.run({
        label: Number(row.label),
        embedding: sealed.blob,
        keyId: sealed.keyId,
      })
    }
    return rows.length
  })

  const createIdentity = write((org: string, input: NewIdentity, actor: Actor): Identity => {
    const id = randomUUID()
    const at = now()
    statements.insertIdentity.run({
      id,
      org,
      name: input.name,
      externalId: input.externalId ?? null,
      metadata: JSON.stringify(input.metadata ?? {}),
      at,
    })
    audit(at, org, actor, 'identity.create', { identityId: id, faceId: null })
    return mustGetIdentity(org, id)
  })

  const updateIdentity = write(
    (org: string, id: string, patch: IdentityPatch, actor: Actor): Identity | undefined => {
      const current = getIdentity(org, id)
      if (current === undefined) return undefined
      const at = now()
      statements.updateIdentity.run({
        org,
        id,
        name: patch.name ?? current.name,
        externalId: patch.externalId === undefined ? current.externalId : patch.externalId,
        metadata: JSON.stringify(patch.metadata ?? current.metadata),
        at,
      })
      audit(at, org, actor, 'identity.update', { identityId: id, faceId: null })
      return mustGetIdentity(org, id)
    },
  )

  const deleteIdentity = write(
    (org: string, id: string, actor: Actor): { identity: Identity; faces: Face[] } | undefined => {
      const identity = getIdentity(org, id)
      if (identity === undefined) return undefined
      const faces = statements.listFaces.all({ org, identityId: id }).map(toFace)
      for (const face of faces) change('delete', face)
      statements.deleteFacesOfIdentity.run({ org, identityId: id })
      statements.deleteIdentity.run({ org, id })
      audit(now(), org, actor, 'identity.delete', { identityId: id, faceId: null })
      return { identity, faces }
    },
  )

  const addFace = write((org: string, identityId: string, input: NewFace, actor: Actor): Face | undefined => {
    checkNewFace(input)
    if (statements.identityName.get({ org, id: identityId }) === undefined) return undefined
    const id = randomUUID()
    const at = now()
    const sealed = sealEmbedding(input.embedding, { org, faceId: id }, ring)
    const result = statements.insertFace.run({
      id,
      identityId,
      org,
      embedding: sealed.blob,
      keyId: sealed.keyId,
      quality: input.quality,
      modelId: input.modelId,
      at,
      sourceSha256: input.sourceSha256 ?? null,
    })
    const face: Face = {
      id,
      identityId,
      org,
      label: Number(result.lastInsertRowid),
      quality: input.quality,
      modelId: input.modelId,
      createdAt: at,
      sourceSha256: input.sourceSha256 ?? null,
    }
    change('add', face)
    audit(at, org, actor, 'face.add', { identityId, faceId: id })
    return face
  })

  const deleteFace = write((org: string, faceId: string, actor: Actor): Face | undefined => {
    const face = getFace(org, faceId)
    if (face === undefined) return undefined
    change('delete', face)
    statements.deleteFace.run({ label: face.label })
    audit(now(), org, actor, 'face.delete', { identityId: face.identityId, faceId })
    return face
  })

  if (ring.current === undefined) {
    logger.warn(
      { variable: 'FACEWIRE_EMBEDDING_KEY', path },
      'gallery.unencrypted: FACEWIRE_EMBEDDING_KEY is not set; new face embeddings are stored in clear',
    )
  }

  return {
    path,
    encrypted: ring.current !== undefined,
    currentKeyId: ring.current?.id,
    createIdentity,
    getIdentity,
    listIdentities(org, options) {
      const limit = checkLimit(options.limit)
      const after = options.cursor === undefined ? undefined : parseCursor(options.cursor)
      // One row more than asked tells whether there is a next page.
      const rows =
        after === undefined
          ? statements.listIdentitiesFirst.all({ org, limit: limit + 1 })
          : statements.listIdentitiesAfter.all({ org, ...after, limit: limit + 1 })
      return identityPage(rows, limit)
    },
    updateIdentity,
    deleteIdentity,
    addFace,
    getFace,
    listFaces: (org, identityId) => statements.listFaces.all({ org, identityId }).map(toFace),
    findFaceBySource(org, identityId, sha256) {
      const row = statements.faceBySource.get({ org, identityId, sha256 })
      return row === undefined ? undefined : toFace(row)
    },
    deleteFace,
    embeddings(org) {
      return batched((after) =>
        org === undefined
          ? statements.embeddings.all({ after, limit: EMBEDDING_BATCH_ROWS })
          : statements.embeddingsOfOrg.all({ org, after, limit: EMBEDDING_BATCH_ROWS }),
      ).map(toStoredEmbedding)
    },
    faceRefs() {
      return batched((after) => statements.faceRefs.all({ after, limit: EMBEDDING_BATCH_ROWS })).map(
        toFaceRef,
      )
    },
    embeddingByLabel(label) {
      const row = statements.embeddingByLabel.get({ label })
      return row === undefined ? undefined : toStoredEmbedding(row)
    },
    changesSince(afterSeq) {
      return statements.changesSince.all({ after: afterSeq }).map(toChange)
    },
    lastSeq: () => statements.lastSeq.get() ?? 0,
    identityName: (org, identityId) => statements.identityName.get({ org, id: identityId }),
    audit(org, options) {
      const limit = checkLimit(options.limit)
      return statements.audit.all({ org, after: options.afterSeq ?? 0, limit }).map(toAuditEntry)
    },
    keyUsage,
    checkKeys({ sampleRows }) {
      const usage = keyUsage()
      for (const { keyId } of usage) {
        if (keyId !== null && !ring.keys.has(keyId)) throw unknownKey(keyId, ring)
        const sample = statements.embeddingsUnderKey.all({ keyId, limit: keyId === null ? sampleRows : 1 })
        for (const row of sample) toStoredEmbedding(row)
      }
      return usage
    },
    reencrypt,
    recordServerKeys() {
      const value = serverKeysOf(ring)
      statements.writeMeta.run({ name: SERVER_KEYS, value: JSON.stringify(value) })
    },
    serverKeys() {
      const value = statements.readMeta.get({ name: SERVER_KEYS })
      return value === undefined ? undefined : (JSON.parse(value) as ServerKeys)
    },
    summary() {
      const embeddingKeys = keyUsage()
      return {
        schemaVersion: schemaVersion(db),
        seq: statements.lastSeq.get() ?? 0,
        identities: statements.countIdentities.get() ?? 0,
        faces: embeddingKeys.reduce((sum, usage) => sum + usage.faces, 0),
        embeddingKeys,
      }
    },
    checkpoint() {
      const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as {
        busy: number
        log: number
        checkpointed: number
      }[]
      // Busy: another connection is reading an older snapshot; the next checkpoint finishes the job.
      if (result !== undefined && result.busy !== 0) {
        logger.warn({ log: result.log, checkpointed: result.checkpointed }, 'gallery.checkpoint_busy')
      }
    },
    pragmas: () => readPragmas(db),
    close() {
      if (db.open) db.close()
    },
  }
}

/** A re-iterable, lazily read sequence of rows, fetched in label order a batch at a time. */
function batched<R extends { label: number | string }>(
  read: (after: number) => R[],
): { map<T>(convert: (row: R) => T): Iterable<T> } {
  return {
    map: (convert) => ({
      *[Symbol.iterator]() {
        // Labels start at 1 (AUTOINCREMENT).
        let after = 0
        for (;;) {
          const rows = read(after)
          for (const row of rows) yield convert(row)
          const last = rows.at(-1)
          if (last === undefined || rows.length < EMBEDDING_BATCH_ROWS) return
          after = Number(last.label)
        }
      },
    }),
  }
}

function readPragmas(db: Database.Database): StorePragmas {
  const simple = (name: string): unknown => db.pragma(name, { simple: true })
  return {
    journalMode: String(simple('journal_mode')),
    synchronous: SYNCHRONOUS_NAMES[Number(simple('synchronous'))] ?? String(simple('synchronous')),
    foreignKeys: simple('foreign_keys') === 1,
    secureDelete: simple('secure_delete') === 1,
    busyTimeoutMs: Number(simple('busy_timeout')),
    schemaVersion: schemaVersion(db),
  }
}

const SYNCHRONOUS_NAMES: readonly string[] = ['off', 'normal', 'full', 'extra']

function schemaVersion(db: Database.Database): number {
  return Number(db.pragma('user_version', { simple: true }))
}
