/**
 * Cluster mode's gallery core: the PostgreSQL store shared by every instance, and how this
 * instance's replica follows it.
 *
 * - Rows a search reads (identity names, face embeddings) are copied into memory at startup, so a
 *   search never waits on the network and goes on while the database is down.
 * - The replica loads the newest snapshot (this instance's own, or the shared one another instance
 *   wrote into the database, whichever is newer), then replays the change log from the snapshot's
 *   seq. It then follows the log: LISTEN/NOTIFY wakes it on every commit, and a poll every
 *   `pollMs` catches anything a lost notification or a dropped connection missed.
 * - The instance's own writes reach its replica at once (read-your-writes); replaying them again
 *   from the log is a no-op (adds are idempotent; a face this instance deleted is remembered until
 *   the log's delete for it has been replayed, so a replayed add cannot bring it back).
 * - Snapshots are written locally and shared: the newest one goes into the database (one writer at
 *   a time, encrypted under the embedding key when one is set), so a new instance joins without
 *   rebuilding its indexes.
 */
import { mkdirSync, readFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import {
  replicaOptions,
  reportKeys,
  type ClusterOptions,
  type GalleryCore,
  type GalleryOptions,
} from './core.js'
import { writeFileDurably, fsyncPath } from './durable-files.js'
import { MANIFEST_FILE } from './hnsw-index.js'
import { openPgStore, SNAPSHOT_PART_BYTES, type PgGalleryStore, type SnapshotPart } from './pg-store.js'
import { createReplica } from './replica.js'
import type { GalleryChange, StoredEmbedding } from './types.js'

/** Change rows read per catch-up query. */
const CHANGE_BATCH = 1000

const manifestFiles = z.object({ seq: z.number(), orgs: z.array(z.object({ file: z.string() })) })

/** The seq of the snapshot in `dir` (-1 when there is none or it cannot be read). */
function localSnapshotSeq(dir: string): number {
  try {
    return manifestFiles.parse(JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8'))).seq
  } catch {
    return -1
  }
}

/** The snapshot in `dir` as parts: the manifest and every file it lists. */
function snapshotParts(dir: string): SnapshotPart[] {
  const manifest = readFileSync(join(dir, MANIFEST_FILE))
  const files = manifestFiles.parse(JSON.parse(manifest.toString('utf8'))).orgs.map((org) => org.file)
  const parts: SnapshotPart[] = []
  for (const file of [...files, MANIFEST_FILE]) {
    const bytes = file === MANIFEST_FILE ? manifest : readFileSync(join(dir, file))
    for (
      let offset = 0, part = 0;
      offset < bytes.length || part === 0;
      offset += SNAPSHOT_PART_BYTES, part++
    ) {
      parts.push({ file, part, data: bytes.subarray(offset, offset + SNAPSHOT_PART_BYTES) })
    }
  }
  return parts
}

/**
 * Writes a shared snapshot's parts into `dir`: index files first, the manifest last (renamed into
 * place), so a crash leaves the previous snapshot. Older files are removed by the next save.
 * loadSnapshot checks every byte against the manifest's sha256 before using it.
 */
function writeSnapshotParts(dir: string, parts: readonly SnapshotPart[]): void {
  mkdirSync(dir, { recursive: true })
  const byFile = new Map<string, Buffer[]>()
  for (const part of parts) {
    if (!/^[0-9a-f.]+hnsw$|^manifest\.json$/.test(part.file) || part.file.includes('..')) {
      throw new Error(`the shared snapshot names an unexpected file ${JSON.stringify(part.file)}`)
    }
    const list = byFile.get(part.file) ?? []
    list[part.part] = part.data
    byFile.set(part.file, list)
  }
  const manifest = byFile.get(MANIFEST_FILE)
  if (manifest === undefined) throw new Error('the shared snapshot has no manifest')
  for (const [file, list] of byFile) {
    if (file === MANIFEST_FILE) continue
    const tmp = join(dir, `${file}.tmp`)
    writeFileDurably(tmp, Buffer.concat(list))
    renameSync(tmp, join(dir, file))
  }
  const tmp = join(dir, `${MANIFEST_FILE}.tmp`)
  writeFileDurably(tmp, Buffer.concat(manifest))
  renameSync(tmp, join(dir, MANIFEST_FILE))
  fsyncPath(dir)
}

export async function createClusterCore(
  options: GalleryOptions,
  cluster: ClusterOptions,
): Promise<GalleryCore> {
  const { logger } = options
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 })
  const snapshotDir = join(options.dataDir, 'index')
  const store: PgGalleryStore = await openPgStore({
    url: cluster.databaseUrl,
    embeddingKey: options.embeddingKey,
    previousEmbeddingKeys: options.previousEmbeddingKey === undefined ? [] : [options.previousEmbeddingKey],
    logger,
    poolSize: cluster.poolSize,
    statementTimeoutMs: cluster.statementTimeoutMs,
    retryForMs: cluster.retryForMs,
    onHealth: cluster.onHealth,
  })
  try {
    const usage = await store.checkKeys({ sampleRows: 1 })
    await store.recordServerKeys()
    reportKeys(usage, store.currentKeyId, (await store.serverKeys())?.previous ?? [], logger)
    return await followStore(options, cluster, store, snapshotDir)
  } catch (error) {
    await store.close().catch(() => undefined)
    throw error
  }
}

/**
 * The core over an opened store: loads the replica (snapshot, rows, change log) and follows the
 * log. Exported for the follower's own tests, which hand it a store whose calls they can hold.
 */
export async function followStore(
  options: GalleryOptions,
  cluster: ClusterOptions,
  store: PgGalleryStore,
  snapshotDir: string,
): Promise<GalleryCore> {
  const { logger } = options
  const { modelId } = options.layout
  // The rows a search reads, in memory: embeddings by label, names by org and identity.
  const byLabel = new Map<number, StoredEmbedding>()
  const names = new Map<string, string>()
  const nameKey = (org: string, id: string): string => `${org}/${id}`

  // 1. The shared snapshot, when it is newer than this instance's own.
  const shared = await store.sharedSnapshot()
  const localSeq = localSnapshotSeq(snapshotDir)
  if (shared !== undefined && shared.modelId === modelId && shared.seq > localSeq) {
    const begun = performance.now()
    const read = await store.readSharedSnapshot()
    if (read !== undefined) {
      writeSnapshotParts(snapshotDir, read.parts)
      logger.info(
        { seq: read.info.seq, bytes: read.info.bytes, ms: Math.round(performance.now() - begun) },
        'gallery.snapshot_fetched',
      )
    }
  }

  // 2. The rows, as of at least `startSeq` (taken first: what changes while reading is replayed).
  const startSeq = await store.lastSeq()
  for await (const face of store.embeddings()) byLabel.set(face.label, face)
  for await (const entry of store.identityNames()) names.set(nameKey(entry.org, entry.id), entry.name)

  // 3. The replica, from the snapshot (no newer than startSeq: it was read before) or rebuilt.
  const replica = createReplica(
    replicaOptions(options, {
      identityName: (org, id) => names.get(nameKey(org, id)),
      embeddingByLabel: (label) => byLabel.get(label),
      *embeddings(org) {
        for (const face of byLabel.values()) if (face.org === org) yield face
      },
    }),
  )
  replica.load(snapshotDir, {
    faceRefs: () => byLabel.values(),
    embeddings: () => byLabel.values(),
    // Replayed below, asynchronously, as the follower replays everything.
    changesSince: () => [],
    embeddingByLabel: (label) => byLabel.get(label),
    lastSeq: startSeq,
  })

  /** Labels this instance deleted whose delete the follower has not replayed yet. */
  const tombstones = new Set<number>()
  let appliedSeq = replica.loadedFrom === 'snapshot' ? replica.loadedSnapshotSeq : startSeq
  let snapshotSeq = replica.loadedSnapshotSeq

  /** Applies one batch of the log (its embeddings and names fetched first). */
  const applyBatch = async (changes: readonly GalleryChange[]): Promise<void> => {
    const missing = changes
      .filter((c) => c.kind === 'add' && !byLabel.has(c.label) && !tombstones.has(c.label))
      .map((c) => c.label)
    const fetched = await store.embeddingsByLabels(missing)
    const identityIds = [...new Set(changes.filter((c) => c.kind === 'identity').map((c) => c.identityId))]
    const current = await store.namesOf(identityIds)
    // Synchronous from here: no local write interleaves with the replay of one batch.
    for (const face of fetched) if (!tombstones.has(face.label)) byLabel.set(face.label, face)
    for (const change of changes) {
      if (change.kind === 'add') {
        if (!tombstones.has(change.label)) replica.apply(change, (label) => byLabel.get(label))
      } else if (change.kind === 'delete') {
        replica.apply(change, (label) => byLabel.get(label))
        byLabel.delete(change.label)
        tombstones.delete(change.label)
      }
    }
    for (const id of identityIds) {
      const found = current.find((entry) => entry.id === id)
      const org = changes.find((c) => c.identityId === id)?.org ?? ''
      if (found === undefined) names.delete(nameKey(org, id))
      else names.set(nameKey(found.org, found.id), found.name)
    }
    const last = changes.at(-1)
    if (last !== undefined) appliedSeq = Math.max(appliedSeq, last.seq)
  }

  let running: Promise<void> | undefined
  let again = false
  let closed = false
  /** Replays the log from appliedSeq; one run at a time (a call while running runs once more after). */
  const catchUp = (): Promise<void> => {
    if (running !== undefined) {
      again = true
      return running
    }
    running = (async () => {
      try {
        do {
          again = false
          for (;;) {
            const changes = await store.changesSince(appliedSeq, CHANGE_BATCH)
            if (changes.length > 0) await applyBatch(changes)
            if (changes.length < CHANGE_BATCH) break
          }
        } while (again && !closed)
      } finally {
        running = undefined
      }
    })()
    return running
  }
  /** Whether the last catch-up failed: sync_failed is logged once per outage, sync_restored after. */
  let failing = false
  const catchUpQuietly = (): void => {
    catchUp().then(
      () => {
        if (failing) logger.info({ seq: appliedSeq }, 'gallery.sync_restored')
        failing = false
      },
      (error: unknown) => {
        if (closed || failing) return
        failing = true
        logger.warn({ err: { message: (error as Error).message } }, 'gallery.sync_failed')
      },
    )
  }

  const begun = performance.now()
  await catchUp()
  logger.info(
    { from: replica.loadedFrom, seq: appliedSeq, ms: Math.round(performance.now() - begun) },
    'gallery.caught_up',
  )
  const stopListening = store.listen(catchUpQuietly)
  const poll = setInterval(catchUpQuietly, cluster.pollMs)
  poll.unref()

  return {
    storeKind: 'postgres',
    replica,
    store,
    wrote: {
      identity(identity) {
        names.set(nameKey(identity.org, identity.id), identity.name)
      },
      identityDeleted(org, identityId, faces) {
        names.delete(nameKey(org, identityId))
        for (const face of faces) {
          byLabel.delete(face.label)
          tombstones.add(face.label)
        }
      },
      face(face, embedding) {
        byLabel.set(face.label, {
          label: face.label,
          faceId: face.id,
          identityId: face.identityId,
          org: face.org,
          modelId: face.modelId,
          embedding,
        })
      },
      faceDeleted(face) {
        byLabel.delete(face.label)
        tombstones.add(face.label)
      },
    },
    afterDelete: () => undefined,
    seq: () => appliedSeq,
    sync: catchUp,
    async snapshot() {
      const seq = appliedSeq
      if (seq === snapshotSeq) return { written: false, seq }
      replica.saveSnapshot(snapshotDir, seq)
      snapshotSeq = seq
      const parts = snapshotParts(snapshotDir)
      if (await store.writeSharedSnapshot({ seq, modelId }, parts)) {
        logger.info({ seq, parts: parts.length }, 'gallery.snapshot_shared')
      }
      return { written: true, seq }
    },
    snapshotSeq: () => snapshotSeq,
    async close() {
      closed = true
      clearInterval(poll)
      stopListening()
      await running?.catch(() => undefined)
      await store.close()
    },
  }
}
