/** Shape manipulation, slicing, padding, concatenation and reductions. */
import { NCHW, NHWC, type Ctx, type Layout, type Value } from '../context.js'
import { attrBool, attrInt, attrInts, attrString, tfDtype } from '../tfjs-graph.js'
import {
  at,
  castConst,
  concatConst,
  constToNumbers,
  newData,
  resolveReshape,
  resolveSlice,
  sizeOf,
  sliceConst,
  transposeConst,
  type AxisSlice,
  type ConstData,
  type VDtype,
} from '../tensor-util.js'
import { constValue, nchwAxis, normAxis, partialOf, produced, promote, type OpHandler } from './common.js'

const INT64_MAX = Number.MAX_SAFE_INTEGER
const INT64_MIN = Number.MIN_SAFE_INTEGER

const reshape: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  const s = ctx.input(node, 1)
  if (s.const !== undefined) {
    const target = constToNumbers(s.const)
    const shape = resolveReshape(x.shape, target)
    if (x.const !== undefined) return [constValue({ ...x.const, shape })]
    const y = ctx.emit1('Reshape', [ctx.get(x), ctx.int64s(target, `${node.name}/shape`)], {}, ctx.outName())
    return [produced(y, 'same', x.dtype, shape)]
  }
  const p = partialOf(s)
  const rank = s.shape?.length === 1 ? at(s.shape, 0) : -1
  const shape =
    p !== undefined
      ? p.map((d) => (d < 0 ? -1 : d))
      : rank >= 0
        ? new Array<number>(rank).fill(-1)
        : undefined
  const y = ctx.emit1('Reshape', [ctx.get(x), ctx.getAs(s, 'int64')], {}, ctx.outName())
  return [produced(y, 'same', x.dtype, shape)]
}

const shapeOp: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  const outType = tfDtype(node.attrs['out_type']?.type) ?? 'int32'
  if (x.shape === undefined) {
    const y = ctx.emit1('Shape', [ctx.get(x)], {}, ctx.outName())
    return [produced(y, 'same', 'int64', undefined)]
  }
  const rank = x.shape.length
  if (!x.shape.includes(-1)) {
    const d = newData(outType, rank)
    x.shape.forEach((v, i) => (d[i] = v))
    return [constValue({ dtype: outType, shape: [rank], data: d })]
  }
  const layout = ctx.homeLayout(x)
  let y = ctx.emit1(
    'Shape',
    [ctx.get(x, layout)],
    {},
    layout === 'nchw' ? `${ctx.outName()}/nchw` : ctx.outName(),
  )
  if (layout === 'nchw')
    y = ctx.emit1('Gather', [y, ctx.int64s([...NHWC], 'nhwc_perm')], { axis: 0 }, ctx.outName())
  return [produced(y, 'same', 'int64', [rank], [...x.shape])]
}

interface SliceEntry {
  kind: 'slice' | 'new'
  axis: number
  begin: number
  end: number
  stride: number
  beginMasked: boolean
  endMasked: boolean
  shrink: boolean
}

function stridedSliceEntries(
  ctx: Ctx,
  rank: number,
  begin: number[],
  end: number[],
  strides: number[],
  masks: { begin: number; end: number; ellipsis: number; newAxis: number; shrink: number },
): SliceEntry[] {
  const entries: SliceEntry[] = []
  const m = begin.length
  const bit = (mask: number, i: number): boolean => ((mask >> i) & 1) === 1
  let real = 0
  for (let i = 0; i < m; i++) if (!bit(masks.ellipsis, i) && !bit(masks.newAxis, i)) real++
  let axis = 0
  let sawEllipsis = false
  const full = (ax: number): SliceEntry => ({
    kind: 'slice',
    axis: ax,
    begin: 0,
    end: 0,
    stride: 1,
    beginMasked: true,
    endMasked: true,
    shrink: false,
  })
  for (let i = 0; i < m; i++) {
    if (bit(masks.ellipsis, i)) {
      if (sawEllipsis) ctx.fail('multiple ellipses in StridedSlice')
      sawEllipsis = true
      const count = rank - real
      for (let k = 0; k < count; k++) entries.push(full(axis++))
    } else if (bit(masks.newAxis, i)) {
      entries.push({
        kind: 'new',
        axis: -1,
        begin: 0,
        end: 0,
        stride: 1,
        beginMasked: true,
        endMasked: true,
        shrink: false,
      })
    } else {
      entries.push({
        kind: 'slice',
        axis: axis++,
        begin: at(begin, i),
        end: at(end, i),
        stride: at(strides, i),
        beginMasked: bit(masks.begin, i),
        endMasked: bit(masks.end, i),
        shrink: bit(masks.shrink, i),
      })
    }
  }
  while (axis < rank) entries.push(full(axis++))
  return entries
}

/** Shared lowering of slice entries: Slice -> Unsqueeze(new axes) -> Squeeze(shrink axes). */
function lowerSlice(ctx: Ctx, x: Value, entries: SliceEntry[]): Value[] {
  const inShape = x.shape
  if (inShape === undefined) return ctx.fail('StridedSlice needs an input of known rank')
  const sliceEntries = entries.filter((e) => e.kind === 'slice')
  const resolved: (AxisSlice | undefined)[] = sliceEntries.map((e) => {
    const dim = at(inShape, e.axis)
    if (dim < 0) return undefined
    if (e.shrink) {
      const b = e.begin < 0 ? e.begin + dim : e.begin
      return { begin: b, stride: 1, size: 1 }
    }
    return resolveSlice(dim, e.begin, e.end, e.stride, e.beginMasked, e.endMasked)
  })
  const midShape = sliceEntries.map(
    (e, i) =>
      resolved[i]?.size ??
      (e.shrink ? 1 : e.beginMasked && e.endMasked && e.stride === 1 ? at(inShape, e.axis) : -1),
  )
  const finalShape: number[] = []
  let si = 0
  for (const e of entries) {
    if (e.kind === 'new') finalShape.push(1)
    else {
      if (!e.shrink) finalShape.push(at(midShape, si))
      si++
    }
  }
  // constant folding
  if (x.const !== undefined && resolved.every((r) => r !== undefined)) {
    const sliced = sliceConst(x.const, resolved)
    return [constValue({ ...sliced, shape: finalShape })]
  }
  // partial-value tracking for 1-D shape vectors
  const px = partialOf(x)
  let partial: number[] | undefined
  if (px !== undefined && inShape.length === 1 && resolved[0] !== undefined) {
    const r = resolved[0]
    partial = Array.from({ length: r.size }, (_, k) => at(px, r.begin + k * r.stride))
  }
  let y = ctx.get(x)
  const starts: number[] = []
  const ends: number[] = []
  const axes: number[] = []
  const steps: number[] = []
  for (const e of sliceEntries) {
    if (!e.shrink && e.beginMasked && e.endMasked && e.stride === 1) continue
    axes.push(e.axis)
    if (e.shrink) {
      starts.push(e.begin)
      ends.push(e.begin === -1 ? INT64_MAX : e.begin + 1)
      steps.push(1)
      continue
    }
    starts.push(e.beginMasked ? (e.stride > 0 ? 0 : INT64_MAX) : e.begin)
    ends.push(e.endMasked ? (e.stride > 0 ? INT64_MAX : INT64_MIN) : e.end)
    steps.push(e.stride)
  }
  const hint = ctx.outName()
  if (axes.length > 0) {
    y = ctx.emit1(
      'Slice',
      [
        y,
        ctx.int64s(starts, 'starts'),
        ctx.int64s(ends, 'ends'),
        ctx.int64s(axes, 'axes'),
        ctx.int64s(steps, 'steps'),
      ],
      {},
      `${hint}/slice`,
    )
  }
  const newAxes: number[] = []
  const shrinkAxes: number[] = []
  entries.forEach((e, i) => {
    if (e.kind === 'new') newAxes.push(i)
  })
  if (newAxes.length > 0)
    y = ctx.emit1('Unsqueeze', [y, ctx.int64s(newAxes, 'axes')], {}, `${hint}/unsqueeze`)
  entries.forEach((e, i) => {
    if (e.kind === 'slice' && e.shrink) shrinkAxes.push(i)
  })
  if (shrinkAxes.length > 0)
    y = ctx.emit1('Squeeze', [y, ctx.int64s(shrinkAxes, 'axes')], {}, `${hint}/squeeze`)
  if (y === ctx.get(x)) y = ctx.emit1('Identity', [y], {}, hint)
  return [produced(y, 'same', x.dtype, finalShape, partial)]
}

const stridedSlice: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  const begin = constToNumbers(ctx.constInput(node, 1))
  const end = constToNumbers(ctx.constInput(node, 2))
  const strides = node.inputs.length > 3 ? constToNumbers(ctx.constInput(node, 3)) : begin.map(() => 1)
  const masks = {
    begin: attrInt(node.attrs, 'begin_mask', 0),
    end: attrInt(node.attrs, 'end_mask', 0),
    ellipsis: attrInt(node.attrs, 'ellipsis_mask', 0),
    newAxis: attrInt(node.attrs, 'new_axis_mask', 0),
    shrink: attrInt(node.attrs, 'shrink_axis_mask', 0),
  }
  if (x.shape === undefined) return ctx.fail('StridedSlice needs an input of known rank')
  return lowerSlice(ctx, x, stridedSliceEntries(ctx, x.shape.length, begin, end, strides, masks))
}

const slice: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  const begin = constToNumbers(ctx.constInput(node, 1))
  const size = constToNumbers(ctx.constInput(node, 2))
  const entries: SliceEntry[] = begin.map((b, i) => {
    const sz = at(size, i)
    return {
      kind: 'slice',
      axis: i,
      begin: b,
      end: sz < 0 ? 0 : b + sz,
      stride: 1,
      beginMasked: false,
      endMasked: sz < 0,
      shrink: false,
    }
  })
  return lowerSlice(ctx, x, entries)
}

/** Bring values to a common dtype (int32 + int64 -> int64). */
function commonDtype(vals: readonly Value[]): VDtype {
  const nonConst = vals.filter((v) => v.const === undefined)
  const pool = nonConst.length > 0 ? nonConst : vals
  return pool.map((v) => v.dtype).reduce(promote)
}

const concat: OpHandler = (node, ctx) => {
  const n = node.inputs.length - 1
  const axisRaw = constToNumbers(ctx.constInput(node, n))[0] ?? 0
  const vals = Array.from({ length: n }, (_, i) => ctx.input(node, i))
  const first = at(vals, 0)
  const rank = first.shape?.length ?? vals.find((v) => v.shape !== undefined)?.shape?.length
  if (rank === undefined) return ctx.fail('ConcatV2 needs inputs of known rank')
  const axis = normAxis(axisRaw, rank)
  const dtype = commonDtype(vals)
  let shape: number[] | undefined
  if (vals.every((v) => v.shape !== undefined)) {
    shape = [...(first.shape as number[])]
    const sum = vals.map((v) => at(v.shape as number[], axis))
    shape[axis] = sum.includes(-1) ? -1 : sum.reduce((a, b) => a + b, 0)
    for (let d = 0; d < rank; d++)
      if (d !== axis && shape[d] === -1)
        shape[d] = vals.map((v) => at(v.shape as number[], d)).find((x) => x >= 0) ?? -1
  }
  if (vals.every((v) => v.const !== undefined)) {
    return [
      constValue(
        concatConst(
          vals.map((v) => castConst(v.const as ConstData, dtype)),
          axis,
        ),
      ),
    ]
  }
  let partial: number[] | undefined
  if (rank === 1) {
    const parts = vals.map(partialOf)
    if (parts.every((p) => p !== undefined)) partial = parts.flatMap((p) => p ?? [])
  }
  const layout: Layout =
    rank === 4 && vals.some((v) => v.const === undefined && v.names.nchw !== undefined) ? 'nchw' : 'same'
  const names = vals.map((v, i) => ctx.getAs(v, dtype, layout, `${node.name}/in${i}`))
  const y = ctx.emit1('Concat', names, { axis: layout === 'nchw' ? nchwAxis(axis) : axis }, ctx.outName())
  return [produced(y, layout, dtype, shape, partial)]
}

const pack: OpHandler = (node, ctx) => {
  const n = node.inputs.length
  const vals = Array.from({ length: n }, (_, i) => ctx.input(node, i))
  const inShape = vals[0]?.shape
  if (inShape === undefined) return ctx.fail('Pack needs inputs of known rank')
  const axis = normAxis(attrInt(node.attrs, 'axis', 0), inShape.length + 1)
  const dtype = commonDtype(vals)
  const shape = [...inShape]
  shape.splice(axis, 0, n)
  if (vals.every((v) => v.const !== undefined)) {
    const parts = vals.map((v) => {
      const c = castConst(v.const as ConstData, dtype)
      const s = [...c.shape]
      s.splice(axis, 0, 1)
      return { ...c, shape: s }
    })
    return [constValue(concatConst(parts, axis))]
  }
  let partial: number[] | undefined
  if (inShape.length === 0) {
    const parts = vals.map(partialOf)
    partial = parts.map((p) => (p === undefined ? -1 : at(p, 0)))
  }
  const axesName = ctx.int64s([axis], 'axes')
  const names = vals.map((v, i) =>
    ctx.emit1(
      'Unsqueeze',
      [ctx.getAs(v, dtype, 'same', `${node.name}/in${i}`), axesName],
      {},
      `${node.name}/unsq${i}`,
    ),
  )
  const y = ctx.emit1('Concat', names, { axis }, ctx.outName())
  return [produced(y, 'same', dtype, shape, partial)]
}

const unpack: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  if (x.shape === undefined) return ctx.fail('Unpack needs an input of known rank')
  const axis = normAxis(attrInt(node.attrs, 'axis', 0), x.shape.length)
  const num = attrInt(node.attrs, 'num')
  const outShape = x.shape.filter((_, i) => i !== axis)
  const outs: Value[] = []
  const parts =
    num > 1
      ? ctx.emit(
          'Split',
          [ctx.get(x), ctx.int64s(new Array<number>(num).fill(1), 'split')],
          { axis },
          Array.from({ length: num }, (_, k) => `${ctx.outName(k)}/split`),
        )
      : [ctx.get(x)]
  const axesName = ctx.int64s([axis], 'axes')
  parts.forEach((p, k) =>
    outs.push(produced(ctx.emit1('Squeeze', [p, axesName], {}, ctx.outName(k)), 'same', x.dtype, outShape)),
  )
  return outs
}

function split(kind: 'Split' | 'SplitV'): OpHandler {
  return (node, ctx) => {
    const xi = kind === 'Split' ? 1 : 0
    const x = ctx.input(node, xi)
    if (x.shape === undefined) return ctx.fail(`${kind} needs an input of known rank`)
    const axisIdx = kind === 'Split' ? 0 : 2
    const axis = normAxis(at(constToNumbers(ctx.constInput(node, axisIdx)), 0), x.shape.length)
    let sizes: number[]
    const dim = at(x.shape, axis)
    if (kind === 'Split') {
      const num = attrInt(node.attrs, 'num_split')
      if (dim < 0) return ctx.fail('Split along a dynamic axis')
      sizes = new Array<number>(num).fill(dim / num)
    } else {
      sizes = constToNumbers(ctx.constInput(node, 1))
      const unknown = sizes.indexOf(-1)
      if (unknown >= 0) {
        if (dim < 0) return ctx.fail('SplitV along a dynamic axis')
        sizes[unknown] = dim - sizes.reduce((a, b, i) => (i === unknown ? a : a + b), 0)
      }
    }
    const layout: Layout = x.shape.length === 4 && x.names.nchw !== undefined ? 'nchw' : 'same'
    const outs = ctx.emit(
      'Split',
      [ctx.get(x, layout), ctx.int64s(sizes, 'split')],
      { axis: layout === 'nchw' ? nchwAxis(axis) : axis },
      sizes.map((_, k) => ctx.outName(k)),
    )
    return outs.map((o, k) => {
      const s = [...(x.shape as number[])]
      s[axis] = at(sizes, k)
      return produced(o, layout, x.dtype, s)
    })
  }
}

const squeeze: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  if (x.shape === undefined) return ctx.fail('Squeeze needs an input of known rank')
  const rank = x.shape.length
  let axes = attrInts(node.attrs, 'squeeze_dims', []).map((a) => normAxis(a, rank))
  if (axes.length === 0) {
    if (x.shape.includes(-1)) return ctx.fail('Squeeze without squeeze_dims on a dynamic shape')
    axes = x.shape.flatMap((d, i) => (d === 1 ? [i] : []))
  }
  const shape = x.shape.filter((_, i) => !axes.includes(i))
  if (x.const !== undefined) return [constValue({ ...x.const, shape })]
  const y = ctx.emit1('Squeeze', [ctx.get(x), ctx.int64s(axes, 'axes')], {}, ctx.outName())
  return [produced(y, 'same', x.dtype, shape, partialOf(x))]
}

const expandDims: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  if (x.shape === undefined) return ctx.fail('ExpandDims needs an input of known rank')
  const axis = normAxis(at(constToNumbers(ctx.constInput(node, 1)), 0), x.shape.length + 1)
  const shape = [...x.shape]
  shape.splice(axis, 0, 1)
  if (x.const !== undefined) return [constValue({ ...x.const, shape })]
  const y = ctx.emit1('Unsqueeze', [ctx.get(x), ctx.int64s([axis], 'axes')], {}, ctx.outName())
  return [produced(y, 'same', x.dtype, shape, partialOf(x))]
}

const transpose: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  const perm = constToNumbers(ctx.constInput(node, 1))
  const shape = x.shape !== undefined ? perm.map((p) => at(x.shape as number[], p)) : undefined
  if (x.const !== undefined) return [constValue(transposeConst(x.const, perm))]
  let src: string
  let eff = perm
  if (x.names.nchw !== undefined && x.names.same === undefined && perm.length === 4) {
    // compose with the NCHW materialisation: TF dim p == NCHW dim NHWC[p]
    src = x.names.nchw
    eff = perm.map((p) => at(NHWC, p))
  } else src = ctx.get(x)
  if (eff.every((p, i) => p === i))
    return [produced(ctx.emit1('Identity', [src], {}, ctx.outName()), 'same', x.dtype, shape)]
  const y = ctx.emit1('Transpose', [src], { perm: eff }, ctx.outName())
  return [produced(y, 'same', x.dtype, shape)]
}

const fill: OpHandler = (node, ctx) => {
  const dims = ctx.input(node, 0)
  const value = ctx.input(node, 1)
  if (dims.const !== undefined && value.const !== undefined) {
    const shape = constToNumbers(dims.const)
    const n = sizeOf(shape)
    const d = newData(value.dtype, n)
    d.fill(at(value.const.data, 0))
    return [constValue({ dtype: value.dtype, shape, data: d })]
  }
  const p = partialOf(dims)
  const y = ctx.emit1('Expand', [ctx.get(value), ctx.getAs(dims, 'int64')], {}, ctx.outName())
  return [produced(y, 'same', value.dtype, p)]
}

function likeOp(v: number): OpHandler {
  return (node, ctx) => {
    const x = ctx.input(node, 0)
    if (x.shape !== undefined && !x.shape.includes(-1)) {
      const d = newData(x.dtype, sizeOf(x.shape))
      d.fill(v)
      return [constValue({ dtype: x.dtype, shape: [...x.shape], data: d })]
    }
    const layout = ctx.homeLayout(x)
    const base = ctx.get(x, layout)
    const y = ctx.emit1(
      'Mul',
      [base, ctx.getAs(constValue({ dtype: 'float32', shape: [], data: new Float32Array([0]) }), x.dtype)],
      {},
      `${ctx.outName()}/zero`,
    )
    const out =
      v === 0
        ? y
        : ctx.emit1(
            'Add',
            [y, ctx.getAs(constValue({ dtype: 'float32', shape: [], data: new Float32Array([v]) }), x.dtype)],
            {},
            ctx.outName(),
          )
    return [produced(out, layout, x.dtype, x.shape)]
  }
}

function pad(kind: 'Pad' | 'PadV2' | 'MirrorPad'): OpHandler {
  return (node, ctx) => {
    const x = ctx.input(node, 0)
    const p = ctx.constInput(node, 1)
    const pads = constToNumbers(p)
    const rank = p.shape[0] ?? 0
    const before = Array.from({ length: rank }, (_, i) => at(pads, 2 * i))
    const after = Array.from({ length: rank }, (_, i) => at(pads, 2 * i + 1))
    const shape = x.shape?.map((d, i) => (d < 0 ? -1 : d + at(before, i) + at(after, i)))
    if (pads.every((v) => v === 0)) return [x]
    let mode = 'constant'
    if (kind === 'MirrorPad') {
      const m = attrString(node.attrs, 'mode')
      if (m !== 'REFLECT') ctx.fail(`MirrorPad mode ${m} is not supported`)
      mode = 'reflect'
    }
    const layout: Layout = rank === 4 && x.names.nchw !== undefined ? 'nchw' : 'same'
    const perm = layout === 'nchw' ? NCHW : [...Array(rank).keys()]
    const onnxPads = [...perm.map((d) => at(before, d)), ...perm.map((d) => at(after, d))]
    const inputs = [ctx.get(x, layout), ctx.int64s(onnxPads, 'pads')]
    if (kind === 'PadV2') {
      const cv = ctx.input(node, 2)
      inputs.push(ctx.getAs(cv, x.dtype, 'same', `${node.name}/value`))
    }
    const y = ctx.emit1('Pad', inputs, { mode }, ctx.outName())
    return [produced(y, layout, x.dtype, shape)]
  }
}

const tile: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  const reps = ctx.input(node, 1)
  const p = partialOf(reps)
  const shape =
    x.shape !== undefined && p !== undefined
      ? x.shape.map((d, i) => (d < 0 || at(p, i) < 0 ? -1 : d * at(p, i)))
      : x.shape?.map(() => -1)
  const y = ctx.emit1('Tile', [ctx.get(x), ctx.getAs(reps, 'int64')], {}, ctx.outName())
  return [produced(y, 'same', x.dtype, shape)]
}

const gather: OpHandler = (node, ctx) => {
  const x = ctx.input(node, 0)
  const idx = ctx.input(node, 1)
  const axisV = node.inputs.length > 2 ? at(constToNumbers(ctx.constInput(node, 2)), 0) : 0
  if (attrInt(node.attrs, 'batch_dims', 0) !== 0) ctx.fail('GatherV2 with batch_dims is not supported')
  if (x.shape === undefined || idx.shape === undefined) return ctx.fail('GatherV2 needs inputs of known rank')
  const axis = normAxis(axisV, x.shape.length)
  const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)]
  const px = partialOf(x)
  const pi = partialOf(idx)
  let partial: number[] | undefined
  if (px !== undefined && pi !== undefined && x.shape.length === 1)
    partial = pi.map((i) => (i < 0 ? -1 : at(px, i < 0 ? i + px.length : i)))
  const y = ctx.emit1(
    'Gather',
    [ctx.get(x), ctx.getAs(idx, idx.dtype === 'int64' ? 'int64' : 'int32')],
    { axis },
    ctx.outName(),
  )
  return [produced(y, 'same', x.dtype, shape, partial)]
}

function reduce(onnxOp: string): OpHandler {
  return (node, ctx) => {
    const x = ctx.input(node, 0)
    if (x.shape === undefined) return ctx.fail(`${node.op} needs an input of known rank`)
    const rank = x.shape.length
    const axes = [...new Set(constToNumbers(ctx.constInput(node, 1)).map((a) => normAxis(a, rank)))].sort(
      (a, b) => a - b,
    )
    const keep = attrBool(node.attrs, 'keep_dims', false)
    const shape = keep
      ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !axes.includes(i))
    let layout: Layout = 'same'
    if (rank === 4 && x.names.nchw !== undefined) {
      // remaining dims must keep TF order when keep_dims=false
      const remaining = NCHW.filter((d) => !axes.includes(d))
      const ordered = remaining.every((d, i) => i === 0 || d > at(remaining, i - 1))
      if (keep || ordered) layout = 'nchw'
    }
    const onnxAxes = layout === 'nchw' ? axes.map(nchwAxis).sort((a, b) => a - b) : axes
    const y = ctx.emit1(
      onnxOp,
      [ctx.get(x, layout), ctx.int64s(onnxAxes, 'axes')],
      { keepdims: keep ? 1 : 0 },
      ctx.outName(),
    )
    return [produced(y, keep ? layout : 'same', x.dtype, shape)]
  }
}

const argMax =
  (onnxOp: 'ArgMax' | 'ArgMin'): OpHandler =>
  (node, ctx) => {
    const x = ctx.input(node, 0)
    if (x.shape === undefined) return ctx.fail(`${node.op} needs an input of known rank`)
    const axis = normAxis(at(constToNumbers(ctx.constInput(node, 1)), 0), x.shape.length)
    const shape = x.shape.filter((_, i) => i !== axis)
    const y = ctx.emit1(onnxOp, [ctx.get(x)], { axis, keepdims: 0 }, `${ctx.outName()}/i64`)
    const outType = tfDtype(node.attrs['output_type']?.type) ?? 'int64'
    const out = outType === 'int64' ? y : ctx.emit1('Cast', [y], { to: 6 }, ctx.outName())
    return [produced(out, 'same', outType === 'int64' ? 'int64' : 'int32', shape)]
  }

export const shapeOps: Record<string, OpHandler> = {
  Reshape: reshape,
  Shape: shapeOp,
  StridedSlice: stridedSlice,
  Slice: slice,
  ConcatV2: concat,
  Pack: pack,
  Unpack: unpack,
  Split: split('Split'),
  SplitV: split('SplitV'),
  Squeeze: squeeze,
  ExpandDims: expandDims,
  Transpose: transpose,
  Fill: fill,
  ZerosLike: likeOp(0),
  OnesLike: likeOp(1),
  Pad: pad('Pad'),
  PadV2: pad('PadV2'),
  MirrorPad: pad('MirrorPad'),
  Tile: tile,
  GatherV2: gather,
  Mean: reduce('ReduceMean'),
  Sum: reduce('ReduceSum'),
  Max: reduce('ReduceMax'),
  Min: reduce('ReduceMin'),
  Prod: reduce('ReduceProd'),
  ArgMax: argMax('ArgMax'),
  ArgMin: argMax('ArgMin'),
}
