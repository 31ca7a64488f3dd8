/**
 * uint8/uint16-quantized TFJS weights stay quantized in the converted ONNX files (uint8/uint16
 * initializers plus an in-graph dequantization that onnxruntime folds at load), compute exactly
 * what the float conversion computes, and keep the face-api models small.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { buildRecipe } from '../../../models/converter/build.js'
import { convertGraphDetailed } from '../../../models/converter/convert.js'
import { faceApiRecipes } from '../../../models/converter/faceapi/index.js'
import { OnnxDataType } from '../../../models/converter/onnx-proto.js'
import { createSession, onnxInitializers, rng, runOnnx } from '../../../models/converter/parity.js'
import { defaultPipeline, recipes } from '../../../models/converter/recipes.js'
import { hasExactQuantization } from '../../../models/converter/tensor-util.js'
import { decodeWeights, tfjsGraphFromJson } from '../../../models/converter/tfjs-graph.js'
import type {
  ConvertOptions,
  TfAttrValue,
  TfjsGraph,
  TfjsModelJson,
  TfjsWeightSpec,
} from '../../../models/converter/types.js'

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')
const ints = (v: number[]): TfAttrValue => ({ list: { i: v.map(String) } })
const convAttrs = (extra: Record<string, TfAttrValue> = {}): Record<string, TfAttrValue> => ({
  T: { type: 'DT_FLOAT' },
  strides: ints([1, 1, 1, 1]),
  padding: { s: b64('SAME') },
  data_format: { s: b64('NHWC') },
  dilations: ints([1, 1, 1, 1]),
  ...extra,
})

/**
 * A small TFJS graph model whose weights are stored like face-api's: uint8 (and one uint16)
 * quantized conv, fused-batch-norm conv, depthwise and dense weights, plus small float/uint8
 * vectors. Weights are decoded by the graph-model loader (tfjs-graph.ts).
 */
function quantizedModel(): TfjsGraph {
  const rand = rng(11)
  const specs: TfjsWeightSpec[] = []
  const chunks: Uint8Array[] = []
  const nodes: TfjsModelJson['modelTopology']['node'] = []
  const constNode = (name: string, dtype: 'DT_FLOAT' | 'DT_INT32'): void => {
    nodes.push({ name, op: 'Const', attr: { dtype: { type: dtype } } })
  }
  const quantized = (
    name: string,
    shape: number[],
    dtype: 'uint8' | 'uint16',
    scale: number,
    min: number,
  ) => {
    const n = shape.reduce((a, b) => a * b, 1)
    const levels = dtype === 'uint8' ? 256 : 65536
    const q = Uint16Array.from({ length: n }, () => Math.floor(rand() * levels))
    const bytes = dtype === 'uint8' ? Uint8Array.from(q) : new Uint8Array(q.buffer)
    specs.push({ name, shape, dtype: 'float32', quantization: { dtype, scale, min } })
    chunks.push(bytes)
    constNode(name, 'DT_FLOAT')
    return name
  }
  const float = (name: string, values: number[]) => {
    specs.push({ name, shape: [values.length], dtype: 'float32' })
    chunks.push(new Uint8Array(Float32Array.from(values).buffer))
    constNode(name, 'DT_FLOAT')
    return name
  }
  const int = (name: string, values: number[]) => {
    specs.push({ name, shape: [values.length], dtype: 'int32' })
    chunks.push(new Uint8Array(Int32Array.from(values).buffer))
    constNode(name, 'DT_INT32')
    return name
  }
  const op = (name: string, type: string, input: string[], attr: Record<string, TfAttrValue>) => {
    nodes.push({ name, op: type, input, attr })
    return name
  }
  const vec = (n: number, lo: number, hi: number): number[] =>
    Array.from({ length: n }, () => lo + (hi - lo) * rand())

  nodes.push({
    name: 'x',
    op: 'Placeholder',
    attr: {
      dtype: { type: 'DT_FLOAT' },
      shape: { shape: { dim: [-1, 9, 9, 8].map((d) => ({ size: String(d) })) } },
    },
  })
  let h = op('conv1', 'Conv2D', ['x', quantized('w1', [3, 3, 8, 16], 'uint8', 0.0031, -0.41)], convAttrs())
  h = op('bias1', 'BiasAdd', [h, quantized('b1', [16], 'uint8', 0.01, -1)], { T: { type: 'DT_FLOAT' } })
  h = op(
    'conv2',
    '_FusedConv2D',
    [
      h,
      quantized('w2', [3, 3, 16, 16], 'uint8', 0.0017, -0.2),
      float('bn_scale', vec(16, 0.5, 1.5)),
      float('bn_offset', vec(16, -0.5, 0.5)),
      float('bn_mean', vec(16, -0.2, 0.2)),
      float('bn_var', vec(16, 0.5, 2)),
    ],
    convAttrs({
      fused_ops: { list: { s: [b64('FusedBatchNorm'), b64('Relu')] } },
      num_args: { i: '4' },
      epsilon: { f: 0.001 },
    }),
  )
  h = op(
    'dw',
    'DepthwiseConv2dNative',
    [h, quantized('w3', [3, 3, 16, 4], 'uint16', 0.00002, -0.6)],
    convAttrs(),
  )
  h = op('mean', 'Mean', [h, int('axes', [1, 2])], { T: { type: 'DT_FLOAT' }, keep_dims: { b: false } })
  op('dense', 'MatMul', [h, quantized('wd', [64, 32], 'uint8', 0.004, -0.5)], {
    T: { type: 'DT_FLOAT' },
    transpose_a: { b: false },
    transpose_b: { b: false },
  })
  const json: TfjsModelJson = {
    format: 'graph-model',
    modelTopology: { node: nodes },
    weightsManifest: [{ paths: [], weights: specs }],
  }
  const data = new Uint8Array(Buffer.concat(chunks))
  return tfjsGraphFromJson(json, decodeWeights(specs, data))
}

const OPTIONS: ConvertOptions = { inputs: [{ tensor: 'x' }], outputs: [{ tensor: 'dense', name: 'y' }] }

describe('quantized weights', () => {
  test('uint8/uint16 weights are stored quantized and compute bit-identical outputs to the float conversion', async () => {
    const graph = quantizedModel()
    const w1 = graph.constants.get('w1')
    assert.ok(w1?.quantized && hasExactQuantization(w1), 'the loader keeps the quantized values')
    assert.equal(graph.constants.get('bn_scale')?.quantized, undefined)

    const q = convertGraphDetailed(graph, OPTIONS)
    const f = convertGraphDetailed(graph, { ...OPTIONS, keepQuantized: false })
    assert.equal(
      Buffer.compare(
        Buffer.from(q.bytes),
        Buffer.from(convertGraphDetailed(quantizedModel(), OPTIONS).bytes),
      ),
      0,
      'deterministic',
    )

    const inits = onnxInitializers(q.bytes)
    const byName = (name: string) => inits.find((i) => i.name === name)
    // conv filters are transposed to OIHW on the quantized values
    assert.deepEqual(byName('conv1/weights/q8')?.dims, [16, 8, 3, 3])
    assert.equal(byName('conv1/weights/q8')?.dataType, OnnxDataType.UINT8)
    // batch norm folded as a per-channel scale on top of the dequantized weights
    assert.equal(byName('conv2/weights_unscaled/q8')?.dataType, OnnxDataType.UINT8)
    assert.deepEqual(byName('dw/weights/q16')?.dims, [64, 1, 3, 3])
    assert.equal(byName('dw/weights/q16')?.dataType, OnnxDataType.UINT16)
    assert.equal(byName('dense/B/q8')?.dataType, OnnxDataType.UINT8)
    assert.deepEqual(byName('dense/B/q8')?.dims, [64, 32])
    // nothing large stays float32
    const bigFloats = inits.filter((i) => i.dataType === OnnxDataType.FLOAT && i.rawBytes >= 512 * 4)
    assert.deepEqual(bigFloats, [])
    assert.ok(q.bytes.length * 2 < f.bytes.length, `${q.bytes.length} vs ${f.bytes.length} bytes`)
    assert.ok(onnxInitializers(f.bytes).every((i) => i.dataType !== OnnxDataType.UINT8))

    const rand = rng(5)
    const shape = [2, 9, 9, 8]
    const data = Float32Array.from({ length: 2 * 9 * 9 * 8 }, () => rand() * 2 - 1)
    const outputs = []
    for (const bytes of [q.bytes, f.bytes]) {
      const session = await createSession(bytes)
      const [y] = await runOnnx(session, { x: { data, shape } }, ['y'])
      await session.release()
      assert.ok(y)
      assert.deepEqual(y.dims, [2, 32])
      outputs.push(Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength))
    }
    assert.equal(Buffer.compare(outputs[0] ?? Buffer.alloc(0), outputs[1] ?? Buffer.alloc(0)), 0)
  })

  test('a constant whose values no longer match its quantized source is written as float', () => {
    const c = {
      dtype: 'float32' as const,
      shape: [2],
      data: Float32Array.from([0.5, 1]),
      quantized: { dtype: 'uint8' as const, scale: 0.5, min: 0, data: Uint8Array.from([1, 2]) },
    }
    assert.equal(hasExactQuantization(c), true)
    assert.equal(hasExactQuantization({ ...c, data: Float32Array.from([0.5, 2]) }), false)
  })

  for (const id of ['faceapi-face-recognition', 'faceapi-ssd-mobilenetv1']) {
    test(`${id} converts to under 10 MB with its quantized weights stored as uint8`, async () => {
      const recipe = faceApiRecipes.find((r) => r.id === id)
      assert.ok(recipe)
      const { entry, bytes } = await buildRecipe(recipe)
      assert.ok(bytes.length < 10_000_000, `${id}: ${bytes.length} bytes`)
      const inits = onnxInitializers(bytes)
      const total = inits.reduce((s, i) => s + i.rawBytes, 0)
      const uint8 = inits.filter((i) => i.dataType === OnnxDataType.UINT8).reduce((s, i) => s + i.rawBytes, 0)
      assert.ok(uint8 > 0.75 * total, `${id}: ${uint8} of ${total} initializer bytes are uint8`)
      if (id === 'faceapi-face-recognition') assert.deepEqual(entry.alignment, { padding: 0.25 })
      else assert.equal(entry.alignment, undefined)
    })
  }

  test('the build registers the face-api recipes and a pipeline made of recipe ids', () => {
    const ids = recipes.map((r) => r.id)
    for (const r of faceApiRecipes) assert.ok(ids.includes(r.id), r.id)
    assert.equal(new Set(ids).size, ids.length)
    const { secondaryEmbedder, ...roles } = defaultPipeline
    for (const id of Object.values(roles)) assert.ok(ids.includes(id), id)
    if (secondaryEmbedder !== undefined) {
      assert.ok(ids.includes(secondaryEmbedder.model), secondaryEmbedder.model)
      const recipe = recipes.find((r) => r.id === secondaryEmbedder.model)
      assert.ok(recipe?.alignment !== undefined, 'a secondary embedder states its framing')
    }
  })
})
