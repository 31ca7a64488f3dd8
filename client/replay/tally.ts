/**
 * What came back on a set of /ws/detect streams, each answer matched with the frame it answers:
 * answers by type, error codes, send-to-answer latencies, and what did not pair up (frames left
 * unanswered, answers for no frame in flight). When all is well every frame sent gets exactly one
 * answer. Shared by facewire replay and bench:ws.
 */
import type { StreamAnswer } from '../../protocol/wire.js'

export type AnswerType = StreamAnswer['type']
export type AnswerCounts = Record<AnswerType, number>

export const noAnswers = (): AnswerCounts => ({ result: 0, dropped: 0, throttled: 0, error: 0 })

/** A frame in flight: its send time (`performance.now()`) and whatever the caller keeps with it. */
export interface SentFrame {
  sentAt: number
}

export interface Answered<F extends SentFrame> {
  /** The frame answered, no longer in flight. */
  frame: F
  /** From sending the frame to receiving the answer. */
  latencyMs: number
}

/** One stream's frames in flight, counted into its Tally. */
export interface StreamTally<F extends SentFrame> {
  /** This stream's answers by type (answers for no frame in flight included). */
  readonly answers: AnswerCounts
  /** Frames sent on this stream. */
  readonly sent: number
  /** Frames sent and not answered yet, by frame id. */
  readonly inFlight: ReadonlyMap<number, F>
  /** Records frame `frameId` as sent (call it before the frame can be answered). */
  recordSend(frameId: number, frame: F): void
  /**
   * Counts `answer`, received at `now`. Returns the frame it answers (taking it out of flight)
   * with its latency, or undefined for an answer to no frame in flight (counted unexpected).
   */
  recordAnswer(answer: StreamAnswer, now?: number): Answered<F> | undefined
  /** Resolves once no frame is in flight, or once released. */
  settled(): Promise<void>
  /** No more answers will come (the stream closed): wakes `settled`; frames in flight stay unanswered. */
  release(): void
}

export interface Tally {
  /** Answers by type, all streams (answers for no frame in flight included). */
  readonly answers: AnswerCounts
  /** Error answers by their code. */
  readonly errorsByCode: Record<string, number>
  /** Send-to-answer times of the frames answered, ms, by answer type, in arrival order. */
  readonly latenciesMs: Record<AnswerType, number[]>
  /** Answers for no frame in flight: a second answer for a frame, or an error without a frame id. */
  readonly unexpectedAnswers: number
  /** Frames answered. */
  readonly answered: number
  /** Frames sent, all streams. */
  readonly sent: number
  /** Frames sent and not answered (yet), all streams. */
  readonly unanswered: number
  /** Opens the tally of one more stream. */
  stream<F extends SentFrame>(): StreamTally<F>
}

export function createTally(): Tally {
  const answers = noAnswers()
  const errorsByCode: Record<string, number> = {}
  const latenciesMs: Record<AnswerType, number[]> = { result: [], dropped: [], throttled: [], error: [] }
  const streams: Pick<StreamTally<SentFrame>, 'sent' | 'inFlight'>[] = []
  let unexpectedAnswers = 0
  let answered = 0

  const stream = <F extends SentFrame>(): StreamTally<F> => {
    const own = noAnswers()
    const inFlight = new Map<number, F>()
    const waiters: (() => void)[] = []
    let sent = 0
    let released = false
    const wake = (): void => {
      if (inFlight.size === 0 || released) for (const resolve of waiters.splice(0)) resolve()
    }
    const tally: StreamTally<F> = {
      answers: own,
      get sent() {
        return sent
      },
      inFlight,
      recordSend(frameId, frame) {
        inFlight.set(frameId, frame)
        sent++
      },
      recordAnswer(answer, now = performance.now()) {
        answers[answer.type]++
        own[answer.type]++
        if (answer.type === 'error')
          errorsByCode[answer.error.code] = (errorsByCode[answer.error.code] ?? 0) + 1
        const frame = answer.frameId === undefined ? undefined : inFlight.get(answer.frameId)
        if (answer.frameId === undefined || frame === undefined) {
          unexpectedAnswers++
          return undefined
        }
        inFlight.delete(answer.frameId)
        answered++
        const latencyMs = now - frame.sentAt
        latenciesMs[answer.type].push(latencyMs)
        wake()
        return { frame, latencyMs }
      },
      settled() {
        if (inFlight.size === 0 || released) return Promise.resolve()
        return new Promise((resolve) => waiters.push(resolve))
      },
      release() {
        released = true
        wake()
      },
    }
    streams.push(tally)
    return tally
  }

  return {
    answers,
    errorsByCode,
    latenciesMs,
    get unexpectedAnswers() {
      return unexpectedAnswers
    },
    get answered() {
      return answered
    },
    get sent() {
      return streams.reduce((sum, s) => sum + s.sent, 0)
    },
    get unanswered() {
      return streams.reduce((sum, s) => sum + s.inFlight.size, 0)
    },
    stream,
  }
}
