/**
 * In-memory TensorFlow graph in the TFJS `model.json` format (`modelTopology.node`), plus a small
 * builder used by the face-api architecture builders.
 *
 * Node and attribute encodings follow what tfjs-converter writes into model.json:
 *   strides      {list: {i: ["1", "2", "2", "1"]}}
 *   padding      {s: base64("SAME")}
 *   data_format  {s: base64("NHWC")}
 *   T / dtype    {type: "DT_FLOAT"}
 *   Const value  {tensor: {dtype: "DT_FLOAT", tensorShape: {dim: [{size: "3"}]}}}
 * Const node values are not inlined; they live in `constants` under the node name (exactly like
 * the weightsManifest of a TFJS graph model).
 */
import type { TfAttrValue, TfConstTensor, TfGraphIO, TfjsGraph, TfNode, TfShapeProto } from '../types.js'
import type { WeightDtype, WeightTensor } from './weights.js'

export type TfDataType = 'DT_FLOAT' | 'DT_INT32'

export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')

const tfType = (dtype: WeightDtype): TfDataType => (dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32')
const tfShape = (shape: readonly number[]): TfShapeProto =>
  shape.length === 0 ? {} : { dim: shape.map((d) => ({ size: String(d) })) }
const intList = (v: readonly number[]): TfAttrValue => ({ list: { i: v.map(String) } })
const T_FLOAT: Record<string, TfAttrValue> = { T: { type: 'DT_FLOAT' } }

export type Padding = 'SAME' | 'VALID'

/** Emits TFJS graph nodes with unique names; every helper returns the output tensor name. */
export class GraphBuilder {
  readonly nodes: TfNode[] = []
  readonly weights = new Map<string, TfConstTensor>()
  readonly inputs: TfGraphIO[] = []
  private readonly names = new Set<string>()
  private readonly consumed = new Set<string>()

  constructor(private readonly source: ReadonlyMap<string, WeightTensor>) {}

  private add(node: TfNode): string {
    if (this.names.has(node.name)) throw new Error(`graph builder: duplicate node name ${node.name}`)
    for (const i of node.inputs) {
      if (!this.names.has(i.split(':')[0] ?? i))
        throw new Error(`graph builder: ${node.name} uses unknown input ${i}`)
    }
    this.names.add(node.name)
    this.nodes.push(node)
    return node.name
  }

  placeholder(name: string, shape: number[], dtype: WeightDtype = 'float32'): string {
    this.inputs.push({ name, shape: [...shape], dtype })
    return this.add({
      name,
      op: 'Placeholder',
      inputs: [],
      attrs: { dtype: { type: tfType(dtype) }, shape: { shape: tfShape(shape) } },
    })
  }

  constant(name: string, tensor: WeightTensor): string {
    const n = tensor.shape.reduce((a, b) => a * b, 1)
    if (n !== tensor.data.length)
      throw new Error(
        `graph builder: const ${name} has ${tensor.data.length} values for shape [${tensor.shape.join(',')}]`,
      )
    this.weights.set(name, tensor)
    return this.add({
      name,
      op: 'Const',
      inputs: [],
      attrs: {
        value: { tensor: { dtype: tfType(tensor.dtype), tensorShape: tfShape(tensor.shape) } },
        dtype: { type: tfType(tensor.dtype) },
      },
    })
  }

  floats(name: string, values: readonly number[], shape: number[] = [values.length]): string {
    return this.constant(name, { data: Float32Array.from(values), shape, dtype: 'float32' })
  }

  ints(name: string, values: readonly number[], shape: number[] = [values.length]): string {
    return this.constant(name, { data: Int32Array.from(values), shape, dtype: 'int32' })
  }

  /** A Const node holding the source (manifest) weight `weightName`, checked against `rank`. */
  weight(weightName: string, rank?: number): string {
    if (this.names.has(weightName)) return weightName
    const t = this.source.get(weightName)
    if (!t) throw new Error(`graph builder: weight ${weightName} is missing from the manifest`)
    if (rank !== undefined && t.shape.length !== rank) {
      throw new Error(`graph builder: weight ${weightName} has rank ${t.shape.length}, expected ${rank}`)
    }
    return this.constant(weightName, t)
  }

  /** Shape of a source weight (throws if absent). */
  weightShape(weightName: string): readonly number[] {
    const t = this.source.get(weightName)
    if (!t) throw new Error(`graph builder: weight ${weightName} is missing from the manifest`)
    return t.shape
  }

  op(name: string, op: string, inputs: string[], attrs: Record<string, TfAttrValue> = {}): string {
    return this.add({ name, op, inputs, attrs })
  }

  conv2d(name: string, x: string, filter: string, stride: number, padding: Padding): string {
    return this.op(name, 'Conv2D', [x, filter], {
      ...T_FLOAT,
      strides: intList([1, stride, stride, 1]),
      padding: { s: b64(padding) },
      data_format: { s: b64('NHWC') },
      dilations: intList([1, 1, 1, 1]),
      use_cudnn_on_gpu: { b: true },
    })
  }

  depthwiseConv2d(name: string, x: string, filter: string, stride: number, padding: Padding): string {
    return this.op(name, 'DepthwiseConv2dNative', [x, filter], {
      ...T_FLOAT,
      strides: intList([1, stride, stride, 1]),
      padding: { s: b64(padding) },
      data_format: { s: b64('NHWC') },
      dilations: intList([1, 1, 1, 1]),
    })
  }

  biasAdd(name: string, x: string, bias: string): string {
    return this.op(name, 'BiasAdd', [x, bias], { ...T_FLOAT, data_format: { s: b64('NHWC') } })
  }

  pool(
    name: string,
    op: 'MaxPool' | 'AvgPool',
    x: string,
    ksize: number,
    stride: number,
    padding: Padding,
  ): string {
    return this.op(name, op, [x], {
      ...T_FLOAT,
      ksize: intList([1, ksize, ksize, 1]),
      strides: intList([1, stride, stride, 1]),
      padding: { s: b64(padding) },
      data_format: { s: b64('NHWC') },
    })
  }

  /**
   * face-api's input normalisation, `(x - meanRgb) / 255`, as the graph's first nodes: the
   * converted models then take raw RGB pixels.
   */
  normalizeRgb(input: string, meanRgb: readonly number[]): string {
    const mean = this.floats('preprocess/mean_rgb', meanRgb)
    const centered = this.binary('preprocess/sub_mean', 'Sub', input, mean)
    const divisor = this.floats('preprocess/divisor', [255], [])
    return this.binary('preprocess/div_255', 'RealDiv', centered, divisor)
  }

  binary(
    name: string,
    op: 'AddV2' | 'Sub' | 'Mul' | 'RealDiv' | 'Maximum' | 'Minimum',
    a: string,
    b: string,
  ): string {
    return this.op(name, op, [a, b], { ...T_FLOAT })
  }

  unary(
    name: string,
    op: 'Relu' | 'Relu6' | 'Sigmoid' | 'Identity' | 'Sqrt' | 'Rsqrt' | 'Square' | 'Exp',
    x: string,
  ): string {
    return this.op(name, op, [x], { ...T_FLOAT })
  }

  leakyRelu(name: string, x: string, alpha: number): string {
    return this.op(name, 'LeakyRelu', [x], { ...T_FLOAT, alpha: { f: alpha } })
  }

  /** Zero padding; `pads` is [[before, after]] per dimension (int32 [rank, 2] constant). */
  pad(name: string, x: string, pads: [number, number][]): string {
    const p = this.ints(`${name}/paddings`, pads.flat(), [pads.length, 2])
    return this.op(name, 'Pad', [x, p], { ...T_FLOAT, Tpaddings: { type: 'DT_INT32' } })
  }

  reshape(name: string, x: string, shape: number[]): string {
    const s = this.ints(`${name}/shape`, shape)
    return this.op(name, 'Reshape', [x, s], { ...T_FLOAT, Tshape: { type: 'DT_INT32' } })
  }

  mean(name: string, x: string, axes: number[], keepDims: boolean): string {
    const a = this.ints(`${name}/reduction_indices`, axes)
    return this.op(name, 'Mean', [x, a], {
      ...T_FLOAT,
      Tidx: { type: 'DT_INT32' },
      keep_dims: { b: keepDims },
    })
  }

  matMul(name: string, a: string, b: string): string {
    return this.op(name, 'MatMul', [a, b], {
      ...T_FLOAT,
      transpose_a: { b: false },
      transpose_b: { b: false },
    })
  }

  concat(name: string, xs: string[], axis: number): string {
    const ax = this.ints(`${name}/axis`, [axis], [])
    return this.op(name, 'ConcatV2', [...xs, ax], {
      ...T_FLOAT,
      N: { i: String(xs.length) },
      Tidx: { type: 'DT_INT32' },
    })
  }

  /** Records that a source weight was used indirectly (e.g. folded into a derived constant). */
  markUsed(weightName: string): void {
    if (!this.source.has(weightName))
      throw new Error(`graph builder: weight ${weightName} is missing from the manifest`)
    this.consumed.add(weightName)
  }

  /**
   * Completes the graph. Throws if an output is unknown or if a source (manifest) weight was never
   * used, which would mean the builder does not match the architecture the weights come from.
   */
  /**
   * StridedSlice with TF semantics; `beginMask`/`endMask` are bit masks of dimensions whose
   * begin/end are ignored (full range).
   */
  stridedSlice(
    name: string,
    x: string,
    begin: number[],
    end: number[],
    strides: number[],
    masks: { beginMask?: number; endMask?: number; shrinkAxisMask?: number } = {},
  ): string {
    const b = this.ints(`${name}/begin`, begin)
    const e = this.ints(`${name}/end`, end)
    const s = this.ints(`${name}/strides`, strides)
    return this.op(name, 'StridedSlice', [x, b, e, s], {
      ...T_FLOAT,
      Index: { type: 'DT_INT32' },
      begin_mask: { i: String(masks.beginMask ?? 0) },
      end_mask: { i: String(masks.endMask ?? 0) },
      ellipsis_mask: { i: '0' },
      new_axis_mask: { i: '0' },
      shrink_axis_mask: { i: String(masks.shrinkAxisMask ?? 0) },
    })
  }

  fusedBatchNorm(
    name: string,
    x: string,
    scale: string,
    offset: string,
    mean: string,
    variance: string,
    epsilon: number,
  ): string {
    return this.op(name, 'FusedBatchNorm', [x, scale, offset, mean, variance], {
      ...T_FLOAT,
      epsilon: { f: epsilon },
      data_format: { s: b64('NHWC') },
      is_training: { b: false },
    })
  }

  finish(outputs: TfGraphIO[], options: { allowUnused?: readonly string[] } = {}): TfjsGraph {
    const allowed = new Set(options.allowUnused ?? [])
    const unused = [...this.source.keys()].filter(
      (k) => !this.weights.has(k) && !this.consumed.has(k) && !allowed.has(k),
    )
    if (unused.length > 0) throw new Error(`graph builder: unused manifest weights ${unused.join(', ')}`)
    for (const o of outputs) {
      if (!this.names.has(o.name)) throw new Error(`graph builder: output ${o.name} is not a node`)
    }
    return {
      nodes: this.nodes,
      constants: this.weights,
      inputs: this.inputs,
      outputs,
      meta: { convertedBy: 'facewire faceapi graph builder' },
    }
  }
}

/** The JSON-able parts of a TFJS graph model (model.json + a single weight buffer). */
export interface ModelJsonNode {
  name: string
  op: string
  input: string[]
  attr: Record<string, TfAttrValue>
}

export interface GraphModelArtifacts {
  modelTopology: { node: ModelJsonNode[]; library: Record<string, never>; versions: { producer: number } }
  format: 'graph-model'
  generatedBy: string
  convertedBy: string
  weightSpecs: { name: string; shape: number[]; dtype: WeightDtype }[]
  weightData: ArrayBuffer
}

/**
 * Serializes a synthesized graph the way tfjs-converter lays out a graph model: the node list as
 * `modelTopology.node` and every Const value, in node order, as raw little-endian float32/int32.
 * Feed it to `tf.loadGraphModel(tf.io.fromMemory(artifacts))`, or write model.json + a .bin.
 */
export function toGraphModelArtifacts(graph: TfjsGraph): GraphModelArtifacts {
  const weightSpecs: GraphModelArtifacts['weightSpecs'] = []
  const chunks: Uint8Array[] = []
  let total = 0
  for (const node of graph.nodes) {
    if (node.op !== 'Const') continue
    const t = graph.constants.get(node.name)
    if (!t) throw new Error(`graph: Const node ${node.name} has no value`)
    if (t.dtype === 'bool') throw new Error(`graph: bool constant ${node.name} is not supported here`)
    weightSpecs.push({ name: node.name, shape: [...t.shape], dtype: t.dtype })
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
    chunks.push(bytes)
    total += bytes.byteLength
  }
  const weightData = new ArrayBuffer(total)
  const dst = new Uint8Array(weightData)
  let off = 0
  for (const c of chunks) {
    dst.set(c, off)
    off += c.byteLength
  }
  return {
    modelTopology: {
      node: graph.nodes.map((n) => ({ name: n.name, op: n.op, input: n.inputs, attr: n.attrs })),
      library: {},
      versions: { producer: 1 },
    },
    format: 'graph-model',
    generatedBy: 'facewire faceapi graph builder',
    convertedBy: 'facewire',
    weightSpecs,
    weightData,
  }
}
