/**
 * The Prometheus metrics of one app: what each part of the server counts, in a registry of its
 * own. Labels stay bounded: routes are patterns, endpoints come from the configuration, and
 * organizations get a label of their own only while there are few of them (`orgLabel`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** Organizations that get an `org` label of their own; the ones seen after them share `_other`. */
export const MAX_ORG_LABELS = 20

/** The label of the organizations beyond MAX_ORG_LABELS (org ids start with a letter or digit). */
export const OTHER_ORG_LABEL = '_other'

/** Where a decision was answered: a REST recognize image, or a stream frame. */
export type DecisionSource = 'rest' | 'stream'

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
  readonly gallerySeq: Gauge
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
  /** Webhook delivery attempts by endpoint id and outcome (delivered, http_error, timeout, network_error). */
  readonly webhookDeliveries: Counter<'endpoint' | 'outcome'>
  readonly webhookRetries: Counter<'endpoint'>
  /** Events not delivered because the endpoint's queue was full, or the server stopped. */
  readonly webhookDropped: Counter<'endpoint' | 'reason'>
  /** Events given up on: every attempt failed, or the receiver refused it (4xx). */
  readonly webhookDeadLetters: Counter<'endpoint'>
  readonly webhookQueueDepth: Gauge<'endpoint'>
  /** MQTT event publishes by outcome (sent: acknowledged by the broker, failed). */
  readonly mqttPublishes: Counter<'outcome'>
  /** MQTT events not published: the queue held while the broker was away was full, or the server stopped. */
  readonly mqttDropped: Counter<'reason'>
  /** MQTT connections (one per organization) currently connected to the broker. */
  readonly mqttConnected: Gauge
  /**
   * Counts the decisions of the faces of one answer (`facewire_decisions_total`), under the
   * organization's own `org` label for the first MAX_ORG_LABELS organizations this process counts
   * and OTHER_ORG_LABEL for the rest (bounded cardinality).
   */
  countDecisions(
    source: DecisionSource,
    org: string,
    faces: readonly { decision: { status: string } }[],
  ): void
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/** One registry per app (never the global default), so tests can build many apps in a process. */
export function createMetrics(): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'facewire_' })
  const labelledOrgs = new Set<string>()
  const orgLabel = (org: string): string => {
    if (labelledOrgs.has(org)) return org
    if (labelledOrgs.size >= MAX_ORG_LABELS) return OTHER_ORG_LABEL
    labelledOrgs.add(org)
    return org
  }
  const decisions = new Counter({
    name: 'facewire_decisions_total',
    help: `Faces answered with a decision, by source (rest, stream), status (match, uncertain, unknown) and org (the first ${String(MAX_ORG_LABELS)} organizations; the rest are org="${OTHER_ORG_LABEL}")`,
    labelNames: ['source', 'status', 'org'],
    registers: [registry],
  })
  return {
    registry,
    countDecisions(source, org, faces) {
      if (faces.length === 0) return
      const label = orgLabel(org)
      for (const face of faces) decisions.inc({ source, status: face.decision.status, org: label })
    },
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
    gallerySeq: new Gauge({
      name: 'facewire_gallery_seq',
      help: "The store change seq this instance's indexes reflect (cluster mode: compare instances to see one behind)",
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
    webhookDeliveries: new Counter({
      name: 'facewire_webhook_deliveries_total',
      help: 'Webhook delivery attempts by endpoint and outcome (delivered, http_error, timeout, network_error)',
      labelNames: ['endpoint', 'outcome'],
      registers: [registry],
    }),
    webhookRetries: new Counter({
      name: 'facewire_webhook_retries_total',
      help: 'Webhook attempts after a failed one, by endpoint',
      labelNames: ['endpoint'],
      registers: [registry],
    }),
    webhookDropped: new Counter({
      name: 'facewire_webhook_dropped_total',
      help: 'Webhook events not delivered, by endpoint and reason (queue_full, shutdown)',
      labelNames: ['endpoint', 'reason'],
      registers: [registry],
    }),
    webhookDeadLetters: new Counter({
      name: 'facewire_webhook_dead_letters_total',
      help: 'Webhook events given up on after their last attempt, or refused with a 4xx, by endpoint',
      labelNames: ['endpoint'],
      registers: [registry],
    }),
    webhookQueueDepth: new Gauge({
      name: 'facewire_webhook_queue_depth',
      help: 'Webhook events waiting for their endpoint, by endpoint',
      labelNames: ['endpoint'],
      registers: [registry],
    }),
    mqttPublishes: new Counter({
      name: 'facewire_mqtt_publishes_total',
      help: 'MQTT event publishes by outcome (sent: acknowledged by the broker at QoS 1, failed)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    mqttDropped: new Counter({
      name: 'facewire_mqtt_dropped_total',
      help: 'MQTT events not published, by reason (queue_full: the broker was away too long, shutdown)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    mqttConnected: new Gauge({
      name: 'facewire_mqtt_connected',
      help: 'MQTT connections (one per organization in FACEWIRE_MQTT_ORGS) connected to the broker',
      registers: [registry],
    }),
  }
}
