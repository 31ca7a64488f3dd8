/**
 * One replay over streams already open: sends SOURCE on each as planned, reads the answers (one
 * line each with --json, a line per track decision change and per error without), then closes the
 * streams and sums up.
 */
import type { FrameHeader } from '../../protocol/frame.js'
import type { StreamAnswer, StreamFace } from '../../protocol/wire.js'
import type { Closed, DetectStream } from '../stream-client.js'
import { planSends, until, within, type Pace } from './pacing.js'
import type { ReplaySource } from './source.js'
import { round1 } from './stats.js'
import { buildSummary, type ReplaySummary } from './summary.js'
import { createTally, type SentFrame } from './tally.js'
import { createTrackDecisions } from './track-decisions.js'

/** How long to wait for an answer before counting its frame unanswered. */
const ANSWER_TIMEOUT_MS = 10_000
/** How long to wait for the close handshake when the replay is over. */
const CLOSE_TIMEOUT_MS = 1_000

/** Close codes whose reason the server may leave empty. */
const CLOSE_NAMES: Record<number, string> = {
  1001: 'ERR_SHUTTING_DOWN',
  1006: 'connection lost',
  1008: 'policy violation',
  1009: 'ERR_BODY_TOO_LARGE',
  1011: 'ERR_INTERNAL',
  4401: 'ERR_AUTH_EXPIRED',
}

/** One JSON line of --json per answer. */
export type ReplayAnswerLine = StreamAnswer & {
  streamIndex: number
  /** When the frame was sent, ms after the replay started (its schedule's zero). */
  sentMs?: number
  /** From sending the frame to receiving this answer. */
  latencyMs?: number
  /** The frame's file (directory SOURCE) ... */
  file?: string
  /** ... or its position in SOURCE, from 0 (MJPEG). */
  sourceIndex?: number
}

export interface ReplayOptions {
  streams: DetectStream[]
  source: ReplaySource
  pace: Pace
  loops: number
  camera?: string
  /** --json lines, or one human line per decision change. */
  onLine: (line: string) => void
  json: boolean
  onAnswered?: (answered: number, total: number) => void
}

interface InFlight extends SentFrame {
  /** Index into the source's frames. */
  index: number
  /** At --max: wakes the sender when this frame is answered (undefined: never will be). */
  resolve?: (answer: StreamAnswer | undefined) => void
}

function describe(face: StreamFace): string {
  const d = face.decision
  const who = d.identity === undefined ? '' : ` ${d.identity.name}`
  const frames = face.track.frames
  return `${d.status} ${who} ${d.similarity.toFixed(3)} (${String(frames)} frame${frames === 1 ? '' : 's'})`
}

/** Replays `source` on every stream (already open) and returns the summary; closes the streams. */
export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  const { streams, source, pace, json } = options
  const fallbackFps = Math.min(...streams.map((stream) => stream.hello.suggestedFps))
  const planned = planSends(source, pace, options.loops, fallbackFps)
  const total = planned.length * streams.length
  const abort = new AbortController()
  const tally = createTally()
  const decisions = createTrackDecisions()
  let closedEarly: ReplaySummary['closed'] = null
  // Every stream's schedule counts from here (set just before the first send).
  let startedAt = performance.now()
  let firstSendAt: number | undefined
  let lastAnswerAt: number | undefined
  let lastSendAt = 0

  const runs = streams.map((stream, streamIndex) => {
    const frames = tally.stream<InFlight>()
    let closing = false
    let closed = false
    const prefix = streams.length > 1 ? `stream ${String(streamIndex)}  ` : ''
    stream.socket.on('error', () => undefined) // reported by the close that follows
    void stream.closed.then((info: Closed) => {
      closed = true
      if (!closing && closedEarly === null) {
        closedEarly = { streamIndex, code: info.code, reason: info.reason || (CLOSE_NAMES[info.code] ?? '') }
        abort.abort()
      }
      for (const frame of frames.inFlight.values()) frame.resolve?.(undefined)
      frames.release()
    })

    stream.onAnswer((answer) => {
      const now = performance.now()
      lastAnswerAt = now
      const answered = frames.recordAnswer(answer, now)
      if (answered !== undefined) options.onAnswered?.(tally.answered, total)
      if (json) {
        const line: ReplayAnswerLine = { ...answer, streamIndex }
        if (answered !== undefined) {
          const { frame, latencyMs } = answered
          line.sentMs = round1(frame.sentAt - startedAt)
          line.latencyMs = round1(latencyMs)
          const file = source.frames[frame.index]?.file
          if (file !== undefined) line.file = file
          else line.sourceIndex = frame.index
        }
        options.onLine(JSON.stringify(line))
      } else if (answer.type === 'error') {
        const id = answer.frameId === undefined ? '?' : String(answer.frameId)
        options.onLine(`${prefix}frame ${id}  error  ${answer.error.code}: ${answer.error.message}`)
      }
      if (answer.type === 'result') {
        for (const face of decisions.record(streamIndex, answer)) {
          const label = `${face.track.source === 'client' ? 'c' : 's'}${String(face.track.id)}`
          if (!json)
            options.onLine(`${prefix}frame ${String(answer.frameId)}  track ${label}  ${describe(face)}`)
        }
      }
      answered?.frame.resolve?.(answer)
    })

    const play = async (): Promise<void> => {
      for (const [position, send] of planned.entries()) {
        if (pace.kind !== 'max') await until(startedAt + send.offsetMs, abort.signal)
        if (abort.signal.aborted || closed) break
        const frame = source.frames[send.index]
        if (frame === undefined) continue
        const frameId = position + 1
        const header: FrameHeader = { frameId }
        if (frame.trackId !== undefined) header.trackId = frame.trackId
        const camera = frame.camera ?? options.camera
        if (camera !== undefined) header.camera = camera
        const entry: InFlight = { sentAt: performance.now(), index: send.index }
        const answer =
          pace.kind === 'max'
            ? new Promise<StreamAnswer | undefined>((resolve) => {
                entry.resolve = resolve
              })
            : undefined
        frames.recordSend(frameId, entry)
        firstSendAt ??= entry.sentAt
        stream.send(header, frame.image)
        lastSendAt = performance.now()
        if (answer !== undefined) {
          const got = await within(answer, ANSWER_TIMEOUT_MS, abort.signal)
          if (got?.type === 'throttled') await until(performance.now() + got.retryAfterMs, abort.signal)
        }
      }
      // Every frame sent gets one answer: wait for the last ones.
      if (frames.inFlight.size > 0 && !closed) await within(frames.settled(), ANSWER_TIMEOUT_MS, abort.signal)
    }

    return {
      play,
      stop: async (): Promise<void> => {
        closing = true
        if (!closed) stream.close()
        await within(stream.closed, CLOSE_TIMEOUT_MS, new AbortController().signal)
      },
      stats: () => ({
        streamIndex,
        session: stream.hello.session,
        framesSent: frames.sent,
        answers: frames.answers,
        unanswered: frames.inFlight.size,
      }),
    }
  })

  startedAt = performance.now()
  await Promise.all(runs.map((run) => run.play()))
  await Promise.all(runs.map((run) => run.stop()))

  return buildSummary({
    source,
    pace,
    loops: options.loops,
    tally,
    perStream: runs.map((run) => run.stats()),
    decisions: decisions.counts(),
    firstSendAt,
    endAt: Math.max(lastAnswerAt ?? 0, lastSendAt),
    closed: closedEarly,
  })
}
