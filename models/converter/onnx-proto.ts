/**
 * Minimal, dependency-free protobuf encoder for the subset of onnx.proto that the
 * converter emits. Field numbers follow onnx/onnx.proto (proto2). Output is fully
 * deterministic: fields are written in a fixed order, maps are never iterated, and
 * tensors are stored little-endian in raw_data.
 */

/** ONNX TensorProto.DataType values used by the converter. */
export const OnnxDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const
export type OnnxDataTypeId = (typeof OnnxDataType)[keyof typeof OnnxDataType]

export interface OnnxTensor {
  name: string
  dataType: OnnxDataTypeId
  dims: readonly number[]
  /** Little-endian element bytes (raw_data). */
  raw: Uint8Array
}

export type OnnxAttributeValue =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: OnnxTensor }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'strings'; value: readonly string[] }

export interface OnnxNode {
  name: string
  opType: string
  inputs: string[]
  outputs: string[]
  /** Attributes in insertion order (the encoder writes them sorted by name). */
  attributes: Record<string, OnnxAttributeValue>
  domain?: string
}

/** A dimension: a fixed size, a symbolic name (dim_param) or null for unknown. */
export type OnnxDim = number | string | null

export interface OnnxValueInfo {
  name: string
  elemType: OnnxDataTypeId
  /** undefined = unknown rank. */
  shape?: readonly OnnxDim[]
}

export interface OnnxGraph {
  name: string
  nodes: OnnxNode[]
  initializers: OnnxTensor[]
  inputs: OnnxValueInfo[]
  outputs: OnnxValueInfo[]
  docString?: string
}

export interface OnnxModel {
  irVersion: number
  opsetImports: { domain: string; version: number }[]
  producerName: string
  producerVersion: string
  docString?: string
  graph: OnnxGraph
  metadata?: [string, string][]
}

const ATTR_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const

const textEncoder = new TextEncoder()

/** Growable byte sink with protobuf wire-format primitives. */
class Writer {
  private buf = new Uint8Array(1024)
  private len = 0

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return
    let cap = this.buf.length * 2
    while (cap < this.len + n) cap *= 2
    const next = new Uint8Array(cap)
    next.set(this.buf.subarray(0, this.len))
    this.buf = next
  }

  byte(b: number): void {
    this.ensure(1)
    this.buf[this.len++] = b
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length)
    this.buf.set(b, this.len)
    this.len += b.length
  }

  /** Varint of a non-negative or negative integer (negatives use 10-byte two's complement). */
  varint(v: number): void {
    if (!Number.isInteger(v)) throw new Error(`varint: not an integer: ${v}`)
    if (v >= 0 && v <= 0xffffffff) {
      let x = v
      while (x > 0x7f) {
        this.byte((x & 0x7f) | 0x80)
        x = Math.floor(x / 128)
      }
      this.byte(x)
      return
    }
    let x = BigInt.asUintN(64, BigInt(v))
    while (x > 0x7fn) {
      this.byte(Number(x & 0x7fn) | 0x80)
      x >>= 7n
    }
    this.byte(Number(x))
  }

  tag(field: number, wire: 0 | 1 | 2 | 5): void {
    this.varint(field * 8 + wire)
  }

  int(field: number, v: number): void {
    this.tag(field, 0)
    this.varint(v)
  }

  float(field: number, v: number): void {
    this.tag(field, 5)
    const b = new Uint8Array(4)
    new DataView(b.buffer).setFloat32(0, v, true)
    this.bytes(b)
  }

  lenDelimited(field: number, b: Uint8Array): void {
    this.tag(field, 2)
    this.varint(b.length)
    this.bytes(b)
  }

  string(field: number, s: string): void {
    this.lenDelimited(field, textEncoder.encode(s))
  }

  message(field: number, fill: (w: Writer) => void): void {
    const inner = new Writer()
    fill(inner)
    this.lenDelimited(field, inner.finish())
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len)
  }
}

function writeTensor(w: Writer, t: OnnxTensor): void {
  for (const d of t.dims) w.int(1, d) // dims
  w.int(2, t.dataType) // data_type
  w.string(8, t.name) // name
  w.lenDelimited(9, t.raw) // raw_data
}

function writeAttribute(w: Writer, name: string, a: OnnxAttributeValue): void {
  w.string(1, name)
  switch (a.kind) {
    case 'float':
      w.float(2, a.value)
      w.int(20, ATTR_TYPE.FLOAT)
      break
    case 'int':
      w.int(3, a.value)
      w.int(20, ATTR_TYPE.INT)
      break
    case 'string':
      w.string(4, a.value)
      w.int(20, ATTR_TYPE.STRING)
      break
    case 'tensor':
      w.message(5, (m) => {
        writeTensor(m, a.value)
      })
      w.int(20, ATTR_TYPE.TENSOR)
      break
    case 'floats':
      for (const f of a.value) w.float(7, f)
      w.int(20, ATTR_TYPE.FLOATS)
      break
    case 'ints':
      for (const i of a.value) w.int(8, i)
      w.int(20, ATTR_TYPE.INTS)
      break
    case 'strings':
      for (const s of a.value) w.string(9, s)
      w.int(20, ATTR_TYPE.STRINGS)
      break
  }
}

function writeNode(w: Writer, n: OnnxNode): void {
  for (const i of n.inputs) w.string(1, i)
  for (const o of n.outputs) w.string(2, o)
  w.string(3, n.name)
  w.string(4, n.opType)
  for (const key of Object.keys(n.attributes).sort()) {
    const a = n.attributes[key]
    if (a !== undefined)
      w.message(5, (m) => {
        writeAttribute(m, key, a)
      })
  }
  if (n.domain !== undefined && n.domain !== '') w.string(7, n.domain)
}

function writeValueInfo(w: Writer, v: OnnxValueInfo): void {
  w.string(1, v.name)
  w.message(2, (type) => {
    type.message(1, (tensorType) => {
      tensorType.int(1, v.elemType)
      if (v.shape !== undefined) {
        const shape = v.shape
        tensorType.message(2, (s) => {
          for (const d of shape) {
            s.message(1, (dim) => {
              if (typeof d === 'number') dim.int(1, d)
              else if (typeof d === 'string') dim.string(2, d)
            })
          }
        })
      }
    })
  })
}

function writeGraph(w: Writer, g: OnnxGraph): void {
  for (const n of g.nodes)
    w.message(1, (m) => {
      writeNode(m, n)
    })
  w.string(2, g.name)
  for (const t of g.initializers)
    w.message(5, (m) => {
      writeTensor(m, t)
    })
  if (g.docString !== undefined) w.string(10, g.docString)
  for (const i of g.inputs)
    w.message(11, (m) => {
      writeValueInfo(m, i)
    })
  for (const o of g.outputs)
    w.message(12, (m) => {
      writeValueInfo(m, o)
    })
}

/** Serialize a model to ONNX protobuf bytes. */
export function encodeModel(model: OnnxModel): Uint8Array {
  const w = new Writer()
  w.int(1, model.irVersion)
  w.string(2, model.producerName)
  w.string(3, model.producerVersion)
  if (model.docString !== undefined) w.string(6, model.docString)
  w.message(7, (g) => {
    writeGraph(g, model.graph)
  })
  for (const op of model.opsetImports) {
    w.message(8, (m) => {
      if (op.domain !== '') m.string(1, op.domain)
      m.int(2, op.version)
    })
  }
  for (const [key, value] of model.metadata ?? []) {
    w.message(14, (m) => {
      m.string(1, key)
      m.string(2, value)
    })
  }
  return w.finish()
}

// ---- tensor helpers -------------------------------------------------------

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength))
}

export function floatTensor(name: string, dims: readonly number[], data: Float32Array): OnnxTensor {
  return { name, dataType: OnnxDataType.FLOAT, dims, raw: bytesOf(data) }
}

export function int64Tensor(name: string, dims: readonly number[], data: ArrayLike<number>): OnnxTensor {
  const arr = new BigInt64Array(data.length)
  for (let i = 0; i < data.length; i++) arr[i] = BigInt(data[i] ?? 0)
  return { name, dataType: OnnxDataType.INT64, dims, raw: bytesOf(arr) }
}

export function int32Tensor(name: string, dims: readonly number[], data: Int32Array): OnnxTensor {
  return { name, dataType: OnnxDataType.INT32, dims, raw: bytesOf(data) }
}

export function uint8Tensor(name: string, dims: readonly number[], data: Uint8Array): OnnxTensor {
  return { name, dataType: OnnxDataType.UINT8, dims, raw: bytesOf(data) }
}

/** uint16 tensor; raw_data is little-endian regardless of the host. */
export function uint16Tensor(name: string, dims: readonly number[], data: Uint16Array): OnnxTensor {
  const raw = new Uint8Array(data.length * 2)
  const dv = new DataView(raw.buffer)
  for (let i = 0; i < data.length; i++) dv.setUint16(i * 2, data[i] ?? 0, true)
  return { name, dataType: OnnxDataType.UINT16, dims, raw }
}

export function doubleTensor(name: string, dims: readonly number[], data: Float64Array): OnnxTensor {
  return { name, dataType: OnnxDataType.DOUBLE, dims, raw: bytesOf(data) }
}

export function boolTensor(name: string, dims: readonly number[], data: Uint8Array): OnnxTensor {
  return { name, dataType: OnnxDataType.BOOL, dims, raw: bytesOf(data) }
}

/** float32 -> IEEE half bits (round to nearest even). */
export function floatToHalf(value: number): number {
  const f = new Float32Array(1)
  const u = new Uint32Array(f.buffer)
  f[0] = value
  const x = u[0] ?? 0
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0)
  let e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const mid = 1 << (shift - 1)
    if (rem > mid || (rem === mid && (half & 1) === 1)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++
  e = half >>> 10
  return sign | half
}

/** IEEE half bits -> float32 value. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

/**
 * If every value of `data` survives a float32 -> float16 -> float32 round trip exactly,
 * return the half bits; otherwise undefined. Used to store weights that came from
 * float16-quantized TFJS shards losslessly at half the size.
 */
export function exactHalf(data: Float32Array): Uint16Array | undefined {
  const out = new Uint16Array(data.length)
  for (let i = 0; i < data.length; i++) {
    const v = data[i] ?? 0
    const h = floatToHalf(v)
    if (halfToFloat(h) !== v && !(Number.isNaN(v) && Number.isNaN(halfToFloat(h)))) return undefined
    out[i] = h
  }
  return out
}

export function float16Tensor(name: string, dims: readonly number[], halves: Uint16Array): OnnxTensor {
  return { name, dataType: OnnxDataType.FLOAT16, dims, raw: bytesOf(halves) }
}
