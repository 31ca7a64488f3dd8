import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { cpSync, existsSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { FacewireError } from '../../../server/errors.js'
import { fitImpostorModel, thresholdFor } from '../../../server/gallery/calibration.js'
import { createGallery } from '../../../server/gallery/index.js'
import { DATABASE_FILE } from '../../../server/gallery/store.js'
import { singleLayout } from '../../../server/pipeline/embedding-layout.js'
import { createMemoryLogger, tempDataDir } from '../../helpers/app.js'
import { testGalleryOptions, unitVector } from '../../helpers/gallery.js'

const actor = { sub: 'test' }

const unit = unitVector

/** `base` nudged by a small amount of noise, renormalised. */
function near(base: Float32Array, seed: number, amount = 0.05): Float32Array {
  const noise = unit(seed, base.length)
  const v = base.map((x, i) => x + amount * (noise[i] ?? 0))
  const norm = Math.hypot(...v)
  return v.map((x) => x / norm)
}

/** A temporary data directory removed when the test ends. */
function dataDirFor(t: TestContext): string {
  const dataDir = tempDataDir()
  t.after(() => {
    rmSync(dataDir, { recursive: true, force: true })
  })
  return dataDir
}

const options = testGalleryOptions

test('faces of another embedder model are kept but never searched, and counted as stale', async (t) => {
  const dataDir = dataDirFor(t)
  const first = createGallery(options(dataDir))
  const ada = await first.createIdentity('acme', { name: 'Ada' }, actor)
  const face = await first.addFace('acme', ada.id, { embedding: unit(1), quality: 0.9 }, actor)
  assert.ok(face !== undefined)
  assert.equal(first.recognize('acme', near(unit(1), 2)).decision.status, 'match')
  await first.close()

  const { logger, lines } = createMemoryLogger()
  const second = createGallery(options(dataDir, { layout: singleLayout(16, 'model-b'), logger }))
  t.after(async () => {
    await second.close()
  })
  assert.equal(second.stats().staleFaces, 1)
  assert.equal(second.stats().indexedFaces, 0)
  assert.equal(second.isCurrent(face), false)
  const after = second.recognize('acme', near(unit(1), 2))
  assert.equal(after.decision.status, 'unknown', 'an embedding of model b is never compared with model a')
  assert.deepEqual(after.candidates, [])
  assert.ok(lines().some((line) => String(line['msg']).startsWith('gallery.stale_faces')))
})

test('changes after the last snapshot are replayed at startup: adds found, deletes gone', async (t) => {
  const dataDir = dataDirFor(t)
  const first = createGallery(options(dataDir))
  const ada = await first.createIdentity('acme', { name: 'Ada' }, actor)
  const bob = await first.createIdentity('acme', { name: 'Bob' }, actor)
  const adaFace = await first.addFace('acme', ada.id, { embedding: unit(1), quality: 0.9 }, actor)
  assert.ok(await first.snapshot(), 'a snapshot is written')
  assert.equal(await first.snapshot(), false, 'nothing changed since')
  const snapshotDir = join(dataDir, 'index')
  const lastSnapshot = `${snapshotDir}.last`
  cpSync(snapshotDir, lastSnapshot, { recursive: true })
  // After the snapshot: Bob is added, Ada's face deleted. Then the process dies: close writes a
  // snapshot, so the one taken above is put back, as if close had never run.
  await first.addFace('acme', bob.id, { embedding: unit(3), quality: 0.9 }, actor)
  await first.deleteFace('acme', adaFace?.id ?? '', actor)
  await first.close()
  rmSync(snapshotDir, { recursive: true })
  renameSync(lastSnapshot, snapshotDir)

  const second = createGallery(options(dataDir))
  t.after(async () => {
    await second.close()
  })
  assert.equal(second.loadedFrom, 'snapshot')
  assert.ok(second.stats().snapshotSeq < second.stats().seq, 'the snapshot is older than the store')
  assert.equal(second.recognize('acme', near(unit(3), 4)).decision.identity?.name, 'Bob')
  assert.equal(second.recognize('acme', near(unit(1), 2)).decision.status, 'unknown')
  assert.equal(second.stats().indexedFaces, 1)
})

test('decisions are per identity with a margin, and an organization policy overrides the default', async (t) => {
  const dataDir = tempDataDir()
  const gallery = createGallery(options(dataDir, { orgPolicies: { strict: { threshold: 0.999 } } }))
  t.after(async () => {
    await gallery.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  for (const org of ['acme', 'strict']) {
    const ada = await gallery.createIdentity(org, { name: 'Ada' }, actor)
    await gallery.addFace(org, ada.id, { embedding: unit(1), quality: 0.9 }, actor)
    await gallery.addFace(org, ada.id, { embedding: near(unit(1), 9, 0.2), quality: 0.5 }, actor)
  }
  const probe = near(unit(1), 2)
  const acme = gallery.recognize('acme', probe)
  assert.equal(acme.decision.status, 'match')
  assert.equal(acme.candidates.length, 1, 'two faces of one identity are one candidate')
  assert.equal(gallery.recognize('strict', probe).decision.status, 'unknown')
  assert.equal(gallery.policyFor('strict').margin, 0.02, 'unset fields keep the default')

  // A look-alike enrolled in acme makes the same probe uncertain.
  const twin = await gallery.createIdentity('acme', { name: 'Twin' }, actor)
  await gallery.addFace('acme', twin.id, { embedding: near(unit(1), 5, 0.01), quality: 0.9 }, actor)
  const ambiguous = gallery.recognize('acme', probe)
  assert.equal(ambiguous.decision.status, 'uncertain')
  assert.ok(ambiguous.decision.margin < 0.02)
  // Deleting an identity removes it from the index at once.
  await gallery.deleteIdentity('acme', twin.id, actor)
  assert.equal(gallery.recognize('acme', probe).decision.status, 'match')
})

test('a fused gallery indexes the first part and ranks by the whole embedding', async (t) => {
  const dataDir = dataDirFor(t)
  const layout = {
    parts: [
      { model: 'a', dim: 16, weight: 0.5 },
      { model: 'b', dim: 16, weight: 0.5 },
    ],
    dim: 32,
    modelId: 'a*0.5+b*0.5',
  }
  const compose = (first: Float32Array, second: Float32Array): Float32Array => {
    const v = new Float32Array(32)
    v.set(first.map((x) => x * Math.SQRT1_2))
    v.set(
      second.map((x) => x * Math.SQRT1_2),
      16,
    )
    return v
  }
  const gallery = createGallery(
    options(dataDir, {
      layout,
      policy: { targetFpir: 0.01, threshold: 0.5, margin: 0, topK: 3 },
    }),
  )
  t.after(async () => {
    await gallery.close()
  })
  const probeFirst = unit(10)
  const probeSecond = unit(11)
  // Ada is nearest by the first model alone; Bob agrees with the probe on both models.
  const ada = await gallery.createIdentity('acme', { name: 'Ada' }, actor)
  const bob = await gallery.createIdentity('acme', { name: 'Bob' }, actor)
  await gallery.addFace(
    'acme',
    ada.id,
    { embedding: compose(near(probeFirst, 1, 0.01), unit(12)), quality: 1 },
    actor,
  )
  await gallery.addFace(
    'acme',
    bob.id,
    { embedding: compose(near(probeFirst, 2, 0.3), near(probeSecond, 3, 0.01)), quality: 1 },
    actor,
  )
  const result = gallery.recognize('acme', compose(probeFirst, probeSecond))
  assert.equal(result.decision.identity?.id, bob.id)
  const [best, second] = result.candidates
  assert.ok(best !== undefined && second !== undefined)
  assert.equal(second.identity.id, ada.id)
  // Scores are the fused cosine: Ada's is about half her first-model cosine (near 1).
  assert.ok(second.similarity > 0.3 && second.similarity < 0.7, `Ada ${second.similarity}`)
  assert.ok(best.similarity > 0.9, `Bob ${best.similarity}`)
  await assert.rejects(gallery.addFace('acme', ada.id, { embedding: unit(4), quality: 1 }, actor), RangeError)
})

test('an identity enrolled from several faces is scored by their mean, not its best face', async (t) => {
  const dataDir = tempDataDir()
  const gallery = createGallery(
    options(dataDir, { policy: { targetFpir: 0.01, threshold: 0.5, margin: 0, topK: 3 } }),
  )
  t.after(async () => {
    await gallery.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const ada = await gallery.createIdentity('acme', { name: 'Ada' }, actor)
  const a = unit(21)
  const b = unit(22)
  await gallery.addFace('acme', ada.id, { embedding: a, quality: 0.9 }, actor)
  await gallery.addFace('acme', ada.id, { embedding: b, quality: 0.9 }, actor)
  const mean = a.map((x, i) => x + (b[i] ?? 0))
  const norm = Math.hypot(...mean)
  const expected = a.reduce((sum, x, i) => sum + x * ((mean[i] ?? 0) / norm), 0)
  const { decision } = gallery.recognize('acme', a)
  assert.ok(Math.abs(decision.similarity - expected) < 1e-3, `${decision.similarity} vs template ${expected}`)
  assert.ok(decision.similarity < 0.999, 'the probe equals one face exactly, but the template is the mean')
  // Deleting a face changes the template at once.
  const faces = await gallery.listFaces('acme', ada.id)
  await gallery.deleteFace('acme', faces?.[1]?.id ?? '', actor)
  assert.ok(gallery.recognize('acme', a).decision.similarity > 0.999)
})

test('thresholds follow the target FPIR and the gallery size, and say what they rest on', async (t) => {
  const dataDir = tempDataDir()
  // A cohort whose impostor scores are spread evenly over [-0.5, 0.5).
  const cohortScores = Array.from({ length: 100_000 }, (_, i) => i / 100_000 - 0.5)
  const cohort = fitImpostorModel(cohortScores)
  const gallery = createGallery(
    options(dataDir, {
      layout: singleLayout(16, 'model-a'),
      policy: { targetFpir: 0.01, margin: 0.02, topK: 3 },
      cohort,
      orgPolicies: { strict: { targetFpir: 0.001 }, pinned: { threshold: 0.77 } },
    }),
  )
  t.after(async () => {
    await gallery.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const empty = gallery.policyFor('acme')
  assert.equal(empty.basis, 'cohort')
  assert.equal(empty.identities, 0)
  assert.ok(Math.abs(empty.threshold - thresholdFor(cohort, 0.01, 1)) < 1e-9)
  for (let i = 0; i < 10; i++) {
    const person = await gallery.createIdentity('acme', { name: `P${String(i)}` }, actor)
    await gallery.addFace('acme', person.id, { embedding: unit(100 + i), quality: 0.9 }, actor)
  }
  const ten = gallery.policyFor('acme')
  assert.equal(ten.identities, 10)
  assert.ok(ten.threshold > empty.threshold, 'ten identities give a stranger ten chances')
  assert.ok(gallery.policyFor('strict').threshold > empty.threshold, 'a stricter target, a higher threshold')
  assert.deepEqual(
    { basis: gallery.policyFor('pinned').basis, threshold: gallery.policyFor('pinned').threshold },
    { basis: 'fixed', threshold: 0.77 },
  )
  const decision = gallery.recognize('acme', unit(100)).decision
  assert.equal(decision.threshold, Math.round(ten.threshold * 1e4) / 1e4, 'a decision says its threshold')

  // Past MIN_CALIBRATION_IDENTITIES the gallery's own impostor scores count too.
  for (let i = 10; i < 40; i++) {
    const person = await gallery.createIdentity('acme', { name: `P${String(i)}` }, actor)
    await gallery.addFace('acme', person.id, { embedding: unit(100 + i), quality: 0.9 }, actor)
  }
  // A recognition never waits for a fit: the refit runs after the current task.
  assert.equal(gallery.policyFor('acme').galleryPairs, 0, 'not fitted on the caller time')
  await new Promise((resolve) => setImmediate(resolve))
  const forty = gallery.policyFor('acme')
  assert.deepEqual(forty, gallery.calibrate('acme'), 'the scheduled refit is what calibrate gives')
  assert.equal(forty.galleryPairs, 40 * 39)
  assert.ok(forty.cohortThreshold !== undefined && forty.galleryThreshold !== undefined)
  assert.equal(
    forty.threshold,
    Math.max(forty.cohortThreshold, forty.galleryThreshold),
    'the higher estimate wins',
  )
  assert.equal(forty.basis, forty.galleryThreshold > forty.cohortThreshold ? 'gallery' : 'cohort')
})

test('deleting a face or an identity leaves none of its embedding in the database file or its WAL', async (t) => {
  const dataDir = tempDataDir()
  // No embedding key: the vectors are stored in clear, so their bytes can be looked for.
  const gallery = createGallery(options(dataDir))
  t.after(async () => {
    await gallery.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const bytesOf = (embedding: Float32Array): Buffer =>
    Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength)
  const files = (): Buffer =>
    Buffer.concat(
      [DATABASE_FILE, `${DATABASE_FILE}-wal`]
        .map((file) => join(dataDir, file))
        .filter((path) => existsSync(path))
        .map((path) => readFileSync(path)),
    )
  const ada = await gallery.createIdentity('acme', { name: 'Ada' }, actor)
  const bob = await gallery.createIdentity('acme', { name: 'Bob' }, actor)
  const [kept, faceOfAda, firstOfBob, secondOfBob] = [unit(31), unit(32), unit(33), unit(34)]
  await gallery.addFace('acme', ada.id, { embedding: kept, quality: 0.9 }, actor)
  const deleted = await gallery.addFace('acme', ada.id, { embedding: faceOfAda, quality: 0.9 }, actor)
  await gallery.addFace('acme', bob.id, { embedding: firstOfBob, quality: 0.9 }, actor)
  await gallery.addFace('acme', bob.id, { embedding: secondOfBob, quality: 0.9 }, actor)
  for (const embedding of [kept, faceOfAda, firstOfBob, secondOfBob]) {
    assert.ok(files().includes(bytesOf(embedding)), 'sanity: an enrolled embedding is in the files')
  }

  assert.ok(await gallery.deleteFace('acme', deleted?.id ?? '', actor))
  assert.equal(files().includes(bytesOf(faceOfAda)), false, 'the deleted face left no bytes')
  assert.ok(await gallery.deleteIdentity('acme', bob.id, actor))
  for (const embedding of [firstOfBob, secondOfBob]) {
    assert.equal(files().includes(bytesOf(embedding)), false, "the deleted identity's faces left no bytes")
  }
  assert.ok(files().includes(bytesOf(kept)), 'sanity: the other face is still stored')
  assert.deepEqual(
    (await gallery.audit('acme', { limit: 100 })).map((entry) => entry.action),
    [
      'identity.create',
      'identity.create',
      'face.add',
      'face.add',
      'face.add',
      'face.add',
      'face.delete',
      'identity.delete',
    ],
  )
})

test('a gallery refuses at startup a store whose faces it cannot decrypt, reads both keys while rotating, and says what is left', async (t) => {
  const dataDir = dataDirFor(t)
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)
  const first = createGallery(options(dataDir, { embeddingKey: oldKey }))
  const ada = await first.createIdentity('acme', { name: 'Ada' }, actor)
  await first.addFace('acme', ada.id, { embedding: unit(1), quality: 0.9 }, actor)
  await first.close()

  for (const embeddingKey of [newKey, undefined]) {
    assert.throws(
      () => createGallery(options(dataDir, { embeddingKey })),
      (error: unknown) => error instanceof FacewireError && error.code === 'ERR_CONFIG_INVALID',
    )
  }
  const { logger, lines } = createMemoryLogger()
  const rotating = createGallery(
    options(dataDir, { embeddingKey: newKey, previousEmbeddingKey: oldKey, logger }),
  )
  t.after(async () => {
    await rotating.close()
  })
  assert.equal(rotating.recognize('acme', near(unit(1), 2)).decision.status, 'match')
  const keys = lines().find((line) => String(line['msg']).startsWith('gallery.keys'))
  assert.match(
    String(keys?.['msg']),
    /1 faces are not encrypted under FACEWIRE_EMBEDDING_KEY yet; run facewire rotate-key/,
  )
  assert.equal(keys?.['pending'], 1)
})
