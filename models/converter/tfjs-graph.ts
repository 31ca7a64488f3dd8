/**
 * Reading TFJS graph models (model.json + .bin shards, or in-memory equivalents)
 * into the converter's {@link TfjsGraph} form.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { halfToFloat } from './onnx-proto.js'
import type {
  TfAttrValue,
  TfConstTensor,
  TfGraphIO,
  TfjsGraph,
  TfjsModelJson,
  TfjsWeightSpec,
  TfNode,
  TfShapeProto,
  TfSignature,
} from './types.js'

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 }

/** TF DataType enum name -> converter dtype. */
export function tfDtype(t: string | undefined): 'float32' | 'int32' | 'bool' | 'int64' | undefined {
  return t === undefined ? undefined : TF_DTYPES[t]
}

const TF_DTYPES: Record<string, 'float32' | 'int32' | 'bool' | 'int64'> = {
  DT_FLOAT: 'float32',
  DT_INT32: 'int32',
  DT_BOOL: 'bool',
  DT_INT64: 'int64',
}

export function shapeFromProto(s: TfShapeProto | undefined): number[] | undefined {
  if (s === undefined || s.unknownRank === true) return undefined
  return (s.dim ?? []).map((d) => Number(d.size ?? -1))
}

function decodeWeight(spec: TfjsWeightSpec, bytes: Uint8Array): TfConstTensor {
  const count = spec.shape.reduce((a, b) => a * b, 1)
  const q = spec.quantization
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const targetInt = spec.dtype === 'int32'
  if (q !== undefined) {
    const out = targetInt ? new Int32Array(count) : new Float32Array(count)
    const qd = q.dtype
    // uint8/uint16 float weights keep their quantized values so the converter can store them quantized
    const qData =
      targetInt || qd === 'float16'
        ? undefined
        : qd === 'uint8'
          ? new Uint8Array(count)
          : new Uint16Array(count)
    for (let i = 0; i < count; i++) {
      let v: number
      if (qd === 'float16') v = halfToFloat(dv.getUint16(i * 2, true))
      else {
        const raw = qd === 'uint8' ? dv.getUint8(i) : dv.getUint16(i * 2, true)
        if (qData !== undefined) qData[i] = raw
        v = raw * (q.scale ?? 1) + (q.min ?? 0)
      }
      out[i] = targetInt ? Math.round(v) : v
    }
    const tensor: TfConstTensor = {
      dtype: targetInt ? 'int32' : 'float32',
      shape: [...spec.shape],
      data: out,
    }
    if (qData !== undefined && qd !== 'float16')
      tensor.quantized = { dtype: qd, scale: q.scale ?? 1, min: q.min ?? 0, data: qData }
    return tensor
  }
  switch (spec.dtype) {
    case 'float32': {
      const out = new Float32Array(count)
      for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true)
      return { dtype: 'float32', shape: [...spec.shape], data: out }
    }
    case 'int32': {
      const out = new Int32Array(count)
      for (let i = 0; i < count; i++) out[i] = dv.getInt32(i * 4, true)
      return { dtype: 'int32', shape: [...spec.shape], data: out }
    }
    case 'bool': {
      return { dtype: 'bool', shape: [...spec.shape], data: bytes.slice(0, count) }
    }
    default:
      throw new Error(`weight "${spec.name}": unsupported dtype ${spec.dtype}`)
  }
}

function specByteLength(spec: TfjsWeightSpec): number {
  const count = spec.shape.reduce((a, b) => a * b, 1)
  const dt = spec.quantization?.dtype ?? spec.dtype
  const size = DTYPE_BYTES[dt]
  if (size === undefined) throw new Error(`weight "${spec.name}": unsupported dtype ${dt}`)
  return count * size
}

/** Decode the concatenated shard bytes of a weights manifest group into named tensors. */
export function decodeWeights(
  specs: readonly TfjsWeightSpec[],
  data: Uint8Array,
): Map<string, TfConstTensor> {
  const out = new Map<string, TfConstTensor>()
  let offset = 0
  for (const spec of specs) {
    const n = specByteLength(spec)
    if (offset + n > data.length)
      throw new Error(`weight "${spec.name}" exceeds weight data (${data.length} bytes)`)
    out.set(spec.name, decodeWeight(spec, data.subarray(offset, offset + n)))
    offset += n
  }
  return out
}

function signatureOf(json: TfjsModelJson): TfSignature | undefined {
  return json.signature ?? json.userDefinedMetadata?.signature
}

function ioFromSignature(
  entries: Record<string, { name: string; dtype?: string; tensorShape?: TfShapeProto }> | undefined,
): TfGraphIO[] {
  if (entries === undefined) return []
  return Object.entries(entries).map(([key, v]) => {
    const io: TfGraphIO = { name: v.name, key, dtype: tfDtype(v.dtype) === 'int32' ? 'int32' : 'float32' }
    const shape = shapeFromProto(v.tensorShape)
    if (shape !== undefined) io.shape = shape
    return io
  })
}

/** Strip `:0` and control markers from a tensor reference -> node name. */
export function nodeNameOf(ref: string): string {
  const r = ref.startsWith('^') ? ref.slice(1) : ref
  const m = /^(.*):(\d+)$/.exec(r)
  return m?.[1] ?? r
}

/**
 * Build a {@link TfjsGraph} from a model.json-shaped object and its weights.
 *
 * `weights` maps Const node names to either decoded constants or bare typed arrays
 * (Float32Array / Int32Array); for bare arrays the shape is taken from the
 * weightsManifest entry or, failing that, from the Const node's `value.tensor.tensorShape`.
 */
export function tfjsGraphFromJson(
  json: TfjsModelJson,
  weights: Map<string, TfConstTensor | Float32Array | Int32Array>,
): TfjsGraph {
  const specShapes = new Map<string, number[]>()
  for (const group of json.weightsManifest ?? [])
    for (const w of group.weights) specShapes.set(w.name, w.shape)

  const nodes: TfNode[] = json.modelTopology.node.map((n) => ({
    name: n.name,
    op: n.op,
    inputs: (n.input ?? []).filter((i) => !i.startsWith('^')),
    attrs: n.attr ?? {},
  }))

  const constants = new Map<string, TfConstTensor>()
  for (const n of nodes) {
    if (n.op !== 'Const') continue
    const w = weights.get(n.name)
    if (w === undefined) throw new Error(`Const node "${n.name}" has no weight data`)
    if (w instanceof Float32Array || w instanceof Int32Array) {
      const shape = specShapes.get(n.name) ?? shapeFromProto(n.attrs['value']?.tensor?.tensorShape)
      if (shape === undefined) throw new Error(`Const node "${n.name}": unknown shape`)
      const count = shape.reduce((a, b) => a * b, 1)
      if (count !== w.length)
        throw new Error(
          `Const node "${n.name}": shape [${shape.join(',')}] needs ${count} values, got ${w.length}`,
        )
      constants.set(n.name, {
        dtype: w instanceof Float32Array ? 'float32' : 'int32',
        shape: [...shape],
        data: w,
      })
    } else {
      constants.set(n.name, w)
    }
  }

  const sig = signatureOf(json)
  let inputs = ioFromSignature(sig?.inputs)
  const outputs = ioFromSignature(sig?.outputs)
  const placeholders = nodes.filter((n) => n.op === 'Placeholder')
  if (inputs.length === 0) {
    inputs = placeholders.map((p) => {
      const io: TfGraphIO = {
        name: p.name,
        dtype: tfDtype(p.attrs['dtype']?.type) === 'int32' ? 'int32' : 'float32',
      }
      const shape = shapeFromProto(p.attrs['shape']?.shape)
      if (shape !== undefined) io.shape = shape
      return io
    })
  }
  // Signature input names may carry ":0"; normalise to node names that exist.
  inputs = inputs.map((io) => ({ ...io, name: nodeNameOf(io.name) }))
  const meta: Record<string, string> = {}
  if (json.generatedBy !== undefined) meta['generatedBy'] = json.generatedBy
  if (json.convertedBy !== undefined && json.convertedBy !== null) meta['convertedBy'] = json.convertedBy
  return { nodes, constants, inputs, outputs, meta }
}

/** Load a TFJS graph model from disk (model.json next to its .bin shards). */
export async function loadTfjsGraphModel(modelJsonPath: string): Promise<TfjsGraph> {
  const json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as TfjsModelJson
  const weights = await readWeights(json, path.dirname(modelJsonPath))
  return tfjsGraphFromJson(json, weights)
}

/** Read and decode every weights manifest group of `json` from `dir`. */
export async function readWeights(json: TfjsModelJson, dir: string): Promise<Map<string, TfConstTensor>> {
  const weights = new Map<string, TfConstTensor>()
  for (const group of json.weightsManifest ?? []) {
    const shards = await Promise.all(group.paths.map((p) => readFile(path.join(dir, p))))
    const data = new Uint8Array(Buffer.concat(shards))
    for (const [k, v] of decodeWeights(group.weights, data)) weights.set(k, v)
  }
  return weights
}

// ---- attribute helpers (used by op converters) ------------------------------

export function attrInt(attrs: Record<string, TfAttrValue>, name: string, dflt?: number): number {
  const v = attrs[name]?.i
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`missing int attr "${name}"`)
    return dflt
  }
  return Number(v)
}

export function attrFloat(attrs: Record<string, TfAttrValue>, name: string, dflt: number): number {
  const v = attrs[name]?.f
  return v ?? dflt
}

export function attrBool(attrs: Record<string, TfAttrValue>, name: string, dflt: boolean): boolean {
  const v = attrs[name]?.b
  return v ?? dflt
}

export function attrString(attrs: Record<string, TfAttrValue>, name: string, dflt?: string): string {
  const v = attrs[name]?.s
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`missing string attr "${name}"`)
    return dflt
  }
  return Buffer.from(v, 'base64').toString('utf8')
}

export function attrInts(attrs: Record<string, TfAttrValue>, name: string, dflt?: number[]): number[] {
  const v = attrs[name]?.list?.i
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`missing int list attr "${name}"`)
    return dflt
  }
  return v.map(Number)
}

export function attrStrings(attrs: Record<string, TfAttrValue>, name: string): string[] {
  return (attrs[name]?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8'))
}

export function attrType(attrs: Record<string, TfAttrValue>, name: string): string | undefined {
  return attrs[name]?.type
}
