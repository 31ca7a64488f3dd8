/**
 * The manifest's pipeline section turned into the runners `analyzeFrame` uses. Sessions are made
 * by the caller (the worker, or a benchmark timing each role), so this file never imports
 * onnxruntime.
 */
import { FacewireError } from '../errors.js'
import type { EmbedderModel, FaceModels, ModelRunner } from './analyze.js'
import { layoutFromManifest } from './embedding-layout.js'
import { findModel, type ManifestModel, type ModelAlignment, type ModelManifest } from './manifest.js'
import type { FaceChipOptions } from './vision/index.js'

export type ModelRole = 'detector' | 'fallbackDetector' | 'landmarks' | 'embedder' | 'secondaryEmbedder'

function io(model: ManifestModel, which: 'inputs' | 'outputs', index = 0): string {
  const spec = model[which][index]
  if (spec === undefined)
    throw new FacewireError('ERR_MODEL_INVALID', `${model.id} has no ${which}[${index}]`)
  return spec.name
}

/** The crop framing of an embedder's manifest alignment (dlib's face chip when absent). */
export function chipFraming(
  alignment: ModelAlignment | undefined,
): Pick<FaceChipOptions, 'padding' | 'square'> {
  if (alignment?.side !== undefined && alignment.center !== undefined) {
    return { square: { side: alignment.side, centerX: alignment.center[0], centerY: alignment.center[1] } }
  }
  return { padding: alignment?.padding ?? 0.25 }
}

/** An embedder's input scaling; crops are colour, square and NHWC. */
function embedderTensor(model: ManifestModel): NonNullable<EmbedderModel['tensor']> {
  const { channels, layout, width, height, scale, offset } = model.preprocessing
  if (channels === 'GRAY' || layout !== 'NHWC' || width !== height || scale === 0) {
    throw new FacewireError(
      'ERR_MODEL_INVALID',
      `embedder ${model.id}: needs a square NHWC RGB or BGR input with a non-zero scale`,
      { details: { model: model.id } },
    )
  }
  return { scale, offset, channels }
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
  const [detectorRun, landmarksRun, embedderRun, fallbackRun, secondaryRun] = await Promise.all([
    makeRunner(detector, 'detector'),
    makeRunner(landmarks, 'landmarks'),
    makeRunner(embedder, 'embedder'),
    fallback === undefined ? undefined : makeRunner(fallback, 'fallbackDetector'),
    secondary === undefined ? undefined : makeRunner(secondary, 'secondaryEmbedder'),
  ])
  const models: FaceModels = {
    detector: {
      run: detectorRun,
      input: io(detector, 'inputs'),
      output: io(detector, 'outputs'),
      inputSize: detector.preprocessing.width,
    },
    landmarks: {
      run: landmarksRun,
      input: io(landmarks, 'inputs'),
      output: io(landmarks, 'outputs'),
      inputSize: landmarks.preprocessing.width,
    },
    embedder: {
      run: embedderRun,
      input: io(embedder, 'inputs'),
      output: io(embedder, 'outputs'),
      chipSize: embedder.preprocessing.width,
      framing: chipFraming(embedder.alignment),
      tensor: embedderTensor(embedder),
    },
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
    models.secondaryEmbedder = {
      run: secondaryRun,
      input: io(secondary, 'inputs'),
      output: io(secondary, 'outputs'),
      chipSize: secondary.preprocessing.width,
      framing: chipFraming(secondary.alignment),
      tensor: embedderTensor(secondary),
    }
  }
  const ids = [
    detector.id,
    ...(fallback === undefined ? [] : [fallback.id]),
    landmarks.id,
    embedder.id,
    ...(secondary === undefined ? [] : [secondary.id]),
  ]
  return { models, ids }
}
