/**
 * The face-api recipes converted to ONNX (models/converter convertGraph) and run with
 * onnxruntime-node agree with the synthesized TFJS graphs run with @tensorflow/tfjs (CPU), and
 * the three converted models chain into a working detect -> landmarks -> align -> describe pipeline.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { before, test } from 'node:test'
import * as tf from '@tensorflow/tfjs'
import * as ort from 'onnxruntime-node'
import { convertGraph } from '../../../models/converter/convert.js'
import {
  buildTinyFaceDetectorGraph,
  decodeTinyFaceDetectorGrid,
  dlibAlignmentBox,
  faceApiPackageDir,
  faceApiRecipes,
  landmarksToImage,
  loadFaceApiWeights,
  toGraphModelArtifacts,
  type FaceApiRecipe,
  type TfjsGraph,
} from '../../../models/converter/faceapi/index.js'
import { readRgb, toSquare, type Box } from '../../helpers/faceapi-tensors.js'

let photo: tf.Tensor3D
const sessions = new Map<string, ort.InferenceSession>()

function clipCrop(img: tf.Tensor3D, b: Box): { tensor: tf.Tensor3D; rect: Box } {
  const [H, W] = img.shape
  const x = Math.max(0, Math.round(b.x))
  const y = Math.max(0, Math.round(b.y))
  const rect = {
    x,
    y,
    width: Math.min(W - x, Math.round(b.width)),
    height: Math.min(H - y, Math.round(b.height)),
  }
  return { tensor: tf.slice(img, [rect.y, rect.x, 0], [rect.height, rect.width, 3]), rect }
}

async function session(id: string, graph: TfjsGraph, options?: Parameters<typeof convertGraph>[1]) {
  let s = sessions.get(id)
  if (!s) {
    s = await ort.InferenceSession.create(convertGraph(graph, options), { intraOpNumThreads: 1 })
    sessions.set(id, s)
  }
  return s
}

async function runOnnx(
  s: ort.InferenceSession,
  input: tf.Tensor4D,
  outputs: string[],
): Promise<ort.Tensor[]> {
  const feed = { [s.inputNames[0] ?? 'input']: new ort.Tensor('float32', await input.data(), input.shape) }
  const res = await s.run(feed)
  return outputs.map((o) => {
    const t = res[o]
    assert.ok(t, `missing ONNX output ${o}`)
    return t
  })
}

async function runTfjs(graph: TfjsGraph, input: tf.Tensor4D): Promise<tf.Tensor[]> {
  const a = toGraphModelArtifacts(graph)
  const model = await tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: a.modelTopology,
      weightSpecs: a.weightSpecs,
      weightData: a.weightData,
    }),
  )
  const out = model.execute(
    { [graph.inputs[0]?.name ?? 'input']: input },
    graph.outputs.map((o) => o.name),
  )
  model.dispose()
  return Array.isArray(out) ? out : [out]
}

function recipe(id: string): FaceApiRecipe {
  const r = faceApiRecipes.find((x) => x.id === id)
  assert.ok(r, id)
  return r
}

async function describeParity(r: FaceApiRecipe, input: tf.Tensor4D): Promise<string> {
  const { graph, options } = await r.build()
  const s = await session(r.id, graph, options)
  const names = r.outputs.map((o) => o.name)
  const ours = await runOnnx(s, input, names)
  const ref = await runTfjs(graph, input)
  const parts: string[] = []
  for (let i = 0; i < names.length; i++) {
    const a = ours[i]?.data as Float32Array
    const b = (await ref[i]?.data()) as Float32Array
    assert.deepEqual(ours[i]?.dims, ref[i]?.shape)
    let diff = 0
    let scale = 0
    for (let k = 0; k < b.length; k++) {
      diff = Math.max(diff, Math.abs((a[k] ?? Number.NaN) - (b[k] ?? 0)))
      scale = Math.max(scale, Math.abs(b[k] ?? 0))
    }
    assert.ok(diff <= 1e-4 * Math.max(1, scale), `${r.id}/${names[i]}: max abs diff ${diff} (scale ${scale})`)
    parts.push(`${names[i]} ${diff.toExponential(2)} (scale ${scale.toFixed(2)})`)
  }
  tf.dispose(ref)
  return parts.join(', ')
}

before(async () => {
  await tf.setBackend('cpu')
  await tf.ready()
  photo = await readRgb(path.join(faceApiPackageDir(), 'demo', 'sample1.jpg'))
})

test('the converted TinyFaceDetector, landmark and face recognition models give the same outputs in onnxruntime as their TFJS graphs on real faces', async () => {
  const det = recipe('faceapi-tiny-face-detector')
  const detInput = toSquare(photo, 416, false)
  console.log(`tiny face detector ONNX vs TFJS: ${await describeParity(det, detInput)}`)

  const { graph } = await det.build()
  const grid = (await runOnnx(await session(det.id, graph), detInput, ['grid']))[0]
  const [H, W] = photo.shape
  const faces = decodeTinyFaceDetectorGrid(grid?.data as Float32Array, {
    inputSize: 416,
    imageWidth: W,
    imageHeight: H,
  })
  assert.ok(faces.length >= 2, `faces found: ${faces.length}`)
  const crops = faces.slice(0, 2).map((f) => clipCrop(photo, f.box).tensor)

  const lmInput = tf.concat(crops.map((c) => toSquare(c, 112, true)))
  console.log(`landmark68 ONNX vs TFJS: ${await describeParity(recipe('faceapi-landmark68'), lmInput)}`)
  const recInput = tf.concat(crops.map((c) => toSquare(c, 150, true)))
  console.log(
    `face recognition ONNX vs TFJS: ${await describeParity(recipe('faceapi-face-recognition'), recInput)}`,
  )
  tf.dispose([detInput, lmInput, recInput, ...crops])
})

test('the converted SSD MobileNetV1 gives the same boxes and scores in onnxruntime as its TFJS graph on a real photo', async () => {
  const ssdInput = toSquare(photo, 512, false)
  console.log(
    `ssd mobilenetv1 ONNX vs TFJS: ${await describeParity(recipe('faceapi-ssd-mobilenetv1'), ssdInput)}`,
  )
  ssdInput.dispose()
})

test('a TinyFaceDetector converted with a dynamic input size runs in onnxruntime at 320 and 608', async () => {
  const graph = buildTinyFaceDetectorGraph(await loadFaceApiWeights('tiny_face_detector_model'), {
    inputSize: null,
  })
  const s = await ort.InferenceSession.create(convertGraph(graph), { intraOpNumThreads: 1 })
  for (const size of [320, 608]) {
    const input = toSquare(photo, size, false)
    const [grid] = await runOnnx(s, input, ['grid'])
    assert.deepEqual(grid?.dims, [1, size / 32, size / 32, 25])
    const [ref] = await runTfjs(graph, input)
    const b = (await ref?.data()) as Float32Array
    const a = grid?.data as Float32Array
    let diff = 0
    for (let k = 0; k < b.length; k++) diff = Math.max(diff, Math.abs((a[k] ?? Number.NaN) - (b[k] ?? 0)))
    assert.ok(diff < 1e-3, `size ${size}: max abs diff ${diff}`)
    tf.dispose([input, ref])
  }
})

const LFW = path.resolve(
  process.env['FACEWIRE_FACES'] ?? path.join(process.cwd(), '../shared/faces'),
  'lfw-view1',
)

test(
  'the converted detector, landmark and descriptor models chained like face-api separate LFW same-person from different-person pairs',
  { skip: existsSync(path.join(LFW, 'pairsDevTest.txt')) ? false : `LFW photos not found under ${LFW}` },
  async () => {
    const det = recipe('faceapi-tiny-face-detector')
    const lm = recipe('faceapi-landmark68')
    const rec = recipe('faceapi-face-recognition')
    const detS = await session(det.id, (await det.build()).graph)
    const lmS = await session(lm.id, (await lm.build()).graph)
    const recS = await session(rec.id, (await rec.build()).graph)

    async function descriptor(file: string): Promise<Float32Array> {
      const img = await readRgb(file)
      const [H, W] = img.shape
      const detIn = toSquare(img, 416, false)
      const [grid] = await runOnnx(detS, detIn, ['grid'])
      const faces = decodeTinyFaceDetectorGrid(grid?.data as Float32Array, {
        inputSize: 416,
        imageWidth: W,
        imageHeight: H,
      })
      const best = faces[0] ?? { box: { x: W * 0.25, y: H * 0.25, width: W * 0.5, height: H * 0.5 } }
      const face = clipCrop(img, best.box)
      const lmIn = toSquare(face.tensor, 112, true)
      const [raw] = await runOnnx(lmS, lmIn, ['landmarks'])
      const points = landmarksToImage(raw?.data as Float32Array, face.rect)
      const aligned = clipCrop(img, dlibAlignmentBox(points, face.rect.width, face.rect.height))
      const recIn = toSquare(aligned.tensor, 150, true)
      const [desc] = await runOnnx(recS, recIn, ['descriptor'])
      tf.dispose([img, detIn, face.tensor, lmIn, aligned.tensor, recIn])
      return desc?.data as Float32Array
    }
    const dist = (a: Float32Array, b: Float32Array): number =>
      Math.sqrt(a.reduce((s, v, i) => s + (v - (b[i] ?? 0)) ** 2, 0))

    const lines = (await readFile(path.join(LFW, 'pairsDevTest.txt'), 'utf8')).trim().split('\n').slice(1)
    const same = lines.filter((l) => l.split('\t').length === 3).slice(0, 4)
    const diff = lines.filter((l) => l.split('\t').length === 4).slice(0, 4)
    const file = (name: string, n: string): string => path.join(LFW, name, `${n}.jpg`)
    let correct = 0
    const report: string[] = []
    for (const l of [...same, ...diff]) {
      const p = l.split('\t')
      const [a, b] =
        p.length === 3
          ? [file(p[0] ?? '', p[1] ?? ''), file(p[0] ?? '', p[2] ?? '')]
          : [file(p[0] ?? '', p[1] ?? ''), file(p[2] ?? '', p[3] ?? '')]
      const d = dist(await descriptor(a), await descriptor(b))
      const isSame = p.length === 3
      if (isSame === d < 0.6) correct++
      report.push(`${isSame ? 'same' : 'diff'} ${d.toFixed(3)}`)
    }
    console.log(`LFW pairs (threshold 0.6): ${correct}/8 correct; ${report.join(', ')}`)
    assert.ok(correct >= 7, `only ${correct}/8 LFW pairs classified correctly: ${report.join(', ')}`)
  },
)
