/**
 * Re-encrypting every embedding under a new key while a server keeps serving.
 *
 * Each face row records the id of the key that encrypted it (store.ts, faces.key_id), so the
 * rotation is a loop of small transactions, each re-encrypting a batch of rows not yet under the
 * new key: a server reading meanwhile finds every row under a key of its ring (the new key as
 * FACEWIRE_EMBEDDING_KEY, the old one as FACEWIRE_EMBEDDING_KEY_PREVIOUS), and writes new faces
 * under the new key. A rotation killed at any point leaves each row whole under one key or the
 * other (a transaction commits or not), and the next run selects what is left. The vectors do not
 * change, so neither the change log nor the indexes are touched.
 */
import { createSecretKey } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../logger.js'
import { DataToolError } from './data-tool-error.js'
import { embeddingKeyId } from './embedding-crypto.js'
import { DATABASE_FILE, isDatabaseInUse, openStore, type GalleryStore, type KeyUsage } from './store.js'

/** Rows per transaction: small, so a serving server's writes never wait long for the lock. */
export const DEFAULT_ROTATION_BATCH_ROWS = 64
/** Pause between transactions, leaving the write lock and the disk to the server. */
export const DEFAULT_ROTATION_PAUSE_MS = 10
/** Passes over what is left (a pass picks up rows another writer added under an old key). */
const MAX_PASSES = 3

export interface RotationOptions {
  dataDir: string
  /** The key to re-encrypt under. */
  newKey: Buffer
  /** The keys the faces may be under now (FACEWIRE_EMBEDDING_KEY, FACEWIRE_EMBEDDING_KEY_PREVIOUS). */
  oldKeys: readonly Buffer[]
  batchRows?: number | undefined
  pauseMs?: number | undefined
  logger: Logger
  /** Called after each committed batch. */
  onProgress?: ((progress: RotationProgress) => void) | undefined
}

export interface RotationProgress {
  /** Faces re-encrypted by this run so far. */
  reencrypted: number
  /** Faces not under the new key when this run began. */
  total: number
}

export interface RotationReport {
  /** Id of the new key (recorded beside every face). */
  keyId: string
  /** Whether another process had the database open (a server serving through the rotation). */
  serverRunning: boolean
  /** Faces re-encrypted by this run. */
  reencrypted: number
  /** Faces per key id at the end: only the new key's when the rotation is complete. */
  embeddingKeys: KeyUsage[]
  complete: boolean
}

/**
 * Re-encrypts every face of `dataDir` that is not under `newKey`. When a server has the database
 * open, it must have been started with the new key as its current key (it records its key ids at
 * startup): otherwise DataToolError ERR_ROTATION_SERVER_KEY, before anything is written. A face
 * that no given key decrypts stops the rotation with ERR_CONFIG_INVALID naming its key id; the
 * faces re-encrypted before it stay so.
 */
export async function rotateEmbeddingKey(options: RotationOptions): Promise<RotationReport> {
  const { dataDir, logger } = options
  const batchRows = options.batchRows ?? DEFAULT_ROTATION_BATCH_ROWS
  const pauseMs = options.pauseMs ?? DEFAULT_ROTATION_PAUSE_MS
  if (!Number.isInteger(batchRows) || batchRows < 1)
    throw new RangeError('batchRows must be a positive integer')
  if (!Number.isInteger(pauseMs) || pauseMs < 0)
    throw new RangeError('pauseMs must be a non-negative integer')
  if (!existsSync(join(dataDir, DATABASE_FILE))) {
    throw new DataToolError('ERR_NO_GALLERY', `there is no gallery database in ${dataDir} (${DATABASE_FILE})`)
  }
  // Probed before this process opens the database itself.
  const serverRunning = isDatabaseInUse(dataDir)
  const store = openStore({
    dataDir,
    embeddingKey: options.newKey,
    previousEmbeddingKeys: options.oldKeys,
    logger: logger.child({}, { level: 'error' }),
  })
  try {
    const keyId = embeddingKeyId(createSecretKey(options.newKey))
    if (serverRunning) checkServerKeys(store, keyId, dataDir)
    let reencrypted = 0
    const total = pending(store.keyUsage(), keyId)
    logger.info({ keyId, total, serverRunning }, 'gallery.rotation_started')
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const keys = store.keyUsage().filter((usage) => usage.keyId !== keyId)
      if (keys.length === 0) break
      for (const { keyId: fromKeyId } of keys) {
        for (;;) {
          const count = store.reencrypt(fromKeyId, batchRows)
          if (count === 0) break
          reencrypted += count
          options.onProgress?.({ reencrypted, total: Math.max(total, reencrypted) })
          if (pauseMs > 0) await sleep(pauseMs)
        }
      }
    }
    // The old ciphertexts leave the -wal file too (secure_delete zeroed them in the pages).
    store.checkpoint()
    const embeddingKeys = store.keyUsage()
    const complete = pending(embeddingKeys, keyId) === 0
    logger.info({ keyId, reencrypted, complete }, 'gallery.rotation_finished')
    return { keyId, serverRunning, reencrypted, embeddingKeys, complete }
  } finally {
    store.close()
  }
}

function pending(usage: readonly KeyUsage[], keyId: string): number {
  return usage.filter((entry) => entry.keyId !== keyId).reduce((sum, entry) => sum + entry.faces, 0)
}

/**
 * A serving server must read and write with the new key before rows move to it: one still writing
 * under the old key would keep adding rows the rotation has to chase, and one that does not hold
 * the new key could not read the rows already moved.
 */
function checkServerKeys(store: GalleryStore, keyId: string, dataDir: string): void {
  const server = store.serverKeys()
  if (server?.current === keyId) return
  const writes =
    server === undefined
      ? 'did not record its keys (started by an older facewire?)'
      : server.current === null
        ? 'writes embeddings in clear'
        : `writes under key ${server.current}`
  throw new DataToolError(
    'ERR_ROTATION_SERVER_KEY',
    `a server is running on ${dataDir} and ${writes}, not under the new key ${keyId}: restart it with ` +
      'FACEWIRE_EMBEDDING_KEY set to the new key and FACEWIRE_EMBEDDING_KEY_PREVIOUS to the old one, then run ' +
      'rotate-key again (docs/operations.md, "Key rotation")',
  )
}
