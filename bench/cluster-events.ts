/**
 * Event fan-out latency across instances, for `npm run bench:cluster` (bench/cluster.ts calls
 * `measureEventFanout`; it is not a script of its own). Two running instances sharing Redis: a
 * person is enrolled on the origin in an organization of the run's own, then each sample opens a
 * new stream on the origin (a new session, so a new match event), shows the person until matched,
 * and times the event from its decision (the event's `at`, stamped on the origin) to its arrival at
 * a watcher on the other instance, and at a watcher on the origin itself for comparison (what an
 * event costs without Redis). Both instances and this process must share one clock (one machine).
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { createApiClient } from '../client/api-client.js'
import { openDetectStream, openEventStream, type EventStream } from '../client/stream-client.js'
import type { Scope } from '../server/auth.js'
import { summarize } from './stats.js'

export interface EventFanoutOptions {
  /** Base URL of the instance streams are sent to, where matches are decided. */
  origin: string
  /** Base URL of another instance sharing Redis with the origin, whose watcher is timed. */
  watched: string
  /** A token for `org` with `scopes`, accepted by both instances. */
  token: (org: string, scopes: Scope[]) => string
  /** A photo to enroll the person from, and another of the same person to stream. */
  enrollPhoto: Uint8Array
  streamPhoto: Uint8Array
  /** Events timed (default 50). */
  samples?: number
  /** How long an event may take before it counts as missed (default 5000 ms). */
  timeoutMs?: number
}

export interface LatencySummary {
  n: number
  p50: number
  p99: number
  mean: number
}

export interface EventFanoutResult {
  samples: number
  /** Decision on the origin to arrival at the watcher on the other instance, in ms. */
  acrossMs: LatencySummary
  /** Decision on the origin to arrival at a watcher on the origin, in ms. */
  localMs: LatencySummary
  /** Events that did not reach the other instance's watcher within the timeout. */
  missed: number
}

/**
 * Runs the samples one after the other and summarizes them. The event's `at` has millisecond
 * resolution, so both latencies read up to 1 ms high; their difference is what Redis adds.
 */
export async function measureEventFanout(options: EventFanoutOptions): Promise<EventFanoutResult> {
  const samples = options.samples ?? 50
  const timeoutMs = options.timeoutMs ?? 5000
  const org = `bench-events-${randomBytes(4).toString('hex')}`
  const api = createApiClient({ baseUrl: options.origin, token: options.token(org, ['enroll']) })
  const person = await api.createIdentity({ name: 'bench: event fan-out' })
  const watchToken = options.token(org, ['watch'])
  const across = await openEventStream({ baseUrl: options.watched, token: watchToken })
  const local = await openEventStream({ baseUrl: options.origin, token: watchToken })
  const arrivals = new Map<EventStream, Map<string, number>>([
    [across, new Map()],
    [local, new Map()],
  ])
  for (const [watcher, bySession] of arrivals) {
    watcher.onEvent((event) => {
      const now = performance.timeOrigin + performance.now()
      if (event.type === 'match') bySession.set(event.track.session, now - Date.parse(event.at))
    })
  }
  const acrossMs: number[] = []
  const localMs: number[] = []
  let missed = 0
  try {
    await api.addFace(person.id, options.enrollPhoto)
    for (let sample = 0; sample < samples; sample++) {
      const session = await streamUntilMatched(options, org)
      const deadline = Date.now() + timeoutMs
      const seen = (watcher: EventStream) => arrivals.get(watcher)?.get(session)
      while ((seen(across) === undefined || seen(local) === undefined) && Date.now() < deadline) {
        await sleep(2)
      }
      const [acrossLatency, localLatency] = [seen(across), seen(local)]
      if (acrossLatency === undefined) missed++
      else acrossMs.push(acrossLatency)
      if (localLatency !== undefined) localMs.push(localLatency)
    }
  } finally {
    across.close()
    local.close()
    await api.deleteIdentity(person.id).catch(() => undefined)
  }
  return { samples, acrossMs: summarize(acrossMs), localMs: summarize(localMs), missed }
}

/** A new stream on the origin, shown the person until a frame is matched; its session id. */
async function streamUntilMatched(options: EventFanoutOptions, org: string): Promise<string> {
  const stream = await openDetectStream({ baseUrl: options.origin, token: options.token(org, ['detect']) })
  try {
    for (let frameId = 1; frameId <= 8; frameId++) {
      const answer = stream.answerFor(frameId)
      stream.send({ frameId, camera: 'bench' }, options.streamPhoto)
      const result = await answer
      if (result.type === 'result' && result.faces.some((face) => face.decision.status === 'match')) {
        return stream.hello.session
      }
    }
    throw new Error('the streamed photo was not matched within 8 frames: is it the enrolled person?')
  } finally {
    stream.close()
  }
}
