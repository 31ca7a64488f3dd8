import { fileURLToPath } from 'node:url'
import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { Readiness } from '../readiness.js'
import { createPool, type PoolStats } from './pool.js'
import type { WorkerInfo } from './protocol.js'
import type { AnalyzeOptions, FrameAnalysis, PipelineWorkerData } from './types.js'

export type * from './types.js'

export interface PipelineOptions {
  workers: number
  maxQueue: number
  taskTimeoutMs: number
  limits: PipelineWorkerData['limits']
  modelsDir: string
  logger: Logger
  metrics?: Metrics
  readiness?: Readiness
}

export interface Pipeline {
  readonly ready: Promise<WorkerInfo>
  /** Decode, detect, align and embed one image. Rejects with a catalogue error. */
  analyze(bytes: Uint8Array, options: AnalyzeOptions): Promise<FrameAnalysis & { queueMs: number }>
  /** How many images `analyze` would start at once, with no wait in the queue. */
  capacity(): number
  /** Calls `listener` when a worker frees up with nothing queued for it; returns the unsubscribe. */
  onCapacity(listener: () => void): () => void
  stats(): PoolStats
  close(): Promise<void>
}

/** The models shipped with facewire: `<package>/models`. */
export const DEFAULT_MODELS_DIR = fileURLToPath(new URL('../../../models/', import.meta.url))

export function pipelineOptionsFromConfig(config: Config): Omit<PipelineOptions, 'logger'> {
  return {
    workers: config.workers,
    maxQueue: config.pipelineQueue,
    taskTimeoutMs: config.pipelineTimeoutMs,
    limits: { maxPixels: config.maxImagePixels, maxSide: config.maxImageSide },
    modelsDir: config.modelsDir ?? DEFAULT_MODELS_DIR,
  }
}

const STAGES = ['decode', 'detect', 'landmarks', 'align', 'embed', 'total', 'inference'] as const

/** The per-frame pipeline: a worker pool whose workers each load the ONNX models once. */
export function createPipeline(options: PipelineOptions): Pipeline {
  const { metrics, readiness, logger } = options
  readiness?.register('models')
  const workerData: PipelineWorkerData = { modelsDir: options.modelsDir, limits: options.limits }
  const pool = createPool<AnalyzeOptions, FrameAnalysis>({
    workerUrl: new URL('./worker.js', import.meta.url),
    workerData,
    size: options.workers,
    maxQueue: options.maxQueue,
    taskTimeoutMs: options.taskTimeoutMs,
    logger,
    ...(metrics === undefined
      ? {}
      : {
          hooks: {
            onQueueDepth: (depth) => {
              metrics.pipelineQueueDepth.set(depth)
            },
            onBusyWorkers: (busy) => {
              metrics.pipelineBusyWorkers.set(busy)
            },
            onTaskDone: (outcome, queueMs) => {
              metrics.pipelineTasks.inc({ outcome })
              if (outcome !== 'busy') metrics.pipelineStageSeconds.observe({ stage: 'queue' }, queueMs / 1000)
            },
          },
        }),
  })
  const ready = pool.ready.then((info) => {
    readiness?.markReady('models')
    logger.info({ workers: options.workers, models: info.models, loadMs: info.loadMs }, 'pipeline.ready')
    return info
  })
  ready.catch(() => undefined)
  return {
    ready,
    async analyze(bytes, analyzeOptions) {
      const { result, queueMs } = await pool.run(bytes, analyzeOptions)
      if (metrics !== undefined) {
        for (const stage of STAGES) {
          metrics.pipelineStageSeconds.observe({ stage }, result.timings[`${stage}Ms`] / 1000)
        }
      }
      return { ...result, queueMs }
    },
    capacity: () => pool.capacity(),
    onCapacity: (listener) => pool.onCapacity(listener),
    stats: () => pool.stats(),
    close: () => pool.close(),
  }
}
