/** The pipeline as the benchmarks start it: the shipped models, `workers` workers, quiet logs. */
import { createLogger } from '../server/logger.js'
import { createPipeline, DEFAULT_MODELS_DIR, type Pipeline } from '../server/pipeline/index.js'

/** The server's default image limits. */
export const BENCH_LIMITS = { maxPixels: 40_000_000, maxSide: 10_000 }

export function benchPipeline(workers: number): Pipeline {
  return createPipeline({
    workers,
    maxQueue: workers * 4,
    taskTimeoutMs: 60_000,
    limits: BENCH_LIMITS,
    modelsDir: DEFAULT_MODELS_DIR,
    logger: createLogger({ level: 'warn' }),
  })
}
