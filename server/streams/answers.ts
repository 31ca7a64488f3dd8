/**
 * Sending a stream frame's one answer: counted and timed by outcome, and dropped (counted) rather
 * than queued when the client does not read.
 */
import { toWireError, type FacewireError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { StreamAnswer } from '../../protocol/wire.js'
import type { WsConnection } from '../transport/index.js'

export interface Answers {
  /** Sends `message`; `receivedAt` is `performance.now()` when the frame arrived. */
  answer: (connection: WsConnection<unknown>, message: StreamAnswer, receivedAt: number) => void
  /** Answers an error, with the frame id when there is one. */
  fail: (
    connection: WsConnection<unknown>,
    frameId: number | undefined,
    error: FacewireError,
    receivedAt: number,
  ) => void
}

export function createAnswers(options: { metrics: Metrics; maxBufferedBytes: number }): Answers {
  const { metrics } = options
  const answer: Answers['answer'] = (connection, message, receivedAt) => {
    const outcome = message.type
    metrics.wsFrames.inc({ outcome })
    metrics.wsFrameSeconds.observe({ outcome }, (performance.now() - receivedAt) / 1000)
    if (connection.closed) return
    // Bounded: a client that does not read its answers loses them, the server keeps no queue.
    if (connection.bufferedAmount > options.maxBufferedBytes) {
      metrics.wsAnswersDropped.inc({ type: outcome })
      return
    }
    if (connection.send(JSON.stringify(message)) === 'dropped')
      metrics.wsAnswersDropped.inc({ type: outcome })
  }
  return {
    answer,
    fail(connection, frameId, error, receivedAt) {
      const message: StreamAnswer =
        frameId === undefined
          ? { type: 'error', error: toWireError(error) }
          : { type: 'error', frameId, error: toWireError(error) }
      answer(connection, message, receivedAt)
    },
  }
}
