/**
 * Pipeline worker entry: loads the ONNX models named by the manifest once (sessions from
 * onnx-runner.ts), then analyzes the images the pool sends.
 */
import { workerData } from 'node:worker_threads'
import { analyzeFrame, createFrameBuffers, type FaceModels } from './analyze.js'
import { buildFaceModels } from './face-models.js'
import { loadManifest } from './manifest.js'
import { createOnnxRunner, type OnnxRunner } from './onnx-runner.js'
import type { AnalyzeOptions, FrameAnalysis, PipelineWorkerData } from './types.js'
import { configureSharp } from './vision/index.js'
import { serveTasks } from './worker-runtime.js'

const data = workerData as PipelineWorkerData
/** ONNX Runtime time of the frame being analyzed (one frame at a time per worker). */
const inference = { ms: 0 }

/** Loads the models of the manifest's pipeline section; `release` frees their sessions. */
export async function loadFaceModels(
  dir: string,
): Promise<{ models: FaceModels; ids: string[]; release: () => Promise<void> }> {
  const runners: OnnxRunner[] = []
  const built = await buildFaceModels(await loadManifest(dir), async (model) => {
    const runner = await createOnnxRunner(dir, model, (ms) => {
      inference.ms += ms
    })
    runners.push(runner)
    return runner
  })
  return {
    ...built,
    release: async () => {
      await Promise.all(runners.map((runner) => runner.release()))
    },
  }
}

serveTasks<AnalyzeOptions, FrameAnalysis>(async () => {
  const started = performance.now()
  configureSharp()
  const { models, ids, release } = await loadFaceModels(data.modelsDir)
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
    close: release,
  }
})
