/**
 * Backups of a data folder while a server serves from it, and restores into another.
 *
 * Consistency: the index snapshot is copied first (with the change seq it reflects), then the
 * database through SQLite's online backup API in one read transaction. The store's seq only grows,
 * so the snapshot's seq is at most the copy's: a server started on the restored folder loads the
 * snapshot and replays the copy's newer changes from its change log, exactly as after a crash (and
 * rebuilds from the store when the snapshot does not fit, as always). No key is needed to take a
 * backup: embeddings are copied as stored.
 */
import { createSecretKey, randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../logger.js'
import { FacewireError } from '../errors.js'
import {
  BACKUP_MANIFEST_FILE,
  describeFile,
  readBackup,
  SNAPSHOT_DIR,
  toBackupManifest,
  verifyBackupFiles,
  type BackupManifest,
} from './backup-manifest.js'
import { DataToolError } from './data-tool-error.js'
import { fsyncPath, writeFileDurably } from './durable-files.js'
import { embeddingKeyId } from './embedding-crypto.js'
import { copySnapshot, MANIFEST_FILE as SNAPSHOT_MANIFEST_FILE } from './hnsw-index.js'
import { backupDatabase, DATABASE_FILE, isDatabaseInUse, openStore, type KeyUsage } from './store.js'

/** Tries at copying a snapshot that a server keeps replacing, before the backup goes without it. */
export const SNAPSHOT_COPY_ATTEMPTS = 3

/** Faces without a key id whose decryption a restore tries (besides one per key id). */
export const RESTORE_SAMPLE_ROWS = 16

/** What makes up a gallery in a data folder: what a restore replaces. */
const GALLERY_ENTRIES = [
  DATABASE_FILE,
  `${DATABASE_FILE}-wal`,
  `${DATABASE_FILE}-shm`,
  `${DATABASE_FILE}-journal`,
  SNAPSHOT_DIR,
] as const

export interface BackupOptions {
  /** The data folder a server may be serving from. */
  dataDir: string
  /** Where the backup goes: created, or an empty folder. */
  backupDir: string
  /** Recorded in the manifest, e.g. `facewire 0.1.0`. */
  createdBy: string
  logger: Logger
}

/** Takes a consistent backup of `dataDir` into `backupDir` and returns its manifest. */
export async function createBackup(options: BackupOptions): Promise<BackupManifest> {
  const { dataDir, backupDir, logger } = options
  if (!existsSync(join(dataDir, DATABASE_FILE))) {
    throw new DataToolError('ERR_NO_GALLERY', `there is no gallery database in ${dataDir} (${DATABASE_FILE})`)
  }
  if (existsSync(backupDir) && readdirSync(backupDir).length > 0) {
    throw new DataToolError(
      'ERR_BACKUP_TARGET_NOT_EMPTY',
      `${backupDir} is not empty: a backup goes into a new or empty folder`,
    )
  }
  mkdirSync(backupDir, { recursive: true, mode: 0o700 })

  // The snapshot first: its seq is then at most the database copy's (see the file comment).
  const snapshot = copySnapshotOf(dataDir, backupDir, logger)
  const store = await backupDatabase(dataDir, backupDir, logger)
  const paths = [DATABASE_FILE, ...(snapshot?.files.map((file) => `${SNAPSHOT_DIR}/${file}`) ?? [])]
  for (const path of paths) chmodSync(join(backupDir, path), 0o600)
  const manifest = toBackupManifest({
    createdAt: new Date().toISOString(),
    createdBy: options.createdBy,
    store: { file: DATABASE_FILE, ...store },
    snapshot: snapshot === undefined ? null : { seq: snapshot.seq },
    files: paths.map((path) => describeFile(backupDir, path)),
  })
  // Renamed into place last: a backup without its manifest is recognisably unfinished.
  const tmp = join(backupDir, `${BACKUP_MANIFEST_FILE}.tmp`)
  writeFileDurably(tmp, JSON.stringify(manifest, null, 2) + '\n')
  chmodSync(tmp, 0o600)
  renameSync(tmp, join(backupDir, BACKUP_MANIFEST_FILE))
  fsyncPath(backupDir)
  logger.info(
    { backupDir, seq: store.seq, snapshotSeq: snapshot?.seq ?? null, faces: store.faces },
    'gallery.backup_written',
  )
  return manifest
}

/** The snapshot copied into `backupDir/index`, or undefined when there is none to copy. */
function copySnapshotOf(
  dataDir: string,
  backupDir: string,
  logger: Logger,
): { seq: number; files: string[] } | undefined {
  const from = join(dataDir, SNAPSHOT_DIR)
  // No snapshot written yet (a young server): the restored one rebuilds, as this one would.
  if (!existsSync(join(from, SNAPSHOT_MANIFEST_FILE))) return undefined
  const to = join(backupDir, SNAPSHOT_DIR)
  let reason = ''
  for (let attempt = 1; attempt <= SNAPSHOT_COPY_ATTEMPTS; attempt++) {
    const copied = copySnapshot(from, to)
    if (copied.ok) return copied
    reason = copied.reason
  }
  rmSync(to, { recursive: true, force: true })
  // Not a failure: the restored server rebuilds its indexes from the store instead.
  logger.warn({ reason, attempts: SNAPSHOT_COPY_ATTEMPTS }, 'gallery.backup_without_snapshot')
  return undefined
}

export interface RestoreOptions {
  backupDir: string
  /** The data folder to restore into: new, empty of a gallery, or replaced with `force`. */
  dataDir: string
  /** The keys the restored server will run with: the backup must decrypt under them. */
  embeddingKey: Buffer | undefined
  previousEmbeddingKey: Buffer | undefined
  /** Replace the gallery the data folder holds. */
  force: boolean
  logger: Logger
}

export interface RestoreReport {
  manifest: BackupManifest
  /** Faces per key id in the restored store, as checked. */
  embeddingKeys: KeyUsage[]
  /** What was replaced (with `force`). */
  replaced: string[]
}

/**
 * Restores the backup of `backupDir` into `dataDir`. Verifies the manifest and the sha256 of every
 * file first, refuses a data folder whose database another process has open (a running server),
 * copies into a staging folder inside `dataDir` (verified again), checks that the embeddings
 * decrypt with the configured keys (ERR_CONFIG_INVALID naming the key ids otherwise), and only
 * then moves the files into place. Nothing in `dataDir` changes when any check fails.
 */
export function restoreBackup(options: RestoreOptions): RestoreReport {
  const { backupDir, dataDir, logger } = options
  const manifest = readBackup(backupDir)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  if (isDatabaseInUse(dataDir)) {
    throw new DataToolError(
      'ERR_DATA_DIR_IN_USE',
      `the gallery database in ${dataDir} is in use (a server is running on it?): stop the server before restoring`,
    )
  }
  const existing = GALLERY_ENTRIES.filter((name) => existsSync(join(dataDir, name)))
  if (existing.length > 0 && !options.force) {
    throw new DataToolError(
      'ERR_DATA_DIR_NOT_EMPTY',
      `${dataDir} already holds a gallery (${existing.join(', ')}): restore into an empty folder, or pass --force to replace it`,
    )
  }
  const staging = join(dataDir, `.restore-${randomBytes(6).toString('hex')}`)
  try {
    mkdirSync(staging, { mode: 0o700 })
    for (const file of manifest.files) {
      if (file.path.startsWith(`${SNAPSHOT_DIR}/`))
        mkdirSync(join(staging, SNAPSHOT_DIR), { recursive: true })
      copyFileSync(join(backupDir, file.path), join(staging, file.path))
      fsyncPath(join(staging, file.path))
    }
    // What landed on this disk, not only what the backup holds.
    verifyBackupFiles(staging, manifest)
    const embeddingKeys = checkKeys(staging, manifest, options)
    for (const name of existing) rmSync(join(dataDir, name), { recursive: true, force: true })
    renameSync(join(staging, DATABASE_FILE), join(dataDir, DATABASE_FILE))
    if (manifest.snapshot !== null) renameSync(join(staging, SNAPSHOT_DIR), join(dataDir, SNAPSHOT_DIR))
    fsyncPath(dataDir)
    logger.info(
      { backupDir, dataDir, seq: manifest.store.seq, snapshotSeq: manifest.snapshot?.seq ?? null },
      'gallery.restored',
    )
    return { manifest, embeddingKeys, replaced: existing }
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
}

/**
 * Opens the staged copy with the configured keys (migrating it if it is older) and decrypts a
 * sample: one face per key id and up to RESTORE_SAMPLE_ROWS without one.
 */
function checkKeys(staging: string, manifest: BackupManifest, options: RestoreOptions): KeyUsage[] {
  const store = openStore({
    dataDir: staging,
    embeddingKey: options.embeddingKey,
    previousEmbeddingKeys: options.previousEmbeddingKey === undefined ? [] : [options.previousEmbeddingKey],
    // Its warnings (gallery.unencrypted) are about the copy being checked, not the operator's setup.
    logger: options.logger.child({}, { level: 'error' }),
  })
  try {
    const usage = store.checkKeys({ sampleRows: RESTORE_SAMPLE_ROWS })
    // Into the database file itself, so it moves into place alone.
    store.checkpoint()
    return usage
  } catch (error) {
    if (!(error instanceof FacewireError) || error.code !== 'ERR_CONFIG_INVALID') throw error
    const made = manifest.store.embeddingKeys
      .map(
        (entry) =>
          `${entry.keyId === null ? 'no recorded key' : `key ${entry.keyId}`} (${entry.faces} faces)`,
      )
      .join(', ')
    const held = [
      ['FACEWIRE_EMBEDDING_KEY', options.embeddingKey],
      ['FACEWIRE_EMBEDDING_KEY_PREVIOUS', options.previousEmbeddingKey],
    ] as const
    const configured = held
      .flatMap(([name, key]) =>
        key === undefined ? [] : [`${name}: key ${embeddingKeyId(createSecretKey(key))}`],
      )
      .join(', ')
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `the backup was made with another embedding key: its faces are under ${made}, which ` +
        `${configured === '' ? 'no configured key (FACEWIRE_EMBEDDING_KEY is not set)' : `the configured keys (${configured})`} ` +
        'do not decrypt. Restore with the key it was made with as FACEWIRE_EMBEDDING_KEY (or as ' +
        'FACEWIRE_EMBEDDING_KEY_PREVIOUS beside a newer key, then run facewire rotate-key)',
      { cause: error, details: { variables: ['FACEWIRE_EMBEDDING_KEY', 'FACEWIRE_EMBEDDING_KEY_PREVIOUS'] } },
    )
  } finally {
    store.close()
  }
}
