import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  composeEmbedding,
  cosine,
  layoutFromManifest,
  normalizeParts,
  partCosines,
  primaryPart,
  type EmbeddingLayout,
} from '../../../server/pipeline/embedding-layout.js'
import type { ModelManifest } from '../../../server/pipeline/manifest.js'
import { seededRandom } from '../../helpers/images.js'

const layout: EmbeddingLayout = {
  parts: [
    { model: 'a', dim: 4, weight: 0.8 },
    { model: 'b', dim: 6, weight: 0.2 },
  ],
  dim: 10,
  modelId: 'a*0.8+b*0.2',
}

function raw(seed: number, dim: number): Float32Array {
  const random = seededRandom(seed)
  return Float32Array.from({ length: dim }, () => (random() - 0.5) * 7)
}

/** The cosine of raw vectors, of any norm. */
const rawCosine = (a: Float32Array, b: Float32Array): number =>
  cosine(a, b) / Math.sqrt(cosine(a, a) * cosine(b, b))

test('the dot product of two composed embeddings is the weighted sum of the per-model cosines', () => {
  const a1 = raw(1, 4)
  const a2 = raw(2, 6)
  const b1 = raw(3, 4)
  const b2 = raw(4, 6)
  const a = composeEmbedding([a1, a2], layout)
  const b = composeEmbedding([b1, b2], layout)
  assert.equal(a.length, 10)
  const norm = Math.hypot(...a)
  assert.ok(Math.abs(norm - 1) < 1e-6, `norm ${norm}`)
  let dot = 0
  for (let i = 0; i < 10; i++) dot += (a[i] ?? 0) * (b[i] ?? 0)
  const expected = 0.8 * rawCosine(a1, b1) + 0.2 * rawCosine(a2, b2)
  assert.ok(Math.abs(dot - expected) < 1e-6, `${dot} vs ${expected}`)
  const [c1, c2] = partCosines(a, b, layout)
  assert.ok(Math.abs((c1 ?? 0) - rawCosine(a1, b1)) < 1e-6)
  assert.ok(Math.abs((c2 ?? 0) - rawCosine(a2, b2)) < 1e-6)
  // The searched part points where the first model's output points.
  assert.ok(Math.abs(rawCosine(primaryPart(a, layout), a1) - 1) < 1e-6)
  assert.equal(primaryPart(a, layout).length, 4)
})

test('normalizeParts restores each part of an average to its weight, and checks the length', () => {
  const a = composeEmbedding([raw(5, 4), raw(6, 6)], layout)
  const b = composeEmbedding([raw(7, 4), raw(8, 6)], layout)
  const mean = a.map((x, i) => (x + (b[i] ?? 0)) / 2)
  normalizeParts(mean, layout)
  const first = Math.hypot(...mean.subarray(0, 4))
  const second = Math.hypot(...mean.subarray(4))
  assert.ok(Math.abs(first - Math.sqrt(0.8)) < 1e-6)
  assert.ok(Math.abs(second - Math.sqrt(0.2)) < 1e-6)
  assert.throws(() => normalizeParts(new Float32Array(9), layout), RangeError)
  assert.throws(() => composeEmbedding([raw(1, 4)], layout), RangeError)
  assert.throws(() => composeEmbedding([raw(1, 4), raw(2, 5)], layout), RangeError)
})

function manifest(secondary?: { model: string; weight: number }): ModelManifest {
  const model = (id: string, dim: number, sha: string) => ({
    id,
    file: `${id}.onnx`,
    sha256: sha.repeat(64),
    inputs: [{ name: 'input', dtype: 'float32' as const, shape: ['N', 150, 150, 3] }],
    outputs: [{ name: 'out', dtype: 'float32' as const, shape: ['N', dim] }],
    preprocessing: {
      width: 150,
      height: 150,
      channels: 'RGB' as const,
      layout: 'NHWC' as const,
      dtype: 'float32' as const,
      scale: 1,
      offset: 0,
    },
  })
  return {
    version: 1,
    pipeline: {
      detector: 'd',
      landmarks: 'l',
      embedder: 'dlib',
      ...(secondary === undefined ? {} : { secondaryEmbedder: secondary }),
    },
    models: [model('dlib', 128, 'a'), model('faceres', 1024, 'b')],
  }
}

test('the layout and the model id stored faces get come from the manifest pipeline', () => {
  const single = layoutFromManifest(manifest())
  assert.equal(single.dim, 128)
  assert.equal(single.modelId, `dlib@${'a'.repeat(12)}`)
  const fused = layoutFromManifest(manifest({ model: 'faceres', weight: 0.11 }))
  assert.equal(fused.dim, 1152)
  assert.deepEqual(
    fused.parts.map((p) => [p.model, p.dim, p.weight]),
    [
      ['dlib', 128, 0.89],
      ['faceres', 1024, 0.11],
    ],
  )
  assert.equal(fused.modelId, `dlib@${'a'.repeat(12)}*0.89+faceres@${'b'.repeat(12)}*0.11`)
  // Another weight is another model: faces enrolled under one are not compared under the other.
  assert.notEqual(layoutFromManifest(manifest({ model: 'faceres', weight: 0.2 })).modelId, fused.modelId)
})
