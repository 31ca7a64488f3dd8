import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface Metrics {
  readonly registry: Registry
  readonly httpRequests: Counter<'route' | 'method' | 'status'>
  readonly httpDuration: Histogram<'route' | 'method'>
  readonly pipelineQueueDepth: Gauge
  readonly pipelineBusyWorkers: Gauge
  readonly pipelineTasks: Counter<'outcome'>
  readonly pipelineStageSeconds: Histogram<'stage'>
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/** One registry per app (never the global default), so tests can build many apps in a process. */
export function createMetrics(): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'facewire_' })
  return {
    registry,
    httpRequests: new Counter({
      name: 'facewire_http_requests_total',
      help: 'HTTP requests answered, by route pattern, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'facewire_http_request_duration_seconds',
      help: 'Time from request to reply, by route pattern',
      labelNames: ['route', 'method'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    pipelineQueueDepth: new Gauge({
      name: 'facewire_pipeline_queue_depth',
      help: 'Images waiting for a pipeline worker',
      registers: [registry],
    }),
    pipelineBusyWorkers: new Gauge({
      name: 'facewire_pipeline_busy_workers',
      help: 'Pipeline workers processing an image',
      registers: [registry],
    }),
    pipelineTasks: new Counter({
      name: 'facewire_pipeline_tasks_total',
      help: 'Pipeline tasks by outcome (ok, error, timeout, crashed, busy)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    pipelineStageSeconds: new Histogram({
      name: 'facewire_pipeline_stage_seconds',
      help: 'Per-stage pipeline latency (queue, decode, detect, align, embed, total)',
      labelNames: ['stage'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
  }
}
