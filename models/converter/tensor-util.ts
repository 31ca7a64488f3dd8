/**
 * Small helpers on constant tensors (shape arithmetic, transposes, broadcasting) used
 * for constant folding and for re-laying-out weights.
 */

import type { TfQuantization } from './types.js'

export type VDtype = 'float32' | 'int32' | 'int64' | 'bool'

/** A constant value during conversion. int64 values are held in an Int32Array (they are shapes/indices). */
export interface ConstData {
  dtype: VDtype
  shape: number[]
  data: Float32Array | Int32Array | Uint8Array
  /**
   * Quantized source of a float32 constant (see {@link TfQuantization}). Kept through
   * element permutations (transposes, reshapes); any arithmetic transform must drop it.
   * `ctx.constant` re-checks `data` against it and ignores it on any mismatch.
   */
  quantized?: TfQuantization
}

/** Float value of quantized element `q`, exactly as tfjs-core decodes it (float64 math, float32 result). */
export function dequantizeValue(q: number, scale: number, min: number): number {
  return Math.fround(q * scale + min)
}

/** True if `c` is float32 with a quantized source that decodes to exactly `c.data`. */
export function hasExactQuantization(c: ConstData): c is ConstData & { quantized: TfQuantization } {
  const qz = c.quantized
  if (qz === undefined || c.dtype !== 'float32' || qz.data.length !== c.data.length) return false
  if ((qz.dtype === 'uint8') !== qz.data instanceof Uint8Array) return false
  if (!Number.isFinite(qz.scale) || !Number.isFinite(qz.min)) return false
  for (let i = 0; i < c.data.length; i++) {
    if (dequantizeValue(at(qz.data, i), qz.scale, qz.min) !== at(c.data, i)) return false
  }
  return true
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1)
  for (let i = shape.length - 2; i >= 0; i--) s[i] = (s[i + 1] ?? 1) * (shape[i + 1] ?? 1)
  return s
}

export function newData(dtype: VDtype, n: number): Float32Array | Int32Array | Uint8Array {
  if (dtype === 'float32') return new Float32Array(n)
  if (dtype === 'bool') return new Uint8Array(n)
  return new Int32Array(n)
}

export function at<T>(arr: readonly T[] | ArrayLike<T>, i: number): T {
  const v = arr[i]
  if (v === undefined) throw new Error(`index ${i} out of range (length ${arr.length})`)
  return v
}

/** Transpose: output dim i = input dim perm[i]. */
export function transposeConst(c: ConstData, perm: readonly number[]): ConstData {
  if (perm.length !== c.shape.length)
    throw new Error(`transpose: perm [${perm.join(',')}] does not match rank ${c.shape.length}`)
  const outShape = perm.map((p) => at(c.shape, p))
  const inStrides = stridesOf(c.shape)
  const n = sizeOf(outShape)
  const out = newData(c.dtype, n)
  // a permutation of elements keeps each quantized value: permute the quantized data alongside
  const qz = c.quantized
  const qOut = qz === undefined ? undefined : qz.dtype === 'uint8' ? new Uint8Array(n) : new Uint16Array(n)
  const rank = outShape.length
  const idx = new Array<number>(rank).fill(0)
  const permStrides = perm.map((p) => at(inStrides, p))
  for (let o = 0; o < n; o++) {
    let src = 0
    for (let d = 0; d < rank; d++) src += at(idx, d) * at(permStrides, d)
    out[o] = at(c.data, src)
    if (qOut !== undefined && qz !== undefined) qOut[o] = at(qz.data, src)
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = at(idx, d) + 1
      if (at(idx, d) < at(outShape, d)) break
      idx[d] = 0
    }
  }
  const result: ConstData = { dtype: c.dtype, shape: outShape, data: out }
  if (qz !== undefined && qOut !== undefined) result.quantized = { ...qz, data: qOut }
  return result
}

/** Broadcast two static shapes (numpy rules); -1 = unknown. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length)
  const out: number[] = []
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1
    const db = b[b.length - rank + i] ?? 1
    if (da === 1) out.push(db)
    else if (db === 1) out.push(da)
    else if (da === -1) out.push(db)
    else if (db === -1 || da === db) out.push(da)
    else throw new Error(`cannot broadcast [${a.join(',')}] with [${b.join(',')}]`)
  }
  return out
}

/** Element-wise binary op with broadcasting on constants. */
export function binaryConst(
  a: ConstData,
  b: ConstData,
  outDtype: VDtype,
  fn: (x: number, y: number) => number,
): ConstData {
  const shape = broadcastShapes(a.shape, b.shape)
  const n = sizeOf(shape)
  const out = newData(outDtype, n)
  const rank = shape.length
  const sa = stridesOf(a.shape)
  const sb = stridesOf(b.shape)
  const idx = new Array<number>(rank).fill(0)
  for (let o = 0; o < n; o++) {
    let ia = 0
    let ib = 0
    for (let d = 0; d < rank; d++) {
      const i = at(idx, d)
      const ad = d - (rank - a.shape.length)
      const bd = d - (rank - b.shape.length)
      if (ad >= 0 && at(a.shape, ad) !== 1) ia += i * at(sa, ad)
      if (bd >= 0 && at(b.shape, bd) !== 1) ib += i * at(sb, bd)
    }
    out[o] = fn(at(a.data, ia), at(b.data, ib))
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = at(idx, d) + 1
      if (at(idx, d) < at(shape, d)) break
      idx[d] = 0
    }
  }
  return { dtype: outDtype, shape, data: out }
}

export function unaryConst(a: ConstData, fn: (x: number) => number, outDtype: VDtype = a.dtype): ConstData {
  const out = newData(outDtype, a.data.length)
  for (let i = 0; i < a.data.length; i++) out[i] = fn(at(a.data, i))
  return { dtype: outDtype, shape: [...a.shape], data: out }
}

export function castConst(a: ConstData, dtype: VDtype): ConstData {
  if (a.dtype === dtype) return a
  const toInt = dtype !== 'float32'
  return unaryConst(a, (x) => (dtype === 'bool' ? (x !== 0 ? 1 : 0) : toInt ? Math.trunc(x) : x), dtype)
}

export function concatConst(parts: readonly ConstData[], axis: number): ConstData {
  const first = at(parts, 0)
  const rank = first.shape.length
  const ax = axis < 0 ? axis + rank : axis
  const outShape = [...first.shape]
  outShape[ax] = parts.reduce((s, p) => s + at(p.shape, ax), 0)
  const outer = sizeOf(first.shape.slice(0, ax))
  const out = newData(first.dtype, sizeOf(outShape))
  let o = 0
  for (let i = 0; i < outer; i++) {
    for (const p of parts) {
      const chunk = sizeOf(p.shape.slice(ax))
      for (let k = 0; k < chunk; k++) out[o++] = at(p.data, i * chunk + k)
    }
  }
  return { dtype: first.dtype, shape: outShape, data: out }
}

/** Per-axis slice spec with concrete, already-normalised begin/stride and output size. */
export interface AxisSlice {
  begin: number
  stride: number
  size: number
}

export function sliceConst(c: ConstData, slices: readonly AxisSlice[]): ConstData {
  const outShape = slices.map((s) => s.size)
  const n = sizeOf(outShape)
  const out = newData(c.dtype, n)
  const st = stridesOf(c.shape)
  const rank = outShape.length
  const idx = new Array<number>(rank).fill(0)
  for (let o = 0; o < n; o++) {
    let src = 0
    for (let d = 0; d < rank; d++) {
      const s = at(slices, d)
      src += (s.begin + at(idx, d) * s.stride) * at(st, d)
    }
    out[o] = at(c.data, src)
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = at(idx, d) + 1
      if (at(idx, d) < at(outShape, d)) break
      idx[d] = 0
    }
  }
  return { dtype: c.dtype, shape: outShape, data: out }
}

/** Python-style slice bounds for one axis of known size. */
export function resolveSlice(
  dim: number,
  begin: number,
  end: number,
  stride: number,
  beginMasked: boolean,
  endMasked: boolean,
): AxisSlice {
  if (stride === 0) throw new Error('slice stride 0')
  const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi)
  let b: number
  let e: number
  if (stride > 0) {
    b = beginMasked ? 0 : clamp(begin < 0 ? begin + dim : begin, 0, dim)
    e = endMasked ? dim : clamp(end < 0 ? end + dim : end, 0, dim)
  } else {
    b = beginMasked ? dim - 1 : clamp(begin < 0 ? begin + dim : begin, -1, dim - 1)
    e = endMasked ? -1 : clamp(end < 0 ? end + dim : end, -1, dim - 1)
  }
  const size = Math.max(0, Math.ceil((e - b) / stride))
  return { begin: b, stride, size }
}

/** Resolve a reshape target with at most one -1 against a known input size. */
export function resolveReshape(inShape: readonly number[] | undefined, target: readonly number[]): number[] {
  const out = [...target]
  const unknownIdx = out.indexOf(-1)
  if (unknownIdx >= 0 && inShape !== undefined && !inShape.includes(-1)) {
    const known = out.reduce((a, b, i) => (i === unknownIdx ? a : a * b), 1)
    out[unknownIdx] = known === 0 ? 0 : sizeOf(inShape) / known
  }
  return out
}

export function constToNumbers(c: ConstData): number[] {
  return Array.from(c.data)
}

export function scalarConst(dtype: VDtype, value: number): ConstData {
  const d = newData(dtype, 1)
  d[0] = value
  return { dtype, shape: [], data: d }
}

export function vectorConst(dtype: VDtype, values: readonly number[]): ConstData {
  const d = newData(dtype, values.length)
  values.forEach((v, i) => (d[i] = v))
  return { dtype, shape: [values.length], data: d }
}
