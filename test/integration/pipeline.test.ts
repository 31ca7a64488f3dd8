import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import sharp from 'sharp'
import { FacewireError } from '../../server/errors.js'
import {
  cosine,
  layoutFromManifest,
  partCosines,
  primaryPart,
} from '../../server/pipeline/embedding-layout.js'
import { createPipeline, DEFAULT_MODELS_DIR, type Pipeline } from '../../server/pipeline/index.js'
import { loadManifest } from '../../server/pipeline/manifest.js'
import { createMemoryLogger } from '../helpers/app.js'
import { codeOf } from '../helpers/errors.js'
import { encode, facesDir, gif1x1, pngWithHeader, seededBytes, texturedScene } from '../helpers/images.js'

const faces = facesDir()
const noFaces = faces === undefined ? 'the shared face photos (../shared/faces) are absent' : false

function startPipeline(workers = 1, modelsDir = DEFAULT_MODELS_DIR): Pipeline {
  const { logger } = createMemoryLogger()
  return createPipeline({
    workers,
    maxQueue: 8,
    taskTimeoutMs: 30_000,
    limits: { maxPixels: 40_000_000, maxSide: 10_000 },
    modelsDir,
    logger,
  })
}

/** The shipped models with `pipeline` changed by `edit`, in a temporary folder of links. */
function modelsWith(edit: (pipeline: Record<string, unknown>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'facewire-models-'))
  const manifest = JSON.parse(readFileSync(join(DEFAULT_MODELS_DIR, 'manifest.json'), 'utf8')) as {
    pipeline: Record<string, unknown>
    models: { file: string }[]
  }
  for (const model of manifest.models)
    symlinkSync(join(DEFAULT_MODELS_DIR, model.file), join(dir, model.file))
  edit(manifest.pipeline)
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest))
  return dir
}

const defaultLayout = async () => layoutFromManifest(await loadManifest(DEFAULT_MODELS_DIR))

test('hostile images each get their error code from the pool, and the pool keeps serving', async (t) => {
  const pipeline = startPipeline()
  t.after(() => pipeline.close())
  await pipeline.ready
  const jpeg = await encode(texturedScene(320, 240), 'jpeg')
  const options = { mode: 'all', maxFaces: 5 } as const
  assert.equal(await codeOf(pipeline.analyze(jpeg.slice(0, jpeg.length >> 1), options)), 'ERR_FRAME_INVALID')
  assert.equal(
    await codeOf(pipeline.analyze(pngWithHeader(30_000, 30_000), options)),
    'ERR_FRAME_TOO_MANY_PIXELS',
  )
  assert.equal(await codeOf(pipeline.analyze(seededBytes(7, 4096), options)), 'ERR_FRAME_UNSUPPORTED')
  assert.equal(await codeOf(pipeline.analyze(gif1x1(), options)), 'ERR_FRAME_UNSUPPORTED')
  const served = await pipeline.analyze(jpeg, options)
  assert.equal(served.width, 320)
  assert.equal(served.height, 240)
  assert.deepEqual(served.faces, [], 'a textured scene has no face')
  assert.equal(pipeline.stats().replaced, 0, 'bad images never crash a worker')
})

test(
  'a photo gives a face with a box, five landmarks, a quality and a unit-length embedding',
  { skip: noFaces },
  async (t) => {
    const pipeline = startPipeline()
    t.after(() => pipeline.close())
    const bytes = await readFile(join(faces ?? '', 'face_recognition-examples/barack_obama/1.jpg'))
    const again = Uint8Array.from(bytes) // analyze transfers its bytes to the worker
    const result = await pipeline.analyze(bytes, { mode: 'all', maxFaces: 5 })
    assert.equal(result.faces.length, 1)
    const [face] = result.faces
    assert.ok(face)
    assert.ok(face.box.width > 100 && face.box.x > 0 && face.box.x + face.box.width <= result.width)
    assert.equal(face.landmarks.length, 5)
    const [leftEye, rightEye, nose] = face.landmarks
    assert.ok(leftEye && rightEye && nose && leftEye.x < rightEye.x && nose.y > leftEye.y)
    assert.ok(face.quality.score > 0.5 && face.quality.score <= 1)
    // The 512 values of the ArcFace-aligned MobileFaceNet, L2-normalised.
    const layout = await defaultLayout()
    assert.equal(face.embedding.length, layout.dim)
    assert.deepEqual(
      layout.parts.map((part) => part.dim),
      [512],
    )
    assert.ok(Math.abs(cosine(face.embedding, face.embedding) - 1) < 1e-5)
    const first = primaryPart(face.embedding, layout)
    assert.ok(Math.abs(cosine(first, first) - (layout.parts[0]?.weight ?? 0)) < 1e-5)
    assert.equal(face.liveness, undefined, 'liveness only when asked for')
    const scored = await pipeline.analyze(again, { mode: 'all', maxFaces: 5, liveness: true })
    const live = scored.faces[0]
    assert.ok(
      live?.liveness !== undefined && live.liveness > 0.5,
      `a real photo is live: ${String(live?.liveness)}`,
    )
    assert.ok(live.eyesOpen !== undefined && live.eyesOpen > 0.5, `eyes open: ${String(live.eyesOpen)}`)
    assert.ok(scored.timings.livenessMs > 0)
    assert.ok(result.timings.inferenceMs > 0 && result.timings.inferenceMs <= result.timings.totalMs)
    for (const stage of ['decodeMs', 'detectMs', 'landmarksMs', 'alignMs', 'embedMs', 'totalMs'] as const) {
      assert.ok(result.timings[stage] >= 0, stage)
    }
  },
)

test(
  'embeddings of different photos differ, and a person is closer to themself than to others',
  { skip: noFaces },
  async (t) => {
    const pipeline = startPipeline(2)
    t.after(() => pipeline.close())
    const root = join(faces ?? '', 'lfw-view1')
    const photos = [
      'Aaron_Peirsol/1.jpg',
      'Aaron_Peirsol/2.jpg',
      'Abdullah_Gul/13.jpg',
      'Abdullah_Gul/14.jpg',
    ]
    const embeddings = await Promise.all(
      photos.map(async (photo) => {
        const result = await pipeline.analyze(await readFile(join(root, photo)), {
          mode: 'main',
          maxFaces: 1,
        })
        assert.equal(result.faces.length, 1, `one face in ${photo}`)
        return result.faces[0]?.embedding ?? new Float32Array()
      }),
    )
    const [a1, a2, g1, g2] = embeddings as [Float32Array, Float32Array, Float32Array, Float32Array]
    // A pipeline feeding black or constant chips would make these all equal.
    assert.ok(cosine(a1, a2) < 0.9999 && cosine(a1, g1) < 0.9999)
    assert.ok(cosine(a1, a2) > cosine(a1, g1), 'Aaron is closer to Aaron than to Abdullah')
    assert.ok(cosine(g1, g2) > cosine(g1, a2), 'Abdullah is closer to Abdullah than to Aaron')
    // Each embedder on its own, too: a second model fed constant crops would not tell them apart.
    const layout = await defaultLayout()
    for (const [index, part] of layout.parts.entries()) {
      const of = (x: Float32Array, y: Float32Array): number => partCosines(x, y, layout)[index] ?? NaN
      assert.ok(of(a1, a2) < 0.9999 && of(a1, g1) < 0.9999, part.model)
      assert.ok(of(a1, a2) > of(a1, g1), `${part.model}: Aaron is closer to Aaron`)
      assert.ok(of(g1, g2) > of(g1, a2), `${part.model}: Abdullah is closer to Abdullah`)
    }
  },
)

test(
  'every face of a group photo is found in `all` mode, and only the main one in `main` mode',
  { skip: noFaces },
  async (t) => {
    const pipeline = startPipeline()
    t.after(() => pipeline.close())
    const bytes = await readFile(join(faces ?? '', 'face_recognition-examples/_multi_face/two_people.jpg'))
    // analyze() takes ownership of a buffer it can transfer: keep a copy for the second call.
    const copy = new Uint8Array(bytes)
    const all = await pipeline.analyze(bytes, { mode: 'all', maxFaces: 5 })
    assert.equal(all.faces.length, 2)
    const { dim } = await defaultLayout()
    assert.ok(all.faces.every((face) => face.embedding.length === dim))
    assert.ok(
      cosine(all.faces[0]?.embedding ?? new Float32Array(), all.faces[1]?.embedding ?? new Float32Array()) <
        0.95,
    )
    const main = await pipeline.analyze(copy, { mode: 'main', maxFaces: 5 })
    assert.equal(main.faces.length, 1)
  },
)

test('a models folder without a manifest fails readiness with ERR_MODEL_INVALID', async (t) => {
  const { logger } = createMemoryLogger()
  const pipeline = createPipeline({
    workers: 1,
    maxQueue: 1,
    taskTimeoutMs: 1000,
    limits: { maxPixels: 1000, maxSide: 100 },
    modelsDir: '/nonexistent-models-dir',
    logger,
  })
  t.after(() => pipeline.close())
  await assert.rejects(
    pipeline.ready,
    (error: unknown) => error instanceof FacewireError && error.code === 'ERR_MODEL_INVALID',
  )
})

test(
  'in main mode a centred face that neither detector finds is recovered from a centred guess, and clutter stays faceless',
  { skip: noFaces },
  async (t) => {
    // Without the 224 px detector (which finds it), a deep-funneled LFW photo on which
    // TinyFaceDetector at 416 px and the SSD find no plausible face.
    const modelsDir = modelsWith((pipeline) => {
      delete pipeline['smallDetector']
    })
    const pipeline = startPipeline(1, modelsDir)
    t.after(async () => {
      await pipeline.close()
      rmSync(modelsDir, { recursive: true, force: true })
    })
    await pipeline.ready
    const bytes = await readFile(join(faces ?? '', 'lfw-view1', 'Arsinee_Khanjian', '1.jpg'))
    const streamed = await pipeline.analyze(new Uint8Array(bytes), { mode: 'all', maxFaces: 5 })
    assert.equal(streamed.faces.length, 0, 'no detector finds it (all mode does not guess)')
    const main = await pipeline.analyze(new Uint8Array(bytes), { mode: 'main', maxFaces: 1 })
    assert.equal(main.faces.length, 1)
    const face = main.faces[0]
    assert.ok(face !== undefined)
    assert.ok(face.score < 0.1, 'reported below any detection score')
    const [leftEye, rightEye] = face.landmarks
    assert.ok(leftEye !== undefined && rightEye !== undefined)
    assert.ok(leftEye.x < rightEye.x && Math.abs(leftEye.y - rightEye.y) < 20, 'eyes level, left of right')
    assert.ok(leftEye.x > 60 && rightEye.x < 190, 'eyes inside the centre of the 250 px photo')

    const clutter = await encode(texturedScene(250, 250, 7), 'jpeg')
    const none = await pipeline.analyze(clutter, { mode: 'main', maxFaces: 1 })
    assert.equal(none.faces.length, 0, 'the plausibility check rejects a guess on clutter')
  },
)

test(
  'a kiosk-like crop (2x the face, 320 px) is found by the small detector and embeds like the full photo',
  { skip: noFaces },
  async (t) => {
    const pipeline = startPipeline()
    t.after(() => pipeline.close())
    const bytes = await readFile(join(faces ?? '', 'face_recognition-examples/kit_harington/1.jpeg'))
    const full = await pipeline.analyze(Uint8Array.from(bytes), { mode: 'main', maxFaces: 1 })
    const face = full.faces[0]
    assert.ok(face !== undefined)
    const side = Math.floor(Math.min(2 * face.box.width, full.width, full.height))
    const left = Math.round(
      Math.min(Math.max(face.box.x + face.box.width / 2 - side / 2, 0), full.width - side),
    )
    const top = Math.round(
      Math.min(Math.max(face.box.y + face.box.height / 2 - side / 2, 0), full.height - side),
    )
    const crop = await sharp(bytes)
      .rotate()
      .extract({ left, top, width: side, height: side })
      .resize(320, 320)
      .jpeg({ quality: 80 })
      .toBuffer()
    const streamed = await pipeline.analyze(new Uint8Array(crop), {
      mode: 'all',
      maxFaces: 5,
      liveness: true,
    })
    assert.equal(streamed.faces.length, 1)
    const found = streamed.faces[0]
    assert.ok(found !== undefined)
    assert.ok(
      found.box.width > 110 && found.box.width < 220,
      `the face is about half the crop: ${String(found.box.width)}`,
    )
    assert.ok(found.score >= 0.5, 'the small detector is sure of it (no retry at 416 px)')
    assert.ok(cosine(found.embedding, face.embedding) > 0.8, 'the same person as in the full photo')
    assert.ok(found.liveness !== undefined && found.liveness > 0.5)
  },
)
