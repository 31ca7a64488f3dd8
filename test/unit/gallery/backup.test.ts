import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { FacewireError } from '../../../server/errors.js'
import { BACKUP_MANIFEST_FILE } from '../../../server/gallery/backup-manifest.js'
import { createBackup, restoreBackup, type RestoreOptions } from '../../../server/gallery/backup.js'
import { DataToolError, type DataToolErrorCode } from '../../../server/gallery/data-tool-error.js'
import { copySnapshot, createIndexSet } from '../../../server/gallery/hnsw-index.js'
import { createGallery, type Gallery, type GalleryOptions } from '../../../server/gallery/index.js'
import { openStore } from '../../../server/gallery/store.js'
import { createMemoryLogger } from '../../helpers/app.js'
import { testGalleryOptions, unitVector } from '../../helpers/gallery.js'
import { tempDataDir } from '../../helpers/temp-dir.js'

const actor = { sub: 'test' }
const { logger } = createMemoryLogger()

const unit = unitVector

function folder(t: TestContext): string {
  const dir = tempDataDir('facewire-backup-')
  t.after(() => {
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

function galleryOptions(dataDir: string, embeddingKey?: Buffer): GalleryOptions {
  return testGalleryOptions(dataDir, { embeddingKey, logger })
}

/** Each probe's decision as identity id or status, for comparing two galleries. */
function answers(gallery: Gallery, org: string, probes: Float32Array[]): string[] {
  return probes.map((probe) => {
    const { decision } = gallery.recognize(org, probe)
    return decision.identity?.id ?? decision.status
  })
}

async function codeOf(fn: () => unknown): Promise<DataToolErrorCode> {
  try {
    await fn()
  } catch (error) {
    assert.ok(error instanceof DataToolError, `expected a DataToolError, got ${String(error)}`)
    return error.code
  }
  assert.fail('expected a DataToolError')
}

/** A gallery with 12 faces, a snapshot after the first 8 and a delete after it; left open. */
async function seeded(dataDir: string, key?: Buffer): Promise<{ gallery: Gallery; probes: Float32Array[] }> {
  const gallery = createGallery(galleryOptions(dataDir, key))
  const ids: string[] = []
  for (let person = 0; person < 12; person++) {
    const identity = await gallery.createIdentity('acme', { name: `p${String(person)}` }, actor)
    ids.push(identity.id)
    await gallery.addFace('acme', identity.id, { embedding: unit(person), quality: 0.9 }, actor)
    if (person === 7) assert.ok(await gallery.snapshot())
  }
  await gallery.deleteIdentity('acme', ids[3] ?? '', actor)
  return { gallery, probes: Array.from({ length: 12 }, (_, person) => unit(person)) }
}

function restoreOptions(
  backupDir: string,
  dataDir: string,
  overrides: Partial<RestoreOptions> = {},
): RestoreOptions {
  return {
    backupDir,
    dataDir,
    embeddingKey: undefined,
    previousEmbeddingKey: undefined,
    force: false,
    logger,
    ...overrides,
  }
}

test('a backup taken while the gallery is open restores to one that loads its snapshot, replays the newer changes and answers alike', async (t) => {
  const key = randomBytes(32)
  const source = folder(t)
  const { gallery, probes } = await seeded(source, key)
  t.after(async () => {
    await gallery.close()
  })
  const backupDir = join(folder(t), 'backup')
  const manifest = await createBackup({ dataDir: source, backupDir, createdBy: 'facewire test', logger })
  assert.equal(manifest.store.seq, gallery.stats().seq)
  assert.equal(manifest.snapshot?.seq, 8, 'the snapshot written after eight faces')
  assert.equal(manifest.store.faces, 11)
  assert.equal(manifest.store.identities, 11)
  assert.deepEqual(
    manifest.files.map((file) => file.path.replace(/[0-9a-f]{64}\.[0-9a-f]{12}/, 'ORG')),
    ['facewire.db', 'index/ORG.hnsw', 'index/manifest.json'],
  )
  assert.equal(existsSync(join(backupDir, 'facewire.db-wal')), false, 'one self-contained database file')
  for (const name of readdirSync(backupDir, { recursive: true })) {
    const path = join(backupDir, String(name))
    if (!String(name).includes('.')) continue
    const bytes = readFileSync(path)
    for (const secret of [key, Buffer.from(key.toString('base64')), Buffer.from(key.toString('hex'))]) {
      assert.equal(bytes.indexOf(secret), -1, `${String(name)} holds no key`)
    }
  }

  const target = join(folder(t), 'data')
  const restored = restoreBackup(restoreOptions(backupDir, target, { embeddingKey: key }))
  assert.deepEqual(restored.replaced, [])
  assert.deepEqual(readdirSync(target).sort(), ['facewire.db', 'index'], 'no staging folder left behind')
  const { logger: restoredLogger, lines } = createMemoryLogger()
  const copy = createGallery({ ...galleryOptions(target, key), logger: restoredLogger })
  t.after(async () => {
    await copy.close()
  })
  assert.equal(copy.loadedFrom, 'snapshot')
  const loaded = lines().find((line) => line['msg'] === 'gallery.snapshot_loaded')
  assert.equal(loaded?.['replayed'], 5, 'four adds and one delete after the snapshot')
  assert.deepEqual(copy.stats(), { ...gallery.stats(), snapshotSeq: 8 })
  assert.deepEqual(answers(copy, 'acme', probes), answers(gallery, 'acme', probes))
})

test('a restore checks every file first: a damaged backup is refused and the data folder gets nothing', async (t) => {
  const source = folder(t)
  await (await seeded(source)).gallery.close()
  const backupDir = join(folder(t), 'backup')
  const manifest = await createBackup({ dataDir: source, backupDir, createdBy: 'facewire test', logger })
  const db = join(backupDir, 'facewire.db')
  const bytes = readFileSync(db)
  bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff
  writeFileSync(db, bytes)
  const target = join(folder(t), 'data')
  assert.equal(await codeOf(() => restoreBackup(restoreOptions(backupDir, target))), 'ERR_BACKUP_DAMAGED')
  assert.equal(existsSync(target), false)
  assert.equal(manifest.files.length, 3)

  rmSync(join(backupDir, BACKUP_MANIFEST_FILE))
  assert.equal(await codeOf(() => restoreBackup(restoreOptions(backupDir, target))), 'ERR_BACKUP_INVALID')
})

test('a restore refuses a folder in use, or one holding a gallery unless forced; forced, it replaces the gallery only', async (t) => {
  const source = folder(t)
  await (await seeded(source)).gallery.close()
  const backupDir = join(folder(t), 'backup')
  await createBackup({ dataDir: source, backupDir, createdBy: 'facewire test', logger })

  const target = folder(t)
  const other = createGallery(galleryOptions(target))
  const someone = await other.createIdentity('acme', { name: 'someone else' }, actor)
  await other.addFace('acme', someone.id, { embedding: unit(99), quality: 0.9 }, actor)
  writeFileSync(join(target, 'dev-jwt-secret'), 'kept')
  assert.equal(
    await codeOf(() => restoreBackup(restoreOptions(backupDir, target, { force: true }))),
    'ERR_DATA_DIR_IN_USE',
  )
  await other.close()
  assert.equal(await codeOf(() => restoreBackup(restoreOptions(backupDir, target))), 'ERR_DATA_DIR_NOT_EMPTY')

  const restored = restoreBackup(restoreOptions(backupDir, target, { force: true }))
  assert.deepEqual(restored.replaced, ['facewire.db', 'index'])
  assert.equal(readFileSync(join(target, 'dev-jwt-secret'), 'utf8'), 'kept', 'other files are kept')
  const store = openStore({ dataDir: target, logger })
  t.after(() => {
    store.close()
  })
  assert.equal(store.summary().identities, 11, 'the backup, not the gallery it replaced')
})

test('a restore refuses a backup its keys do not decrypt, and takes it with the old key as the previous one', async (t) => {
  const oldKey = randomBytes(32)
  const source = folder(t)
  await (await seeded(source, oldKey)).gallery.close()
  const backupDir = join(folder(t), 'backup')
  await createBackup({ dataDir: source, backupDir, createdBy: 'facewire test', logger })
  const target = join(folder(t), 'data')
  const newKey = randomBytes(32)
  for (const embeddingKey of [newKey, undefined]) {
    assert.throws(
      () => restoreBackup(restoreOptions(backupDir, target, { embeddingKey })),
      (error: unknown) =>
        error instanceof FacewireError &&
        error.code === 'ERR_CONFIG_INVALID' &&
        /the backup was made with another embedding key/.test(error.message),
    )
    assert.deepEqual(readdirSync(target), [], 'nothing was moved into place')
  }
  const restored = restoreBackup(
    restoreOptions(backupDir, target, { embeddingKey: newKey, previousEmbeddingKey: oldKey }),
  )
  assert.equal(restored.embeddingKeys.length, 1)
})

test('a backup needs a gallery and a new or empty folder', async (t) => {
  const source = folder(t)
  assert.equal(
    await codeOf(() =>
      createBackup({ dataDir: source, backupDir: join(source, 'b'), createdBy: 'x', logger }),
    ),
    'ERR_NO_GALLERY',
  )
  await (await seeded(source)).gallery.close()
  const busy = folder(t)
  writeFileSync(join(busy, 'something'), '')
  assert.equal(
    await codeOf(() => createBackup({ dataDir: source, backupDir: busy, createdBy: 'x', logger })),
    'ERR_BACKUP_TARGET_NOT_EMPTY',
  )
})

test('a snapshot copy checks every file it copies, and leaves nothing when the snapshot changed under it', (t) => {
  const from = folder(t)
  const to = join(folder(t), 'copy')
  const set = createIndexSet({ dim: 16, M: 8, efConstruction: 50, ef: 32 })
  set.forOrg('acme').add(1, unit(1))
  set.forOrg('beta').add(2, unit(2))
  set.saveSnapshot(from, 42)
  const copied = copySnapshot(from, to)
  assert.ok(copied.ok)
  assert.equal(copied.seq, 42)
  assert.deepEqual(readdirSync(to).sort(), [...copied.files].sort())
  assert.deepEqual(readFileSync(join(to, 'manifest.json')), readFileSync(join(from, 'manifest.json')))

  const again = join(folder(t), 'again')
  const file = readdirSync(from).find((name) => name.endsWith('.hnsw')) ?? ''
  const bytes = readFileSync(join(from, file))
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff
  writeFileSync(join(from, file), bytes)
  const changed = copySnapshot(from, again)
  assert.equal(changed.ok, false)
  assert.deepEqual(readdirSync(again), [])
  assert.equal(copySnapshot(join(from, 'none'), again).ok, false)
})
