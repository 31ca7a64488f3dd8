/** Helpers shared by op converters. */
import type { Ctx, Layout, Value } from '../context.js'
import { NCHW } from '../context.js'
import { at, scalarConst, vectorConst, type ConstData, type VDtype } from '../tensor-util.js'
import type { TfNode } from '../types.js'

export type OpHandler = (node: TfNode, ctx: Ctx) => Value[]

/** A value that exists only as a constant. */
export function constValue(c: ConstData): Value {
  const v: Value = { names: {}, dtype: c.dtype, shape: [...c.shape], const: c }
  const p = partialOfConst(c)
  if (p !== undefined) v.partial = p
  return v
}

function partialOfConst(c: ConstData): number[] | undefined {
  if (c.dtype === 'float32' || c.shape.length > 1 || c.data.length > 16) return undefined
  return Array.from(c.data, Number)
}

/** Known integer elements of a 0-D/1-D int value (-1 = unknown), if tracked. */
export function partialOf(v: Value): number[] | undefined {
  if (v.const !== undefined) return partialOfConst(v.const)
  return v.partial
}

/** A runtime value produced under `name` in `layout`. Promotes fully-known partials to constants. */
export function produced(
  name: string,
  layout: Layout,
  dtype: VDtype,
  shape: number[] | undefined,
  partial?: number[],
): Value {
  const v: Value = { names: { [layout]: name }, dtype, shape }
  if (partial !== undefined) {
    if (!partial.includes(-1) && shape !== undefined && shape.length <= 1 && dtype !== 'float32') {
      const c = shape.length === 0 ? scalarConst(dtype, at(partial, 0)) : vectorConst(dtype, partial)
      return constValue(c)
    }
    v.partial = partial
  }
  return v
}

/** Maps an NHWC axis to its NCHW position. */
export function nchwAxis(axis: number): number {
  return NCHW.indexOf(axis as 0 | 1 | 2 | 3)
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis
}

/** Choose NCHW when some non-constant operand already lives in NCHW and all shapes are known. */
export function preferNchw(outShape: number[] | undefined, operands: readonly Value[]): boolean {
  if (outShape?.length !== 4) return false
  if (!operands.every((v) => v.shape !== undefined)) return false
  return operands.some((v) => v.const === undefined && v.names.nchw !== undefined)
}

export function promote(a: VDtype, b: VDtype): VDtype {
  if (a === b) return a
  if (a === 'float32' || b === 'float32') return 'float32'
  if (a === 'int64' || b === 'int64') return 'int64'
  return a
}

/** Activation fused into TF ops (`fused_ops` tail) or standalone. */
export function activation(
  ctx: Ctx,
  kind: string,
  x: string,
  node: TfNode,
  hint: string,
  extra?: { alpha?: string },
): string {
  switch (kind) {
    case 'Relu':
      return ctx.emit1('Relu', [x], {}, hint)
    case 'Relu6':
      return ctx.emit1('Clip', [x, ctx.scalarF(0), ctx.scalarF(6)], {}, hint)
    case 'Elu':
      return ctx.emit1('Elu', [x], { alpha: { f: 1 } }, hint)
    case 'Selu':
      return ctx.emit1('Selu', [x], {}, hint)
    case 'Sigmoid':
      return ctx.emit1('Sigmoid', [x], {}, hint)
    case 'Tanh':
      return ctx.emit1('Tanh', [x], {}, hint)
    case 'LeakyRelu': {
      const alpha = node.attrs['leakyrelu_alpha']?.f ?? node.attrs['alpha']?.f ?? 0.2
      return ctx.emit1('LeakyRelu', [x], { alpha: { f: alpha } }, hint)
    }
    case 'Prelu':
      if (extra?.alpha === undefined) return ctx.fail('Prelu activation without alpha')
      return ctx.emit1('PRelu', [x, extra.alpha], {}, hint)
    default:
      return ctx.fail(`unsupported fused activation "${kind}"`)
  }
}
