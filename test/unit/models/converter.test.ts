/**
 * TFJS graph -> ONNX converter: op coverage against TFJS (CPU backend), parity of the
 * converted human-models, determinism and error reporting.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import * as tf from '@tensorflow/tfjs'
import { ConversionError, convertGraph, convertGraphDetailed } from '../../../models/converter/convert.js'
import { encodeModel, floatToHalf, halfToFloat } from '../../../models/converter/onnx-proto.js'
import { compare, createSession, onnxOpHistogram, rng, runOnnx } from '../../../models/converter/parity.js'
import { recipeParity } from '../../../models/converter/parity-check.js'
import { humanRecipes } from '../../../models/converter/recipes.js'
import { decodeWeights, tfjsGraphFromJson } from '../../../models/converter/tfjs-graph.js'
import type { TfAttrValue, TfjsModelJson } from '../../../models/converter/types.js'

// ---- a tiny TFJS model.json builder --------------------------------------------------

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')
const A = {
  i: (v: number): TfAttrValue => ({ i: String(v) }),
  f: (v: number): TfAttrValue => ({ f: v }),
  b: (v: boolean): TfAttrValue => ({ b: v }),
  s: (v: string): TfAttrValue => ({ s: b64(v) }),
  ints: (v: number[]): TfAttrValue => ({ list: { i: v.map(String) } }),
  strs: (v: string[]): TfAttrValue => ({ list: { s: v.map(b64) } }),
  float: { type: 'DT_FLOAT' } as TfAttrValue,
  int: { type: 'DT_INT32' } as TfAttrValue,
}

/** Conv attrs as the TFJS executor expects them (it needs explicit dilations / data_format). */
const conv = (
  stride: number,
  padding: 'SAME' | 'VALID',
  extra: Record<string, TfAttrValue> = {},
): Record<string, TfAttrValue> => ({
  strides: A.ints([1, stride, stride, 1]),
  padding: A.s(padding),
  data_format: A.s('NHWC'),
  dilations: A.ints([1, 1, 1, 1]),
  ...extra,
})

class GraphBuilder {
  readonly nodes: TfjsModelJson['modelTopology']['node'] = []
  readonly weights = new Map<string, Float32Array | Int32Array>()
  readonly shapes = new Map<string, number[]>()
  private readonly rand = rng(7)

  placeholder(name: string, shape: number[]): string {
    this.nodes.push({
      name,
      op: 'Placeholder',
      attr: { dtype: A.float, shape: { shape: { dim: shape.map((d) => ({ size: String(d) })) } } },
    })
    return name
  }

  constant(name: string, shape: number[], values?: number[], dtype: 'float32' | 'int32' = 'float32'): string {
    const n = shape.reduce((a, b) => a * b, 1)
    const data =
      dtype === 'int32'
        ? Int32Array.from(values ?? [])
        : Float32Array.from(values ?? Array.from({ length: n }, () => this.rand() - 0.5))
    assert.equal(data.length, n, `constant ${name}`)
    this.weights.set(name, data)
    this.shapes.set(name, shape)
    const t = dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT'
    this.nodes.push({
      name,
      op: 'Const',
      attr: {
        dtype: { type: t },
        value: { tensor: { dtype: t, tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } },
      },
    })
    return name
  }

  ints(name: string, values: number[], shape = [values.length]): string {
    return this.constant(name, shape, values, 'int32')
  }

  scalarInt(name: string, value: number): string {
    return this.constant(name, [], [value], 'int32')
  }

  op(name: string, op: string, input: string[], attr: Record<string, TfAttrValue> = {}): string {
    this.nodes.push({ name, op, input, attr: { T: A.float, ...attr } })
    return name
  }

  json(): TfjsModelJson {
    const weights = [...this.weights.entries()].map(([name, d]) => ({
      name,
      shape: this.shapes.get(name) ?? [],
      dtype: d instanceof Int32Array ? 'int32' : 'float32',
    }))
    return {
      format: 'graph-model',
      modelTopology: { node: this.nodes, versions: { producer: 1 } },
      weightsManifest: [{ paths: [], weights }],
    }
  }

  weightData(): ArrayBuffer {
    const parts = [...this.weights.values()].map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength))
    const all = Buffer.concat(parts)
    return all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)
  }
}

async function runTfjsGraph(
  g: GraphBuilder,
  input: string,
  x: tf.Tensor,
  outputs: string[],
): Promise<Float32Array[]> {
  await tf.setBackend('cpu')
  const json = g.json()
  const model = await tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest?.[0]?.weights as tf.io.WeightsManifestEntry[],
      weightData: g.weightData(),
      format: 'graph-model',
    }),
  )
  const res = model.execute({ [input]: x }, outputs)
  const list = Array.isArray(res) ? res : [res]
  const out = await Promise.all(list.map(async (t) => Float32Array.from(await t.data())))
  tf.dispose(list)
  model.dispose()
  return out
}

/** Convert the builder's graph, run both engines on random input and assert parity. */
async function assertParity(
  g: GraphBuilder,
  input: string,
  shape: number[],
  outputs: string[],
): Promise<Record<string, number>> {
  const graph = tfjsGraphFromJson(g.json(), g.weights)
  const result = convertGraphDetailed(graph, {
    inputs: [{ tensor: input }],
    outputs: outputs.map((tensor) => ({ tensor })),
  })
  const rand = rng(3)
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1)
  const ref = await runTfjsGraph(g, input, tf.tensor(data, shape), outputs)
  const session = await createSession(result.bytes)
  const act = await runOnnx(
    session,
    { [input]: { data, shape } },
    result.outputs.map((o) => o.name),
  )
  await session.release()
  outputs.forEach((o, i) => {
    const d = compare(o, act[i]?.dims ?? [], ref[i] ?? new Float32Array(), act[i]?.data ?? new Float32Array())
    assert.ok(d.pass, `${o}: maxAbs ${d.maxAbsDiff} cos ${d.cosine}`)
  })
  return result.opHistogram
}

// ---- tests -------------------------------------------------------------------------

describe('TFJS graph to ONNX converter', () => {
  test('convolutions, pooling, batch norm and dense layers match TFJS', async () => {
    const g = new GraphBuilder()
    const x = g.placeholder('x', [-1, 17, 17, 3])
    let h = g.op('conv', 'Conv2D', [x, g.constant('w1', [3, 3, 3, 8])], conv(2, 'SAME'))
    h = g.op('bias', 'BiasAdd', [h, g.constant('b1', [8])])
    h = g.op('relu', 'Relu', [h])
    h = g.op('dw', 'DepthwiseConv2dNative', [h, g.constant('dw1', [3, 3, 8, 2])], conv(1, 'VALID'))
    const bnArgs = ['scale', 'offset', 'mean'].map((n) => g.constant(`bn_${n}`, [16]))
    const variance = g.constant(
      'bn_var',
      [16],
      Array.from({ length: 16 }, (_, i) => 0.5 + i / 16),
    )
    h = g.op('bn', 'FusedBatchNormV3', [h, ...bnArgs, variance], {
      epsilon: A.f(0.001),
      is_training: A.b(false),
    })
    h = g.op('relu6', 'Relu6', [h])
    h = g.op('maxpool', 'MaxPool', [h], {
      ksize: A.ints([1, 3, 3, 1]),
      strides: A.ints([1, 2, 2, 1]),
      padding: A.s('SAME'),
    })
    const pooled = g.op('avgpool', 'AvgPool', [h], {
      ksize: A.ints([1, 2, 2, 1]),
      strides: A.ints([1, 1, 1, 1]),
      padding: A.s('SAME'),
    })
    const mean = g.op('mean', 'Mean', [pooled, g.ints('axes', [1, 2])], { keep_dims: A.b(false) })
    let d = g.op('dense', 'MatMul', [mean, g.constant('wd', [16, 5])], {
      transpose_a: A.b(false),
      transpose_b: A.b(false),
    })
    d = g.op('dense_bias', 'BiasAdd', [d, g.constant('bd', [5])])
    const out = g.op('softmax', 'Softmax', [d])
    const hist = await assertParity(g, x, [2, 17, 17, 3], [out, pooled])
    assert.equal(hist['Transpose'], 2, 'one transpose into NCHW and one back for the NHWC pooled output')
  })

  test('fused TFJS ops (_FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul) match TFJS', async () => {
    const g = new GraphBuilder()
    const x = g.placeholder('x', [-1, 12, 12, 4])
    let h = g.op(
      'fconv',
      '_FusedConv2D',
      [x, g.constant('w', [3, 3, 4, 6]), g.constant('b', [6]), g.constant('alpha', [6])],
      conv(1, 'SAME', { fused_ops: A.strs(['BiasAdd', 'Prelu']), num_args: A.i(2), epsilon: A.f(0) }),
    )
    h = g.op(
      'fdw',
      'FusedDepthwiseConv2dNative',
      [h, g.constant('dw', [3, 3, 6, 1]), g.constant('db', [6])],
      conv(2, 'VALID', { fused_ops: A.strs(['BiasAdd', 'Relu']), num_args: A.i(1) }),
    )
    h = g.op(
      'fconv2',
      '_FusedConv2D',
      [h, g.constant('w2', [1, 1, 6, 8]), g.constant('b2', [8])],
      conv(1, 'VALID', {
        fused_ops: A.strs(['BiasAdd', 'LeakyRelu']),
        num_args: A.i(1),
        leakyrelu_alpha: A.f(0.1),
      }),
    )
    const flat = g.op('flat', 'Reshape', [h, g.ints('flat_shape', [-1, 5 * 5 * 8])])
    const out = g.op('fmm', '_FusedMatMul', [flat, g.constant('wm', [200, 3]), g.constant('bm', [3])], {
      transpose_a: A.b(false),
      transpose_b: A.b(false),
      fused_ops: A.strs(['BiasAdd', 'Relu']),
      num_args: A.i(1),
    })
    await assertParity(g, x, [2, 12, 12, 4], [out])
  })

  test('element-wise math, pads, concat, resize and reductions match TFJS', async () => {
    const g = new GraphBuilder()
    const x = g.placeholder('x', [-1, 8, 8, 3])
    let h = g.op('sub', 'Sub', [x, g.constant('mean', [3], [0.1, -0.2, 0.3])])
    h = g.op('mul', 'Mul', [h, g.constant('k', [], [2])])
    h = g.op('pad', 'Pad', [h, g.ints('pads', [0, 0, 1, 1, 2, 0, 0, 0], [4, 2])])
    const c = g.op('conv', 'Conv2D', [h, g.constant('w', [3, 3, 3, 4])], conv(1, 'VALID'))
    const m = g.op('mirror', 'MirrorPad', [c, g.ints('mpads', [0, 0, 1, 1, 1, 1, 0, 0], [4, 2])], {
      mode: A.s('REFLECT'),
    })
    const sq = g.op('square', 'Square', [m])
    const rs = g.op('rsqrt', 'Rsqrt', [g.op('add_eps', 'AddV2', [sq, g.constant('eps', [], [1])])])
    const div = g.op('div', 'RealDiv', [m, g.op('sqrt', 'Sqrt', [g.op('abs', 'Abs', [m])])])
    const mx = g.op('max', 'Maximum', [rs, g.op('min', 'Minimum', [div, g.constant('lim', [], [0.5])])])
    const cat = g.op(
      'concat',
      'ConcatV2',
      [mx, g.op('sig', 'Sigmoid', [m]), g.op('tanh', 'Tanh', [m]), g.scalarInt('axis', 3)],
      {
        N: A.i(3),
      },
    )
    const up = g.op('resize', 'ResizeBilinear', [cat, g.ints('size', [15, 13])], {
      align_corners: A.b(false),
      half_pixel_centers: A.b(true),
    })
    const nn = g.op('nearest', 'ResizeNearestNeighbor', [cat, g.ints('size2', [16, 20])], {
      align_corners: A.b(false),
      half_pixel_centers: A.b(false),
    })
    const elu = g.op('elu', 'Elu', [up])
    const sum = g.op('sum', 'Sum', [elu, g.ints('sum_axes', [1])], { keep_dims: A.b(true) })
    const rmax = g.op('rmax', 'Max', [nn, g.ints('max_axes', [1, 2])], { keep_dims: A.b(false) })
    await assertParity(g, x, [2, 8, 8, 3], [sum, rmax])
  })

  test('shape ops (Shape, StridedSlice, Pack, Reshape, Transpose, Squeeze, ExpandDims) keep a dynamic batch', async () => {
    const g = new GraphBuilder()
    const x = g.placeholder('x', [-1, 6, 6, 2])
    const c = g.op('conv', 'Conv2D', [x, g.constant('w', [1, 1, 2, 4])], conv(1, 'SAME'))
    const shape = g.op('shape', 'Shape', [c], { out_type: A.int })
    const batch = g.op(
      'batch',
      'StridedSlice',
      [shape, g.ints('b0', [0]), g.ints('b1', [1]), g.ints('b2', [1])],
      {
        shrink_axis_mask: A.i(1),
        begin_mask: A.i(0),
        end_mask: A.i(0),
        ellipsis_mask: A.i(0),
        new_axis_mask: A.i(0),
        Index: A.int,
      },
    )
    const target = g.op('pack', 'Pack', [batch, g.scalarInt('m1', -1), g.scalarInt('four', 4)], {
      axis: A.i(0),
      N: A.i(3),
      T: A.int,
    })
    const r = g.op('reshape', 'Reshape', [c, target])
    const t = g.op('transpose', 'Transpose', [c, g.ints('perm', [0, 3, 1, 2])])
    const s = g.op(
      'slice',
      'StridedSlice',
      [t, g.ints('sb', [0, 1, 0]), g.ints('se', [0, 3, 5]), g.ints('ss', [1, 1, 2])],
      {
        begin_mask: A.i(1),
        end_mask: A.i(1),
        ellipsis_mask: A.i(0),
        new_axis_mask: A.i(0),
        shrink_axis_mask: A.i(0),
      },
    )
    const e = g.op('expand', 'ExpandDims', [s, g.scalarInt('ax', -1)])
    const sq = g.op('squeeze', 'Squeeze', [e], { squeeze_dims: A.ints([4]) })
    const out = g.op('neg', 'Neg', [sq])
    const graph = tfjsGraphFromJson(g.json(), g.weights)
    const result = convertGraphDetailed(graph, {
      inputs: [{ tensor: x }],
      outputs: [{ tensor: r }, { tensor: out }],
    })
    assert.deepEqual(result.inputs[0]?.shape, ['N', 6, 6, 2])
    assert.deepEqual(result.outputs[0]?.shape.slice(0, 1), ['N'])
    await assertParity(g, x, [3, 6, 6, 2], [r, out])
  })

  test('an unknown op fails the conversion naming the op and the node', () => {
    const g = new GraphBuilder()
    const x = g.placeholder('x', [1, 4])
    g.op('mystery_node', 'FancyNewOp', [x])
    const graph = tfjsGraphFromJson(g.json(), g.weights)
    assert.throws(
      () => convertGraph(graph, { outputs: [{ tensor: 'mystery_node' }] }),
      (err: unknown) =>
        err instanceof ConversionError && /FancyNewOp/.test(err.message) && /mystery_node/.test(err.message),
    )
  })

  test('an op that cannot be lowered fails with its node name instead of being skipped', () => {
    const g = new GraphBuilder()
    const x = g.placeholder('x', [1, 4, 4, 1])
    g.op('sym_pad', 'MirrorPad', [x, g.ints('p', [0, 0, 1, 1, 1, 1, 0, 0], [4, 2])], {
      mode: A.s('SYMMETRIC'),
    })
    const graph = tfjsGraphFromJson(g.json(), g.weights)
    assert.throws(() => convertGraph(graph, { outputs: [{ tensor: 'sym_pad' }] }), /sym_pad.*SYMMETRIC/)
  })

  test('converting the same graph twice gives byte-identical models', async () => {
    const recipe = humanRecipes.find((r) => r.id === 'faceres')
    assert.ok(recipe)
    const first = await recipe.build()
    const second = await recipe.build()
    const a = convertGraph(first.graph, first.options)
    const b = convertGraph(second.graph, second.options)
    assert.equal(Buffer.compare(Buffer.from(a), Buffer.from(b)), 0)
  })

  test('quantized weights are dequantized (uint8 affine and float16)', () => {
    const spec = [
      {
        name: 'q8',
        shape: [3],
        dtype: 'float32',
        quantization: { dtype: 'uint8' as const, scale: 0.5, min: -1 },
      },
      { name: 'h', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' as const } },
    ]
    const bytes = new Uint8Array([
      0,
      2,
      255,
      ...new Uint8Array(new Uint16Array([floatToHalf(1.5), floatToHalf(-0.25)]).buffer),
    ])
    const w = decodeWeights(spec, bytes)
    assert.deepEqual(Array.from(w.get('q8')?.data ?? []), [-1, 0, 126.5])
    assert.deepEqual(Array.from(w.get('h')?.data ?? []), [1.5, -0.25])
    assert.equal(halfToFloat(floatToHalf(65504)), 65504)
  })

  test('the protobuf encoder writes negative int64 attributes as 10-byte varints', () => {
    const bytes = encodeModel({
      irVersion: 8,
      opsetImports: [{ domain: '', version: 18 }],
      producerName: 'test',
      producerVersion: '0',
      graph: {
        name: 'g',
        nodes: [
          {
            name: 'n',
            opType: 'Squeeze',
            inputs: ['x'],
            outputs: ['y'],
            attributes: { axes: { kind: 'ints', value: [-1] } },
          },
        ],
        initializers: [],
        inputs: [{ name: 'x', elemType: 1, shape: ['N', 1] }],
        outputs: [{ name: 'y', elemType: 1 }],
      },
    })
    assert.deepEqual(onnxOpHistogram(bytes), { Squeeze: 1 })
    assert.ok(
      Buffer.from(bytes).includes(
        Buffer.from([0x40, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      ),
    )
  })
})

describe('converted human-models', () => {
  for (const recipe of humanRecipes) {
    test(`${recipe.id} matches the TFJS original within tolerance on noise and structured inputs`, async () => {
      const { cases, histogram } = await recipeParity(recipe, 1)
      for (const c of cases)
        for (const o of c.outputs)
          assert.ok(o.pass, `${c.label}/${o.name}: maxAbs ${o.maxAbsDiff} cos ${o.cosine}`)
      // layout handling: at most one transpose into NCHW plus one per NHWC-order-dependent output/reshape
      assert.ok((histogram['Transpose'] ?? 0) <= 5, `transposes: ${histogram['Transpose']}`)
    })
  }
})
