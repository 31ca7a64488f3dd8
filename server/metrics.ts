import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface Metrics {
  readonly registry: Registry
  readonly httpRequests: Counter<'route' | 'method' | 'status'>
  readonly httpDuration: Histogram<'route' | 'method'>
  readonly pipelineQueueDepth: Gauge
  readonly pipelineBusyWorkers: Gauge
  readonly pipelineTasks: Counter<'outcome'>
  readonly pipelineStageSeconds: Histogram<'stage'>
  /** Faces per state (indexed: searchable; stale: another embedder model), set on scrape. */
  readonly galleryFaces: Gauge<'state'>
  readonly gallerySearchSeconds: Histogram
  readonly galleryChanges: Counter<'kind'>
  readonly wsConnections: Gauge<'route'>
  /** Answers to stream frames: result, dropped, throttled, error. */
  readonly wsFrames: Counter<'outcome'>
  /** Answers not sent because the connection's send buffer was over its bound. */
  readonly wsAnswersDropped: Counter<'type'>
  /** From a frame's arrival to its answer. */
  readonly wsFrameSeconds: Histogram<'outcome'>
  readonly eventsPublished: Counter<'type'>
  /** Cluster mode: events sent to other instances, received from them, or not sent (Redis down). */
  readonly clusterEvents: Counter<'direction'>
  /** WebSocket closes by route and close code (1008: the connection overdrew its budget). */
  readonly wsCloses: Counter<'route' | 'code'>
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
    galleryFaces: new Gauge({
      name: 'facewire_gallery_faces',
      help: 'Enrolled faces: indexed (searchable) or stale (embedded by another model)',
      labelNames: ['state'],
      registers: [registry],
    }),
    gallerySearchSeconds: new Histogram({
      name: 'facewire_gallery_search_seconds',
      help: 'Gallery search and decision time per face',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025],
      registers: [registry],
    }),
    galleryChanges: new Counter({
      name: 'facewire_gallery_changes_total',
      help: 'Gallery index changes by kind (face_add, face_delete, identity_delete)',
      labelNames: ['kind'],
      registers: [registry],
    }),
    wsConnections: new Gauge({
      name: 'facewire_ws_connections',
      help: 'Open WebSocket connections per route',
      labelNames: ['route'],
      registers: [registry],
    }),
    wsFrames: new Counter({
      name: 'facewire_ws_frames_total',
      help: 'Stream frames by answer (result, dropped, throttled, error)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    wsAnswersDropped: new Counter({
      name: 'facewire_ws_answers_dropped_total',
      help: 'Stream answers not sent because the connection was over its send-buffer bound',
      labelNames: ['type'],
      registers: [registry],
    }),
    wsFrameSeconds: new Histogram({
      name: 'facewire_ws_frame_seconds',
      help: 'Stream frame latency from arrival to answer',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    eventsPublished: new Counter({
      name: 'facewire_events_published_total',
      help: 'Events published to /ws/events watchers (match, unknown)',
      labelNames: ['type'],
      registers: [registry],
    }),
    clusterEvents: new Counter({
      name: 'facewire_cluster_events_total',
      help: 'Events relayed over Redis: sent to other instances, received from them, dropped (not sent)',
      labelNames: ['direction'],
      registers: [registry],
    }),
    wsCloses: new Counter({
      name: 'facewire_ws_closes_total',
      help: 'WebSocket connections closed, by route and close code (1008: over its message budget)',
      labelNames: ['route', 'code'],
      registers: [registry],
    }),
  }
}
