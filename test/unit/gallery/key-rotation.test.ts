import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { test, type TestContext } from 'node:test'
import { FacewireError } from '../../../server/errors.js'
import { DataToolError } from '../../../server/gallery/data-tool-error.js'
import { embeddingKeyId, parseEmbeddingKey } from '../../../server/gallery/embedding-crypto.js'
import { createGallery, type GalleryOptions } from '../../../server/gallery/index.js'
import { rotateEmbeddingKey, type RotationProgress } from '../../../server/gallery/key-rotation.js'
import { openStore } from '../../../server/gallery/store.js'
import { createMemoryLogger } from '../../helpers/app.js'
import { testGalleryOptions, unitVector } from '../../helpers/gallery.js'
import { tempDataDir } from '../../helpers/temp-dir.js'

const actor = { sub: 'test' }
const { logger } = createMemoryLogger()

const unit = unitVector

function keyIdOf(raw: Buffer): string {
  return embeddingKeyId(parseEmbeddingKey(raw) ?? assert.fail('a key'))
}

function options(dataDir: string, overrides: Partial<GalleryOptions> = {}): GalleryOptions {
  return testGalleryOptions(dataDir, { logger, ...overrides })
}

/** A data folder with `faces` faces (one identity each) under `key`; the gallery closed. */
async function seeded(
  t: TestContext,
  key: Buffer | undefined,
  faces: number,
): Promise<{ dataDir: string; ids: string[] }> {
  const dataDir = tempDataDir('facewire-rotation-')
  t.after(() => {
    rmSync(dataDir, { recursive: true, force: true })
  })
  const gallery = createGallery(options(dataDir, { embeddingKey: key }))
  const ids: string[] = []
  for (let person = 0; person < faces; person++) {
    const identity = await gallery.createIdentity('acme', { name: `p${String(person)}` }, actor)
    await gallery.addFace('acme', identity.id, { embedding: unit(person), quality: 0.9 }, actor)
    ids.push(identity.id)
  }
  await gallery.close()
  return { dataDir, ids }
}

test('moves every face to the new key in batches, reporting each, and a second run finds nothing to do', async (t) => {
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)
  const { dataDir } = await seeded(t, oldKey, 10)
  const progress: RotationProgress[] = []
  const report = await rotateEmbeddingKey({
    dataDir,
    newKey,
    oldKeys: [oldKey],
    batchRows: 4,
    pauseMs: 0,
    logger,
    onProgress: (step) => progress.push(step),
  })
  assert.deepEqual(progress, [
    { reencrypted: 4, total: 10 },
    { reencrypted: 8, total: 10 },
    { reencrypted: 10, total: 10 },
  ])
  assert.deepEqual(report, {
    keyId: keyIdOf(newKey),
    serverRunning: false,
    reencrypted: 10,
    embeddingKeys: [{ keyId: keyIdOf(newKey), faces: 10 }],
    complete: true,
  })
  const again = await rotateEmbeddingKey({ dataDir, newKey, oldKeys: [oldKey], logger })
  assert.equal(again.reencrypted, 0)
  assert.equal(again.complete, true)

  const oldOnly = openStore({ dataDir, embeddingKey: oldKey, logger })
  assert.throws(() => [...oldOnly.embeddings()], /FACEWIRE_EMBEDDING_KEY/)
  oldOnly.close()
  const gallery = createGallery(options(dataDir, { embeddingKey: newKey }))
  t.after(async () => {
    await gallery.close()
  })
  assert.equal(gallery.recognize('acme', unit(3)).decision.status, 'match')
})

test('encrypts a gallery stored in clear', async (t) => {
  const { dataDir } = await seeded(t, undefined, 3)
  const newKey = randomBytes(32)
  const report = await rotateEmbeddingKey({ dataDir, newKey, oldKeys: [], pauseMs: 0, logger })
  assert.deepEqual(report.embeddingKeys, [{ keyId: keyIdOf(newKey), faces: 3 }])
  const clear = openStore({ dataDir, logger })
  t.after(() => {
    clear.close()
  })
  assert.throws(() => [...clear.embeddings()], /FACEWIRE_EMBEDDING_KEY is not set/)
})

test('with a server serving, refuses unless it writes under the new key, then rotates while it keeps answering', async (t) => {
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)
  const { dataDir, ids } = await seeded(t, oldKey, 6)
  const stale = createGallery(options(dataDir, { embeddingKey: oldKey }))
  await assert.rejects(
    rotateEmbeddingKey({ dataDir, newKey, oldKeys: [oldKey], logger }),
    (error: unknown) =>
      error instanceof DataToolError &&
      error.code === 'ERR_ROTATION_SERVER_KEY' &&
      error.message.includes(`writes under key ${keyIdOf(oldKey)}`),
  )
  await stale.close()
  const store = openStore({ dataDir, embeddingKey: oldKey, logger })
  assert.deepEqual(store.keyUsage(), [{ keyId: keyIdOf(oldKey), faces: 6 }], 'nothing was written')
  store.close()

  const serving = createGallery(options(dataDir, { embeddingKey: newKey, previousEmbeddingKey: oldKey }))
  t.after(async () => {
    await serving.close()
  })
  const answered: string[] = []
  const report = await rotateEmbeddingKey({
    dataDir,
    newKey,
    oldKeys: [oldKey],
    batchRows: 1,
    pauseMs: 0,
    logger,
    // Between two transactions the server recognizes the face of a person not asked about before.
    onProgress: ({ reencrypted }) => {
      answered.push(serving.recognize('acme', unit(reencrypted - 1)).decision.identity?.id ?? 'none')
    },
  })
  assert.equal(report.serverRunning, true)
  assert.equal(report.complete, true)
  assert.deepEqual(answered, ids)
})

test('a face that none of the keys decrypts stops the rotation, naming its key; what was moved stays moved', async (t) => {
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)
  const { dataDir } = await seeded(t, oldKey, 3)
  await assert.rejects(
    rotateEmbeddingKey({ dataDir, newKey, oldKeys: [randomBytes(32)], pauseMs: 0, logger }),
    (error: unknown) =>
      error instanceof FacewireError &&
      error.code === 'ERR_CONFIG_INVALID' &&
      error.message.includes(`under key ${keyIdOf(oldKey)}`),
  )
  const store = openStore({ dataDir, embeddingKey: newKey, previousEmbeddingKeys: [oldKey], logger })
  t.after(() => {
    store.close()
  })
  assert.deepEqual(store.keyUsage(), [{ keyId: keyIdOf(oldKey), faces: 3 }])
})
