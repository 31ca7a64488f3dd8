/**
 * One suite, two stores: the embedded SQLite store and the cluster's PostgreSQL store (a fresh
 * database on the machine's server per test) must keep the same promises: identities and faces
 * per organization, the change log the indexes replay, encrypted embeddings, an audit log the
 * database itself refuses to change. Then what only the PostgreSQL store has to do: migrate once
 * under concurrent starts, and fail cleanly (ERR_STORE_UNAVAILABLE) while the database is away.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { rmSync } from 'node:fs'
import { test, type TestContext } from 'node:test'
import Database from 'better-sqlite3'
import { FacewireError } from '../../server/errors.js'
import { openPgStore, PG_SCHEMA_VERSION } from '../../server/gallery/pg-store.js'
import { DATABASE_FILE, openStore } from '../../server/gallery/store.js'
import type { AuditEntry, Face, GalleryChange, Identity, Page } from '../../server/gallery/types.js'
import { createMemoryLogger, tempDataDir } from '../helpers/app.js'
import { unitVector } from '../helpers/gallery.js'
import { freshDatabase, query } from '../helpers/postgres.js'

const actor = { sub: 'contract' }
const MODEL = 'model-a'

/** What the suite needs of a store, whichever answers synchronously. */
interface Subject {
  createIdentity(
    org: string,
    input: { name: string; externalId?: string | null; metadata?: Record<string, unknown> },
  ): Promise<Identity>
  getIdentity(org: string, id: string): Promise<Identity | undefined>
  listIdentities(org: string, options: { limit: number; cursor?: string }): Promise<Page<Identity>>
  updateIdentity(org: string, id: string, patch: { name?: string }): Promise<Identity | undefined>
  deleteIdentity(org: string, id: string): Promise<{ identity: Identity; faces: Face[] } | undefined>
  addFace(
    org: string,
    identityId: string,
    embedding: Float32Array,
    sourceSha256?: string,
  ): Promise<Face | undefined>
  getFace(org: string, faceId: string): Promise<Face | undefined>
  findFaceBySource(org: string, identityId: string, sha256: string): Promise<Face | undefined>
  listFaces(org: string, identityId: string): Promise<Face[]>
  deleteFace(org: string, faceId: string): Promise<Face | undefined>
  audit(org: string): Promise<AuditEntry[]>
  changes(afterSeq: number): Promise<GalleryChange[]>
  lastSeq(): Promise<number>
  embedding(label: number): Promise<Float32Array | undefined>
  /** The stored embedding column of a face, as the database holds it. */
  rawEmbedding(label: number): Promise<Buffer>
  /** Runs a statement on the database directly (bypassing the store). */
  raw(sql: string): Promise<void>
}

const KINDS: Record<string, (t: TestContext, key: Buffer) => Promise<Subject>> = {
  async sqlite(t, key) {
    const dataDir = tempDataDir()
    const store = openStore({ dataDir, embeddingKey: key, logger: createMemoryLogger().logger })
    const db = new Database(join(dataDir, DATABASE_FILE))
    t.after(() => {
      db.close()
      store.close()
      rmSync(dataDir, { recursive: true, force: true })
    })
    await Promise.resolve()
    return {
      createIdentity: (org, input) => later(() => store.createIdentity(org, input, actor)),
      getIdentity: (org, id) => later(() => store.getIdentity(org, id)),
      listIdentities: (org, options) => later(() => store.listIdentities(org, options)),
      updateIdentity: (org, id, patch) => later(() => store.updateIdentity(org, id, patch, actor)),
      deleteIdentity: (org, id) => later(() => store.deleteIdentity(org, id, actor)),
      addFace: (org, identityId, embedding, sourceSha256) =>
        later(() =>
          store.addFace(org, identityId, { embedding, quality: 0.9, modelId: MODEL, sourceSha256 }, actor),
        ),
      getFace: (org, faceId) => later(() => store.getFace(org, faceId)),
      findFaceBySource: (org, identityId, sha256) =>
        later(() => store.findFaceBySource(org, identityId, sha256)),
      listFaces: (org, identityId) => later(() => store.listFaces(org, identityId)),
      deleteFace: (org, faceId) => later(() => store.deleteFace(org, faceId, actor)),
      audit: (org) => later(() => store.audit(org, { limit: 1000 })),
      changes: (after) => later(() => store.changesSince(after)),
      lastSeq: () => later(() => store.lastSeq()),
      embedding: (label) => later(() => store.embeddingByLabel(label)?.embedding),
      rawEmbedding: (label) =>
        later(
          () =>
            db
              .prepare<[number], { embedding: Buffer }>('SELECT embedding FROM faces WHERE label = ?')
              .get(label)?.embedding ?? Buffer.alloc(0),
        ),
      raw: (sql) =>
        later(() => {
          db.exec(sql)
        }),
    }
  },
  async postgres(t, key) {
    const url = await freshDatabase(t)
    const store = await openPgStore({ url, embeddingKey: key, logger: createMemoryLogger().logger })
    t.after(() => store.close())
    return {
      createIdentity: (org, input) => store.createIdentity(org, input, actor),
      getIdentity: (org, id) => store.getIdentity(org, id),
      listIdentities: (org, options) => store.listIdentities(org, options),
      updateIdentity: (org, id, patch) => store.updateIdentity(org, id, patch, actor),
      deleteIdentity: (org, id) => store.deleteIdentity(org, id, actor),
      addFace: (org, identityId, embedding, sourceSha256) =>
        store.addFace(org, identityId, { embedding, quality: 0.9, modelId: MODEL, sourceSha256 }, actor),
      getFace: (org, faceId) => store.getFace(org, faceId),
      findFaceBySource: (org, identityId, sha256) => store.findFaceBySource(org, identityId, sha256),
      listFaces: (org, identityId) => store.listFaces(org, identityId),
      deleteFace: (org, faceId) => store.deleteFace(org, faceId, actor),
      audit: (org) => store.audit(org, { limit: 1000 }),
      changes: (after) => store.changesSince(after, 1000),
      lastSeq: () => store.lastSeq(),
      embedding: async (label) => (await store.embeddingsByLabels([label]))[0]?.embedding,
      rawEmbedding: async (label) =>
        (await query<{ embedding: Buffer }>(url, 'SELECT embedding FROM faces WHERE label = $1', [label]))[0]
          ?.embedding ?? Buffer.alloc(0),
      raw: async (sql) => {
        await query(url, sql)
      },
    }
  },
}

/** A synchronous call as a promise: what it throws becomes the rejection. */
function later<T>(fn: () => T): Promise<T> {
  return new Promise((resolve) => {
    resolve(fn())
  })
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (error) {
    return error instanceof FacewireError ? error.code : String(error)
  }
  return 'resolved'
}

const faceChanges = (changes: GalleryChange[]): string[] =>
  changes.filter((c) => c.kind !== 'identity').map((c) => `${c.kind}:${String(c.label)}`)

for (const [kind, open] of Object.entries(KINDS)) {
  test(`${kind}: identities are created, read, renamed, paged oldest first and refused a bad page`, async (t) => {
    const store = await open(t, randomBytes(32))
    const made: Identity[] = []
    for (const name of ['Ada', 'Bob', 'Cy']) made.push(await store.createIdentity('acme', { name }))
    const ada = made[0]
    assert.ok(ada !== undefined)
    assert.deepEqual(await store.getIdentity('acme', ada.id), ada)
    assert.equal(ada.faceCount, 0)
    const renamed = await store.updateIdentity('acme', ada.id, { name: 'Ada L.' })
    assert.equal(renamed?.name, 'Ada L.')
    assert.equal(renamed?.createdAt, ada.createdAt)
    const first = await store.listIdentities('acme', { limit: 2 })
    assert.equal(first.items.length, 2)
    assert.ok(first.nextCursor !== undefined)
    const rest = await store.listIdentities('acme', { limit: 2, cursor: first.nextCursor })
    // Oldest first, then by id (identities made in the same millisecond).
    const order = [...made].sort((x, y) =>
      x.createdAt === y.createdAt ? (x.id < y.id ? -1 : 1) : x.createdAt < y.createdAt ? -1 : 1,
    )
    assert.deepEqual(
      [...first.items, ...rest.items].map((i) => i.id),
      order.map((i) => i.id),
    )
    assert.equal(rest.nextCursor, undefined)
    assert.equal(await codeOf(store.listIdentities('acme', { limit: 0 })), 'ERR_REQUEST_INVALID')
    const metadata = { zone: 'lobby', badge: { level: 2, doors: ['a', 'b'] }, active: true }
    const carol = await store.createIdentity('acme', { name: 'Carol', externalId: 'hr-42', metadata })
    const read = await store.getIdentity('acme', carol.id)
    assert.equal(read?.externalId, 'hr-42')
    assert.equal(
      JSON.stringify(read?.metadata),
      JSON.stringify(metadata),
      'metadata as written, key order kept',
    )
    assert.equal(
      await codeOf(store.listIdentities('acme', { limit: 2, cursor: 'nope' })),
      'ERR_REQUEST_INVALID',
    )
  })

  test(`${kind}: an organization never reads, changes or deletes another's identities and faces`, async (t) => {
    const store = await open(t, randomBytes(32))
    const ada = await store.createIdentity('acme', { name: 'Ada' })
    const face = await store.addFace('acme', ada.id, unitVector(1))
    assert.ok(face !== undefined)
    assert.equal(await store.getIdentity('other', ada.id), undefined)
    assert.deepEqual((await store.listIdentities('other', { limit: 10 })).items, [])
    assert.equal(await store.updateIdentity('other', ada.id, { name: 'Eve' }), undefined)
    assert.equal(await store.addFace('other', ada.id, unitVector(2)), undefined)
    assert.deepEqual(await store.listFaces('other', ada.id), [])
    assert.equal(await store.getFace('other', face.id), undefined)
    assert.equal(await store.deleteFace('other', face.id), undefined)
    assert.equal(await store.deleteIdentity('other', ada.id), undefined)
    assert.deepEqual(await store.audit('other'), [])
    assert.equal((await store.getIdentity('acme', ada.id))?.name, 'Ada', 'untouched')
    assert.equal((await store.getFace('acme', face.id))?.id, face.id)
  })

  test(`${kind}: faces are logged in the change log in order, embeddings come back as written and are stored encrypted`, async (t) => {
    const store = await open(t, randomBytes(32))
    const before = await store.lastSeq()
    const ada = await store.createIdentity('acme', { name: 'Ada' })
    const vectors = [unitVector(1), unitVector(2), unitVector(3)]
    const faces: Face[] = []
    for (const vector of vectors) {
      const face = await store.addFace('acme', ada.id, vector)
      assert.ok(face !== undefined)
      faces.push(face)
    }
    const [f1, f2, f3] = faces
    assert.ok(f1 !== undefined && f2 !== undefined && f3 !== undefined)
    assert.ok(f1.label < f2.label && f2.label < f3.label, 'labels grow')
    assert.equal((await store.getIdentity('acme', ada.id))?.faceCount, 3)
    assert.deepEqual(await store.embedding(f2.label), vectors[1])
    const raw = await store.rawEmbedding(f2.label)
    const clear = Buffer.from((vectors[1] ?? new Float32Array()).buffer)
    assert.ok(raw.length > 0 && !raw.includes(clear.subarray(0, 16)), 'the database holds no clear vector')

    assert.ok(await store.deleteFace('acme', f1.id))
    assert.equal(await store.getFace('acme', f1.id), undefined)
    assert.equal(await store.embedding(f1.label), undefined)
    const removed = await store.deleteIdentity('acme', ada.id)
    assert.deepEqual(
      removed?.faces.map((f) => f.id),
      [f2.id, f3.id],
    )
    assert.equal(await store.getFace('acme', f3.id), undefined, 'faces go with their identity')

    const changes = await store.changes(before)
    assert.deepEqual(faceChanges(changes), [
      `add:${String(f1.label)}`,
      `add:${String(f2.label)}`,
      `add:${String(f3.label)}`,
      `delete:${String(f1.label)}`,
      `delete:${String(f2.label)}`,
      `delete:${String(f3.label)}`,
    ])
    const seqs = changes.map((c) => c.seq)
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
    )
    assert.equal(await store.lastSeq(), seqs.at(-1))
    const later = await store.changes(seqs[2] ?? 0)
    assert.equal(later[0]?.seq, seqs[3], 'changesSince starts after the given seq')
  })

  test(`${kind}: a face keeps the sha256 of its photo, found again for its identity and organization only`, async (t) => {
    const store = await open(t, randomBytes(32))
    const ada = await store.createIdentity('acme', { name: 'Ada' })
    const bob = await store.createIdentity('acme', { name: 'Bob' })
    const sha = 'a'.repeat(64)
    const face = await store.addFace('acme', ada.id, unitVector(1), sha)
    const unsourced = await store.addFace('acme', ada.id, unitVector(2))
    assert.equal(face?.sourceSha256, sha)
    assert.equal(unsourced?.sourceSha256, null)
    assert.deepEqual(
      (await store.listFaces('acme', ada.id)).map((f) => f.sourceSha256),
      [sha, null],
    )
    assert.equal((await store.getFace('acme', face?.id ?? ''))?.sourceSha256, sha)
    assert.deepEqual(await store.findFaceBySource('acme', ada.id, sha), face)
    assert.equal(await store.findFaceBySource('acme', ada.id, 'b'.repeat(64)), undefined)
    assert.equal(await store.findFaceBySource('acme', bob.id, sha), undefined, 'another identity')
    assert.equal(await store.findFaceBySource('other', ada.id, sha), undefined, 'another organization')
    const newer = await store.addFace('acme', ada.id, unitVector(3), sha)
    assert.deepEqual(
      await store.findFaceBySource('acme', ada.id, sha),
      newer,
      'the newest face of that photo',
    )
    await store.deleteFace('acme', newer?.id ?? '')
    await store.deleteFace('acme', face?.id ?? '')
    assert.equal(await store.findFaceBySource('acme', ada.id, sha), undefined, 'gone with its faces')
  })

  test(`${kind}: the audit log records every change by id and the database refuses to alter it`, async (t) => {
    const store = await open(t, randomBytes(32))
    const ada = await store.createIdentity('acme', { name: 'Ada' })
    const face = await store.addFace('acme', ada.id, unitVector(1))
    await store.updateIdentity('acme', ada.id, { name: 'Ada L.' })
    await store.deleteFace('acme', face?.id ?? '')
    await store.deleteIdentity('acme', ada.id)
    const entries = await store.audit('acme')
    assert.deepEqual(
      entries.map((e) => e.action),
      ['identity.create', 'face.add', 'identity.update', 'face.delete', 'identity.delete'],
    )
    assert.ok(entries.every((e) => e.actor === actor.sub && e.identityId === ada.id))
    await assert.rejects(store.raw("UPDATE audit SET actor = 'someone else'"), /append-only/)
    await assert.rejects(store.raw('DELETE FROM audit'), /append-only/)
    assert.equal((await store.audit('acme')).length, 5)
  })
}

test('postgres: the audit log refuses TRUNCATE too', async (t) => {
  const store = await KINDS['postgres']?.(t, randomBytes(32))
  await store?.createIdentity('acme', { name: 'Ada' })
  await assert.rejects(store?.raw('TRUNCATE audit') ?? Promise.reject(new Error('no store')), /append-only/)
})

test('postgres: instances starting together migrate the database once', async (t) => {
  const url = await freshDatabase(t)
  const logger = createMemoryLogger()
  const stores = await Promise.all(
    [1, 2, 3].map(() => openPgStore({ url, logger: logger.logger, embeddingKey: randomBytes(32) })),
  )
  t.after(() => Promise.all(stores.map((store) => store.close())))
  const versions = await query<{ version: number }>(
    url,
    'SELECT version FROM facewire_schema ORDER BY version',
  )
  const all = Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1)
  assert.deepEqual(
    versions.map((row) => row.version),
    all,
  )
  assert.deepEqual(
    logger
      .lines()
      .filter((line) => line['msg'] === 'gallery.migrated')
      .map((line) => line['version']),
    all,
    'each version once',
  )
})

/** A TCP relay to the database that a test can cut and restore on the same port. */
async function relay(target: { host: string; port: number }): Promise<{
  port: number
  cut: () => Promise<void>
  restore: () => Promise<void>
}> {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const s = createServer((socket) => {
        const upstream = connect(target.port, target.host)
        sockets.add(socket).add(upstream)
        socket.pipe(upstream).pipe(socket)
        const close = (): void => {
          socket.destroy()
          upstream.destroy()
        }
        socket.on('error', close).on('close', close)
        upstream.on('error', close).on('close', close)
      })
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => {
        server = s
        const address = s.address()
        resolve(typeof address === 'object' && address !== null ? address.port : 0)
      })
    })
  const port = await listen(0)
  return {
    port,
    cut: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy()
        sockets.clear()
        if (server === undefined) resolve()
        else
          server.close(() => {
            resolve()
          })
      }),
    restore: async () => {
      await listen(port)
    },
  }
}

test('postgres: while the database is unreachable a write fails with ERR_STORE_UNAVAILABLE and writes nothing; once back, writes go on', async (t) => {
  const url = await freshDatabase(t)
  const direct = new URL(url)
  const proxy = await relay({ host: direct.hostname, port: Number(direct.port || 5432) })
  const viaProxy = new URL(url)
  viaProxy.port = String(proxy.port)
  const health: (string | undefined)[] = []
  const store = await openPgStore({
    url: viaProxy.toString(),
    logger: createMemoryLogger().logger,
    retryForMs: 800,
    onHealth: (problem) => health.push(problem),
  })
  t.after(async () => {
    await proxy.restore().catch(() => undefined)
    await store.close()
    await proxy.cut()
  })
  await store.createIdentity('acme', { name: 'Before' }, actor)
  await proxy.cut()
  assert.equal(await codeOf(store.createIdentity('acme', { name: 'During' }, actor)), 'ERR_STORE_UNAVAILABLE')
  assert.equal(await codeOf(store.listIdentities('acme', { limit: 10 })), 'ERR_STORE_UNAVAILABLE')
  assert.ok(
    health.some((problem) => problem !== undefined),
    'the outage was reported',
  )
  await proxy.restore()
  await store.createIdentity('acme', { name: 'After' }, actor)
  assert.equal(health.at(-1), undefined, 'recovery was reported')
  const names = await query<{ name: string }>(url, 'SELECT name FROM identities ORDER BY created_at')
  assert.deepEqual(
    names.map((row) => row.name),
    ['Before', 'After'],
  )
})

test('postgres: startup waits for a database that is not answering yet, and gives up with ERR_CONFIG_INVALID', async (t) => {
  const url = await freshDatabase(t)
  const direct = new URL(url)
  const proxy = await relay({ host: direct.hostname, port: Number(direct.port || 5432) })
  const viaProxy = new URL(url)
  viaProxy.port = String(proxy.port)
  await proxy.cut()
  const quick = await codeOf(
    openPgStore({ url: viaProxy.toString(), logger: createMemoryLogger().logger, startupWaitMs: 300 }),
  )
  assert.equal(quick, 'ERR_CONFIG_INVALID', 'not forever')
  const { logger, lines } = createMemoryLogger()
  const opening = openPgStore({ url: viaProxy.toString(), logger, startupWaitMs: 20_000 })
  await new Promise((resolve) => setTimeout(resolve, 500))
  await proxy.restore()
  const store = await opening
  t.after(async () => {
    await store.close()
    await proxy.cut()
  })
  assert.ok(lines().some((line) => line['msg'] === 'database.waiting'))
  assert.ok(!JSON.stringify(lines()).includes(direct.password || 'no-password-set'), 'no secret in the log')
  assert.deepEqual((await store.listIdentities('acme', { limit: 1 })).items, [])
})
