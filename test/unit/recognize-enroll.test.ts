import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { rmSync } from 'node:fs'
import { test, type TestContext } from 'node:test'
import { FacewireError } from '../../server/errors.js'
import { createGallery, type Gallery } from '../../server/gallery/index.js'
import { singleLayout } from '../../server/pipeline/embedding-layout.js'
import type { AnalyzedFace, AnalyzeOptions, Pipeline } from '../../server/pipeline/index.js'
import { enrollFace, pickEnrollFace } from '../../server/recognize.js'
import { createMemoryLogger, tempDataDir } from '../helpers/app.js'

const DIM = 8
const actor = { sub: 'test' }

function face(width: number, quality = 0.9, seed = 1): AnalyzedFace {
  const embedding = Float32Array.from({ length: DIM }, (_, i) => Math.sin(seed + i))
  const norm = Math.hypot(...embedding)
  return {
    box: { x: 10, y: 20, width, height: width },
    score: 0.99,
    landmarks: [{ x: 1, y: 2 }],
    quality: { score: quality, factors: { size: quality }, pose: { roll: 0, yaw: 0, pitch: 0 } },
    embedding: embedding.map((v) => v / norm),
  }
}

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof FacewireError, `expected a FacewireError, got ${String(error)}`)
    return error.code
  }
  assert.fail('expected a catalogue error')
}

/** A pipeline that answers every image with `faces` and records the options it was asked with. */
function fakePipeline(faces: AnalyzedFace[]): { pipeline: Pipeline; calls: AnalyzeOptions[] } {
  const calls: AnalyzeOptions[] = []
  const timings = {
    decodeMs: 0,
    detectMs: 0,
    landmarksMs: 0,
    alignMs: 0,
    embedMs: 0,
    livenessMs: 0,
    totalMs: 0,
    inferenceMs: 0,
  }
  const pipeline: Pipeline = {
    ready: Promise.resolve({ models: [] } as unknown as Awaited<Pipeline['ready']>),
    analyze: (_bytes, options) => {
      calls.push(options)
      return Promise.resolve({ width: 640, height: 480, faces, timings, queueMs: 0 })
    },
    stats: () => ({}) as ReturnType<Pipeline['stats']>,
    capacity: () => 1,
    onCapacity: () => () => undefined,
    close: () => Promise.resolve(),
  }
  return { pipeline, calls }
}

function gallery(t: TestContext, dataDir = tempDataDir(), modelId = 'model-a'): Gallery {
  const opened = createGallery({
    dataDir,
    logger: createMemoryLogger().logger,
    layout: singleLayout(DIM, modelId),
    hnsw: { M: 8, efConstruction: 50, ef: 32 },
    policy: { targetFpir: 0.01, threshold: 0.5, margin: 0.02, topK: 3 },
  })
  t.after(async () => {
    await opened.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return opened
}

test('the largest face is enrolled when every other face is less than 0.6 of its width', () => {
  const main = face(100)
  assert.equal(pickEnrollFace([face(59), main, face(30)], 0.3), main)
})

test('no face, two comparable faces and a low-quality main face are refused with their codes', () => {
  assert.equal(
    codeOf(() => pickEnrollFace([], 0.3)),
    'ERR_FACE_NOT_FOUND',
  )
  assert.equal(
    codeOf(() => pickEnrollFace([face(60), face(100)], 0.3)),
    'ERR_FACE_MULTIPLE',
  )
  assert.equal(
    codeOf(() => pickEnrollFace([face(100, 0.2)], 0.3)),
    'ERR_FACE_LOW_QUALITY',
  )
  assert.throws(
    () => pickEnrollFace([face(60), face(100), face(20)], 0.3),
    (error) => {
      assert.ok(error instanceof FacewireError)
      assert.deepEqual(
        (error.details?.['faces'] as { width: number }[]).map((box) => box.width),
        [100, 60, 20],
        'every face found, largest first',
      )
      return true
    },
  )
})

test('enrollFace analyses up to the configured faces, adds the picked face through the gallery and answers its wire body', async (t) => {
  const faces = gallery(t)
  const ada = await faces.createIdentity('acme', { name: 'Ada' }, actor)
  const main = face(100, 0.87654, 3)
  const { pipeline, calls } = fakePipeline([face(40), main])
  const body = await enrollFace(
    pipeline,
    faces,
    { org: 'acme', identityId: ada.id, actor },
    new Uint8Array(4),
    { maxFaces: 7, minQuality: 0.3 },
  )
  assert.deepEqual(calls, [{ mode: 'all', maxFaces: 7 }])
  assert.ok(body !== undefined && !body.duplicate)
  assert.deepEqual(body.detection, {
    box: { x: 10, y: 20, width: 100, height: 100 },
    landmarks: [{ x: 1, y: 2 }],
    quality: 0.8765,
    factors: { size: 0.87654 },
  })
  assert.equal(body.face.identityId, ada.id)
  assert.equal(body.face.quality, 0.8765)
  assert.equal(body.face.stale, false)
  assert.deepEqual(
    (await faces.listFaces('acme', ada.id))?.map((stored) => stored.id),
    [body.face.id],
  )
  assert.equal(faces.recognize('acme', main.embedding).decision.identity?.id, ada.id)
})

test('enrollFace answers undefined for an identity of another org without running the pipeline, and stores nothing on a refusal', async (t) => {
  const faces = gallery(t)
  const ada = await faces.createIdentity('acme', { name: 'Ada' }, actor)
  const { pipeline, calls } = fakePipeline([face(100)])
  const options = { maxFaces: 10, minQuality: 0.3 }
  const elsewhere = { org: 'other', identityId: ada.id, actor }
  assert.equal(await enrollFace(pipeline, faces, elsewhere, new Uint8Array(4), options), undefined)
  assert.deepEqual(calls, [], 'no pipeline run for an identity that does not exist')

  const ambiguous = fakePipeline([face(100), face(90)]).pipeline
  const target = { org: 'acme', identityId: ada.id, actor }
  await assert.rejects(
    enrollFace(ambiguous, faces, target, new Uint8Array(4), options),
    (error) => error instanceof FacewireError && error.code === 'ERR_FACE_MULTIPLE',
  )
  assert.deepEqual(await faces.listFaces('acme', ada.id), [])
})

test('enrollFace records the sha256 of the bytes, and the same bytes again answer that face as a duplicate without a pipeline run', async (t) => {
  const faces = gallery(t)
  const ada = await faces.createIdentity('acme', { name: 'Ada' }, actor)
  const bob = await faces.createIdentity('acme', { name: 'Bob' }, actor)
  const { pipeline, calls } = fakePipeline([face(100)])
  const options = { maxFaces: 10, minQuality: 0.3 }
  const photo = () => Uint8Array.from([1, 2, 3, 4])
  const sha = createHash('sha256').update(photo()).digest('hex')
  const target = { org: 'acme', identityId: ada.id, actor }

  const first = await enrollFace(pipeline, faces, target, photo(), options)
  assert.ok(first !== undefined && !first.duplicate)
  assert.equal(first.face.sourceSha256, sha)
  const again = await enrollFace(pipeline, faces, target, photo(), options)
  assert.deepEqual(again, { face: first.face, duplicate: true })
  assert.equal(calls.length, 1, 'the duplicate was not analysed')
  assert.equal((await faces.listFaces('acme', ada.id))?.length, 1)

  // Other bytes, or the same bytes for another identity, are new faces.
  const other = await enrollFace(pipeline, faces, target, Uint8Array.from([5, 6, 7]), options)
  assert.equal(other?.duplicate, false)
  const forBob = await enrollFace(pipeline, faces, { ...target, identityId: bob.id }, photo(), options)
  assert.equal(forBob?.duplicate, false)
  assert.equal(forBob.face.sourceSha256, sha)
})

test('a photo whose face is stale (another model) is enrolled again, not answered as a duplicate', async (t) => {
  const dataDir = tempDataDir()
  const before = gallery(t, dataDir, 'model-a')
  const ada = await before.createIdentity('acme', { name: 'Ada' }, actor)
  const { pipeline } = fakePipeline([face(100)])
  const options = { maxFaces: 10, minQuality: 0.3 }
  const target = { org: 'acme', identityId: ada.id, actor }
  const old = await enrollFace(pipeline, before, target, Uint8Array.from([1, 2, 3]), options)
  await before.close()

  const after = gallery(t, dataDir, 'model-b')
  const again = await enrollFace(pipeline, after, target, Uint8Array.from([1, 2, 3]), options)
  assert.equal(again?.duplicate, false)
  assert.notEqual(again.face.id, old?.face.id)
  assert.deepEqual(
    (await after.listFaces('acme', ada.id))?.map((stored) => after.isCurrent(stored)),
    [false, true],
  )
  const third = await enrollFace(pipeline, after, target, Uint8Array.from([1, 2, 3]), options)
  assert.deepEqual(third, { face: again.face, duplicate: true }, 'the current face of that photo')
})

test('the same bytes enrolled while an upload of them was analysed make that upload a duplicate, not a second face', async (t) => {
  const faces = gallery(t)
  const ada = await faces.createIdentity('acme', { name: 'Ada' }, actor)
  const options = { maxFaces: 10, minQuality: 0.3 }
  const target = { org: 'acme', identityId: ada.id, actor }
  const photo = () => Uint8Array.from([1, 2, 3, 4])
  // The first upload's analysis is held until a second upload of the same bytes is enrolled.
  const slow = fakePipeline([face(100)])
  let entered!: () => void
  const analysing = new Promise<void>((resolve) => {
    entered = resolve
  })
  let release!: () => void
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  const heldPipeline: Pipeline = {
    ...slow.pipeline,
    analyze: async (bytes, analyzeOptions) => {
      entered()
      await held
      return slow.pipeline.analyze(bytes, analyzeOptions)
    },
  }
  const first = enrollFace(heldPipeline, faces, target, photo(), options)
  await analysing
  const second = await enrollFace(fakePipeline([face(100)]).pipeline, faces, target, photo(), options)
  assert.equal(second?.duplicate, false)
  release()
  assert.deepEqual(await first, { face: second.face, duplicate: true })
  assert.equal(slow.calls.length, 1, 'the first upload was analysed, then found the face')
  assert.equal((await faces.listFaces('acme', ada.id))?.length, 1)
})
