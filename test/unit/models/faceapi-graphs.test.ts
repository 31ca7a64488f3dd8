/**
 * Parity of the synthesized face-api graphs (models/converter/faceapi) with face-api's own nets.
 *
 * Both sides run on @tensorflow/tfjs with the CPU backend: face-api's `face-api.node-wasm.js`
 * build is loaded with its `@tensorflow/tfjs-backend-wasm` import stubbed out (that backend is not
 * installed and not needed), so face-api shares the engine of the project's @tensorflow/tfjs.
 * Inputs are the sample photos shipped in @vladmandic/face-api/demo (real faces).
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import Module, { createRequire } from 'node:module'
import path from 'node:path'
import { before, test } from 'node:test'
import * as tf from '@tensorflow/tfjs'
import {
  buildFaceLandmark68Graph,
  buildFaceRecognitionGraph,
  buildSsdMobilenetv1Graph,
  buildTinyFaceDetectorGraph,
  decodeSsdMobilenetv1,
  decodeTinyFaceDetectorGrid,
  decodeWeights,
  dlibAlignmentBox,
  faceApiPackageDir,
  faceApiRecipes,
  landmarksToImage,
  loadFaceApiWeights,
  parseWeightsManifest,
  toGraphModelArtifacts,
  type TfjsGraph,
  type WeightTensor,
} from '../../../models/converter/faceapi/index.js'
import { readRgb, toSquare, type Box } from '../../helpers/faceapi-tensors.js'

interface FaceApiNet {
  loadFromWeightMap(weightMap: tf.NamedTensorMap): void
}
interface FaceApi {
  nets: {
    faceRecognitionNet: FaceApiNet & { forward(input: tf.Tensor): Promise<tf.Tensor2D> }
    faceLandmark68Net: FaceApiNet & {
      forward(input: tf.Tensor): Promise<tf.Tensor2D>
      detectLandmarks(input: tf.Tensor): Promise<{ positions: { x: number; y: number }[] }>
    }
    ssdMobilenetv1: FaceApiNet & {
      forward(input: tf.Tensor): Promise<{ boxes: tf.Tensor2D[]; scores: tf.Tensor1D[] }>
      locateFaces(
        input: tf.Tensor,
        options: unknown,
      ): Promise<{ score: number; relativeBox: Box; box: Box }[]>
    }
    tinyFaceDetector: FaceApiNet & {
      forward(input: tf.Tensor, inputSize: number): Promise<tf.Tensor4D>
      locateFaces(
        input: tf.Tensor,
        options: unknown,
      ): Promise<{ score: number; relativeBox: Box; box: Box }[]>
    }
  }
  SsdMobilenetv1Options: new (o: { minConfidence: number; maxResults: number }) => unknown
  TinyFaceDetectorOptions: new (o: { inputSize: number; scoreThreshold: number }) => unknown
}

const require = createRequire(import.meta.url)
let faceapi: FaceApi
let packageDir: string
let photo: tf.Tensor3D // sample1.jpg, RGB 0..255 float32
let faces: Box[] // face-api TinyFaceDetector boxes on `photo`, pixels, integer-rounded

function loadFaceApi(): FaceApi {
  const stubId = '\0facewire-stub:@tensorflow/tfjs-backend-wasm'
  const mod = Module as unknown as {
    _resolveFilename: (request: string, ...rest: unknown[]) => string
  }
  const original = mod._resolveFilename
  mod._resolveFilename = function (request: string, ...rest: unknown[]): string {
    if (request === '@tensorflow/tfjs-backend-wasm') return stubId
    return original.call(this, request, ...rest)
  }
  const stub = new Module(stubId)
  stub.loaded = true
  stub.exports = {}
  require.cache[stubId] = stub
  try {
    return require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi
  } finally {
    mod._resolveFilename = original
  }
}

async function faceApiWeightMap(name: string): Promise<tf.NamedTensorMap> {
  const dir = path.join(packageDir, 'model')
  const manifest = JSON.parse(await readFile(path.join(dir, `${name}-weights_manifest.json`), 'utf8')) as {
    paths: string[]
    weights: tf.io.WeightsManifestEntry[]
  }[]
  const map: tf.NamedTensorMap = {}
  for (const group of manifest) {
    const bytes = Buffer.concat(await Promise.all(group.paths.map((p) => readFile(path.join(dir, p)))))
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
    Object.assign(map, tf.io.decodeWeights(buf, group.weights))
  }
  return map
}

async function loadGraph(graph: TfjsGraph): Promise<tf.GraphModel> {
  const a = toGraphModelArtifacts(graph)
  return tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: a.modelTopology,
      weightSpecs: a.weightSpecs,
      weightData: a.weightData,
      format: a.format,
      generatedBy: a.generatedBy,
      convertedBy: a.convertedBy,
    }),
  )
}

function run(model: tf.GraphModel, graph: TfjsGraph, input: tf.Tensor): tf.Tensor {
  return runAll(model, graph, input)[0] as tf.Tensor
}

function runAll(model: tf.GraphModel, graph: TfjsGraph, input: tf.Tensor): tf.Tensor[] {
  const inputName = graph.inputs[0]?.name ?? 'input'
  const out = model.execute(
    { [inputName]: input },
    graph.outputs.map((o) => o.name),
  )
  return Array.isArray(out) ? out : [out]
}

async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  assert.deepEqual(a.shape, b.shape)
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))))
  const v = (await d.data())[0] ?? Number.NaN
  d.dispose()
  return v
}

function crop(img: tf.Tensor3D, b: Box): tf.Tensor3D {
  return tf.slice(img, [b.y, b.x, 0], [b.height, b.width, 3])
}

before(async () => {
  faceapi = loadFaceApi()
  await tf.setBackend('cpu')
  await tf.ready()
  packageDir = faceApiPackageDir()
  faceapi.nets.faceRecognitionNet.loadFromWeightMap(await faceApiWeightMap('face_recognition_model'))
  faceapi.nets.faceLandmark68Net.loadFromWeightMap(await faceApiWeightMap('face_landmark_68_model'))
  faceapi.nets.tinyFaceDetector.loadFromWeightMap(await faceApiWeightMap('tiny_face_detector_model'))
  faceapi.nets.ssdMobilenetv1.loadFromWeightMap(await faceApiWeightMap('ssd_mobilenetv1_model'))
  photo = await readRgb(path.join(packageDir, 'demo', 'sample1.jpg'))
  const found = await faceapi.nets.tinyFaceDetector.locateFaces(
    photo,
    new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 }),
  )
  const [H, W] = photo.shape
  faces = found.map(({ box }) => {
    const x = Math.max(0, Math.round(box.x))
    const y = Math.max(0, Math.round(box.y))
    return {
      x,
      y,
      width: Math.min(W - x, Math.round(box.width)),
      height: Math.min(H - y, Math.round(box.height)),
    }
  })
  assert.ok(faces.length >= 2, `expected faces in sample1.jpg, found ${faces.length}`)
})

interface ScoredBox {
  score: number
  box: { x: number; y: number; width: number; height: number }
}

/** Largest difference in score or box coordinate between our detections and face-api's, in order. */
function worstDetectionDiff(ours: readonly ScoredBox[], theirs: readonly ScoredBox[]): number {
  let worst = 0
  ours.forEach((d, i) => {
    const r = theirs[i]
    assert.ok(r)
    worst = Math.max(
      worst,
      Math.abs(d.score - r.score),
      Math.abs(d.box.x - r.box.x),
      Math.abs(d.box.y - r.box.y),
      Math.abs(d.box.width - r.box.width),
      Math.abs(d.box.height - r.box.height),
    )
  })
  return worst
}

test('the weight-manifest loader decodes uint8-quantized and float32 weights exactly like tfjs io.decodeWeights', async () => {
  for (const name of ['face_recognition_model', 'tiny_face_detector_model', 'ssd_mobilenetv1_model']) {
    const ours = await loadFaceApiWeights(name)
    const theirs = await faceApiWeightMap(name)
    assert.equal(ours.size, Object.keys(theirs).length, name)
    for (const [key, t] of ours) {
      const ref = theirs[key]
      assert.ok(ref, `${name}: ${key}`)
      assert.deepEqual(t.shape, ref.shape, key)
      assert.equal(t.dtype, ref.dtype, key)
      assert.deepEqual(t.data, await ref.data(), key)
    }
    tf.dispose(Object.values(theirs))
  }
})

test('the weight-manifest loader rejects manifests whose shards are too short or malformed', () => {
  const manifest = parseWeightsManifest([
    {
      paths: ['x.bin'],
      weights: [
        { name: 'w', shape: [2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
      ],
    },
  ])
  const weights = manifest[0]?.weights ?? []
  assert.deepEqual(decodeWeights(weights, new Uint8Array([0, 4])).get('w')?.data, new Float32Array([-1, 1]))
  assert.throws(() => decodeWeights(weights, new Uint8Array([1])), /need 2/)
  assert.throws(() => decodeWeights(weights, new Uint8Array([1, 2, 3])), /trailing/)
  assert.throws(() => parseWeightsManifest({}), /array/)
  assert.throws(() =>
    parseWeightsManifest([{ paths: [], weights: [{ name: 'w', shape: [-1], dtype: 'float32' }] }]),
  )
})

test("the synthesized dlib ResNet graph matches face-api's FaceRecognitionNet on the same input", async () => {
  const weights = await loadFaceApiWeights('face_recognition_model')
  const graph = buildFaceRecognitionGraph(weights)
  const model = await loadGraph(graph)
  const batch = tf.tidy(() => tf.concat(faces.slice(0, 3).map((b) => toSquare(crop(photo, b), 150, true))))
  const ours = run(model, graph, batch)
  assert.deepEqual(ours.shape, [batch.shape[0], 128])
  let worst = 0
  for (let i = 0; i < batch.shape[0]; i++) {
    const one = tf.slice(batch, [i, 0, 0, 0], [1, -1, -1, -1])
    const ref = await faceapi.nets.faceRecognitionNet.forward(one)
    const mine = tf.slice(ours, [i, 0], [1, -1])
    worst = Math.max(worst, await maxAbsDiff(mine, ref))
    tf.dispose([one, ref, mine])
  }
  console.log(`faceRecognitionNet max abs diff: ${worst.toExponential(2)} (batch ${batch.shape[0]})`)
  assert.ok(worst < 1e-4, `max abs diff ${worst}`)
  tf.dispose([batch, ours])
  model.dispose()
})

test("the synthesized 68-point landmark graph matches face-api's FaceLandmark68Net, including the mapping back to the crop", async () => {
  const weights = await loadFaceApiWeights('face_landmark_68_model')
  const graph = buildFaceLandmark68Graph(weights)
  const model = await loadGraph(graph)
  let worstRaw = 0
  let worstPx = 0
  for (const box of faces.slice(0, 3)) {
    // Non-square crop (taller than wide) so the centred padding is exercised.
    const b = { ...box, height: Math.min(photo.shape[0] - box.y, Math.round(box.height * 1.2)) }
    const face = crop(photo, b)
    const input = toSquare(face, 112, true)
    const ours = run(model, graph, input)
    const refRaw = await faceapi.nets.faceLandmark68Net.forward(input)
    worstRaw = Math.max(worstRaw, await maxAbsDiff(ours, refRaw))
    const refLm = await faceapi.nets.faceLandmark68Net.detectLandmarks(face)
    const mapped = landmarksToImage(await ours.data(), { x: 0, y: 0, width: b.width, height: b.height })
    refLm.positions.forEach((p, i) => {
      const q = mapped[i]
      assert.ok(q)
      worstPx = Math.max(worstPx, Math.abs(p.x - q.x), Math.abs(p.y - q.y))
    })
    tf.dispose([face, input, ours, refRaw])
  }
  console.log(
    `faceLandmark68Net max abs diff: raw ${worstRaw.toExponential(2)}, mapped ${worstPx.toExponential(2)} px`,
  )
  assert.ok(worstRaw < 1e-5, `raw max abs diff ${worstRaw}`)
  assert.ok(worstPx < 1e-2, `mapped landmark diff ${worstPx}px`)
  model.dispose()
})

test("the synthesized TinyFaceDetector graph and decoder reproduce face-api's grid and face boxes", async () => {
  const weights = await loadFaceApiWeights('tiny_face_detector_model')
  const graph = buildTinyFaceDetectorGraph(weights)
  assert.deepEqual(graph.outputs[0]?.shape, [-1, 13, 13, 25])
  const model = await loadGraph(graph)
  const input = toSquare(photo, 416, false)
  const grid = run(model, graph, input)
  const refGrid = await faceapi.nets.tinyFaceDetector.forward(photo, 416)
  const gridDiff = await maxAbsDiff(grid, refGrid)

  const [H, W] = photo.shape
  const decoded = decodeTinyFaceDetectorGrid(await grid.data(), {
    inputSize: 416,
    imageWidth: W,
    imageHeight: H,
  })
  const ref = await faceapi.nets.tinyFaceDetector.locateFaces(
    photo,
    new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 }),
  )
  assert.equal(decoded.length, ref.length)
  const worstBox = worstDetectionDiff(decoded, ref)
  console.log(
    `tinyFaceDetector max abs diff: grid ${gridDiff.toExponential(2)}, ${decoded.length} boxes ${worstBox.toExponential(2)} px`,
  )
  assert.ok(gridDiff < 1e-3, `grid max abs diff ${gridDiff}`)
  assert.ok(worstBox < 0.05, `box diff ${worstBox}`)
  tf.dispose([input, grid, refGrid])
  model.dispose()
})

test('a TinyFaceDetector graph with dynamic input size runs at 320x320 and matches face-api there', async () => {
  const graph = buildTinyFaceDetectorGraph(await loadFaceApiWeights('tiny_face_detector_model'), {
    inputSize: null,
  })
  assert.deepEqual(graph.inputs[0]?.shape, [-1, -1, -1, 3])
  const model = await loadGraph(graph)
  const input = toSquare(photo, 320, false)
  const grid = run(model, graph, input)
  assert.deepEqual(grid.shape, [1, 10, 10, 25])
  const ref = await faceapi.nets.tinyFaceDetector.forward(photo, 320)
  const diff = await maxAbsDiff(grid, ref)
  assert.ok(diff < 1e-3, `grid max abs diff ${diff}`)
  assert.throws(
    () => buildTinyFaceDetectorGraph(new Map<string, WeightTensor>(), { inputSize: 100 }),
    /multiple of 32/,
  )
  tf.dispose([input, grid, ref])
  model.dispose()
})

test("the synthesized SSD MobileNetV1 graph and decoder reproduce face-api's decoded boxes, scores and detections", async () => {
  const graph = buildSsdMobilenetv1Graph(await loadFaceApiWeights('ssd_mobilenetv1_model'))
  const model = await loadGraph(graph)
  const input = toSquare(photo, 512, false)
  const [boxes, scores] = runAll(model, graph, input)
  assert.ok(boxes && scores)
  assert.deepEqual(boxes.shape, [1, 5118, 4])
  assert.deepEqual(scores.shape, [1, 5118])
  const ref = await faceapi.nets.ssdMobilenetv1.forward(photo)
  const refBoxes = ref.boxes[0]
  const refScores = ref.scores[0]
  assert.ok(refBoxes && refScores)
  const ourBoxes = tf.reshape(boxes, [5118, 4])
  const ourScores = tf.reshape(scores, [5118])
  const boxDiff = await maxAbsDiff(ourBoxes, refBoxes)
  const scoreDiff = await maxAbsDiff(ourScores, refScores)

  const [H, W] = photo.shape
  const decoded = decodeSsdMobilenetv1(await boxes.data(), await scores.data(), {
    imageWidth: W,
    imageHeight: H,
  })
  // A 512x512 SSD forward pass takes ~20 s on the tfjs CPU backend, so face-api's locateFaces runs its
  // own post-processing on the outputs computed above instead of running the network again.
  const net = faceapi.nets.ssdMobilenetv1 as unknown as {
    forwardInput(input: { toBatchTensor(size: number, centre: boolean): tf.Tensor }): unknown
  }
  net.forwardInput = (netInput) => {
    netInput.toBatchTensor(512, false).dispose() // sets netInput.inputSize like the real forwardInput
    return { boxes: [refBoxes.clone()], scores: [refScores.clone()] }
  }
  const refDet = await faceapi.nets.ssdMobilenetv1.locateFaces(
    photo,
    new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 100 }),
  )
  delete (net as { forwardInput?: unknown }).forwardInput
  assert.ok(decoded.length > 0)
  assert.equal(decoded.length, refDet.length)
  const worstBox = worstDetectionDiff(decoded, refDet)
  console.log(
    `ssdMobilenetv1 max abs diff: boxes ${boxDiff.toExponential(2)}, scores ${scoreDiff.toExponential(2)}, ${decoded.length} detections ${worstBox.toExponential(2)} px`,
  )
  assert.ok(boxDiff < 1e-4, `box max abs diff ${boxDiff}`)
  assert.ok(scoreDiff < 1e-4, `score max abs diff ${scoreDiff}`)
  assert.ok(worstBox < 0.05, `detection diff ${worstBox}`)
  tf.dispose([input, boxes, scores, ourBoxes, ourScores, ...ref.boxes, ...ref.scores])
  model.dispose()
})

test('the dlib alignment box helper reproduces face-api landmarks.align with dlib alignment', async () => {
  const box = faces[0]
  assert.ok(box)
  const face = crop(photo, box)
  const lm = await faceapi.nets.faceLandmark68Net.detectLandmarks(face)
  const aligned = (lm as unknown as { align(d: null, o: { useDlibAlignment: boolean }): Box }).align(null, {
    useDlibAlignment: true,
  })
  const ours = dlibAlignmentBox(lm.positions, box.width, box.height)
  assert.deepEqual(
    { x: ours.x, y: ours.y, width: ours.width, height: ours.height },
    { x: aligned.x, y: aligned.y, width: aligned.width, height: aligned.height },
  )
  face.dispose()
})

test('every face-api recipe declares MIT-licensed package files and builds a graph with the declared inputs and outputs', async () => {
  assert.deepEqual(
    faceApiRecipes.map((r) => r.id),
    [
      'faceapi-face-recognition',
      'faceapi-landmark68',
      'faceapi-tiny-face-detector',
      'faceapi-tiny-face-detector-224',
      'faceapi-ssd-mobilenetv1',
    ],
  )
  for (const r of faceApiRecipes) {
    assert.equal(r.license, 'MIT')
    assert.equal(r.source.package, '@vladmandic/face-api')
    for (const f of r.source.files) await readFile(path.join(packageDir, f))
    const { graph, options } = await r.build()
    assert.deepEqual(
      graph.inputs.map((i) => i.name),
      r.inputs.map((i) => i.name),
    )
    assert.deepEqual(
      graph.outputs.map((o) => o.name),
      r.outputs.map((o) => o.name),
    )
    assert.equal(options?.batch, 'dynamic')
    assert.equal(r.preprocessing.scale, 1)
    assert.deepEqual(r.preprocessing.range, [0, 255])
  }
})
