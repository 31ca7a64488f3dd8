/**
 * /ws/detect: authenticated at the upgrade; each connection holds one frame in flight and at most
 * one waiting (latest frame wins); every frame gets exactly one answer; faces are tracked so the
 * decision rests on several frames; match events go to the organization's watchers.
 */
import { randomBytes } from 'node:crypto'
import { requireScope, type Authenticator, type Principal } from '../auth.js'
import type { Config } from '../config.js'
import { FacewireError, toFacewireError, toWireError } from '../errors.js'
import type { Gallery } from '../gallery/index.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { Pipeline } from '../pipeline/index.js'
import {
  STREAM_PROTOCOL_VERSION,
  type StreamAnswer,
  type StreamFace,
  type StreamHello,
  type StreamResult,
} from '../../protocol/wire.js'
import { parseFrame, type ParsedFrame } from '../../protocol/frame.js'
import { createRateLimiter } from '../rate-limit.js'
import { livenessTurn, requireLiveness, toFaceResult, toWireBox } from '../recognize.js'
import { defineWsRoute, type AnyWsRoute, type WsConnection } from '../transport/index.js'
import type { EventHub } from './events.js'
import { scheduleExpiry, type ExpiryTimer } from './token-expiry.js'
import { createTrackTable, type TrackTable } from './tracks.js'

export interface DetectRouteOptions {
  auth: Authenticator
  pipeline: Pipeline
  gallery: () => Gallery
  events: EventHub
  logger: Logger
  metrics: Metrics
  config: Pick<Config, 'streams' | 'match' | 'workers'>
  /** Model ids for the hello message. */
  models: () => string[]
}

interface Waiting {
  frame: ParsedFrame
  receivedAt: number
}

interface Session {
  id: string
  principal: Principal
  tracks: TrackTable
  inFlight: boolean
  waiting: Waiting | undefined
  expiry: ExpiryTimer | undefined
  /** Frames analysed, for the liveness turn of `report` mode. */
  frames: number
}

const round1 = (value: number): number => Math.round(value * 10) / 10

export function createDetectRoute(options: DetectRouteOptions): AnyWsRoute {
  const { pipeline, metrics, logger, config } = options
  const limits = config.streams
  const perConnection = createRateLimiter({ points: limits.maxFps })
  const perOrg = createRateLimiter({ points: limits.orgMaxFps })
  let open = 0
  // Recent pipeline time per frame, for the suggested frame rate.
  let frameMsEwma = 60
  // Connections whose frame found the pool full: served in turn as tasks finish, never failed.
  const blocked = new Set<WsConnection<Session>>()
  let retryTimer: NodeJS.Timeout | undefined

  const suggestedFps = (): number => {
    const capacity = (config.workers * 1000) / Math.max(1, frameMsEwma)
    // One frame in flight per connection: a connection can use at most one worker.
    return Math.max(1, Math.min(limits.maxFps, Math.floor(capacity / Math.max(1, open, config.workers))))
  }

  /**
   * Stream frames go to the pool only when a worker is free: a frame queued inside the pool could
   * no longer be replaced by a newer one, so under load frames wait (replaceable) per connection.
   */
  const poolHasRoom = (): boolean => {
    const stats = pipeline.stats()
    return stats.busy + stats.queued < Math.max(1, stats.ready)
  }

  /** Hands free workers to the connections that have waited longest for one. */
  const wakeBlocked = (): void => {
    for (const connection of blocked) {
      if (!poolHasRoom()) return
      blocked.delete(connection)
      const next = connection.context.waiting
      connection.context.waiting = undefined
      if (next !== undefined && !connection.closed) analyze(connection, next)
    }
  }

  /** Starts a frame now if a worker is free, else makes it the connection's waiting frame. */
  const dispatch = (connection: WsConnection<Session>, waiting: Waiting): void => {
    if (blocked.size === 0 && poolHasRoom()) {
      analyze(connection, waiting)
      return
    }
    connection.context.waiting = waiting
    blocked.add(connection)
    scheduleRetry()
  }

  const scheduleRetry = (): void => {
    // Tasks finishing wake blocked connections; the timer covers a pool filled by REST requests.
    if (retryTimer !== undefined || blocked.size === 0) return
    retryTimer = setTimeout(() => {
      retryTimer = undefined
      wakeBlocked()
      scheduleRetry()
    }, 20)
    retryTimer.unref()
  }

  const answer = (connection: WsConnection<Session>, message: StreamAnswer, receivedAt: number): void => {
    const outcome = message.type
    metrics.wsFrames.inc({ outcome })
    metrics.wsFrameSeconds.observe({ outcome }, (performance.now() - receivedAt) / 1000)
    if (connection.closed) return
    // Bounded: a client that does not read its answers loses them, the server keeps no queue.
    if (connection.bufferedAmount > limits.maxBufferedBytes) {
      metrics.wsAnswersDropped.inc({ type: outcome })
      return
    }
    if (connection.send(JSON.stringify(message)) === 'dropped')
      metrics.wsAnswersDropped.inc({ type: outcome })
  }

  const fail = (
    connection: WsConnection<Session>,
    frameId: number | undefined,
    error: FacewireError,
    receivedAt: number,
  ): void => {
    const message: StreamAnswer =
      frameId === undefined
        ? { type: 'error', error: toWireError(error) }
        : { type: 'error', frameId, error: toWireError(error) }
    answer(connection, message, receivedAt)
  }

  const analyze = (connection: WsConnection<Session>, waiting: Waiting): void => {
    const session = connection.context
    const { frame, receivedAt } = waiting
    session.inFlight = true
    const started = performance.now()
    const waitMs = started - receivedAt
    pipeline
      .analyze(frame.image, {
        mode: 'all',
        maxFaces: limits.maxFaces,
        liveness: livenessTurn(
          options.gallery().policyFor(session.principal.org).liveness.mode,
          session.frames++,
        ),
      })
      .then((analysis) => {
        frameMsEwma = 0.9 * frameMsEwma + 0.1 * (analysis.timings.totalMs + analysis.queueMs)
        if (connection.closed) return
        const gallery = options.gallery()
        const searchStarted = performance.now()
        const now = Date.now()
        const org = session.principal.org
        const liveness = gallery.policyFor(org).liveness
        const assigned = session.tracks.assign(
          analysis.faces.map((face) => ({
            box: toWireBox(face),
            embedding: face.embedding,
            quality: face.quality.score,
            liveness: face.liveness,
          })),
          frame.trackId,
          now,
        )
        const faces = analysis.faces.map((face, i): StreamFace => {
          const track = assigned[i]
          if (track === undefined) throw new Error('a face without a track')
          const decided = session.tracks.settle(
            track.track,
            requireLiveness(gallery.recognize(org, track.fused), track.liveness, liveness),
            now,
          )
          const event = options.events.trackDecided({
            session: session.id,
            org,
            camera: frame.camera ?? null,
            track: track.track,
            decided,
            nowMs: now,
          })
          if (event !== undefined) metrics.eventsPublished.inc({ type: event.type })
          const info: StreamFace['track'] = { ...track.track, frames: decided.frames }
          if (decided.pending !== undefined) info.pending = decided.pending
          return { ...toFaceResult(face, decided, { score: track.liveness, policy: liveness }), track: info }
        })
        const t = analysis.timings
        const result: StreamResult = {
          type: 'result',
          frameId: frame.frameId,
          faces,
          timings: {
            waitMs: round1(waitMs),
            queueMs: round1(analysis.queueMs),
            decodeMs: round1(t.decodeMs),
            detectMs: round1(t.detectMs),
            landmarksMs: round1(t.landmarksMs),
            alignMs: round1(t.alignMs),
            embedMs: round1(t.embedMs),
            livenessMs: round1(t.livenessMs),
            searchMs: round1(performance.now() - searchStarted),
            totalMs: round1(performance.now() - receivedAt),
          },
        }
        answer(connection, result, receivedAt)
      })
      .then(
        () => 'done' as const,
        (error: unknown) => {
          const wire = toFacewireError(error)
          if (wire.code === 'ERR_PIPELINE_BUSY' && !connection.closed && frame.image.byteLength > 0) {
            // The pool is full: this frame waits its turn (unless a newer one already waits).
            if (session.waiting === undefined) {
              session.waiting = waiting
            } else {
              answer(connection, { type: 'dropped', frameId: frame.frameId, reason: 'replaced' }, receivedAt)
            }
            return 'blocked' as const
          }
          if (wire.code === 'ERR_INTERNAL')
            logger.error({ err: error, session: session.id }, 'ws.frame_failed')
          fail(connection, frame.frameId, wire, receivedAt)
          return 'done' as const
        },
      )
      .then((outcome) => {
        session.inFlight = false
        if (outcome === 'blocked') {
          blocked.add(connection)
          scheduleRetry()
          return
        }
        // A worker freed: connections already waiting for one go first, this one after them.
        if (session.waiting !== undefined && !connection.closed) blocked.add(connection)
        wakeBlocked()
        scheduleRetry()
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'ws.frame_failed')
      })
  }

  const accept = (connection: WsConnection<Session>, frame: ParsedFrame, receivedAt: number): void => {
    const session = connection.context
    if (!session.inFlight && !blocked.has(connection)) {
      dispatch(connection, { frame, receivedAt })
      return
    }
    const replaced = session.waiting
    session.waiting = { frame, receivedAt }
    if (replaced !== undefined) {
      answer(
        connection,
        { type: 'dropped', frameId: replaced.frame.frameId, reason: 'replaced' },
        replaced.receivedAt,
      )
    }
  }

  const throttle = async (session: Session): Promise<StreamAnswer | undefined> => {
    const connectionWait = await perConnection.take(session.id)
    if (connectionWait > 0) {
      return { type: 'throttled', frameId: 0, retryAfterMs: connectionWait, scope: 'connection' }
    }
    const orgWait = await perOrg.take(session.principal.org)
    if (orgWait > 0) return { type: 'throttled', frameId: 0, retryAfterMs: orgWait, scope: 'organization' }
    return undefined
  }

  return defineWsRoute<Session>({
    pattern: '/ws/detect',
    maxPayloadBytes: limits.maxFrameBytes,
    idleTimeoutS: limits.idleTimeoutS,
    maxBackpressureBytes: limits.maxBufferedBytes * 4,
    upgrade(request) {
      const principal = options.auth.authenticate(request.headers, request.query)
      requireScope(principal, 'detect')
      options.gallery() // ERR_NOT_READY before the gallery is loaded
      return {
        id: randomBytes(9).toString('base64url'),
        principal,
        tracks: createTrackTable({
          windowFrames: limits.trackFrames,
          switchFrames: limits.trackSwitchFrames,
        }),
        inFlight: false,
        waiting: undefined,
        expiry: undefined,
        frames: 0,
      }
    },
    open(connection) {
      open++
      metrics.wsConnections.inc({ route: 'detect' })
      const session = connection.context
      session.expiry = scheduleExpiry(session.principal.expiresAtMs, () => {
        connection.close(new FacewireError('ERR_AUTH_EXPIRED'))
      })
      const policy = options.gallery().policyFor(session.principal.org)
      const hello: StreamHello = {
        type: 'hello',
        protocol: STREAM_PROTOCOL_VERSION,
        session: session.id,
        org: session.principal.org,
        limits: {
          maxFrameBytes: limits.maxFrameBytes,
          maxFps: limits.maxFps,
          orgMaxFps: limits.orgMaxFps,
          maxFaces: limits.maxFaces,
        },
        suggestedFps: suggestedFps(),
        models: options.models(),
        thresholds: { match: policy.threshold, margin: policy.margin, targetFpir: policy.targetFpir },
        track: { windowFrames: limits.trackFrames, switchFrames: limits.trackSwitchFrames },
        tokenExpiresAt: session.principal.expiresAtMs,
      }
      connection.send(JSON.stringify(hello))
      logger.debug({ session: session.id, org: session.principal.org }, 'ws.detect_opened')
    },
    message(connection, data, isBinary) {
      const receivedAt = performance.now()
      if (!isBinary) {
        fail(connection, undefined, new FacewireError('ERR_MESSAGE_INVALID'), receivedAt)
        return
      }
      const parsed = parseFrame(data)
      if (!parsed.ok) {
        const error = new FacewireError('ERR_FRAME_HEADER_INVALID', parsed.reason)
        fail(connection, parsed.frameId, error, receivedAt)
        return
      }
      const frame = parsed.frame
      throttle(connection.context)
        .then((throttled) => {
          if (throttled !== undefined) {
            answer(connection, { ...throttled, frameId: frame.frameId }, receivedAt)
            return
          }
          accept(connection, frame, receivedAt)
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'ws.throttle_failed')
          fail(connection, frame.frameId, new FacewireError('ERR_INTERNAL'), receivedAt)
        })
    },
    close(connection, code) {
      open--
      metrics.wsConnections.dec({ route: 'detect' })
      const session = connection.context
      session.expiry?.cancel()
      session.waiting = undefined
      blocked.delete(connection)
      options.events.forget(session.id)
      logger.debug({ session: session.id, code }, 'ws.detect_closed')
    },
  })
}
