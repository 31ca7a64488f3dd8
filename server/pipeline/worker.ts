/**
 * Pipeline worker entry: loads the ONNX models named by the manifest once, then analyzes the
 * images the pool sends. The only module that imports onnxruntime-node.
 */
import { workerData } from 'node:worker_threads'
import * as ort from 'onnxruntime-node'
import { FacewireError } from '../errors.js'
import {
  analyzeFrame,
  createFrameBuffers,
  type FaceModels,
  type ModelRunner,
  type TensorData,
} from './analyze.js'
import { buildFaceModels } from './face-models.js'
import { loadManifest, readVerifiedModel, type ManifestModel } from './manifest.js'
import type { AnalyzeOptions, FrameAnalysis, PipelineWorkerData } from './types.js'
import { configureSharp } from './vision/index.js'
import { serveTasks } from './worker-runtime.js'

const data = workerData as PipelineWorkerData
/** ONNX Runtime time of the frame being analyzed (one frame at a time per worker). */
const inference = { ms: 0 }

async function createRunner(dir: string, model: ManifestModel): Promise<ModelRunner> {
  const bytes = await readVerifiedModel(dir, model)
  let session: ort.InferenceSession
  try {
    // One intra-op thread per worker: the pool parallelises across frames, not inside one.
    session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    })
  } catch (cause) {
    throw new FacewireError('ERR_MODEL_INVALID', `onnxruntime cannot load ${model.file}`, {
      cause,
      details: { model: model.id },
    })
  }
  return async (feeds) => {
    const inputs: Record<string, ort.Tensor> = {}
    for (const [name, tensor] of Object.entries(feeds)) {
      inputs[name] = new ort.Tensor('float32', tensor.data, [...tensor.dims])
    }
    const started = performance.now()
    const results = await session.run(inputs)
    inference.ms += performance.now() - started
    const out: Record<string, TensorData> = {}
    for (const [name, tensor] of Object.entries(results)) {
      out[name] = { data: tensor.data as Float32Array, dims: tensor.dims }
    }
    return out
  }
}

/** Loads the models of the manifest's pipeline section. */
export async function loadFaceModels(dir: string): Promise<{ models: FaceModels; ids: string[] }> {
  return buildFaceModels(await loadManifest(dir), (model) => createRunner(dir, model))
}

serveTasks<AnalyzeOptions, FrameAnalysis>(async () => {
  const started = performance.now()
  configureSharp()
  const { models, ids } = await loadFaceModels(data.modelsDir)
  // Tasks run one at a time (serveTasks chains them), so one set of frame buffers serves all.
  const buffers = createFrameBuffers()
  return {
    info: { loadMs: performance.now() - started, models: ids },
    async handle(bytes, options) {
      inference.ms = 0
      const result = await analyzeFrame(bytes, models, options, data.limits, buffers)
      result.timings.inferenceMs = inference.ms
      // Embeddings go back by transfer: each is its own small buffer (see analyze.ts normalise).
      return { result, transfer: result.faces.map((face) => face.embedding.buffer as ArrayBuffer) }
    },
  }
})
