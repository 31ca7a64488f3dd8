/**
 * The pipeline's embedding when several embedders are fused: each model's vector L2-normalised,
 * scaled by the square root of its weight and concatenated. Weights sum to 1, so the whole
 * vector has norm 1 and the cosine of two embeddings is the weighted sum of the per-model
 * cosines: score fusion by a plain dot product, which the gallery, tracks and eval all use
 * unchanged. Indexes search on the first part alone and re-rank by the whole vector.
 */
import { FacewireError } from '../errors.js'
import { findModel, type ModelManifest } from './manifest.js'

export interface EmbeddingPart {
  /** Manifest model id. */
  model: string
  /** Values of this part. */
  dim: number
  /** Its share of the fused cosine; the parts' weights sum to 1. */
  weight: number
}

export interface EmbeddingLayout {
  parts: readonly EmbeddingPart[]
  /** Values of the whole embedding. */
  dim: number
  /**
   * What stored faces are tagged with: `<id>@<sha256 prefix>` per model, `*<weight>` and `+`
   * between models when fused. Faces with another id are not searched.
   */
  modelId: string
}

function lastDim(manifest: ModelManifest, id: string): number {
  const model = findModel(manifest, id)
  const dim = model.outputs[0]?.shape.at(-1)
  if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim <= 0) {
    throw new FacewireError(
      'ERR_MODEL_INVALID',
      `embedder ${id}: its first output needs a fixed last dimension`,
    )
  }
  return dim
}

/** The layout of the manifest's pipeline: its embedder, and the secondary one when configured. */
export function layoutFromManifest(manifest: ModelManifest): EmbeddingLayout {
  const { embedder, secondaryEmbedder } = manifest.pipeline
  const tag = (id: string): string => `${id}@${findModel(manifest, id).sha256.slice(0, 12)}`
  if (secondaryEmbedder === undefined) {
    const dim = lastDim(manifest, embedder)
    return { parts: [{ model: embedder, dim, weight: 1 }], dim, modelId: tag(embedder) }
  }
  const parts: EmbeddingPart[] = [
    { model: embedder, dim: lastDim(manifest, embedder), weight: 1 - secondaryEmbedder.weight },
    {
      model: secondaryEmbedder.model,
      dim: lastDim(manifest, secondaryEmbedder.model),
      weight: secondaryEmbedder.weight,
    },
  ]
  return {
    parts,
    dim: parts.reduce((sum, part) => sum + part.dim, 0),
    modelId: parts.map((part) => `${tag(part.model)}*${String(part.weight)}`).join('+'),
  }
}

/** A single-model layout (for callers with bare vectors, such as benchmarks). */
export function singleLayout(dim: number, modelId: string): EmbeddingLayout {
  return { parts: [{ model: modelId, dim, weight: 1 }], dim, modelId }
}

/**
 * Rescales each part of `vector` in place to norm sqrt(weight), so the whole has norm 1 (a zero
 * part stays zero). Averages of embeddings (track fusion) go through this before they are
 * compared. Throws a RangeError when the length is not the layout's.
 */
export function normalizeParts(vector: Float32Array, layout: EmbeddingLayout): Float32Array {
  if (vector.length !== layout.dim) {
    throw new RangeError(`embedding has ${vector.length} values, the layout ${layout.dim}`)
  }
  let start = 0
  for (const part of layout.parts) {
    const end = start + part.dim
    let sum = 0
    for (let i = start; i < end; i++) sum += (vector[i] ?? 0) ** 2
    const scale = sum > 0 ? Math.sqrt(part.weight / sum) : 0
    for (let i = start; i < end; i++) vector[i] = (vector[i] ?? 0) * scale
    start = end
  }
  return vector
}

/** One embedding from the models' raw outputs, in layout order (each of the part's length). */
export function composeEmbedding(outputs: readonly Float32Array[], layout: EmbeddingLayout): Float32Array {
  if (outputs.length !== layout.parts.length) {
    throw new RangeError(`${outputs.length} model outputs for ${layout.parts.length} layout parts`)
  }
  const vector = new Float32Array(layout.dim)
  let start = 0
  layout.parts.forEach((part, i) => {
    const output = outputs[i] as Float32Array
    if (output.length !== part.dim) {
      throw new RangeError(`${part.model} gave ${output.length} values, the layout wants ${part.dim}`)
    }
    vector.set(output, start)
    start += part.dim
  })
  return normalizeParts(vector, layout)
}

/** The first part (the searched one), as a view of `vector`. */
export function primaryPart(vector: Float32Array, layout: EmbeddingLayout): Float32Array {
  return vector.subarray(0, layout.parts[0]?.dim ?? vector.length)
}

/**
 * The cosine of two embeddings of norm 1 (every embedding the pipeline composes): their dot
 * product, the score the gallery searches by. Vectors of another norm give the dot product scaled
 * by both norms (a layout part of a composed embedding: by the square root of each weight).
 */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0
  for (let i = 0; i < a.length; i++) dot += (a[i] ?? 0) * (b[i] ?? 0)
  return dot
}

/** Cosine of each part of two layout-normalised embeddings, in layout order. */
export function partCosines(a: Float32Array, b: Float32Array, layout: EmbeddingLayout): number[] {
  let start = 0
  return layout.parts.map((part) => {
    const end = start + part.dim
    const dot = cosine(a.subarray(start, end), b.subarray(start, end))
    start = end
    return dot / part.weight
  })
}
