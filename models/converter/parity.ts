/**
 * Numerical parity between a TFJS graph model (run with @tensorflow/tfjs, CPU backend)
 * and its ONNX conversion (run with onnxruntime-node).
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import * as tf from '@tensorflow/tfjs'
import * as ort from 'onnxruntime-node'
import type { TfjsModelJson } from './types.js'

/** Default acceptance thresholds. */
export const PARITY_TOLERANCE = {
  /** max |a-b| / max(1, max |a|) per output. */
  relMaxAbsDiff: 1e-3,
  /** cosine similarity per output (flattened). */
  cosine: 0.9999,
} as const

export interface Feed {
  data: Float32Array
  shape: number[]
}

export interface OutputDiff {
  name: string
  shape: number[]
  maxAbsDiff: number
  /** max |reference| (output scale). */
  scale: number
  relMaxAbsDiff: number
  cosine: number
  pass: boolean
}

let backendReady: Promise<void> | undefined
async function cpuBackend(): Promise<void> {
  backendReady ??= (async () => {
    await tf.setBackend('cpu')
    await tf.ready()
  })()
  return backendReady
}

/** Load a TFJS graph model from a model.json path without tfjs-node (in-memory IOHandler). */
export async function loadTfjsModel(modelJsonPath: string): Promise<tf.GraphModel> {
  await cpuBackend()
  const json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as TfjsModelJson & Record<string, unknown>
  const dir = path.dirname(modelJsonPath)
  const specs = (json.weightsManifest ?? []).flatMap((g) => g.weights)
  const shards: Buffer[] = []
  for (const g of json.weightsManifest ?? [])
    for (const p of g.paths) shards.push(await readFile(path.join(dir, p)))
  const all = Buffer.concat(shards)
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology,
    weightSpecs: specs as unknown as tf.io.WeightsManifestEntry[],
    weightData,
    format: json.format ?? 'graph-model',
  }
  if (json.signature !== undefined) artifacts.signature = json.signature
  if (json.userDefinedMetadata !== undefined)
    artifacts.userDefinedMetadata = json.userDefinedMetadata as unknown as Record<string, never>
  return tf.loadGraphModel(tf.io.fromMemory(artifacts))
}

/** Run a TFJS graph model; `outputs` are TF tensor names (e.g. "Identity:0", "global_pooling/Mean"). */
export async function runTfjs(
  model: tf.GraphModel,
  inputs: Record<string, Feed>,
  outputs: string[],
): Promise<Float32Array[]> {
  await cpuBackend()
  const feed: Record<string, tf.Tensor> = {}
  for (const [k, v] of Object.entries(inputs)) feed[k] = tf.tensor(v.data, v.shape, 'float32')
  const res = model.execute(feed, outputs)
  const list = Array.isArray(res) ? res : [res]
  const out = await Promise.all(list.map(async (t) => Float32Array.from(await t.data())))
  tf.dispose([...list, ...Object.values(feed)])
  return out
}

export async function createSession(bytes: Uint8Array, threads = 1): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  })
}

export async function runOnnx(
  session: ort.InferenceSession,
  inputs: Record<string, Feed>,
  outputs: string[],
): Promise<{ data: Float32Array; dims: number[] }[]> {
  const feeds: Record<string, ort.Tensor> = {}
  for (const [k, v] of Object.entries(inputs)) feeds[k] = new ort.Tensor('float32', v.data, v.shape)
  const res = await session.run(feeds, outputs)
  return outputs.map((o) => {
    const t = res[o]
    if (t === undefined) throw new Error(`ONNX output "${o}" missing`)
    return { data: Float32Array.from(t.data as Float32Array), dims: [...t.dims] }
  })
}

/** Compare two flattened outputs. */
export function compare(
  name: string,
  shape: number[],
  reference: Float32Array,
  actual: Float32Array,
): OutputDiff {
  if (reference.length !== actual.length)
    throw new Error(`output "${name}": length ${actual.length} != reference ${reference.length}`)
  let maxAbs = 0
  let scale = 0
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i] ?? 0
    const a = actual[i] ?? 0
    const d = Math.abs(r - a)
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d
    scale = Math.max(scale, Math.abs(r))
    dot += r * a
    na += r * r
    nb += a * a
  }
  const cosine = na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb)
  const rel = maxAbs / Math.max(1, scale)
  return {
    name,
    shape,
    maxAbsDiff: maxAbs,
    scale,
    relMaxAbsDiff: rel,
    cosine,
    pass: rel <= PARITY_TOLERANCE.relMaxAbsDiff && cosine >= PARITY_TOLERANCE.cosine,
  }
}

/** Deterministic pseudo-random generator (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Test images for an NHWC input of `shape`, in value range [lo, hi]:
 * uniform noise, and a structured image (smooth gradients + a bright disc "face").
 */
export function testInputs(
  shape: number[],
  range: [number, number],
  seed = 1,
): { label: string; feed: Feed }[] {
  const [n, h, w, c] = shape as [number, number, number, number]
  const size = n * h * w * c
  const [lo, hi] = range
  const rand = rng(seed)
  const noise = new Float32Array(size)
  for (let i = 0; i < size; i++) noise[i] = lo + (hi - lo) * rand()
  const structured = new Float32Array(size)
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const dy = (y - h / 2) / h
        const dx = (x - w / 2) / w
        const disc = dx * dx + dy * dy < 0.09 ? 1 : 0
        for (let k = 0; k < c; k++) {
          const g = 0.5 + 0.35 * Math.sin((x / w) * 6.28 * (k + 1) + b) * Math.cos((y / h) * 3.14 * (k + 1))
          const v = disc ? 0.85 - 0.2 * k * dy : g
          structured[((b * h + y) * w + x) * c + k] = lo + (hi - lo) * Math.min(1, Math.max(0, v))
        }
      }
  return [
    { label: 'noise', feed: { data: noise, shape } },
    { label: 'structured', feed: { data: structured, shape } },
  ]
}

export interface ParityCase {
  label: string
  outputs: OutputDiff[]
}

export interface ParitySpec {
  modelJsonPath: string
  onnx: Uint8Array
  /** TF input tensor name -> ONNX input name. */
  input: { tf: string; onnx: string; shape: number[]; range: [number, number] }
  /** TF output tensor names and matching ONNX output names. */
  outputs: { tf: string; onnx: string }[]
  seed?: number
}

/** Run TFJS and ONNX on noise and structured inputs and compare every output. */
export async function checkParity(spec: ParitySpec): Promise<ParityCase[]> {
  const model = await loadTfjsModel(spec.modelJsonPath)
  const session = await createSession(spec.onnx)
  const cases: ParityCase[] = []
  try {
    for (const { label, feed } of testInputs(spec.input.shape, spec.input.range, spec.seed ?? 1)) {
      const ref = await runTfjs(
        model,
        { [spec.input.tf]: feed },
        spec.outputs.map((o) => o.tf),
      )
      const act = await runOnnx(
        session,
        { [spec.input.onnx]: feed },
        spec.outputs.map((o) => o.onnx),
      )
      cases.push({
        label,
        outputs: spec.outputs.map((o, i) =>
          compare(
            o.onnx,
            act[i]?.dims ?? [],
            ref[i] ?? new Float32Array(),
            act[i]?.data ?? new Float32Array(),
          ),
        ),
      })
    }
  } finally {
    model.dispose()
    await session.release()
  }
  return cases
}

// ---- ONNX inspection ---------------------------------------------------------

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let result = 0
  let mul = 1
  for (;;) {
    const b = buf[pos++]
    if (b === undefined) throw new Error('truncated varint')
    result += (b & 0x7f) * mul
    if ((b & 0x80) === 0) return [result, pos]
    mul *= 128
  }
}

/** Iterate the top-level fields of a protobuf message: [field, wireType, start, end] of the payload. */
function* fields(buf: Uint8Array): Generator<[number, number, number, number]> {
  let pos = 0
  while (pos < buf.length) {
    const [tag, p1] = readVarint(buf, pos)
    const field = Math.floor(tag / 8)
    const wire = tag & 7
    if (wire === 0) {
      const [, p2] = readVarint(buf, p1)
      yield [field, wire, p1, p2]
      pos = p2
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, p1)
      yield [field, wire, p2, p2 + len]
      pos = p2 + len
    } else if (wire === 5) {
      yield [field, wire, p1, p1 + 4]
      pos = p1 + 4
    } else if (wire === 1) {
      yield [field, wire, p1, p1 + 8]
      pos = p1 + 8
    } else throw new Error(`unsupported wire type ${wire}`)
  }
}

/** Op-type histogram of an ONNX model file (sorted by op name). */
export function onnxOpHistogram(bytes: Uint8Array): Record<string, number> {
  const counts: Record<string, number> = {}
  const dec = new TextDecoder()
  for (const [f, w, s, e] of fields(bytes)) {
    if (f !== 7 || w !== 2) continue
    const graph = bytes.subarray(s, e)
    for (const [gf, gw, gs, ge] of fields(graph)) {
      if (gf !== 1 || gw !== 2) continue
      const node = graph.subarray(gs, ge)
      let op = ''
      let domain = ''
      for (const [nf, nw, ns, ne] of fields(node)) {
        if (nw !== 2) continue
        if (nf === 4) op = dec.decode(node.subarray(ns, ne))
        if (nf === 7) domain = dec.decode(node.subarray(ns, ne))
      }
      const key = domain !== '' ? `${domain}.${op}` : op
      counts[key] = (counts[key] ?? 0) + 1
    }
  }
  const sorted: Record<string, number> = {}
  for (const k of Object.keys(counts).sort()) sorted[k] = counts[k] ?? 0
  return sorted
}

/** An initializer of an ONNX model file, as read back from its bytes. */
export interface OnnxInitializerInfo {
  name: string
  /** ONNX TensorProto.DataType (1 float, 2 uint8, 4 uint16, 10 float16, 11 double, ...). */
  dataType: number
  dims: number[]
  /** Bytes of raw_data (0 for tensors stored in typed fields). */
  rawBytes: number
}

/** Name, data type, dims and raw size of every graph initializer of an ONNX model file, in file order. */
export function onnxInitializers(bytes: Uint8Array): OnnxInitializerInfo[] {
  const out: OnnxInitializerInfo[] = []
  const dec = new TextDecoder()
  for (const [f, w, s, e] of fields(bytes)) {
    if (f !== 7 || w !== 2) continue
    const graph = bytes.subarray(s, e)
    for (const [gf, gw, gs, ge] of fields(graph)) {
      if (gf !== 5 || gw !== 2) continue
      const t = graph.subarray(gs, ge)
      const info: OnnxInitializerInfo = { name: '', dataType: 0, dims: [], rawBytes: 0 }
      for (const [tf, tw, ts, te] of fields(t)) {
        if (tf === 1 && tw === 0) info.dims.push(readVarint(t, ts)[0])
        else if (tf === 1 && tw === 2) {
          // packed dims
          for (let p = ts; p < te;) {
            const [v, next] = readVarint(t, p)
            info.dims.push(v)
            p = next
          }
        } else if (tf === 2 && tw === 0) info.dataType = readVarint(t, ts)[0]
        else if (tf === 8 && tw === 2) info.name = dec.decode(t.subarray(ts, te))
        else if (tf === 9 && tw === 2) info.rawBytes = te - ts
      }
      out.push(info)
    }
  }
  return out
}

/** Histogram of the graph as optimised by onnxruntime (what actually executes). */
export async function optimizedOpHistogram(
  bytes: Uint8Array,
  tmpFile: string,
): Promise<Record<string, number>> {
  const session = await ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: 'all',
    optimizedModelFilePath: tmpFile,
    intraOpNumThreads: 1,
  })
  await session.release()
  return onnxOpHistogram(new Uint8Array(await readFile(tmpFile)))
}

/** Median wall time (ms) of `fn` over `runs` after `warmup` calls. */
export async function timeIt(
  fn: () => Promise<unknown>,
  runs: number,
  warmup = 2,
): Promise<{ medianMs: number; minMs: number }> {
  for (let i = 0; i < warmup; i++) await fn()
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    await fn()
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  return { medianMs: times[Math.floor(times.length / 2)] ?? NaN, minMs: times[0] ?? NaN }
}
