/**
 * Loader for TensorFlow.js weight manifests (`*-weights_manifest.json` + `.bin` shards), as
 * published by @vladmandic/face-api. Decoding follows tfjs-core `io.decodeWeights`:
 *
 * - the shards of one manifest group are concatenated in `paths` order and the weights are laid
 *   out back to back in `weights` order;
 * - a weight without `quantization` is stored raw (little-endian float32 / int32);
 * - a weight with `quantization: {dtype: "uint8"|"uint16", scale, min}` is stored as one
 *   uint8/uint16 per value and decoded as `q * scale + min` (rounded for int32 weights);
 * - `quantization: {dtype: "float16"}` stores IEEE half floats (float32 weights only).
 *
 * uint8/uint16-quantized float32 weights also keep their quantized values (`quantized`), so the
 * ONNX converter can store them quantized (1 or 2 bytes per value instead of 4).
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { TfQuantization } from '../types.js'

export type WeightDtype = 'float32' | 'int32'

/** A decoded weight; structurally a `TfConstTensor` of ../types.ts. */
export interface WeightTensor {
  data: Float32Array | Int32Array
  shape: number[]
  dtype: WeightDtype
  /** float32 weights stored uint8/uint16-quantized: the quantized values, `data[i] = q[i] * scale + min`. */
  quantized?: TfQuantization
}

export interface ManifestQuantization {
  readonly dtype: 'uint8' | 'uint16' | 'float16'
  readonly scale?: number
  readonly min?: number
}

export interface ManifestWeightSpec {
  readonly name: string
  readonly shape: readonly number[]
  readonly dtype: string
  readonly quantization?: ManifestQuantization
}

export interface ManifestGroup {
  readonly paths: readonly string[]
  readonly weights: readonly ManifestWeightSpec[]
}

export type WeightsManifest = readonly ManifestGroup[]

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Validates the JSON of a weights manifest; throws with the offending entry on malformed input. */
export function parseWeightsManifest(json: unknown): WeightsManifest {
  if (!Array.isArray(json)) throw new Error('weights manifest: expected a JSON array of groups')
  return json.map((group: unknown, gi): ManifestGroup => {
    if (!isRecord(group) || !Array.isArray(group['paths']) || !Array.isArray(group['weights'])) {
      throw new Error(`weights manifest: group ${gi} needs "paths" and "weights" arrays`)
    }
    const paths = group['paths'].map((p: unknown) => {
      if (typeof p !== 'string') throw new Error(`weights manifest: group ${gi} has a non-string path`)
      return p
    })
    const weights = group['weights'].map((w: unknown, wi): ManifestWeightSpec => {
      if (
        !isRecord(w) ||
        typeof w['name'] !== 'string' ||
        typeof w['dtype'] !== 'string' ||
        !Array.isArray(w['shape']) ||
        !w['shape'].every((d: unknown) => Number.isInteger(d) && (d as number) >= 0)
      ) {
        throw new Error(`weights manifest: group ${gi} weight ${wi} is malformed`)
      }
      const spec = { name: w['name'], dtype: w['dtype'], shape: w['shape'] as number[] }
      const q = w['quantization']
      if (q === undefined) return spec
      if (!isRecord(q) || (q['dtype'] !== 'uint8' && q['dtype'] !== 'uint16' && q['dtype'] !== 'float16')) {
        throw new Error(`weights manifest: weight ${spec.name} has an unsupported quantization`)
      }
      const quantization: ManifestQuantization =
        q['dtype'] === 'float16'
          ? { dtype: 'float16' }
          : { dtype: q['dtype'], scale: Number(q['scale']), min: Number(q['min']) }
      return { ...spec, quantization }
    })
    return { paths, weights }
  })
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

function float16ToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const frac = h & 0x3ff
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024)
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY
  return sign * 2 ** (exp - 15) * (1 + frac / 1024)
}

/**
 * Decodes the weights of one manifest group from the concatenation of its shards.
 * Returns weights keyed by their manifest name, in manifest order.
 */
export function decodeWeights(
  specs: readonly ManifestWeightSpec[],
  bytes: Uint8Array,
): Map<string, WeightTensor> {
  const out = new Map<string, WeightTensor>()
  // Copy to an aligned buffer once so that typed-array views are always legal.
  const buf = new Uint8Array(bytes.byteLength)
  buf.set(bytes)
  const view = new DataView(buf.buffer)
  let offset = 0
  for (const spec of specs) {
    const size = sizeOf(spec.shape)
    if (spec.dtype !== 'float32' && spec.dtype !== 'int32') {
      throw new Error(`weight ${spec.name}: unsupported dtype ${spec.dtype}`)
    }
    const dtype: WeightDtype = spec.dtype
    const q = spec.quantization
    const bytesPer = q ? (q.dtype === 'uint8' ? 1 : 2) : 4
    const byteLength = size * bytesPer
    if (offset + byteLength > buf.byteLength) {
      throw new Error(`weight ${spec.name}: shards hold ${buf.byteLength} bytes, need ${offset + byteLength}`)
    }
    const data = dtype === 'float32' ? new Float32Array(size) : new Int32Array(size)
    let quantized: TfQuantization | undefined
    if (!q) {
      for (let i = 0; i < size; i++) {
        data[i] =
          dtype === 'float32' ? view.getFloat32(offset + 4 * i, true) : view.getInt32(offset + 4 * i, true)
      }
    } else if (q.dtype === 'float16') {
      if (dtype !== 'float32') throw new Error(`weight ${spec.name}: float16 quantization needs float32`)
      for (let i = 0; i < size; i++) data[i] = float16ToFloat32(view.getUint16(offset + 2 * i, true))
    } else {
      const scale = q.scale ?? Number.NaN
      const min = q.min ?? Number.NaN
      if (!Number.isFinite(scale) || !Number.isFinite(min)) {
        throw new Error(`weight ${spec.name}: ${q.dtype} quantization needs numeric scale and min`)
      }
      const qData = q.dtype === 'uint8' ? new Uint8Array(size) : new Uint16Array(size)
      for (let i = 0; i < size; i++) {
        const v = q.dtype === 'uint8' ? view.getUint8(offset + i) : view.getUint16(offset + 2 * i, true)
        qData[i] = v
        // Same expression as tfjs-core (float64 math, then stored into the typed array).
        data[i] = dtype === 'int32' ? Math.round(v * scale + min) : v * scale + min
      }
      if (dtype === 'float32') quantized = { dtype: q.dtype, scale, min, data: qData }
    }
    const tensor: WeightTensor = { data, shape: [...spec.shape], dtype }
    if (quantized !== undefined) tensor.quantized = quantized
    out.set(spec.name, tensor)
    offset += byteLength
  }
  if (offset !== buf.byteLength) {
    throw new Error(`weights manifest: ${buf.byteLength - offset} trailing bytes after the last weight`)
  }
  return out
}

/**
 * Reads `manifestPath` and its shards (resolved next to it) and decodes every group.
 * Weight names must be unique across groups.
 */
export async function loadWeightsManifest(manifestPath: string): Promise<Map<string, WeightTensor>> {
  const manifest = parseWeightsManifest(JSON.parse(await readFile(manifestPath, 'utf8')) as unknown)
  const dir = path.dirname(manifestPath)
  const all = new Map<string, WeightTensor>()
  for (const group of manifest) {
    const shards = await Promise.all(group.paths.map((p) => readFile(path.join(dir, p))))
    const bytes = new Uint8Array(Buffer.concat(shards))
    for (const [name, t] of decodeWeights(group.weights, bytes)) {
      if (all.has(name)) throw new Error(`weights manifest: duplicate weight ${name}`)
      all.set(name, t)
    }
  }
  return all
}

/** Shard file names of a manifest, relative to the manifest's folder. */
export async function manifestShardPaths(manifestPath: string): Promise<string[]> {
  const manifest = parseWeightsManifest(JSON.parse(await readFile(manifestPath, 'utf8')) as unknown)
  return manifest.flatMap((g) => [...g.paths])
}
