/**
 * The manifest of a backup folder (`facewire-backup.json`): what was copied (the store's database
 * and, when there was one, the index snapshot it was taken with), at which change seq, and each
 * file's size and sha256. It holds counts and key ids, never a secret: no embedding key, no JWT
 * secret, no name or embedding. Written last, so a backup that did not finish has none.
 */
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { DataToolError } from './data-tool-error.js'
import { sha256File } from './durable-files.js'
import { MANIFEST_FILE as SNAPSHOT_MANIFEST_FILE } from './hnsw-index.js'
import { DATABASE_FILE } from './store.js'

/** Name of the manifest inside a backup folder. */
export const BACKUP_MANIFEST_FILE = 'facewire-backup.json'

/** Folder of the index snapshot, in a data folder and in a backup alike. */
export const SNAPSHOT_DIR = 'index'

const BACKUP_FORMAT = 'facewire.backup'
const BACKUP_VERSION = 1
const SHA256 = /^[0-9a-f]{64}$/
/** The only paths a backup may list: the database, the snapshot manifest and index files. */
const FILE_PATTERN = /^(?:facewire\.db|index\/manifest\.json|index\/[0-9a-f]{64}\.[0-9a-f]{12}\.hnsw)$/

const count = z.number().int().min(0)

const manifestSchema = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  version: z.literal(BACKUP_VERSION),
  createdAt: z.string().min(1),
  /** The facewire that wrote it, e.g. `facewire 0.1.0`. */
  createdBy: z.string().min(1),
  store: z.strictObject({
    file: z.literal(DATABASE_FILE),
    schemaVersion: z.number().int().min(1),
    /** The store's change seq: the backup is the database as of this change. */
    seq: count,
    identities: count,
    faces: count,
    /** Faces per embedding key id (null: clear, or encrypted before key ids were recorded). */
    embeddingKeys: z.array(z.strictObject({ keyId: z.string().min(1).nullable(), faces: count })),
  }),
  /** The index snapshot copied with it (its change seq, at most the store's), or null. */
  snapshot: z.strictObject({ seq: count }).nullable(),
  files: z.array(
    z.strictObject({
      path: z.string().regex(FILE_PATTERN, 'is not a file a backup holds'),
      bytes: count,
      sha256: z.string().regex(SHA256),
    }),
  ),
  /** sha256 of the JSON of every other field, keys sorted at every level. */
  checksum: z.string().regex(SHA256),
})

export type BackupManifest = z.infer<typeof manifestSchema>
export type BackupFile = BackupManifest['files'][number]

/** The manifest with its checksum, as written to BACKUP_MANIFEST_FILE. */
export function toBackupManifest(
  body: Omit<BackupManifest, 'format' | 'version' | 'checksum'>,
): BackupManifest {
  const withHeader = { format: BACKUP_FORMAT, version: BACKUP_VERSION, ...body } as const
  return { ...withHeader, checksum: checksumOf(withHeader) }
}

/** A manifest's file entry for `path` (relative to the backup folder), hashed from disk. */
export function describeFile(dir: string, path: string): BackupFile {
  const { sha256, bytes } = sha256File(join(dir, path))
  return { path, bytes, sha256 }
}

/**
 * Parses and checks a manifest's text: JSON, the schema, its checksum, and a consistent listing
 * (the database once, no path twice, the snapshot's files exactly when a snapshot is named, a
 * snapshot no newer than the store). Throws DataToolError ERR_BACKUP_INVALID saying what is wrong.
 */
export function parseBackupManifest(text: string): BackupManifest {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw invalid('it is not JSON')
  }
  const parsed = manifestSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw invalid(`${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'does not match the format'}`)
  }
  const { checksum, ...body } = parsed.data
  if (checksumOf(body) !== checksum) throw invalid('its checksum does not match its content')
  const manifest = parsed.data
  const paths = manifest.files.map((file) => file.path)
  if (new Set(paths).size !== paths.length) throw invalid('a file is listed twice')
  if (!paths.includes(DATABASE_FILE)) throw invalid(`it does not list ${DATABASE_FILE}`)
  const indexFiles = paths.filter((path) => path.startsWith(`${SNAPSHOT_DIR}/`))
  const hasSnapshotManifest = paths.includes(`${SNAPSHOT_DIR}/${SNAPSHOT_MANIFEST_FILE}`)
  if (manifest.snapshot === null ? indexFiles.length > 0 : !hasSnapshotManifest) {
    throw invalid('its snapshot and its index files disagree')
  }
  if (manifest.snapshot !== null && manifest.snapshot.seq > manifest.store.seq) {
    throw invalid(
      `its snapshot (seq ${manifest.snapshot.seq}) is newer than its store (seq ${manifest.store.seq})`,
    )
  }
  return manifest
}

/**
 * Checks every file the manifest lists against its size and sha256 (`dir`: the backup folder, or
 * a copy of its files). Throws DataToolError ERR_BACKUP_DAMAGED naming the first file that is
 * missing or differs.
 */
export function verifyBackupFiles(dir: string, manifest: BackupManifest): void {
  for (const file of manifest.files) {
    const path = join(dir, file.path)
    let size: number
    try {
      size = statSync(path).size
    } catch {
      throw new DataToolError('ERR_BACKUP_DAMAGED', `the backup is damaged: ${file.path} is missing`)
    }
    if (size !== file.bytes) {
      throw new DataToolError(
        'ERR_BACKUP_DAMAGED',
        `the backup is damaged: ${file.path} has ${size} bytes, the manifest says ${file.bytes}`,
      )
    }
    if (sha256File(path).sha256 !== file.sha256) {
      throw new DataToolError(
        'ERR_BACKUP_DAMAGED',
        `the backup is damaged: the sha256 of ${file.path} does not match the manifest`,
      )
    }
  }
}

/** Reads, parses and verifies the backup in `dir` (manifest and every file). */
export function readBackup(dir: string): BackupManifest {
  let text: string
  try {
    text = readFileSync(join(dir, BACKUP_MANIFEST_FILE), 'utf8')
  } catch (error) {
    throw new DataToolError(
      'ERR_BACKUP_INVALID',
      `${dir} holds no ${BACKUP_MANIFEST_FILE}: it is not a facewire backup, or one that did not finish`,
      { cause: error },
    )
  }
  const manifest = parseBackupManifest(text)
  verifyBackupFiles(dir, manifest)
  return manifest
}

function checksumOf(body: object): string {
  return createHash('sha256')
    .update(JSON.stringify(sortedKeys(body)))
    .digest('hex')
}

/** The value with every object's keys in sorted order, so the checksum does not depend on it. */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys)
  if (value === null || typeof value !== 'object') return value
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return Object.fromEntries(entries.map(([key, inner]) => [key, sortedKeys(inner)]))
}

function invalid(reason: string): DataToolError {
  return new DataToolError('ERR_BACKUP_INVALID', `${BACKUP_MANIFEST_FILE} is invalid: ${reason}`)
}
