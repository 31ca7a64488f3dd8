/** Convolutions, pooling, matmul, resize, depth-to-space. */
import type { Ctx, Layout, Value } from '../context.js'
import { attrBool, attrFloat, attrInt, attrInts, attrString, attrStrings } from '../tfjs-graph.js'
import { at, transposeConst, type ConstData } from '../tensor-util.js'
import type { TfNode } from '../types.js'
import { activation, produced, type OpHandler } from './common.js'
import { batchNormParams } from './elementwise.js'

interface Spatial {
  /** [top, left, bottom, right] or undefined for auto SAME_UPPER. */
  pads: number[] | undefined
  out: [number, number]
}

function spatial(
  ctx: Ctx,
  node: TfNode,
  inHW: [number, number],
  kernel: [number, number],
  strides: [number, number],
  dilations: [number, number],
  padding: string,
  explicit?: number[],
): Spatial {
  const pads = [0, 0, 0, 0]
  const out: [number, number] = [-1, -1]
  let auto = false
  for (let d = 0; d < 2; d++) {
    const size = inHW[d] ?? -1
    const k = (at(kernel, d) - 1) * at(dilations, d) + 1
    const s = at(strides, d)
    if (padding === 'VALID') {
      out[d] = size < 0 ? -1 : Math.floor((size - k) / s) + 1
    } else if (padding === 'SAME') {
      if (size < 0) {
        auto = true
        continue
      }
      const o = Math.ceil(size / s)
      const total = Math.max((o - 1) * s + k - size, 0)
      pads[d] = Math.floor(total / 2)
      pads[d + 2] = total - Math.floor(total / 2)
      out[d] = o
    } else if (padding === 'EXPLICIT') {
      if (explicit?.length !== 8) ctx.fail('EXPLICIT padding needs 8 explicit_paddings')
      const b = at(explicit, 2 + 2 * d)
      const e = at(explicit, 3 + 2 * d)
      pads[d] = b
      pads[d + 2] = e
      out[d] = size < 0 ? -1 : Math.floor((size + b + e - k) / s) + 1
    } else ctx.fail(`unsupported padding "${padding}"`)
  }
  return { pads: auto ? undefined : pads, out }
}

function dataFormat(node: TfNode): 'NHWC' | 'NCHW' {
  const f = node.attrs['data_format']?.s
  if (f === undefined) return 'NHWC'
  const s = Buffer.from(f, 'base64').toString()
  return s === 'NCHW' ? 'NCHW' : 'NHWC'
}

/** For a TF tensor in format `fmt`, which ONNX layout gives NCHW memory order. */
function nchwLayoutFor(fmt: 'NHWC' | 'NCHW'): Layout {
  return fmt === 'NHWC' ? 'nchw' : 'same'
}

function hw(shape: number[] | undefined, fmt: 'NHWC' | 'NCHW'): [number, number] {
  if (shape === undefined || shape.length !== 4) return [-1, -1]
  return fmt === 'NHWC' ? [at(shape, 1), at(shape, 2)] : [at(shape, 2), at(shape, 3)]
}

function pick2(v: number[], fmt: 'NHWC' | 'NCHW'): [number, number] {
  return fmt === 'NHWC' ? [v[1] ?? 1, v[2] ?? 1] : [v[2] ?? 1, v[3] ?? 1]
}

function outShape(
  x: number[] | undefined,
  fmt: 'NHWC' | 'NCHW',
  out: [number, number],
  channels: number,
): number[] {
  const n = x?.[0] ?? -1
  return fmt === 'NHWC' ? [n, out[0], out[1], channels] : [n, channels, out[0], out[1]]
}

/** Parse the fused_ops tail of _FusedConv2D / FusedDepthwiseConv2dNative / _FusedMatMul. */
function fusedSpec(
  ctx: Ctx,
  node: TfNode,
  firstArg: number,
): { bias?: ConstData; bn?: { scale: ConstData; shift: ConstData }; act?: string; alpha?: Value } {
  const ops = attrStrings(node.attrs, 'fused_ops')
  const result: {
    bias?: ConstData
    bn?: { scale: ConstData; shift: ConstData }
    act?: string
    alpha?: Value
  } = {}
  let i = 0
  const head = ops[0]
  if (head === 'BiasAdd') {
    result.bias = ctx.constInput(node, firstArg)
    i = 1
  } else if (head === 'FusedBatchNorm') {
    result.bn = batchNormParams(
      ctx.constInput(node, firstArg),
      ctx.constInput(node, firstArg + 1),
      ctx.constInput(node, firstArg + 2),
      ctx.constInput(node, firstArg + 3),
      attrFloat(node.attrs, 'epsilon', 1e-3),
    )
    i = 1
  }
  const rest = ops.slice(i)
  if (rest.length > 1) ctx.fail(`unsupported fused_ops [${ops.join(', ')}]`)
  const act = rest[0]
  if (act !== undefined) {
    result.act = act
    if (act === 'Prelu') {
      const numArgs = attrInt(node.attrs, 'num_args', 2)
      result.alpha = ctx.input(node, firstArg + numArgs - 1)
    }
  }
  return result
}

function conv(kind: 'conv' | 'depthwise', fused: boolean): OpHandler {
  return (node, ctx) => {
    const x = ctx.input(node, 0)
    let w = ctx.constInput(node, 1) // [kh, kw, cin, cout] or [kh, kw, cin, mult]
    if (w.shape.length !== 4) ctx.fail('filter must be rank 4')
    const fmt = dataFormat(node)
    const [kh, kw, cin, cmult] = w.shape as [number, number, number, number]
    const strides = pick2(attrInts(node.attrs, 'strides', [1, 1, 1, 1]), fmt)
    const dil = pick2(attrInts(node.attrs, 'dilations', [1, 1, 1, 1]), fmt)
    const padding = attrString(node.attrs, 'padding', 'VALID')
    const explicit = attrInts(node.attrs, 'explicit_paddings', [])
    const sp = spatial(ctx, node, hw(x.shape, fmt), [kh, kw], strides, dil, padding, explicit)
    const xChannels = x.shape?.length === 4 ? at(x.shape, fmt === 'NHWC' ? 3 : 1) : -1
    let group = 1
    let cout: number
    if (kind === 'depthwise') {
      // [kh,kw,cin,mult] -> [cin*mult, 1, kh, kw]; out channel index = c*mult + m
      w = transposeConst(w, [2, 3, 0, 1])
      w = { ...w, shape: [cin * cmult, 1, kh, kw] }
      group = cin
      cout = cin * cmult
    } else {
      w = transposeConst(w, [3, 2, 0, 1])
      cout = cmult
      if (xChannels > 0 && xChannels !== cin) {
        if (xChannels % cin !== 0)
          ctx.fail(`input channels ${xChannels} not divisible by filter channels ${cin}`)
        group = xChannels / cin
      }
    }
    const spec = fused ? fusedSpec(ctx, node, 2) : {}
    let bias: Float32Array | undefined = spec.bias ? Float32Array.from(spec.bias.data) : undefined
    let weights: string | undefined
    if (spec.bn !== undefined) {
      // fold batch norm into weights and bias
      const bd = new Float32Array(cout)
      for (let o = 0; o < cout; o++) bd[o] = at(spec.bn.shift.data, o)
      if (ctx.storesQuantized(w)) {
        // Keep the weights quantized: the per-output-channel scale becomes a Mul on the dequantized
        // weights, which onnxruntime folds at load (float32 x float32, same rounding as folding here).
        const scale: ConstData = {
          dtype: 'float32',
          shape: [cout, 1, 1, 1],
          data: Float32Array.from(spec.bn.scale.data),
        }
        weights = ctx.emit1(
          'Mul',
          [ctx.constant(w, `${node.name}/weights_unscaled`), ctx.constant(scale, `${node.name}/bn_scale`)],
          {},
          `${node.name}/weights`,
        )
      } else {
        const wd = Float32Array.from(w.data)
        const per = wd.length / cout
        for (let o = 0; o < cout; o++) {
          const s = at(spec.bn.scale.data, o)
          for (let k = 0; k < per; k++) wd[o * per + k] = at(wd, o * per + k) * s
        }
        w = { dtype: w.dtype, shape: w.shape, data: wd }
      }
      bias = bd
    }
    const xLayout = nchwLayoutFor(fmt)
    const inputs = [ctx.get(x, xLayout), weights ?? ctx.constant(w, `${node.name}/weights`)]
    if (bias !== undefined)
      inputs.push(ctx.constant({ dtype: 'float32', shape: [cout], data: bias }, `${node.name}/bias`))
    const attrs: Record<string, number | string | number[]> = {
      dilations: dil,
      group,
      kernel_shape: [kh, kw],
      strides,
    }
    if (sp.pads === undefined) attrs['auto_pad'] = 'SAME_UPPER'
    else attrs['pads'] = sp.pads
    const hint = ctx.outName()
    let y = ctx.emit1('Conv', inputs, attrs, spec.act !== undefined ? `${hint}/conv` : hint)
    if (spec.act !== undefined) {
      const extra: { alpha?: string } = {}
      if (spec.alpha !== undefined)
        extra.alpha = ctx.broadcastOperand(
          spec.alpha,
          xLayout === 'nchw' ? 'nchw' : 'same',
          4,
          'float32',
          `${hint}/alpha`,
        )
      y = activation(ctx, spec.act, y, node, hint, extra)
    }
    return [produced(y, xLayout, 'float32', outShape(x.shape, fmt, sp.out, cout))]
  }
}

function pool(onnxOp: 'MaxPool' | 'AveragePool'): OpHandler {
  return (node, ctx) => {
    const x = ctx.input(node, 0)
    const fmt = dataFormat(node)
    const k = pick2(attrInts(node.attrs, 'ksize'), fmt)
    const strides = pick2(attrInts(node.attrs, 'strides'), fmt)
    const padding = attrString(node.attrs, 'padding', 'VALID')
    const sp = spatial(ctx, node, hw(x.shape, fmt), k, strides, [1, 1], padding)
    const attrs: Record<string, number | string | number[]> = { kernel_shape: k, strides }
    if (sp.pads === undefined) attrs['auto_pad'] = 'SAME_UPPER'
    else attrs['pads'] = sp.pads
    if (onnxOp === 'AveragePool') attrs['count_include_pad'] = 0
    const layout = nchwLayoutFor(fmt)
    const y = ctx.emit1(onnxOp, [ctx.get(x, layout)], attrs, ctx.outName())
    const c = x.shape?.length === 4 ? at(x.shape, fmt === 'NHWC' ? 3 : 1) : -1
    return [produced(y, layout, 'float32', outShape(x.shape, fmt, sp.out, c))]
  }
}

function matmul(fused: boolean): OpHandler {
  return (node, ctx) => {
    const a = ctx.input(node, 0)
    const b = ctx.input(node, 1)
    const ta = attrBool(node.attrs, 'transpose_a', false)
    const tb = attrBool(node.attrs, 'transpose_b', false)
    if (a.shape !== undefined && a.shape.length !== 2)
      ctx.fail(`MatMul input must be rank 2, got [${a.shape.join(',')}]`)
    const m = a.shape ? at(a.shape, ta ? 1 : 0) : -1
    const spec = fused ? fusedSpec(ctx, node, 2) : {}
    if (spec.bn !== undefined) ctx.fail('FusedBatchNorm in _FusedMatMul is not supported')
    let n = -1
    let y: string
    const hint = ctx.outName()
    const yHint = spec.act !== undefined ? `${hint}/gemm` : hint
    if (b.const !== undefined && b.shape?.length === 2) {
      n = at(b.shape, tb ? 0 : 1)
      const inputs = [ctx.get(a), ctx.constant(b.const, `${node.name}/B`)]
      if (spec.bias !== undefined) inputs.push(ctx.constant(spec.bias, `${node.name}/bias`))
      const attrs: Record<string, number> = {}
      if (ta) attrs['transA'] = 1
      if (tb) attrs['transB'] = 1
      y = ctx.emit1('Gemm', inputs, attrs, yHint)
    } else {
      n = b.shape?.length === 2 ? at(b.shape, tb ? 0 : 1) : -1
      let an = ctx.get(a)
      let bn = ctx.get(b)
      if (ta) an = ctx.emit1('Transpose', [an], { perm: [1, 0] }, `${hint}/ta`)
      if (tb) bn = ctx.emit1('Transpose', [bn], { perm: [1, 0] }, `${hint}/tb`)
      y = ctx.emit1(
        'MatMul',
        [an, bn],
        {},
        spec.bias !== undefined || spec.act !== undefined ? `${hint}/matmul` : hint,
      )
      if (spec.bias !== undefined)
        y = ctx.emit1(
          'Add',
          [y, ctx.constant(spec.bias, `${node.name}/bias`)],
          {},
          spec.act !== undefined ? `${hint}/bias` : hint,
        )
    }
    if (spec.act !== undefined) {
      const extra: { alpha?: string } = {}
      if (spec.alpha !== undefined) extra.alpha = ctx.get(spec.alpha)
      y = activation(ctx, spec.act, y, node, hint, extra)
    }
    return [produced(y, 'same', 'float32', [m, n])]
  }
}

function resize(mode: 'linear' | 'nearest'): OpHandler {
  return (node, ctx) => {
    const x = ctx.input(node, 0)
    const size = ctx.constInput(node, 1)
    const [oh, ow] = Array.from(size.data, Number) as [number, number]
    const alignCorners = attrBool(node.attrs, 'align_corners', false)
    const halfPixel = attrBool(node.attrs, 'half_pixel_centers', false)
    const layout: Layout = x.names.nchw !== undefined ? 'nchw' : 'same'
    const attrs: Record<string, number | string | number[]> = {
      mode,
      axes: layout === 'nchw' ? [2, 3] : [1, 2],
    }
    if (alignCorners) {
      attrs['coordinate_transformation_mode'] = 'align_corners'
      if (mode === 'nearest') attrs['nearest_mode'] = 'round_prefer_ceil'
    } else if (halfPixel) {
      attrs['coordinate_transformation_mode'] = mode === 'nearest' ? 'tf_half_pixel_for_nn' : 'half_pixel'
      if (mode === 'nearest') attrs['nearest_mode'] = 'floor'
    } else {
      attrs['coordinate_transformation_mode'] = 'asymmetric'
      if (mode === 'nearest') attrs['nearest_mode'] = 'floor'
    }
    const y = ctx.emit1('Resize', [ctx.get(x, layout), '', '', ctx.int64s([oh, ow])], attrs, ctx.outName())
    const s = x.shape
    return [produced(y, layout, 'float32', s?.length === 4 ? [at(s, 0), oh, ow, at(s, 3)] : undefined)]
  }
}

function depthSpace(op: 'DepthToSpace' | 'SpaceToDepth'): OpHandler {
  return (node, ctx) => {
    const x = ctx.input(node, 0)
    if (dataFormat(node) !== 'NHWC') ctx.fail(`${op} supports NHWC only`)
    const bs = attrInt(node.attrs, 'block_size')
    const attrs: Record<string, number | string> = { blocksize: bs }
    if (op === 'DepthToSpace') attrs['mode'] = 'DCR'
    const y = ctx.emit1(op, [ctx.get(x, 'nchw')], attrs, ctx.outName())
    const s = x.shape
    let shape: number[] | undefined
    if (s?.length === 4) {
      const [n, h, w, c] = s as [number, number, number, number]
      const f = (v: number, k: number): number => (v < 0 ? -1 : k > 0 ? v * bs : v / bs)
      shape =
        op === 'DepthToSpace'
          ? [n, f(h, 1), f(w, 1), c < 0 ? -1 : c / (bs * bs)]
          : [n, f(h, 0), f(w, 0), c < 0 ? -1 : c * bs * bs]
    }
    return [produced(y, 'nchw', 'float32', shape)]
  }
}

export const nnOps: Record<string, OpHandler> = {
  Conv2D: conv('conv', false),
  _FusedConv2D: conv('conv', true),
  DepthwiseConv2dNative: conv('depthwise', false),
  DepthwiseConv2d: conv('depthwise', false),
  FusedDepthwiseConv2dNative: conv('depthwise', true),
  MaxPool: pool('MaxPool'),
  AvgPool: pool('AveragePool'),
  MatMul: matmul(false),
  _FusedMatMul: matmul(true),
  ResizeBilinear: resize('linear'),
  ResizeNearestNeighbor: resize('nearest'),
  DepthToSpace: depthSpace('DepthToSpace'),
  SpaceToDepth: depthSpace('SpaceToDepth'),
}
