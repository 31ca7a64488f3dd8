/**
 * The manifest's pipeline section turned into the runners `analyzeFrame` uses. Sessions are made
 * by the caller (the worker, or a benchmark timing each role), so this file never imports
 * onnxruntime.
 */
import { FacewireError } from '../errors.js'
import type { EmbedderModel, FaceModels, ModelRunner } from './analyze.js'
import { layoutFromManifest } from './embedding-layout.js'
import { findModel, type ManifestModel, type ModelAlignment, type ModelManifest } from './manifest.js'

export type ModelRole =
  | 'detector'
  | 'fallbackDetector'
  | 'landmarks'
  | 'embedder'
  | 'secondaryEmbedder'
  | 'liveness'
  | 'eyes'
  | 'smallDetector'

function io(model: ManifestModel, which: 'inputs' | 'outputs', index = 0): string {
  const spec = model[which][index]
  if (spec === undefined)
    throw new FacewireError('ERR_MODEL_INVALID', `${model.id} has no ${which}[${index}]`)
  return spec.name
}

/** The crop framing of an embedder's manifest alignment (dlib's face chip when absent). */
export function chipFraming(alignment: ModelAlignment | undefined): EmbedderModel['framing'] {
  if (alignment?.template === 'arcface') return { template: 'arcface' }
  if (alignment?.side !== undefined && alignment.center !== undefined) {
    return { square: { side: alignment.side, centerX: alignment.center[0], centerY: alignment.center[1] } }
  }
  return { padding: alignment?.padding ?? 0.25 }
}

/** An embedder's input scaling; crops are colour and square. */
function embedderTensor(model: ManifestModel): NonNullable<EmbedderModel['tensor']> {
  const { channels, layout, width, height, scale, offset } = model.preprocessing
  if (channels === 'GRAY' || width !== height || scale === 0) {
    throw new FacewireError(
      'ERR_MODEL_INVALID',
      `embedder ${model.id}: needs a square RGB or BGR input with a non-zero scale`,
      { details: { model: model.id } },
    )
  }
  return { scale, offset, channels, layout }
}

/** The batch size a graph fixes on its first input (undefined when it is dynamic). */
export function fixedBatch(model: ManifestModel): number | undefined {
  const first = model.inputs[0]?.shape[0]
  return typeof first === 'number' && first > 0 ? first : undefined
}

/** A model with one square input and one output (detectors, landmarks, liveness, eyes). */
function squareModel(
  model: ManifestModel,
  run: ModelRunner,
): { run: ModelRunner; input: string; output: string; inputSize: number } {
  return {
    run,
    input: io(model, 'inputs'),
    output: io(model, 'outputs'),
    inputSize: model.preprocessing.width,
  }
}

function embedderModel(model: ManifestModel, run: ModelRunner): EmbedderModel {
  const batch = fixedBatch(model)
  return {
    run,
    input: io(model, 'inputs'),
    output: io(model, 'outputs'),
    chipSize: model.preprocessing.width,
    framing: chipFraming(model.alignment),
    tensor: embedderTensor(model),
    ...(batch === undefined ? {} : { batch }),
  }
}

/** Builds the pipeline's models; `makeRunner` creates one session per model. */
export async function buildFaceModels(
  manifest: ModelManifest,
  makeRunner: (model: ManifestModel, role: ModelRole) => Promise<ModelRunner>,
): Promise<{ models: FaceModels; ids: string[] }> {
  const roles = manifest.pipeline
  const layout = layoutFromManifest(manifest)
  const detector = findModel(manifest, roles.detector)
  const landmarks = findModel(manifest, roles.landmarks)
  const embedder = findModel(manifest, roles.embedder)
  const fallback =
    roles.fallbackDetector === undefined ? undefined : findModel(manifest, roles.fallbackDetector)
  const secondary =
    roles.secondaryEmbedder === undefined ? undefined : findModel(manifest, roles.secondaryEmbedder.model)
  const small = roles.smallDetector === undefined ? undefined : findModel(manifest, roles.smallDetector)
  const liveness = roles.liveness === undefined ? undefined : findModel(manifest, roles.liveness)
  const eyes = roles.eyes === undefined ? undefined : findModel(manifest, roles.eyes)
  const [detectorRun, landmarksRun, embedderRun, fallbackRun, secondaryRun, livenessRun, eyesRun, smallRun] =
    await Promise.all([
      makeRunner(detector, 'detector'),
      makeRunner(landmarks, 'landmarks'),
      makeRunner(embedder, 'embedder'),
      fallback === undefined ? undefined : makeRunner(fallback, 'fallbackDetector'),
      secondary === undefined ? undefined : makeRunner(secondary, 'secondaryEmbedder'),
      liveness === undefined ? undefined : makeRunner(liveness, 'liveness'),
      eyes === undefined ? undefined : makeRunner(eyes, 'eyes'),
      small === undefined ? undefined : makeRunner(small, 'smallDetector'),
    ])
  const models: FaceModels = {
    detector: squareModel(detector, detectorRun),
    landmarks: {
      ...squareModel(landmarks, landmarksRun),
      framing: landmarks.landmarkFraming ?? 'faceapi',
    },
    embedder: embedderModel(embedder, embedderRun),
    layout,
  }
  if (fallback !== undefined && fallbackRun !== undefined) {
    models.fallbackDetector = {
      run: fallbackRun,
      input: io(fallback, 'inputs'),
      boxes: io(fallback, 'outputs', 0),
      scores: io(fallback, 'outputs', 1),
    }
  }
  if (secondary !== undefined && secondaryRun !== undefined) {
    models.secondaryEmbedder = embedderModel(secondary, secondaryRun)
  }
  if (small !== undefined && smallRun !== undefined) models.smallDetector = squareModel(small, smallRun)
  if (liveness !== undefined && livenessRun !== undefined)
    models.liveness = squareModel(liveness, livenessRun)
  if (eyes !== undefined && eyesRun !== undefined) models.eyes = squareModel(eyes, eyesRun)
  const ids = [
    detector.id,
    ...(small === undefined ? [] : [small.id]),
    ...(fallback === undefined ? [] : [fallback.id]),
    landmarks.id,
    embedder.id,
    ...(secondary === undefined ? [] : [secondary.id]),
    ...(liveness === undefined ? [] : [liveness.id]),
    ...(eyes === undefined ? [] : [eyes.id]),
  ]
  return { models, ids }
}
