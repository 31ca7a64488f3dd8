/**
 * One ONNX Runtime session as a `ModelRunner`: the only module that imports onnxruntime-node (the
 * worker, and benchmarks timing the same sessions, create runners here).
 */
import * as ort from 'onnxruntime-node'
import { FacewireError } from '../errors.js'
import type { ModelRunner, TensorData } from './analyze.js'
import { readVerifiedModel, type ManifestModel } from './manifest.js'

/** One intra-op thread per session: the pool parallelises across frames, not inside one. */
export const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
}

/**
 * Loads `model` from `dir` (its sha256 checked against the manifest) and returns a runner that
 * reports each run's ONNX Runtime time to `onInference`. ERR_MODEL_INVALID when it cannot load.
 */
/** A runner whose session can be released (the worker does so before it exits). */
export type OnnxRunner = ModelRunner & { release(): Promise<void> }

export async function createOnnxRunner(
  dir: string,
  model: ManifestModel,
  onInference: (ms: number) => void,
): Promise<OnnxRunner> {
  const bytes = await readVerifiedModel(dir, model)
  let session: ort.InferenceSession
  try {
    session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS)
  } catch (cause) {
    throw new FacewireError('ERR_MODEL_INVALID', `onnxruntime cannot load ${model.file}`, {
      cause,
      details: { model: model.id },
    })
  }
  const run: ModelRunner = async (feeds) => {
    const inputs: Record<string, ort.Tensor> = {}
    for (const [name, tensor] of Object.entries(feeds)) {
      inputs[name] = new ort.Tensor('float32', tensor.data, [...tensor.dims])
    }
    const started = performance.now()
    const results = await session.run(inputs)
    onInference(performance.now() - started)
    const out: Record<string, TensorData> = {}
    for (const [name, tensor] of Object.entries(results)) {
      out[name] = { data: tensor.data as Float32Array, dims: tensor.dims }
    }
    return out
  }
  return Object.assign(run, { release: () => session.release() })
}
