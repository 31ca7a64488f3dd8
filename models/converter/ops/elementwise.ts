/** Element-wise ops, activations, casts and batch norm. */
import { onnxType, type Ctx, type Layout, type Value } from '../context.js'
import { attrFloat, tfDtype } from '../tfjs-graph.js'
import {
  at,
  binaryConst,
  broadcastShapes,
  castConst,
  unaryConst,
  type ConstData,
  type VDtype,
} from '../tensor-util.js'
import type { TfNode } from '../types.js'
import { activation, constValue, partialOf, preferNchw, produced, promote, type OpHandler } from './common.js'

interface BinarySpec {
  onnx: string
  fold: (x: number, y: number, isInt: boolean) => number
  bool?: boolean
}

const BINARY: Record<string, BinarySpec> = {
  Add: { onnx: 'Add', fold: (x, y) => x + y },
  AddV2: { onnx: 'Add', fold: (x, y) => x + y },
  BiasAdd: { onnx: 'Add', fold: (x, y) => x + y },
  Sub: { onnx: 'Sub', fold: (x, y) => x - y },
  Mul: { onnx: 'Mul', fold: (x, y) => x * y },
  RealDiv: { onnx: 'Div', fold: (x, y) => x / y },
  Div: { onnx: 'Div', fold: (x, y, isInt) => (isInt ? Math.trunc(x / y) : x / y) },
  FloorDiv: { onnx: 'Div', fold: (x, y) => Math.floor(x / y) },
  Maximum: { onnx: 'Max', fold: (x, y) => Math.max(x, y) },
  Minimum: { onnx: 'Min', fold: (x, y) => Math.min(x, y) },
  Pow: { onnx: 'Pow', fold: (x, y) => x ** y },
  SquaredDifference: { onnx: 'SquaredDifference', fold: (x, y) => (x - y) * (x - y) },
  Greater: { onnx: 'Greater', fold: (x, y) => (x > y ? 1 : 0), bool: true },
  GreaterEqual: { onnx: 'GreaterOrEqual', fold: (x, y) => (x >= y ? 1 : 0), bool: true },
  Less: { onnx: 'Less', fold: (x, y) => (x < y ? 1 : 0), bool: true },
  LessEqual: { onnx: 'LessOrEqual', fold: (x, y) => (x <= y ? 1 : 0), bool: true },
  Equal: { onnx: 'Equal', fold: (x, y) => (x === y ? 1 : 0), bool: true },
}

/** Layout and ONNX operand names for an element-wise op over `operands`. */
export function elementwiseOperands(
  ctx: Ctx,
  operands: readonly Value[],
  dtype: VDtype,
  outShape: number[] | undefined,
): { layout: Layout; names: string[] } {
  const layout: Layout = preferNchw(outShape, operands) ? 'nchw' : 'same'
  const rank = outShape?.length ?? 0
  const names = operands.map((v, i) =>
    ctx.broadcastOperand(v, layout, rank, dtype, `${ctx.outName()}/operand${i}`),
  )
  return { layout, names }
}

/** Float scalar value of a constant operand (any shape with a single distinct value), else undefined. */
function uniformScalar(v: Value): number | undefined {
  const c = v.const
  if (c === undefined || c.dtype !== 'float32' || c.data.length === 0 || c.data.length > 1) return undefined
  return at(c.data, 0)
}

/** Emit Clip(src, lo, hi); infinite bounds become omitted optional inputs. */
export function emitClip(
  ctx: Ctx,
  src: string,
  layout: Layout,
  dtype: VDtype,
  shape: number[] | undefined,
  lo: number,
  hi: number,
): Value {
  const inputs = [
    src,
    Number.isFinite(lo) ? ctx.scalarF(lo, 'clip_min') : '',
    Number.isFinite(hi) ? ctx.scalarF(hi, 'clip_max') : '',
  ]
  while (inputs[inputs.length - 1] === '') inputs.pop()
  const out = ctx.emit1(
    lo === 0 && hi === Infinity ? 'Relu' : 'Clip',
    lo === 0 && hi === Infinity ? [src] : inputs,
    {},
    ctx.outName(),
  )
  const v = produced(out, layout, dtype, shape)
  v.clip = { src, layout, lo, hi }
  return v
}

/** Maximum/Minimum against a scalar constant as a (chain-fused) Clip. */
function clipBinary(ctx: Ctx, tfOp: string, a: Value, b: Value): Value | undefined {
  if (tfOp !== 'Maximum' && tfOp !== 'Minimum') return undefined
  const [x, c] = uniformScalar(b) !== undefined ? [a, uniformScalar(b)] : [b, uniformScalar(a)]
  const cv = x === a ? b : a
  if (c === undefined || x.const !== undefined || x.dtype !== 'float32') return undefined
  if (x.shape === undefined || cv.shape === undefined || cv.shape.length > x.shape.length) return undefined
  let src: string
  let layout: Layout
  let lo = -Infinity
  let hi = Infinity
  if (x.clip !== undefined) {
    ;({ src, layout, lo, hi } = x.clip)
  } else {
    layout = ctx.homeLayout(x)
    src = ctx.get(x, layout)
  }
  if (tfOp === 'Maximum') lo = Math.max(lo, c)
  else hi = Math.min(hi, c)
  if (lo > hi) return undefined
  return emitClip(ctx, src, layout, 'float32', x.shape, lo, hi)
}

/**
 * PReLU written as max(x,0) + alpha*min(x,0): Mul tags alpha*min(x,0), Add emits PRelu(x, alpha).
 * Returns the output list if the pattern applies, undefined otherwise (normal lowering continues).
 */
function preluPattern(ctx: Ctx, tfOp: string, a: Value, b: Value): Value[] | undefined {
  if (tfOp === 'Mul') {
    const [x, alpha] = a.const !== undefined ? [b, a] : [a, b]
    const clip = x.clip
    if (alpha.const === undefined || clip === undefined || clip.lo !== -Infinity || clip.hi !== 0)
      return undefined
    if (x.shape === undefined || alpha.shape === undefined || alpha.shape.length > x.shape.length)
      return undefined
    if (
      alpha.shape.some(
        (d, i) =>
          d !== 1 &&
          d !== (x.shape as number[])[(x.shape as number[]).length - (alpha.shape as number[]).length + i],
      )
    )
      return undefined
    return tagNeg(ctx, x, alpha, clip.src, clip.layout)
  }
  if (tfOp === 'Add' || tfOp === 'AddV2') {
    for (const [p, q] of [
      [a, b],
      [b, a],
    ] as const) {
      const c = p.clip
      const n = q.negScaled
      if (
        c === undefined ||
        n === undefined ||
        c.lo !== 0 ||
        c.hi !== Infinity ||
        c.src !== n.src ||
        c.layout !== n.layout
      )
        continue
      const alpha = ctx.broadcastOperand(
        n.alpha,
        n.layout,
        p.shape?.length ?? 0,
        'float32',
        `${ctx.outName()}/alpha`,
      )
      return [produced(ctx.emit1('PRelu', [n.src, alpha], {}, ctx.outName()), n.layout, 'float32', p.shape)]
    }
  }
  return undefined
}

/** Lower alpha * min(x,0) normally but remember its structure. */
function tagNeg(ctx: Ctx, x: Value, alpha: Value, src: string, layout: Layout): Value[] {
  const { layout: l, names } = elementwiseOperands(ctx, [x, alpha], 'float32', x.shape)
  const v = produced(ctx.emit1('Mul', names, {}, ctx.outName()), l, 'float32', x.shape)
  if (l === layout) v.negScaled = { src, layout, alpha }
  return [v]
}

function binary(spec: BinarySpec, tfOp: string): OpHandler {
  return (node, ctx) => {
    const a = ctx.input(node, 0)
    const b = ctx.input(node, 1)
    if (a.const === undefined || b.const === undefined) {
      const clipped = clipBinary(ctx, tfOp, a, b)
      if (clipped !== undefined) return [clipped]
      const fused = preluPattern(ctx, tfOp, a, b)
      if (fused !== undefined) return fused
    }
    const dtype = promote(a.dtype, b.dtype)
    const isInt = dtype !== 'float32'
    const outDtype: VDtype = spec.bool ? 'bool' : dtype
    let shape = a.shape !== undefined && b.shape !== undefined ? broadcastShapes(a.shape, b.shape) : undefined
    if (tfOp === 'BiasAdd' && a.shape !== undefined) shape = [...a.shape]
    if (a.const !== undefined && b.const !== undefined) {
      return [
        constValue(
          binaryConst(castConst(a.const, dtype), castConst(b.const, dtype), outDtype, (x, y) =>
            spec.fold(x, y, isInt),
          ),
        ),
      ]
    }
    // Track small integer vectors (shape arithmetic) element-wise.
    const pa = partialOf(a)
    const pb = partialOf(b)
    let partial: number[] | undefined
    if (pa !== undefined && pb !== undefined && isInt && !spec.bool) {
      const n = Math.max(pa.length, pb.length)
      if ((pa.length === n || pa.length === 1) && (pb.length === n || pb.length === 1)) {
        partial = Array.from({ length: n }, (_, i) => {
          const x = at(pa, pa.length === 1 ? 0 : i)
          const y = at(pb, pb.length === 1 ? 0 : i)
          return x < 0 || y < 0 ? -1 : spec.fold(x, y, true)
        })
      }
    }
    if (tfOp === 'BiasAdd') {
      const fmt = node.attrs['data_format']?.s
      if (fmt !== undefined && Buffer.from(fmt, 'base64').toString() === 'NCHW')
        ctx.fail('BiasAdd with data_format NCHW is not supported')
    }
    const { layout, names } = elementwiseOperands(ctx, [a, b], dtype, shape)
    const out = ctx.emit1(spec.onnx, names, {}, ctx.outName())
    return [produced(out, layout, outDtype, shape, partial)]
  }
}

interface UnarySpec {
  fold?: (x: number) => number
  emit: (ctx: Ctx, x: string, node: TfNode, hint: string) => string
}

const simple =
  (op: string): UnarySpec['emit'] =>
  (ctx, x, _n, hint) =>
    ctx.emit1(op, [x], {}, hint)

const UNARY: Record<string, UnarySpec> = {
  Relu: { fold: (x) => Math.max(0, x), emit: simple('Relu') },
  Relu6: {
    fold: (x) => Math.min(6, Math.max(0, x)),
    emit: (ctx, x, n, h) => activation(ctx, 'Relu6', x, n, h),
  },
  Elu: { emit: (ctx, x, n, h) => activation(ctx, 'Elu', x, n, h) },
  Selu: { emit: simple('Selu') },
  LeakyRelu: {
    emit: (ctx, x, n, h) =>
      ctx.emit1('LeakyRelu', [x], { alpha: { f: attrFloat(n.attrs, 'alpha', 0.2) } }, h),
  },
  Sigmoid: { fold: (x) => 1 / (1 + Math.exp(-x)), emit: simple('Sigmoid') },
  Tanh: { fold: Math.tanh, emit: simple('Tanh') },
  Softplus: { emit: simple('Softplus') },
  Abs: { fold: Math.abs, emit: simple('Abs') },
  Neg: { fold: (x) => -x, emit: simple('Neg') },
  Exp: { fold: Math.exp, emit: simple('Exp') },
  Log: { fold: Math.log, emit: simple('Log') },
  Sqrt: { fold: Math.sqrt, emit: simple('Sqrt') },
  Rsqrt: {
    fold: (x) => 1 / Math.sqrt(x),
    emit: (ctx, x, _n, h) => ctx.emit1('Reciprocal', [ctx.emit1('Sqrt', [x], {}, `${h}/sqrt`)], {}, h),
  },
  Reciprocal: { fold: (x) => 1 / x, emit: simple('Reciprocal') },
  Square: { fold: (x) => x * x, emit: (ctx, x, _n, h) => ctx.emit1('Mul', [x, x], {}, h) },
  Floor: { fold: Math.floor, emit: simple('Floor') },
  Ceil: { fold: Math.ceil, emit: simple('Ceil') },
  Round: { emit: simple('Round') },
  Sign: { fold: Math.sign, emit: simple('Sign') },
  Sin: { fold: Math.sin, emit: simple('Sin') },
  Cos: { fold: Math.cos, emit: simple('Cos') },
  Erf: { emit: simple('Erf') },
  Identity: { fold: (x) => x, emit: (_ctx, x) => x },
  StopGradient: { fold: (x) => x, emit: (_ctx, x) => x },
  Snapshot: { fold: (x) => x, emit: (_ctx, x) => x },
}

function unary(spec: UnarySpec, tfOp: string): OpHandler {
  return (node, ctx) => {
    const a = ctx.input(node, 0)
    if (tfOp === 'Identity' || tfOp === 'StopGradient' || tfOp === 'Snapshot') return [a]
    if (a.const !== undefined && spec.fold !== undefined) return [constValue(unaryConst(a.const, spec.fold))]
    const layout = ctx.homeLayout(a)
    if ((tfOp === 'Relu' || tfOp === 'Relu6') && a.dtype === 'float32') {
      const hi = tfOp === 'Relu6' ? 6 : Infinity
      if (a.clip !== undefined)
        return [
          emitClip(
            ctx,
            a.clip.src,
            a.clip.layout,
            'float32',
            a.shape,
            Math.max(0, a.clip.lo),
            Math.min(hi, a.clip.hi),
          ),
        ]
      return [emitClip(ctx, ctx.get(a, layout), layout, 'float32', a.shape, 0, hi)]
    }
    const out = spec.emit(ctx, ctx.get(a, layout), node, ctx.outName())
    return [produced(out, layout, a.dtype, a.shape)]
  }
}

const cast: OpHandler = (node, ctx) => {
  const a = ctx.input(node, 0)
  const to = tfDtype(node.attrs['DstT']?.type)
  if (to === undefined) return ctx.fail(`unsupported Cast target ${node.attrs['DstT']?.type ?? '?'}`)
  // int64 shape tensors may stand in for TF int32: keep them int64 when TF asks for int32 of an int64 value we made.
  if (a.const !== undefined) return [constValue(castConst(a.const, to))]
  if (a.dtype === to) return [a]
  const layout = ctx.homeLayout(a)
  const out = ctx.emit1('Cast', [ctx.get(a, layout)], { to: onnxType(to) }, ctx.outName())
  const p = partialOf(a)
  return [
    produced(
      out,
      layout,
      to,
      a.shape,
      to !== 'float32' && p !== undefined ? p.map((x) => (x < 0 ? -1 : Math.trunc(x))) : undefined,
    ),
  ]
}

const addN: OpHandler = (node, ctx) => {
  const vals = node.inputs.map((_, i) => ctx.input(node, i))
  if (vals.length === 1) return [vals[0] as Value]
  let shape: number[] | undefined = vals[0]?.shape
  for (const v of vals.slice(1))
    shape = shape !== undefined && v.shape !== undefined ? broadcastShapes(shape, v.shape) : undefined
  const dtype = vals.map((v) => v.dtype).reduce(promote)
  const { layout, names } = elementwiseOperands(ctx, vals, dtype, shape)
  return [produced(ctx.emit1('Sum', names, {}, ctx.outName()), layout, dtype, shape)]
}

const prelu: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  const alpha = ctx.input(node, 1)
  const { layout, names } = elementwiseOperands(ctx, [x, alpha], 'float32', x.shape)
  return [produced(ctx.emit1('PRelu', names, {}, ctx.outName()), layout, 'float32', x.shape)]
}

/** Per-channel affine y = x*scale + shift, laid out for NCHW or NHWC operands. */
export function channelAffine(ctx: Ctx, x: Value, scale: ConstData, shift: ConstData): Value {
  const sc: Value = constValue(scale)
  const sh: Value = constValue(shift)
  const { layout, names } = elementwiseOperands(ctx, [x, sc], 'float32', x.shape)
  const mul = ctx.emit1('Mul', names, {}, `${ctx.outName()}/scale`)
  const shiftName = ctx.broadcastOperand(
    sh,
    layout,
    x.shape?.length ?? 0,
    'float32',
    `${ctx.outName()}/shift`,
  )
  return produced(ctx.emit1('Add', [mul, shiftName], {}, ctx.outName()), layout, 'float32', x.shape)
}

/** Fold inference batch-norm parameters into scale/shift. */
export function batchNormParams(
  scale: ConstData,
  offset: ConstData,
  mean: ConstData,
  variance: ConstData,
  epsilon: number,
): { scale: ConstData; shift: ConstData } {
  const n = scale.data.length
  const s = new Float32Array(n)
  const b = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    const k = at(scale.data, i) / Math.sqrt(at(variance.data, i) + epsilon)
    s[i] = k
    b[i] = at(offset.data, i) - at(mean.data, i) * k
  }
  return {
    scale: { dtype: 'float32', shape: [n], data: s },
    shift: { dtype: 'float32', shape: [n], data: b },
  }
}

const fusedBatchNorm: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  const fmt = node.attrs['data_format']?.s
  if (fmt !== undefined && Buffer.from(fmt, 'base64').toString() !== 'NHWC')
    ctx.fail('only NHWC FusedBatchNorm is supported')
  if (node.attrs['is_training']?.b === true) ctx.fail('FusedBatchNorm in training mode is not supported')
  const p = batchNormParams(
    ctx.constInput(node, 1),
    ctx.constInput(node, 2),
    ctx.constInput(node, 3),
    ctx.constInput(node, 4),
    attrFloat(node.attrs, 'epsilon', 1e-3),
  )
  return [channelAffine(ctx, x, p.scale, p.shift)]
}

const softmax =
  (onnxOp: 'Softmax' | 'LogSoftmax'): OpHandler =>
  (node, ctx) => {
    const x = ctx.input(node, 0)
    const layout = ctx.homeLayout(x)
    const axis = layout === 'nchw' ? 1 : -1
    return [
      produced(ctx.emit1(onnxOp, [ctx.get(x, layout)], { axis }, ctx.outName()), layout, x.dtype, x.shape),
    ]
  }

export const elementwiseOps: Record<string, OpHandler> = {
  AddN: addN,
  Cast: cast,
  Prelu: prelu,
  FusedBatchNorm: fusedBatchNorm,
  FusedBatchNormV2: fusedBatchNorm,
  FusedBatchNormV3: fusedBatchNorm,
  Softmax: softmax('Softmax'),
  LogSoftmax: softmax('LogSoftmax'),
}
for (const [op, spec] of Object.entries(BINARY)) elementwiseOps[op] = binary(spec, op)
for (const [op, spec] of Object.entries(UNARY)) elementwiseOps[op] = unary(spec, op)
