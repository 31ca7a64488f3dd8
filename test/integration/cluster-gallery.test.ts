/**
 * Galleries of several instances on one PostgreSQL database (a fresh one per test): what one
 * writes, the others search after following the change log (LISTEN/NOTIFY, or the catch-up poll);
 * the writer reads its own writes at once; a replayed add never resurrects a face deleted since;
 * renames reach the others; a snapshot written by one is shared, and a new instance joins from it
 * instead of rebuilding.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { followStore } from '../../server/gallery/cluster.js'
import { facade, openGallery, type Gallery, type GalleryOptions } from '../../server/gallery/index.js'
import { openPgStore, type PgGalleryStore } from '../../server/gallery/pg-store.js'
import { createMemoryLogger, tempDataDir } from '../helpers/app.js'
import { testGalleryOptions, unitVector } from '../helpers/gallery.js'
import { freshDatabase, query } from '../helpers/postgres.js'

const actor = { sub: 'test' }

async function instance(
  t: TestContext,
  url: string,
  key: Buffer,
  overrides: Partial<GalleryOptions> = {},
): Promise<Gallery> {
  const dataDir = tempDataDir()
  const gallery = await openGallery(
    testGalleryOptions(dataDir, {
      embeddingKey: key,
      cluster: { databaseUrl: url, pollMs: 200 },
      ...overrides,
    }),
  )
  t.after(async () => {
    await gallery.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return gallery
}

/** Polls `check` every 10 ms until it holds (the follower is asynchronous); the ms it took. */
async function eventually(check: () => boolean, timeoutMs = 5000): Promise<number> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`not converged within ${String(timeoutMs)} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return Date.now() - started
}

const nameOn = (gallery: Gallery, org: string, probe: Float32Array): string | undefined => {
  const { decision } = gallery.recognize(org, probe)
  return decision.status === 'match' ? decision.identity?.name : undefined
}

test('an enrollment on one instance is searchable on the others; deletes and renames follow; the writer reads its own writes at once', async (t) => {
  const url = await freshDatabase(t)
  const key = randomBytes(32)
  const a = await instance(t, url, key)
  const b = await instance(t, url, key)
  const c = await instance(t, url, key)
  assert.equal(a.storeKind, 'postgres')

  const ada = await a.createIdentity('acme', { name: 'Ada' }, actor)
  await a.addFace('acme', ada.id, { embedding: unitVector(1), quality: 0.9 }, actor)
  assert.equal(nameOn(a, 'acme', unitVector(1)), 'Ada', 'read-your-writes on the writer, no wait')
  await eventually(() => nameOn(b, 'acme', unitVector(1)) === 'Ada')
  await eventually(() => nameOn(c, 'acme', unitVector(1)) === 'Ada')
  assert.equal(nameOn(b, 'other', unitVector(1)), undefined, "another org's search never finds her")

  await b.updateIdentity('acme', ada.id, { name: 'Ada L.' }, actor)
  await eventually(() => nameOn(a, 'acme', unitVector(1)) === 'Ada L.')

  await b.deleteIdentity('acme', ada.id, actor)
  assert.equal(nameOn(b, 'acme', unitVector(1)), undefined)
  await eventually(() => nameOn(c, 'acme', unitVector(1)) === undefined)
  await eventually(() => nameOn(a, 'acme', unitVector(1)) === undefined)
  assert.equal(a.stats().indexedFaces, 0)
})

test('a face deleted on the writer is not brought back by the replay of its own earlier add', async (t) => {
  const url = await freshDatabase(t)
  const key = randomBytes(32)
  const a = await instance(t, url, key)
  const bob = await a.createIdentity('acme', { name: 'Bob' }, actor)
  const face = await a.addFace('acme', bob.id, { embedding: unitVector(7), quality: 0.9 }, actor)
  assert.ok(face !== undefined)
  // Deleted before the follower has replayed the add: the replay must not re-index it.
  await a.deleteFace('acme', face.id, actor)
  await a.sync()
  assert.equal(nameOn(a, 'acme', unitVector(7)), undefined)
  assert.equal(a.stats().indexedFaces, 0)
})

test('a listening connection cut by the server is re-established and what was committed meanwhile arrives', async (t) => {
  const url = await freshDatabase(t)
  const key = randomBytes(32)
  const b = await instance(t, url, key)
  const a = await instance(t, url, key)
  // Kill b's listening connection from the server side: it reconnects; the poll covers the gap.
  await query(
    url,
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
  )
  const cy = await a.createIdentity('acme', { name: 'Cy' }, actor)
  await a.addFace('acme', cy.id, { embedding: unitVector(3), quality: 0.9 }, actor)
  await eventually(() => nameOn(b, 'acme', unitVector(3)) === 'Cy')
})

test('a snapshot written by one instance is shared: a new instance joins from it and replays only what came after', async (t) => {
  const url = await freshDatabase(t)
  const key = randomBytes(32)
  const a = await instance(t, url, key)
  const ids: string[] = []
  for (let person = 0; person < 30; person++) {
    const identity = await a.createIdentity('acme', { name: `p${String(person)}` }, actor)
    await a.addFace('acme', identity.id, { embedding: unitVector(100 + person), quality: 0.9 }, actor)
    ids.push(identity.id)
  }
  assert.equal(await a.snapshot(), true)
  const shared = await query<{ seq: string; key_id: string | null }>(
    url,
    'SELECT seq, key_id FROM index_snapshot',
  )
  assert.equal(shared.length, 1)
  assert.ok(shared[0]?.key_id !== null, 'the shared snapshot is encrypted under the embedding key')
  const parts = await query<{ data: Buffer }>(url, 'SELECT data FROM index_snapshot_parts')
  const vector = Buffer.from(unitVector(100).buffer).subarray(0, 16)
  assert.ok(!parts.some((part) => part.data.includes(vector)), 'no clear vector in the shared parts')

  // After the snapshot: one more person, one removed.
  const late = await a.createIdentity('acme', { name: 'late' }, actor)
  await a.addFace('acme', late.id, { embedding: unitVector(500), quality: 0.9 }, actor)
  await a.deleteIdentity('acme', ids[0] ?? '', actor)

  const { logger, lines } = createMemoryLogger()
  const joined = await instance(t, url, key, { logger })
  assert.equal(joined.loadedFrom, 'snapshot')
  assert.ok(lines().some((line) => line['msg'] === 'gallery.snapshot_fetched'))
  assert.equal(nameOn(joined, 'acme', unitVector(105)), 'p5')
  assert.equal(nameOn(joined, 'acme', unitVector(500)), 'late', 'a change after the snapshot was replayed')
  assert.equal(nameOn(joined, 'acme', unitVector(100)), undefined, 'a delete after the snapshot was replayed')
  assert.equal(joined.stats().indexedFaces, 30)
})

/** A gate a store call waits at while it is closed. */
function gate(): { close: () => void; open: () => void; wait: () => Promise<void>; waiting: () => boolean } {
  let closed = false
  let waiters: (() => void)[] = []
  return {
    close: () => {
      closed = true
    },
    open: () => {
      closed = false
      for (const release of waiters) release()
      waiters = []
    },
    wait: () =>
      closed
        ? new Promise((resolve) => {
            waiters.push(resolve)
          })
        : Promise.resolve(),
    waiting: () => waiters.length > 0,
  }
}

test("a face this instance deletes while its follower is replaying the face's add is not brought back by that replay", async (t) => {
  const url = await freshDatabase(t)
  const key = randomBytes(32)
  const writer = await instance(t, url, key)

  // The follower under test, on a real store whose change reads and name reads can be held.
  const atChanges = gate()
  const atNames = gate()
  const options = testGalleryOptions(tempDataDir(), {
    embeddingKey: key,
    cluster: { databaseUrl: url, pollMs: 50 },
  })
  const store = await openPgStore({ url, embeddingKey: key, logger: options.logger })
  const held: PgGalleryStore = {
    ...store,
    changesSince: async (after, limit) => {
      await atChanges.wait()
      return store.changesSince(after, limit)
    },
    namesOf: async (ids) => {
      await atNames.wait()
      return store.namesOf(ids)
    },
  }
  const cluster = options.cluster ?? assert.fail('cluster options')
  const follower = facade(options, await followStore(options, cluster, held, join(options.dataDir, 'index')))
  t.after(async () => {
    atChanges.open()
    atNames.open()
    await follower.close()
    rmSync(options.dataDir, { recursive: true, force: true })
  })

  // 1. The follower waits before reading the log; the writer enrolls Eve meanwhile.
  atChanges.close()
  await eventually(() => atChanges.waiting())
  const eve = await writer.createIdentity('acme', { name: 'Eve' }, actor)
  const face = await writer.addFace('acme', eve.id, { embedding: unitVector(42), quality: 0.9 }, actor)
  assert.ok(face !== undefined)
  // 2. It reads both changes in one batch, fetches Eve's embedding, then waits for her name.
  atNames.close()
  atChanges.open()
  await eventually(() => atNames.waiting())
  // 3. This instance deletes the face now: after the fetch, before the replay of its add.
  atChanges.close()
  assert.ok(await follower.deleteFace('acme', face.id, actor))
  // 4. The batch is applied; the follower stops again before the next one (the log's delete).
  atNames.open()
  await eventually(() => atChanges.waiting())
  assert.equal(
    nameOn(follower, 'acme', unitVector(42)),
    undefined,
    'the replayed add did not resurrect the face',
  )
  assert.equal(follower.stats().indexedFaces, 0)
  atChanges.open()
  await follower.sync()
  assert.equal(nameOn(follower, 'acme', unitVector(42)), undefined)
})
