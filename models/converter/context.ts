/**
 * Conversion context: tracks, for every TF tensor, its ONNX name(s) in one or both
 * layouts, its TF-semantic shape, dtype and (if known) constant value.
 *
 * Layout handling: a TF tensor of rank 4 may be materialised in ONNX either as-is
 * ("same", i.e. NHWC like TF) or permuted to NCHW ("nchw"). Convolutions and pools
 * produce NCHW; element-wise ops, pads, concats, reductions, resizes propagate NCHW;
 * ops that depend on the memory order (Reshape, StridedSlice, graph outputs, ...) ask
 * for "same", which inserts one Transpose (cached per tensor). Shapes stored here are
 * always the TF (NHWC) shapes.
 */
import {
  OnnxDataType,
  doubleTensor,
  exactHalf,
  float16Tensor,
  floatTensor,
  int32Tensor,
  int64Tensor,
  boolTensor,
  uint16Tensor,
  uint8Tensor,
  type OnnxAttributeValue,
  type OnnxDataTypeId,
  type OnnxNode,
  type OnnxTensor,
} from './onnx-proto.js'
import {
  castConst,
  dequantizeValue,
  hasExactQuantization,
  transposeConst,
  type ConstData,
  type VDtype,
} from './tensor-util.js'
import type { TfNode, TfQuantization } from './types.js'

export type Layout = 'same' | 'nchw'

/** NHWC -> NCHW permutation (onnx dim i = TF dim NCHW[i]). */
export const NCHW = [0, 3, 1, 2] as const
/** NCHW -> NHWC permutation. */
export const NHWC = [0, 2, 3, 1] as const

export interface Value {
  /** ONNX tensor names per layout in which the tensor exists. */
  names: Partial<Record<Layout, string>>
  dtype: VDtype
  /** TF-semantic shape, -1 for unknown dims; undefined = unknown rank. */
  shape: number[] | undefined
  /** Constant value, if known at conversion time. */
  const?: ConstData
  /** For small 1-D/0-D integer tensors: known element values (-1 = unknown). */
  partial?: number[]
  /** Set when the value is clip(src, lo, hi) (Relu, Relu6, Minimum/Maximum with scalars), for chain fusion. */
  clip?: { src: string; layout: Layout; lo: number; hi: number }
  /** Set when the value is alpha * min(src, 0) (PReLU written out by Keras/MXNet), for PRelu fusion. */
  negScaled?: { src: string; layout: Layout; alpha: Value }
}

export class ConversionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConversionError'
  }
}

export function onnxType(d: VDtype): OnnxDataTypeId {
  switch (d) {
    case 'float32':
      return OnnxDataType.FLOAT
    case 'int32':
      return OnnxDataType.INT32
    case 'int64':
      return OnnxDataType.INT64
    case 'bool':
      return OnnxDataType.BOOL
  }
}

/**
 * Quantized constants with fewer elements stay float: the dequantization nodes and their
 * names cost about a kilobyte, more than uint8 storage saves on small tensors.
 */
export const MIN_QUANTIZED_ELEMENTS = 512

export type AttrInput = number | string | readonly number[] | { floats: readonly number[] } | { f: number }

function toAttr(v: AttrInput): OnnxAttributeValue {
  if (typeof v === 'number') return { kind: 'int', value: v }
  if (typeof v === 'string') return { kind: 'string', value: v }
  if ('floats' in v) return { kind: 'floats', value: v.floats }
  if ('f' in v) return { kind: 'float', value: v.f }
  return { kind: 'ints', value: v }
}

export class Ctx {
  readonly nodes: OnnxNode[] = []
  readonly initializers: OnnxTensor[] = []
  private readonly values = new Map<string, Value>()
  private readonly used = new Set<string>()
  private readonly constCache = new Map<string, string>()
  /** Node currently being converted (for error messages and name hints). */
  current: TfNode | undefined

  constructor(
    readonly opset: number,
    private readonly compactFloat16: boolean,
    private readonly keepQuantized = true,
  ) {}

  /** Reserve a name that must not be reused (graph inputs). */
  reserve(name: string): void {
    this.used.add(name)
  }

  fresh(hint: string): string {
    if (!this.used.has(hint)) {
      this.used.add(hint)
      return hint
    }
    for (let i = 1; ; i++) {
      const n = `${hint}_${i}`
      if (!this.used.has(n)) {
        this.used.add(n)
        return n
      }
    }
  }

  fail(message: string): never {
    const n = this.current
    throw new ConversionError(n ? `node "${n.name}" (op ${n.op}): ${message}` : message)
  }

  // ---- value table ------------------------------------------------------------

  setValue(ref: string, v: Value): void {
    this.values.set(ref, v)
  }

  /** Look up a TF tensor reference ("name" or "name:k"). */
  value(ref: string): Value {
    const key = ref.endsWith(':0') ? ref.slice(0, -2) : ref
    const v = this.values.get(key)
    if (v === undefined) this.fail(`input tensor "${ref}" is not available`)
    return v
  }

  hasValue(ref: string): boolean {
    const key = ref.endsWith(':0') ? ref.slice(0, -2) : ref
    return this.values.has(key)
  }

  /** i-th input of a node. */
  input(node: TfNode, i: number): Value {
    const ref = node.inputs[i]
    if (ref === undefined) this.fail(`missing input #${i}`)
    return this.value(ref)
  }

  /** i-th input which must be a compile-time constant. */
  constInput(node: TfNode, i: number): ConstData {
    const v = this.input(node, i)
    if (v.const === undefined) this.fail(`input #${i} ("${node.inputs[i] ?? ''}") must be a constant`)
    return v.const
  }

  /** Base name for the k-th output of the current node. */
  outName(k = 0): string {
    const n = this.current
    if (n === undefined) throw new Error('no current node')
    return k === 0 ? n.name : `${n.name}:${k}`
  }

  // ---- emission -----------------------------------------------------------------

  /** Emit one ONNX node; returns its output names. */
  emit(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrInput> = {},
    outHints: string[] | number = 1,
  ): string[] {
    const base = this.current?.name ?? opType
    const hints =
      typeof outHints === 'number'
        ? Array.from({ length: outHints }, (_, i) => `${base}/${opType}${i ? `:${i}` : ''}`)
        : outHints
    const outputs = hints.map((h) => this.fresh(h))
    const attributes: Record<string, OnnxAttributeValue> = {}
    for (const [k, v] of Object.entries(attrs)) attributes[k] = toAttr(v)
    this.nodes.push({ name: this.fresh(`${base}/${opType}#node`), opType, inputs, outputs, attributes })
    return outputs
  }

  emit1(opType: string, inputs: string[], attrs: Record<string, AttrInput> = {}, outHint?: string): string {
    const out = this.emit(opType, inputs, attrs, outHint === undefined ? 1 : [outHint])
    return out[0] as string
  }

  /** Whether {@link constant} stores `c` as uint8/uint16 plus an in-graph dequantization. */
  storesQuantized(c: ConstData): boolean {
    return this.keepQuantized && c.data.length >= MIN_QUANTIZED_ELEMENTS && hasExactQuantization(c)
  }

  /** float64 scalar initializer (dequantization parameters), deduplicated by value. */
  private doubleScalar(v: number, hint: string): string {
    const data = new Float64Array([v])
    const key = `f64|${Buffer.from(data.buffer).toString('base64')}`
    const cached = this.constCache.get(key)
    if (cached !== undefined) return cached
    const name = this.fresh(hint)
    this.initializers.push(doubleTensor(name, [], data))
    this.constCache.set(key, name)
    return name
  }

  private pushNode(
    opType: string,
    inputs: string[],
    output: string,
    attrs: Record<string, AttrInput> = {},
  ): void {
    const attributes: Record<string, OnnxAttributeValue> = {}
    for (const [k, v] of Object.entries(attrs)) attributes[k] = toAttr(v)
    this.nodes.push({ name: this.fresh(`${output}#node`), opType, inputs, outputs: [output], attributes })
  }

  /**
   * Store quantized values `q` as a uint8/uint16 initializer and emit nodes that compute their
   * float32 values under `name`, bit-identical to tfjs-core's `Math.fround(q * scale + min)`:
   *  - uint8: Cast(int32) -> Gather from a 256-entry float32 table holding exactly those values
   *    (two cheap steps for onnxruntime's constant folding);
   *  - uint16 (a table would be 256 KiB): Cast(double) -> Mul(scale) -> Add(min) -> Cast(float),
   *    i.e. the same float64 arithmetic as tfjs-core, rounded to float32 once.
   */
  private emitDequantized(shape: readonly number[], q: TfQuantization, name: string): void {
    if (q.data instanceof Uint8Array) {
      const qName = this.fresh(`${name}/q8`)
      this.initializers.push(uint8Tensor(qName, shape, q.data))
      const table = new Float32Array(256)
      for (let i = 0; i < table.length; i++) table[i] = dequantizeValue(i, q.scale, q.min)
      const tableName = this.constant(
        { dtype: 'float32', shape: [table.length], data: table },
        `${name}/q_table`,
      )
      const index = this.fresh(`${name}/q_index`)
      this.pushNode('Cast', [qName], index, { to: OnnxDataType.INT32 })
      this.pushNode('Gather', [tableName, index], name, { axis: 0 })
      return
    }
    const qName = this.fresh(`${name}/q16`)
    this.initializers.push(uint16Tensor(qName, shape, q.data))
    const scale = this.doubleScalar(q.scale, `${name}/q_scale`)
    const min = this.doubleScalar(q.min, `${name}/q_min`)
    const asDouble = this.fresh(`${name}/dequant/f64`)
    const scaled = this.fresh(`${name}/dequant/scaled`)
    const shifted = this.fresh(`${name}/dequant/shifted`)
    this.pushNode('Cast', [qName], asDouble, { to: OnnxDataType.DOUBLE })
    this.pushNode('Mul', [asDouble, scale], scaled)
    this.pushNode('Add', [scaled, min], shifted)
    this.pushNode('Cast', [shifted], name, { to: OnnxDataType.FLOAT })
  }

  /**
   * Add a constant as an initializer (deduplicated by content).
   *
   * Float constants are stored, in order of preference:
   *  - quantized (uint8/uint16 source, see {@link storesQuantized}) as the quantized initializer
   *    plus an exact dequantization (see {@link emitDequantized}) that onnxruntime constant-folds
   *    at session load, so the values the model computes with are bit-identical to the float constant;
   *  - float16 + Cast when every value is exactly representable in float16;
   *  - float32.
   */
  constant(c: ConstData, hint: string): string {
    const key = `${c.dtype}|${c.shape.join(',')}|${Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength).toString('base64')}`
    const cached = this.constCache.get(key)
    if (cached !== undefined) return cached
    const name = this.fresh(hint)
    let tensor: OnnxTensor
    let out = name
    if (c.dtype === 'float32' && c.quantized !== undefined && this.storesQuantized(c)) {
      this.emitDequantized(c.shape, c.quantized, name)
      this.constCache.set(key, name)
      return name
    }
    if (c.dtype === 'float32') {
      const data = c.data as Float32Array
      const halves = this.compactFloat16 && data.length >= 64 ? exactHalf(data) : undefined
      if (halves !== undefined) {
        tensor = float16Tensor(`${name}/fp16`, c.shape, halves)
        this.used.add(`${name}/fp16`)
        this.initializers.push(tensor)
        this.nodes.push({
          name: `${name}/cast#node`,
          opType: 'Cast',
          inputs: [tensor.name],
          outputs: [name],
          attributes: { to: { kind: 'int', value: OnnxDataType.FLOAT } },
        })
        this.constCache.set(key, out)
        return out
      }
      tensor = floatTensor(name, c.shape, data)
    } else if (c.dtype === 'int32') tensor = int32Tensor(name, c.shape, c.data as Int32Array)
    else if (c.dtype === 'int64') tensor = int64Tensor(name, c.shape, c.data)
    else tensor = boolTensor(name, c.shape, c.data as Uint8Array)
    this.initializers.push(tensor)
    out = tensor.name
    this.constCache.set(key, out)
    return out
  }

  /** int64 1-D initializer (axes, shapes, pads). */
  int64s(values: readonly number[], hint = 'const_i64'): string {
    const data = new Int32Array(values.length)
    values.forEach((v, i) => (data[i] = v))
    if (values.some((v) => v > 0x7fffffff || v < -0x80000000)) {
      // values outside int32 range (slice sentinels): encode directly
      const key = `i64big|${values.join(',')}`
      const cached = this.constCache.get(key)
      if (cached !== undefined) return cached
      const name = this.fresh(hint)
      this.initializers.push(int64Tensor(name, [values.length], values))
      this.constCache.set(key, name)
      return name
    }
    return this.constant({ dtype: 'int64', shape: [values.length], data }, hint)
  }

  scalarF(v: number, hint = 'const_f'): string {
    return this.constant({ dtype: 'float32', shape: [], data: new Float32Array([v]) }, hint)
  }

  // ---- layouts --------------------------------------------------------------------

  /** ONNX name of `v` in the requested layout, inserting a Transpose / initializer if needed. */
  get(v: Value, layout: Layout = 'same', hint = 'tensor'): string {
    const have = v.names[layout]
    if (have !== undefined) return have
    if (layout === 'nchw' && v.shape?.length !== 4)
      this.fail(`cannot use a rank-${v.shape?.length ?? '?'} tensor as NCHW`)
    if (v.const !== undefined) {
      const c = layout === 'nchw' ? transposeConst(v.const, NCHW) : v.const
      const name = this.constant(c, hint)
      v.names[layout] = name
      return name
    }
    const other = layout === 'same' ? v.names.nchw : v.names.same
    if (other === undefined) this.fail('value has no materialisation')
    const perm = layout === 'same' ? NHWC : NCHW
    const name = this.emit1(
      'Transpose',
      [other],
      { perm: [...perm] },
      `${other}/to_${layout === 'same' ? 'nhwc' : 'nchw'}`,
    )
    v.names[layout] = name
    return name
  }

  /** The layout in which `v` currently exists (prefers NCHW). */
  homeLayout(v: Value): Layout {
    return v.names.nchw !== undefined ? 'nchw' : 'same'
  }

  /** Name of `v` cast to `dtype` (constant inputs are converted at conversion time). */
  getAs(v: Value, dtype: VDtype, layout: Layout = 'same', hint = 'tensor'): string {
    if (v.dtype === dtype) return this.get(v, layout, hint)
    if (v.const !== undefined) {
      const c = castConst(v.const, dtype)
      return this.get({ names: {}, dtype, shape: c.shape, const: c }, layout, hint)
    }
    return this.emit1('Cast', [this.get(v, layout, hint)], { to: onnxType(dtype) }, `${hint}/cast`)
  }

  /**
   * Name of `v` usable as a broadcasting operand of an op whose output is rank `rank`
   * and is computed in `layout`. In NCHW, lower-rank operands are first right-aligned
   * against the NHWC shape (numpy rules) and then permuted.
   */
  broadcastOperand(v: Value, layout: Layout, rank: number, dtype: VDtype, hint: string): string {
    const shape = v.shape
    if (layout === 'same' || shape === undefined || shape.length === 0)
      return this.getAs(v, dtype, layout === 'nchw' && shape?.length === 4 ? 'nchw' : 'same', hint)
    if (shape.length === 4) return this.getAs(v, dtype, 'nchw', hint)
    if (rank !== 4) this.fail('internal: NCHW broadcast with output rank != 4')
    const padded = [...new Array<number>(4 - shape.length).fill(1), ...shape]
    if (v.const !== undefined) {
      let c = castConst(v.const, dtype)
      c = transposeConst({ ...c, shape: padded }, NCHW)
      // drop leading 1s again so scalar-like constants stay small
      let s = [...c.shape]
      while (s.length > 0 && s[0] === 1) s = s.slice(1)
      return this.constant({ ...c, shape: s }, hint)
    }
    const unsq = this.emit1(
      'Unsqueeze',
      [this.getAs(v, dtype, 'same', hint), this.int64s([...Array(4 - shape.length).keys()])],
      {},
      `${hint}/unsq`,
    )
    return this.emit1('Transpose', [unsq], { perm: [...NCHW] }, `${hint}/nchw`)
  }
}
