/**
 * /ws/detect: authenticated at the upgrade; each connection holds one frame in flight and at most
 * one waiting (latest frame wins); every frame gets exactly one answer; faces are tracked so the
 * decision rests on several frames; match events go to the organization's watchers.
 */
import { randomBytes } from 'node:crypto'
import { requireScope, type Authenticator, type Principal } from '../auth.js'
import type { Config } from '../config.js'
import { FacewireError, toFacewireError } from '../errors.js'
import type { Gallery } from '../gallery/index.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { Pipeline } from '../pipeline/index.js'
import type { StreamThrottled } from '../../protocol/wire.js'
import { parseFrame, type ParsedFrame } from '../../protocol/frame.js'
import { createRateLimiter, type SharedLimitStore } from '../rate-limit.js'
import { livenessTurn } from '../recognize.js'
import { defineWsRoute, type AnyWsRoute, type WsConnection } from '../transport/index.js'
import { createAnswers } from './answers.js'
import type { EventHub } from './events.js'
import { createFrameSlots } from './frame-slots.js'
import { suggestFps, toDetectHello } from './hello.js'
import { toStreamResult } from './stream-result.js'
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
  /** Cluster mode: the per-organization frame rate is counted here, across instances. */
  limitStore: SharedLimitStore | undefined
}

interface Session {
  id: string
  principal: Principal
  /** For logs: the peer, or the client behind a trusted proxy. */
  clientIp: string
  tracks: TrackTable
  expiry: ExpiryTimer | undefined
  /** Frames analysed, for the liveness turn of `report` mode. */
  frames: number
}

interface Pending {
  frame: ParsedFrame
  receivedAt: number
}

type Connection = WsConnection<Session>

/**
 * The abuse budget of a connection (docs/protocol.md, "Budget"): a client may overshoot its frame
 * rate (it is answered `throttled`) up to this many times before it is closed with 1008.
 */
const MESSAGES_PER_ALLOWED_FRAME = 4
/** Invalid messages (text, unreadable header) a connection may send per second; a client has none. */
const INVALID_MESSAGES_PER_S = 10

export function createDetectRoute(options: DetectRouteOptions): AnyWsRoute {
  const { pipeline, metrics, logger, config } = options
  const limits = config.streams
  // A connection lives on one instance: its limit stays in memory. An organization's streams may
  // be spread over every instance: its limit is shared when there is a store.
  const perConnection = createRateLimiter({ points: limits.maxFps })
  const perOrg = createRateLimiter({
    points: limits.orgMaxFps,
    shared: { store: options.limitStore, name: 'stream-org' },
  })
  const { answer, fail } = createAnswers({ metrics, maxBufferedBytes: limits.maxBufferedBytes })
  // Stream frames go to the pool only when a worker is free: a frame queued inside the pool could
  // no longer be replaced by a newer one, so under load frames wait (replaceable) in their slots.
  const slots = createFrameSlots<Connection, Pending>()
  let open = 0
  // Recent pipeline time per frame, for the suggested frame rate.
  let frameMsEwma = 60

  /** Hands each free worker to the connection first in line. */
  const startWhatFits = (): void => {
    while (pipeline.capacity() > 0) {
      const turn = slots.next()
      if (turn === undefined) return
      analyze(turn.connection, turn.frame).catch((error: unknown) => {
        logger.error({ err: error }, 'ws.frame_failed')
      })
    }
  }

  /** Runs one frame (the pipeline takes it at once: a worker is free) and answers it. */
  const analyze = async (connection: Connection, { frame, receivedAt }: Pending): Promise<void> => {
    const session = connection.context
    const startedAt = performance.now()
    try {
      const analysis = await pipeline.analyze(frame.image, {
        mode: 'all',
        maxFaces: limits.maxFaces,
        liveness: livenessTurn(
          options.gallery().policyFor(session.principal.org).liveness.mode,
          session.frames++,
        ),
      })
      frameMsEwma = 0.9 * frameMsEwma + 0.1 * (analysis.timings.totalMs + analysis.queueMs)
      if (connection.closed) return
      const org = session.principal.org
      const gallery = options.gallery()
      const result = toStreamResult({
        frameId: frame.frameId,
        trackId: frame.trackId,
        analysis,
        tracks: session.tracks,
        recognize: (embedding) => gallery.recognize(org, embedding),
        liveness: gallery.policyFor(org).liveness,
        receivedAt,
        startedAt,
        onDecided: (track, decided, nowMs) => {
          const camera = frame.camera ?? null
          const event = options.events.trackDecided({
            session: session.id,
            org,
            camera,
            track,
            decided,
            nowMs,
          })
          if (event !== undefined) metrics.eventsPublished.inc({ type: event.type })
        },
      })
      metrics.countDecisions('stream', org, result.faces)
      answer(connection, result, receivedAt)
    } catch (error) {
      const wire = toFacewireError(error)
      if (wire.code === 'ERR_INTERNAL') logger.error({ err: error, session: session.id }, 'ws.frame_failed')
      fail(connection, frame.frameId, wire, receivedAt)
    } finally {
      // The answer is out: a frame that waited meanwhile joins the line behind those already in it.
      slots.finished(connection)
      startWhatFits()
    }
  }

  const throttle = async (session: Session): Promise<Omit<StreamThrottled, 'frameId'> | undefined> => {
    const connectionWait = await perConnection.take(session.id)
    if (connectionWait > 0) return { type: 'throttled', retryAfterMs: connectionWait, scope: 'connection' }
    const orgWait = await perOrg.take(session.principal.org)
    if (orgWait > 0) return { type: 'throttled', retryAfterMs: orgWait, scope: 'organization' }
    return undefined
  }

  const accept = (connection: Connection, pending: Pending): void => {
    if (connection.closed) return
    const replaced = slots.offer(connection, pending)
    if (replaced !== undefined) {
      const dropped = { type: 'dropped', frameId: replaced.frame.frameId, reason: 'replaced' } as const
      answer(connection, dropped, replaced.receivedAt)
    }
    startWhatFits()
  }

  // A worker freed by any task (a stream's or a REST request's) goes to the next in line.
  pipeline.onCapacity(startWhatFits)

  return defineWsRoute<Session>({
    pattern: '/ws/detect',
    maxPayloadBytes: limits.maxFrameBytes,
    idleTimeoutS: limits.idleTimeoutS,
    maxBackpressureBytes: limits.maxBufferedBytes * 4,
    budget: {
      messagesPerS: MESSAGES_PER_ALLOWED_FRAME * limits.maxFps,
      // As much as a client within its frame rate can send in full-size frames.
      bytesPerS: limits.maxFps * limits.maxFrameBytes,
      invalidPerS: INVALID_MESSAGES_PER_S,
    },
    upgrade(request) {
      const principal = options.auth.authenticate(request.headers, request.query)
      requireScope(principal, 'detect')
      options.gallery() // ERR_NOT_READY before the gallery is loaded
      return {
        id: randomBytes(9).toString('base64url'),
        principal,
        clientIp: request.clientIp,
        tracks: createTrackTable({
          windowFrames: limits.trackFrames,
          switchFrames: limits.trackSwitchFrames,
        }),
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
      const hello = toDetectHello({
        session: session.id,
        principal: session.principal,
        limits,
        policy: options.gallery().policyFor(session.principal.org),
        models: options.models(),
        suggestedFps: suggestFps({
          workers: config.workers,
          frameMs: frameMsEwma,
          streams: open,
          maxFps: limits.maxFps,
        }),
      })
      connection.send(JSON.stringify(hello))
      logger.debug(
        { session: session.id, org: session.principal.org, clientIp: session.clientIp },
        'ws.detect_opened',
      )
    },
    message(connection, data, isBinary) {
      const receivedAt = performance.now()
      // An invalid message is answered only within the connection's budget; past it the transport
      // has closed the connection, and nothing more is spent on it.
      if (!isBinary) {
        if (connection.admitInvalid())
          fail(connection, undefined, new FacewireError('ERR_MESSAGE_INVALID'), receivedAt)
        return
      }
      const parsed = parseFrame(data)
      if (!parsed.ok) {
        if (!connection.admitInvalid()) return
        const error = new FacewireError('ERR_FRAME_HEADER_INVALID', parsed.reason)
        fail(connection, parsed.frameId, error, receivedAt)
        return
      }
      const frame = parsed.frame
      throttle(connection.context)
        .then((throttled) => {
          if (throttled === undefined) accept(connection, { frame, receivedAt })
          else answer(connection, { ...throttled, frameId: frame.frameId }, receivedAt)
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'ws.throttle_failed')
          fail(connection, frame.frameId, new FacewireError('ERR_INTERNAL'), receivedAt)
        })
    },
    close(connection, code) {
      open--
      metrics.wsConnections.dec({ route: 'detect' })
      metrics.wsCloses.inc({ route: 'detect', code: String(code) })
      const session = connection.context
      session.expiry?.cancel()
      // Its waiting frame will never start; a closed stream cannot be answered.
      slots.remove(connection)
      options.events.forget(session.id)
      logger.debug({ session: session.id, code }, 'ws.detect_closed')
    },
  })
}
