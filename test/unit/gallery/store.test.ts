import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import Database from 'better-sqlite3'
import { FacewireError } from '../../../server/errors.js'
import { embeddingKeyId, parseEmbeddingKey } from '../../../server/gallery/embedding-crypto.js'
import {
  DATABASE_FILE,
  GALLERY_SCHEMA_VERSION,
  isDatabaseInUse,
  openStore,
  type GalleryStore,
  type GalleryStoreOptions,
} from '../../../server/gallery/store.js'
import type { Actor, NewFace, StoredEmbedding } from '../../../server/gallery/types.js'
import { createMemoryLogger } from '../../helpers/app.js'

const alice: Actor = { sub: 'alice' }
const DIM = 128

interface Harness {
  dataDir: string
  dbPath: string
  /** Opens a store on the harness folder; closed after the test. */
  open: (options?: Partial<GalleryStoreOptions>) => {
    store: GalleryStore
    lines: () => Record<string, unknown>[]
  }
  /** A second, raw connection to the same file; closed after the test. */
  raw: () => Database.Database
}

function harness(t: TestContext): Harness {
  const dataDir = mkdtempSync(join(tmpdir(), 'facewire-store-'))
  const dbPath = join(dataDir, DATABASE_FILE)
  const closers: (() => void)[] = []
  t.after(() => {
    for (const close of closers) close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return {
    dataDir,
    dbPath,
    open: (options = {}) => {
      const { logger, lines } = createMemoryLogger()
      const store = openStore({ dataDir, logger, ...options })
      closers.push(() => {
        store.close()
      })
      return { store, lines }
    },
    raw: () => {
      const db = new Database(dbPath)
      closers.push(() => db.close())
      return db
    },
  }
}

/** A distinctive embedding: no two seeds share a float. */
function vector(seed: number, dim = DIM): Float32Array {
  return Float32Array.from({ length: dim }, (_, index) => Math.sin(seed * 7919 + index * 0.37) * 0.5)
}

function newFace(seed: number, modelId = 'arcface@abc', dim = DIM): NewFace {
  return { embedding: vector(seed, dim), quality: 0.8, modelId }
}

function floatBytes(embedding: Float32Array): Buffer {
  return Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength)
}

function codeOfThrown(fn: () => unknown): { code: string; message: string } {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof FacewireError, `expected a FacewireError, got ${String(error)}`)
    return { code: error.code, message: error.message }
  }
  assert.fail('expected a FacewireError')
}

function fileBytes(path: string): Buffer {
  return existsSync(path) ? readFileSync(path) : Buffer.alloc(0)
}

test('creates, reads, updates and deletes an identity with its metadata and face count', (t) => {
  const { open } = harness(t)
  const { store } = open()
  const created = store.createIdentity(
    'acme',
    { name: 'Ada', externalId: 'E-1', metadata: { team: 'x' } },
    alice,
  )
  assert.match(created.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  assert.deepEqual(
    { ...created, id: '', createdAt: '', updatedAt: '' },
    {
      id: '',
      org: 'acme',
      name: 'Ada',
      externalId: 'E-1',
      metadata: { team: 'x' },
      faceCount: 0,
      createdAt: '',
      updatedAt: '',
    },
  )
  assert.equal(created.createdAt, created.updatedAt)
  assert.ok(!Number.isNaN(Date.parse(created.createdAt)))
  assert.deepEqual(store.getIdentity('acme', created.id), created)

  const bare = store.createIdentity('acme', { name: 'Bo' }, alice)
  assert.equal(bare.externalId, null)
  assert.deepEqual(bare.metadata, {})

  const renamed = store.updateIdentity('acme', created.id, { name: 'Ada L.' }, alice)
  assert.equal(renamed?.name, 'Ada L.')
  assert.equal(renamed.externalId, 'E-1', 'fields absent from the patch are kept')
  assert.deepEqual(renamed.metadata, { team: 'x' })
  const cleared = store.updateIdentity('acme', created.id, { externalId: null, metadata: { a: 1 } }, alice)
  assert.equal(cleared?.externalId, null)
  assert.deepEqual(cleared.metadata, { a: 1 }, 'metadata is replaced as a whole')
  assert.equal(cleared.name, 'Ada L.')
  assert.equal(cleared.createdAt, created.createdAt)
  assert.deepEqual(store.getIdentity('acme', created.id), cleared)

  store.addFace('acme', created.id, newFace(1), alice)
  assert.equal(store.getIdentity('acme', created.id)?.faceCount, 1)
  const removed = store.deleteIdentity('acme', created.id, alice)
  assert.equal(removed?.identity.id, created.id)
  assert.equal(removed.identity.faceCount, 1)
  assert.equal(removed.faces.length, 1)
  assert.equal(store.getIdentity('acme', created.id), undefined)
  assert.equal(store.identityName('acme', created.id), undefined)
  assert.equal(store.getFace('acme', removed.faces[0]?.id ?? ''), undefined)
  assert.equal(store.deleteIdentity('acme', created.id, alice), undefined, 'a second delete finds nothing')
  assert.equal(store.updateIdentity('acme', created.id, { name: 'x' }, alice), undefined)
  assert.equal(store.identityName('acme', bare.id), 'Bo')
})

test('adds, lists, reads and deletes faces, keeping the identity face count current', (t) => {
  const { open } = harness(t)
  const { store } = open()
  const ada = store.createIdentity('acme', { name: 'Ada' }, alice)
  const first = store.addFace('acme', ada.id, newFace(1), alice)
  const second = store.addFace('acme', ada.id, { ...newFace(2), quality: 0.25 }, alice)
  assert.ok(first !== undefined && second !== undefined)
  assert.deepEqual(
    { ...first, id: '', label: 0, createdAt: '' },
    {
      id: '',
      identityId: ada.id,
      org: 'acme',
      label: 0,
      quality: 0.8,
      modelId: 'arcface@abc',
      createdAt: '',
      sourceSha256: null,
    },
  )
  assert.ok(second.label > first.label)
  assert.deepEqual(store.getFace('acme', second.id), second)
  assert.deepEqual(store.listFaces('acme', ada.id), [first, second])
  assert.equal(store.getIdentity('acme', ada.id)?.faceCount, 2)
  assert.deepEqual(store.embeddingByLabel(first.label)?.embedding, vector(1))

  assert.deepEqual(store.deleteFace('acme', first.id, alice), first)
  assert.equal(store.deleteFace('acme', first.id, alice), undefined)
  assert.equal(store.getFace('acme', first.id), undefined)
  assert.equal(store.embeddingByLabel(first.label), undefined)
  assert.deepEqual(store.listFaces('acme', ada.id), [second])
  assert.equal(store.getIdentity('acme', ada.id)?.faceCount, 1)
  assert.equal(store.addFace('acme', 'no-such-identity', newFace(3), alice), undefined)
})

test('refuses an empty or non-finite embedding before writing anything', (t) => {
  const { open } = harness(t)
  const { store } = open()
  const ada = store.createIdentity('acme', { name: 'Ada' }, alice)
  const seq = store.lastSeq()
  assert.throws(
    () => store.addFace('acme', ada.id, { ...newFace(1), embedding: new Float32Array(0) }, alice),
    RangeError,
  )
  const poisoned = vector(1)
  poisoned[3] = Number.NaN
  assert.throws(
    () => store.addFace('acme', ada.id, { ...newFace(1), embedding: poisoned }, alice),
    RangeError,
  )
  assert.throws(
    () => store.addFace('acme', ada.id, { ...newFace(1), quality: Number.NaN }, alice),
    RangeError,
  )
  assert.equal(store.lastSeq(), seq)
  assert.deepEqual(store.listFaces('acme', ada.id), [])
})

test('pages through 25 identities 10 at a time: each exactly once, ordered by creation then id', (t) => {
  const { open } = harness(t)
  const { store } = open()
  const created = Array.from({ length: 25 }, (_, index) =>
    store.createIdentity('acme', { name: `person ${index}` }, alice),
  )
  store.createIdentity('other', { name: 'not listed' }, alice)
  const expected = [...created]
    .sort((a, b) =>
      a.createdAt === b.createdAt ? (a.id < b.id ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1,
    )
    .map((identity) => identity.id)

  const pages: string[][] = []
  let cursor: string | undefined
  do {
    const page = store.listIdentities('acme', { limit: 10, cursor })
    pages.push(page.items.map((identity) => identity.id))
    cursor = page.nextCursor
    if (cursor !== undefined) assert.match(cursor, /^[A-Za-z0-9_-]+$/, 'the cursor is base64url')
  } while (cursor !== undefined && pages.length < 10)

  assert.deepEqual(
    pages.map((page) => page.length),
    [10, 10, 5],
  )
  assert.deepEqual(pages.flat(), expected)
  const exact = store.listIdentities('acme', { limit: 25 })
  assert.equal(exact.items.length, 25)
  assert.equal(exact.nextCursor, undefined, 'no cursor when the last page is exactly full')
  assert.deepEqual(store.listIdentities('empty', { limit: 10 }), { items: [] })
})

test('keeps paging correctly when the identity a cursor points at is deleted', (t) => {
  const { open } = harness(t)
  const { store } = open()
  for (let index = 0; index < 5; index++) store.createIdentity('acme', { name: `p${index}` }, alice)
  const first = store.listIdentities('acme', { limit: 2 })
  const lastSeen = first.items.at(-1)
  assert.ok(lastSeen !== undefined && first.nextCursor !== undefined)
  store.deleteIdentity('acme', lastSeen.id, alice)
  const rest = store.listIdentities('acme', { limit: 10, cursor: first.nextCursor })
  assert.equal(rest.items.length, 3)
  assert.equal(rest.nextCursor, undefined)
})

test('refuses a limit outside 1..1000 and a cursor it did not issue with ERR_REQUEST_INVALID', (t) => {
  const { open } = harness(t)
  const { store } = open()
  for (const limit of [0, 1001, 1.5, Number.NaN]) {
    assert.equal(codeOfThrown(() => store.listIdentities('acme', { limit })).code, 'ERR_REQUEST_INVALID')
    assert.equal(codeOfThrown(() => store.audit('acme', { limit })).code, 'ERR_REQUEST_INVALID')
  }
  const forged = [
    'not a cursor!',
    Buffer.from('{"a":1}').toString('base64url'),
    Buffer.from('["x"]').toString('base64url'),
    Buffer.from('[1,2]').toString('base64url'),
  ]
  for (const cursor of forged) {
    assert.equal(
      codeOfThrown(() => store.listIdentities('acme', { limit: 10, cursor })).code,
      'ERR_REQUEST_INVALID',
    )
  }
})

test('treats ids of another organization exactly like missing ids', (t) => {
  const { open } = harness(t)
  const { store } = open()
  const ada = store.createIdentity('org-a', { name: 'Ada' }, alice)
  const face = store.addFace('org-a', ada.id, newFace(1), alice)
  assert.ok(face !== undefined)
  const seq = store.lastSeq()

  assert.equal(store.getIdentity('org-b', ada.id), undefined)
  assert.equal(store.identityName('org-b', ada.id), undefined)
  assert.equal(store.updateIdentity('org-b', ada.id, { name: 'Mallory' }, alice), undefined)
  assert.equal(store.addFace('org-b', ada.id, newFace(2), alice), undefined)
  assert.equal(store.getFace('org-b', face.id), undefined)
  assert.deepEqual(store.listFaces('org-b', ada.id), [])
  assert.equal(store.deleteFace('org-b', face.id, alice), undefined)
  assert.equal(store.deleteIdentity('org-b', ada.id, alice), undefined)
  assert.deepEqual(store.listIdentities('org-b', { limit: 10 }).items, [])
  assert.deepEqual([...store.embeddings('org-b')], [])
  assert.deepEqual(store.audit('org-b', { limit: 10 }), [])

  assert.equal(store.lastSeq(), seq, 'nothing was written')
  assert.equal(store.getIdentity('org-a', ada.id)?.name, 'Ada')
  assert.deepEqual(store.listFaces('org-a', ada.id), [face])
  assert.equal(store.audit('org-a', { limit: 10 }).length, 2)
})

test('never reuses a label, even after the highest face is deleted and the store reopened', (t) => {
  const { open } = harness(t)
  const { store } = open()
  const ada = store.createIdentity('acme', { name: 'Ada' }, alice)
  const labels = [1, 2, 3].map((seed) => store.addFace('acme', ada.id, newFace(seed), alice)?.label ?? 0)
  const highest = Math.max(...labels)
  const top = store.listFaces('acme', ada.id).find((face) => face.label === highest)
  assert.ok(top !== undefined)
  store.deleteFace('acme', top.id, alice)
  assert.ok((store.addFace('acme', ada.id, newFace(4), alice)?.label ?? 0) > highest)
  store.deleteIdentity('acme', ada.id, alice)
  store.close()

  const { store: reopened } = open()
  const bo = reopened.createIdentity('acme', { name: 'Bo' }, alice)
  const next = reopened.addFace('acme', bo.id, newFace(5), alice)
  assert.ok(next !== undefined && next.label > highest + 1)
})

test('logs changes in seq order, with one delete per face when an identity is deleted', (t) => {
  const { open } = harness(t)
  const { store } = open()
  assert.equal(store.lastSeq(), 0)
  assert.deepEqual(store.changesSince(0), [])
  const ada = store.createIdentity('acme', { name: 'Ada' }, alice)
  assert.equal(store.lastSeq(), 0, 'identities alone are not index changes')
  const faces = [1, 2, 3].map((seed) => store.addFace('acme', ada.id, newFace(seed), alice))
  const [f1, f2, f3] = faces
  assert.ok(f1 !== undefined && f2 !== undefined && f3 !== undefined)
  store.deleteFace('acme', f2.id, alice)
  const removed = store.deleteIdentity('acme', ada.id, alice)
  assert.deepEqual(
    removed?.faces.map((face) => face.id),
    [f1.id, f3.id],
  )

  const changes = store.changesSince(0)
  const ref = (kind: 'add' | 'delete', face: typeof f1) => ({
    seq: 0,
    kind,
    org: 'acme',
    label: face.label,
    faceId: face.id,
    identityId: ada.id,
  })
  assert.deepEqual(
    changes.map((change) => ({ ...change, seq: 0 })),
    [ref('add', f1), ref('add', f2), ref('add', f3), ref('delete', f2), ref('delete', f1), ref('delete', f3)],
  )
  const seqs = changes.map((change) => change.seq)
  assert.deepEqual(
    seqs,
    [...seqs].sort((a, b) => a - b),
  )
  assert.equal(new Set(seqs).size, seqs.length)
  assert.equal(store.lastSeq(), seqs.at(-1))
  assert.deepEqual(store.changesSince(seqs[2] ?? 0), changes.slice(3))
  assert.deepEqual(store.changesSince(store.lastSeq()), [])
})

test('writes one audit row per mutation holding ids only: no names, metadata or embeddings', (t) => {
  const { open, raw } = harness(t)
  const { store } = open()
  const secretName = 'Zebulon Quixote'
  const ada = store.createIdentity(
    'acme',
    { name: secretName, externalId: 'EXT-SECRET', metadata: { m: 'META' } },
    alice,
  )
  store.updateIdentity('acme', ada.id, { name: `${secretName} II` }, { sub: 'bob' })
  const face = store.addFace('acme', ada.id, newFace(1), alice)
  assert.ok(face !== undefined)
  store.deleteFace('acme', face.id, alice)
  store.deleteIdentity('acme', ada.id, { sub: 'cli' })
  store.createIdentity('other', { name: 'Other' }, alice)

  const entries = store.audit('acme', { limit: 100 })
  assert.deepEqual(
    entries.map(({ action, actor, identityId, faceId, org }) => ({ action, actor, identityId, faceId, org })),
    [
      { action: 'identity.create', actor: 'alice', identityId: ada.id, faceId: null, org: 'acme' },
      { action: 'identity.update', actor: 'bob', identityId: ada.id, faceId: null, org: 'acme' },
      { action: 'face.add', actor: 'alice', identityId: ada.id, faceId: face.id, org: 'acme' },
      { action: 'face.delete', actor: 'alice', identityId: ada.id, faceId: face.id, org: 'acme' },
      { action: 'identity.delete', actor: 'cli', identityId: ada.id, faceId: null, org: 'acme' },
    ],
  )
  for (const entry of entries) assert.ok(!Number.isNaN(Date.parse(entry.at)))
  const second = entries[1]?.seq ?? 0
  assert.deepEqual(store.audit('acme', { limit: 2, afterSeq: second }), entries.slice(2, 4))

  const db = raw()
  const everything = JSON.stringify(db.prepare('SELECT * FROM audit').all())
  for (const secret of ['Zebulon', 'EXT-SECRET', 'META']) assert.ok(!everything.includes(secret), secret)
  assert.deepEqual(
    db
      .prepare<[], { name: string }>("SELECT name FROM pragma_table_info('audit') ORDER BY cid")
      .all()
      .map((column) => column.name),
    ['seq', 'at', 'org', 'actor', 'action', 'identity_id', 'face_id'],
  )
  assert.throws(() => db.prepare('DELETE FROM audit').run(), /append-only/)
  assert.throws(() => db.prepare("UPDATE audit SET actor = 'x'").run(), /append-only/)
})

test('rolls a mutation back entirely when one of its writes fails', (t) => {
  const { open, raw } = harness(t)
  const { store } = open()
  const ada = store.createIdentity('acme', { name: 'Ada' }, alice)
  raw().exec(`CREATE TRIGGER refuse_face_audit BEFORE INSERT ON audit WHEN NEW.action = 'face.add'
    BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`)
  assert.throws(() => store.addFace('acme', ada.id, newFace(1), alice), /refused by the test/)
  assert.deepEqual(store.listFaces('acme', ada.id), [])
  assert.equal(store.lastSeq(), 0, 'the change row was rolled back with the face')
  assert.deepEqual([...store.faceRefs()], [])
})

test('yields every embedding ordered by label for all orgs or one, and face refs without decrypting', (t) => {
  const { open } = harness(t)
  const { store } = open({ embeddingKey: randomBytes(32) })
  const ada = store.createIdentity('org-a', { name: 'Ada' }, alice)
  const bo = store.createIdentity('org-b', { name: 'Bo' }, alice)
  const added = [
    store.addFace('org-a', ada.id, newFace(1), alice),
    store.addFace('org-b', bo.id, newFace(2, 'old-model'), alice),
    store.addFace('org-a', ada.id, newFace(3), alice),
  ]
  const all = [...store.embeddings()]
  assert.deepEqual(
    all.map((face) => [face.label, face.org, face.faceId, face.identityId, face.modelId]),
    added.map((face) => [face?.label, face?.org, face?.id, face?.identityId, face?.modelId]),
  )
  assert.deepEqual(
    all.map((face) => face.embedding),
    [vector(1), vector(2), vector(3)],
  )
  assert.deepEqual(
    [...store.embeddings('org-a')].map((face) => face.faceId),
    [added[0]?.id, added[2]?.id],
  )
  const iterable = store.embeddings('org-b')
  assert.equal([...iterable].length, 1)
  assert.equal([...iterable].length, 1, 'the iterable can be read again')
  assert.deepEqual(
    [...store.faceRefs()],
    all.map(({ label, faceId, identityId, org, modelId }) => ({ label, faceId, identityId, org, modelId })),
  )
  assert.deepEqual(store.embeddingByLabel(added[1]?.label ?? 0), all[1])
})

test('reads embeddings in batches across more than a thousand faces, leaving the store usable meanwhile', (t) => {
  const { open, raw } = harness(t)
  const { store } = open()
  const ada = store.createIdentity('acme', { name: 'Ada' }, alice)
  const total = 2100
  // Bulk rows through a raw connection (clear format: 0 then float32 LE), far faster than addFace.
  const db = raw()
  const insert = db.prepare(
    `INSERT INTO faces (id, identity_id, org, embedding, quality, model_id, created_at)
     VALUES (?, ?, 'acme', ?, 0.5, 'm', '2024-01-01T00:00:00.000Z')`,
  )
  db.transaction(() => {
    for (let index = 0; index < total; index++) {
      const blob = Buffer.concat([Buffer.of(0), floatBytes(vector(index, 4))])
      insert.run(`face-${String(index).padStart(5, '0')}`, ada.id, blob)
    }
  })()
  let count = 0
  let previous = 0
  for (const face of store.embeddings()) {
    assert.ok(face.label > previous)
    previous = face.label
    assert.deepEqual(face.embedding, vector(count, 4))
    // Another statement while iterating: a single open cursor would make this throw.
    assert.equal(store.identityName('acme', ada.id), 'Ada')
    count++
  }
  assert.equal(count, total)
  assert.equal([...store.faceRefs()].length, total)
})

test('encrypts embeddings with AES-256-GCM: the file holds no clear float bytes and reads come back exact', (t) => {
  const { open, raw, dbPath } = harness(t)
  const key = randomBytes(32)
  const { store } = open({ embeddingKey: key })
  assert.equal(store.encrypted, true)
  const ada = store.createIdentity('acme', { name: 'Ada' }, alice)
  const face = store.addFace('acme', ada.id, newFace(42), alice)
  assert.ok(face !== undefined)
  assert.deepEqual(store.embeddingByLabel(face.label)?.embedding, vector(42))

  const clear = floatBytes(vector(42))
  const row = raw()
    .prepare<[string], { embedding: Buffer }>('SELECT embedding FROM faces WHERE id = ?')
    .get(face.id)
  assert.ok(row !== undefined)
  assert.equal(row.embedding[0], 1, 'format byte 1: AES-256-GCM')
  assert.equal(row.embedding.length, 1 + 12 + 16 + DIM * 4)
  assert.equal(row.embedding.indexOf(clear.subarray(0, 16)), -1)
  store.checkpoint()
  assert.equal(fileBytes(dbPath).indexOf(clear.subarray(0, 16)), -1)
  assert.equal(fileBytes(`${dbPath}-wal`).indexOf(clear.subarray(0, 16)), -1)
})

test('refuses to read an encrypted embedding without the key or with another key, naming FACEWIRE_EMBEDDING_KEY', (t) => {
  const { open } = harness(t)
  const key = randomBytes(32)
  const first = open({ embeddingKey: key }).store
  const ada = first.createIdentity('acme', { name: 'Ada' }, alice)
  const face = first.addFace('acme', ada.id, newFace(7), alice)
  assert.ok(face !== undefined)
  first.close()

  const other = randomBytes(32)
  for (const store of [open({ embeddingKey: other }).store, open().store]) {
    for (const read of [() => store.embeddingByLabel(face.label), () => [...store.embeddings()]]) {
      const error = codeOfThrown(read)
      assert.equal(error.code, 'ERR_CONFIG_INVALID')
      assert.match(error.message, /FACEWIRE_EMBEDDING_KEY/)
      for (const secret of [key, other]) {
        assert.ok(!error.message.includes(secret.toString('hex')))
        assert.ok(!error.message.includes(secret.toString('base64')))
      }
    }
    // What needs no decryption still works, so a person can be forgotten without the key.
    assert.equal(store.getFace('acme', face.id)?.label, face.label)
    assert.equal([...store.faceRefs()].length, 1)
    store.close()
  }
  const { store: again } = open({ embeddingKey: key })
  assert.deepEqual(again.embeddingByLabel(face.label)?.embedding, vector(7))
})

test('does not decrypt an encrypted embedding copied onto another face row', (t) => {
  const { open, raw } = harness(t)
  const { store } = open({ embeddingKey: randomBytes(32) })
  const ada = store.createIdentity('acme', { name: 'Ada' }, alice)
  const source = store.addFace('acme', ada.id, newFace(1), alice)
  const target = store.addFace('acme', ada.id, newFace(2), alice)
  assert.ok(source !== undefined && target !== undefined)
  raw()
    .prepare('UPDATE faces SET embedding = (SELECT embedding FROM faces WHERE id = ?) WHERE id = ?')
    .run(source.id, target.id)
  assert.deepEqual(store.embeddingByLabel(source.label)?.embedding, vector(1))
  const error = codeOfThrown(() => store.embeddingByLabel(target.label))
  assert.equal(error.code, 'ERR_CONFIG_INVALID')
  assert.match(error.message, /FACEWIRE_EMBEDDING_KEY/)
})

test('keeps clear embeddings readable after a key is configured, and encrypts the new ones', (t) => {
  const { open, raw } = harness(t)
  const { store: clearStore, lines } = open()
  assert.equal(clearStore.encrypted, false)
  const ada = clearStore.createIdentity('acme', { name: 'Ada' }, alice)
  const old = clearStore.addFace('acme', ada.id, newFace(1), alice)
  clearStore.close()
  const warnings = lines().filter((line) => String(line.msg).startsWith('gallery.unencrypted'))
  assert.equal(warnings.length, 1)
  assert.equal(warnings[0]?.level, 40)

  const { store, lines: keyedLines } = open({ embeddingKey: randomBytes(32) })
  assert.equal(
    keyedLines().filter((line) => String(line.msg).startsWith('gallery.unencrypted')).length,
    0,
    'no warning once a key is set',
  )
  const fresh = store.addFace('acme', ada.id, newFace(2), alice)
  assert.ok(old !== undefined && fresh !== undefined)
  assert.deepEqual(
    [...store.embeddings()].map((face) => face.embedding),
    [vector(1), vector(2)],
  )
  const formats = raw()
    .prepare<[], { format: string }>(
      'SELECT hex(substr(embedding, 1, 1)) AS format FROM faces ORDER BY label',
    )
    .all()
    .map((row) => row.format)
  assert.deepEqual(formats, ['00', '01'], 'format bytes: the old row clear, the new one AES-256-GCM')
})

test('refuses an embedding key that is not 32 bytes with ERR_CONFIG_INVALID', (t) => {
  const { open } = harness(t)
  for (const length of [0, 16, 31, 33, 64]) {
    const error = codeOfThrown(() => open({ embeddingKey: randomBytes(length) }))
    assert.equal(error.code, 'ERR_CONFIG_INVALID')
    assert.match(error.message, /FACEWIRE_EMBEDDING_KEY/)
  }
})

test('applies WAL, synchronous FULL, foreign keys, secure_delete and a busy timeout to its connection', (t) => {
  const { open, raw } = harness(t)
  const { store } = open()
  assert.deepEqual(store.pragmas(), {
    journalMode: 'wal',
    synchronous: 'full',
    foreignKeys: true,
    secureDelete: true,
    busyTimeoutMs: 5000,
    schemaVersion: GALLERY_SCHEMA_VERSION,
  })
  const db = raw()
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal', 'WAL is recorded in the file')
  assert.equal(db.pragma('user_version', { simple: true }), GALLERY_SCHEMA_VERSION)
  const indexes = db
    .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    .all()
    .map((row) => row.name)
  assert.ok(indexes.includes('identities_by_org_created'))
  assert.ok(indexes.includes('faces_by_org_identity'))
})

test('keeps everything when the same folder is reopened', (t) => {
  const { open } = harness(t)
  const key = randomBytes(32)
  const { store: first } = open({ embeddingKey: key })
  const ada = first.createIdentity('acme', { name: 'Ada', metadata: { k: [1, 2] } }, alice)
  const face = first.addFace('acme', ada.id, newFace(9), alice)
  const before = {
    identity: first.getIdentity('acme', ada.id),
    faces: first.listFaces('acme', ada.id),
    changes: first.changesSince(0),
    audit: first.audit('acme', { limit: 10 }),
    embeddings: [...first.embeddings()],
  }
  first.close()
  first.close()

  const { store: second, lines } = open({ embeddingKey: key })
  assert.deepEqual(
    {
      identity: second.getIdentity('acme', ada.id),
      faces: second.listFaces('acme', ada.id),
      changes: second.changesSince(0),
      audit: second.audit('acme', { limit: 10 }),
      embeddings: [...second.embeddings()],
    },
    before,
  )
  assert.equal(face?.identityId, ada.id)
  assert.equal(
    lines().filter((line) => String(line.msg).startsWith('gallery.migrated')).length,
    0,
    'migrations are applied once',
  )
})

test('refuses a database whose schema version is newer than the code, leaving it untouched', (t) => {
  const { open, dataDir, dbPath } = harness(t)
  const future = new Database(dbPath)
  future.pragma(`user_version = ${GALLERY_SCHEMA_VERSION + 1}`)
  future.close()

  const error = codeOfThrown(() => open())
  assert.equal(error.code, 'ERR_CONFIG_INVALID')
  assert.match(error.message, new RegExp(`schema version ${GALLERY_SCHEMA_VERSION + 1}`))
  assert.match(error.message, /newer/)
  assert.ok(error.message.includes(dataDir))

  const check = new Database(dbPath, { readonly: true })
  t.after(() => check.close())
  assert.equal(check.pragma('user_version', { simple: true }), GALLERY_SCHEMA_VERSION + 1)
  assert.equal(check.pragma('journal_mode', { simple: true }), 'delete', 'not switched to WAL')
  assert.deepEqual(check.prepare('SELECT name FROM sqlite_master').all(), [])
})

test('refuses a data folder or file that cannot hold the database with ERR_CONFIG_INVALID naming FACEWIRE_DATA_DIR', (t) => {
  const { dataDir } = harness(t)
  const { logger } = createMemoryLogger()
  const notAFolder = join(dataDir, 'file')
  writeFileSync(notAFolder, 'x')
  const notSqliteFolder = join(dataDir, 'garbage')
  mkdirSync(notSqliteFolder)
  writeFileSync(join(notSqliteFolder, DATABASE_FILE), randomBytes(8192))
  for (const folder of [notAFolder, notSqliteFolder]) {
    const error = codeOfThrown(() => openStore({ dataDir: folder, logger }))
    assert.equal(error.code, 'ERR_CONFIG_INVALID')
    assert.match(error.message, /FACEWIRE_DATA_DIR/)
  }
})

test('overwrites a deleted face embedding: after checkpoint its bytes are in neither the database nor the -wal file', (t) => {
  // 128 floats fit in a b-tree page; 1024 floats spill onto overflow pages, freed on delete.
  for (const dim of [128, 1024]) {
    const { open, dbPath } = harness(t)
    const { store } = open()
    const ada = store.createIdentity('acme', { name: 'Ada' }, alice)
    for (let seed = 100; seed < 110; seed++) store.addFace('acme', ada.id, newFace(seed, 'm', dim), alice)
    const inMainFile = store.addFace('acme', ada.id, newFace(1, 'm', dim), alice)
    // The whole vector, and its first and last 32 bytes (a vector on overflow pages is split).
    const patterns = (seed: number) => {
      const bytes = floatBytes(vector(seed, dim))
      return [bytes, bytes.subarray(0, 32), bytes.subarray(bytes.length - 32)]
    }
    const foundIn = (path: string, seed: number) =>
      patterns(seed).some((pattern) => fileBytes(path).includes(pattern))
    const found = (seed: number) => foundIn(dbPath, seed) || foundIn(`${dbPath}-wal`, seed)
    // Face 1 is checkpointed into the main file; face 2 still lives only in the WAL when deleted.
    store.checkpoint()
    const onlyInWal = store.addFace('acme', ada.id, newFace(2, 'm', dim), alice)
    assert.ok(inMainFile !== undefined && onlyInWal !== undefined)
    assert.ok(foundIn(dbPath, 1), 'sanity: face 1 is in the main file')
    assert.ok(foundIn(`${dbPath}-wal`, 2), 'sanity: face 2 is in the WAL')

    store.deleteFace('acme', inMainFile.id, alice)
    store.deleteFace('acme', onlyInWal.id, alice)
    store.checkpoint()
    assert.equal(found(1), false, `dim ${dim}: face 1 left no bytes`)
    assert.equal(found(2), false, `dim ${dim}: face 2 left no bytes`)
    assert.equal(found(105), true, `dim ${dim}: sanity: other faces are still stored`)
  }
})

test('forgets an identity: after deleting it and checkpointing, its name and embeddings are gone from the files', (t) => {
  const { open, dbPath } = harness(t)
  const { store } = open()
  const keep = store.createIdentity('acme', { name: 'Keeper' }, alice)
  store.addFace('acme', keep.id, newFace(50), alice)
  const name = 'Forgettable Person 0xC0FFEE'
  const gone = store.createIdentity('acme', { name, externalId: 'EXT-FORGET' }, alice)
  store.addFace('acme', gone.id, newFace(60), alice)
  store.addFace('acme', gone.id, newFace(61), alice)
  store.checkpoint()
  store.deleteIdentity('acme', gone.id, alice)
  store.checkpoint()
  const bytes = Buffer.concat([fileBytes(dbPath), fileBytes(`${dbPath}-wal`)])
  for (const secret of [
    Buffer.from(name),
    Buffer.from('EXT-FORGET'),
    floatBytes(vector(60)),
    floatBytes(vector(61)),
  ]) {
    assert.equal(bytes.includes(secret), false)
  }
  assert.ok(bytes.includes(floatBytes(vector(50))), 'sanity: the kept face is still there')
})

/** Opens a store under `key`, enrolls one face for Ada, and closes it; returns what it read back. */
function seedOneFace(open: Harness['open'], key: Buffer): StoredEmbedding[] {
  const { store } = open({ embeddingKey: key })
  const ada = store.createIdentity('acme', { name: 'Ada' }, alice)
  store.addFace('acme', ada.id, newFace(1), alice)
  const embeddings = [...store.embeddings()]
  store.close()
  return embeddings
}

function keyIdOf(raw: Buffer): string {
  return embeddingKeyId(parseEmbeddingKey(raw) ?? assert.fail('a key'))
}

test('records beside each embedding the id of the key that encrypted it, none for clear rows', (t) => {
  const { open, raw } = harness(t)
  const clearStore = open().store
  const ada = clearStore.createIdentity('acme', { name: 'Ada' }, alice)
  clearStore.addFace('acme', ada.id, newFace(1), alice)
  clearStore.close()
  const key = randomBytes(32)
  const { store } = open({ embeddingKey: key })
  assert.equal(store.currentKeyId, keyIdOf(key))
  store.addFace('acme', ada.id, newFace(2), alice)
  store.addFace('acme', ada.id, newFace(3), alice)
  const rows = raw()
    .prepare<[], { key_id: string | null }>('SELECT key_id FROM faces ORDER BY label')
    .all()
    .map((row) => row.key_id)
  assert.deepEqual(rows, [null, keyIdOf(key), keyIdOf(key)])
  assert.deepEqual(store.keyUsage(), [
    { keyId: null, faces: 1 },
    { keyId: keyIdOf(key), faces: 2 },
  ])
})

test('re-encrypts faces under the current key in batches: the old key alone then opens none, the new one all', (t) => {
  const { open } = harness(t)
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)
  const first = open({ embeddingKey: oldKey }).store
  const ada = first.createIdentity('acme', { name: 'Ada' }, alice)
  for (let seed = 0; seed < 5; seed++) first.addFace('acme', ada.id, newFace(seed), alice)
  const before = [...first.embeddings()]
  const changes = first.changesSince(0)
  first.close()

  const { store } = open({ embeddingKey: newKey, previousEmbeddingKeys: [oldKey] })
  assert.equal(store.reencrypt(keyIdOf(oldKey), 2), 2)
  assert.deepEqual(
    new Map(store.keyUsage().map((usage) => [usage.keyId, usage.faces])),
    new Map([
      [keyIdOf(newKey), 2],
      [keyIdOf(oldKey), 3],
    ]),
  )
  assert.deepEqual([...store.embeddings()], before, 'mid-rotation every face reads with the ring')
  assert.equal(store.reencrypt(keyIdOf(oldKey), 10), 3)
  assert.equal(store.reencrypt(keyIdOf(oldKey), 10), 0)
  assert.throws(() => store.reencrypt(keyIdOf(newKey), 10), RangeError)
  assert.deepEqual(store.keyUsage(), [{ keyId: keyIdOf(newKey), faces: 5 }])
  assert.deepEqual(store.changesSince(0), changes, 'the vectors did not change: no change rows')
  store.close()

  const oldOnly = open({ embeddingKey: oldKey }).store
  for (const face of before) {
    assert.equal(codeOfThrown(() => oldOnly.embeddingByLabel(face.label)).code, 'ERR_CONFIG_INVALID')
  }
  oldOnly.close()
  assert.deepEqual([...open({ embeddingKey: newKey }).store.embeddings()], before)
})

test('checks a key ring against the store: an unrecorded key id or a sample that does not decrypt is refused', (t) => {
  const { open, raw } = harness(t)
  const key = randomBytes(32)
  seedOneFace(open, key)
  assert.deepEqual(open({ embeddingKey: key }).store.checkKeys({ sampleRows: 4 }), [
    { keyId: keyIdOf(key), faces: 1 },
  ])

  for (const store of [open({ embeddingKey: randomBytes(32) }).store, open().store]) {
    const error = codeOfThrown(() => store.checkKeys({ sampleRows: 4 }))
    assert.equal(error.code, 'ERR_CONFIG_INVALID')
    assert.match(
      error.message,
      new RegExp(
        `under key ${keyIdOf(key)}(, which is neither FACEWIRE_EMBEDDING_KEY| but FACEWIRE_EMBEDDING_KEY is not set)`,
      ),
    )
    store.close()
  }
  // A row whose key id is gone (written before key ids were kept): decrypted by trial, and checked.
  raw().exec('UPDATE faces SET key_id = NULL')
  assert.equal(open({ embeddingKey: key }).store.checkKeys({ sampleRows: 4 })[0]?.keyId, null)
  assert.equal(
    codeOfThrown(() => open({ embeddingKey: randomBytes(32) }).store.checkKeys({ sampleRows: 4 })).code,
    'ERR_CONFIG_INVALID',
  )
})

test('migrates a schema 1 database: its faces get no key id, still decrypt, and a rotation records one', (t) => {
  const { open, raw } = harness(t)
  const key = randomBytes(32)
  const before = seedOneFace(open, key)
  const db = raw()
  // What schema 1 had: neither key ids nor photo hashes (MIGRATIONS[1] and [2]).
  db.exec('DROP INDEX faces_by_source; ALTER TABLE faces DROP COLUMN source_sha256')
  db.exec('DROP INDEX faces_by_key; ALTER TABLE faces DROP COLUMN key_id; DROP TABLE store_meta')
  db.pragma('user_version = 1')
  db.close()

  const { store, lines } = open({ embeddingKey: key })
  assert.ok(lines().some((line) => line.msg === 'gallery.migrated' && line.version === 2))
  assert.deepEqual(store.keyUsage(), [{ keyId: null, faces: 1 }])
  assert.deepEqual([...store.embeddings()], before)
  const newKey = randomBytes(32)
  store.close()
  const rotating = open({ embeddingKey: newKey, previousEmbeddingKeys: [key] }).store
  assert.equal(rotating.reencrypt(null, 10), 1)
  assert.deepEqual(rotating.keyUsage(), [{ keyId: keyIdOf(newKey), faces: 1 }])
  assert.deepEqual([...rotating.embeddings()], before)
})

test('migrates a schema 2 database: its faces have no photo sha256, new faces record theirs', (t) => {
  const { open, raw } = harness(t)
  const key = randomBytes(32)
  const before = seedOneFace(open, key)
  const db = raw()
  db.exec('DROP INDEX faces_by_source; ALTER TABLE faces DROP COLUMN source_sha256')
  db.pragma('user_version = 2')
  db.close()

  const { store, lines } = open({ embeddingKey: key })
  assert.ok(lines().some((line) => line.msg === 'gallery.migrated' && line.version === 3))
  const [old] = before
  assert.ok(old !== undefined)
  assert.equal(store.getFace('acme', old.faceId)?.sourceSha256, null)
  assert.deepEqual([...store.embeddings()], before)
  const sha = 'c'.repeat(64)
  const added = store.addFace('acme', old.identityId, { ...newFace(2), sourceSha256: sha }, alice)
  assert.equal(store.findFaceBySource('acme', old.identityId, sha)?.id, added?.id)
})

test('records the key ids a server opened the store with', (t) => {
  const { open } = harness(t)
  const key = randomBytes(32)
  const previous = randomBytes(32)
  const { store } = open({ embeddingKey: key, previousEmbeddingKeys: [previous] })
  assert.equal(store.serverKeys(), undefined)
  store.recordServerKeys()
  const recorded = store.serverKeys()
  assert.equal(recorded?.current, keyIdOf(key))
  assert.deepEqual(recorded?.previous, [keyIdOf(previous)])
  open().store.recordServerKeys()
  assert.equal(store.serverKeys()?.current, null, 'the last record wins')
})

test('tells whether another connection has the database open, without waiting and without a database', (t) => {
  const { dataDir, open } = harness(t)
  assert.equal(isDatabaseInUse(dataDir), false, 'no database yet')
  const { store } = open()
  assert.equal(isDatabaseInUse(dataDir), true)
  store.createIdentity('acme', { name: 'Ada' }, alice)
  store.close()
  assert.equal(isDatabaseInUse(dataDir), false)
  const again = open().store
  assert.equal(again.getIdentity('acme', 'x'), undefined, 'the probe left the database usable')
})
