/** The replay's last word: one summary object (the last --json line) and its text form. */
import type { Pace } from './pacing.js'
import type { ReplaySource } from './source.js'
import { percentile, round1 } from './stats.js'
import type { AnswerCounts, Tally } from './tally.js'
import type { DecisionCounts } from './track-decisions.js'

export interface StreamSummary {
  streamIndex: number
  session: string
  framesSent: number
  answers: AnswerCounts
  unanswered: number
}

export interface ReplaySummary {
  type: 'summary'
  source: { kind: ReplaySource['kind']; frames: number }
  pace: Pace['kind']
  /** Frames per second per stream asked for; null for recorded and max. */
  fps: number | null
  streams: number
  loops: number
  framesSent: number
  answers: AnswerCounts
  /** Frames with no answer when the replay ended (stream closed, or none within 10 s). */
  unanswered: number
  /** Answers for no frame in flight (a second answer, or an error without a frame id). */
  unexpectedAnswers: number
  errorsByCode: Record<string, number>
  /**
   * Tracks (per stream) by decision: `matched` counts the distinct tracks ever decided a match
   * for each identity name; `uncertain`/`unknown` the tracks never matched, by their last decision.
   */
  decisions: DecisionCounts
  /** From sending a frame to its `result` (other answers are left out); null without results. */
  latencyMs: { p50: number; p95: number; p99: number } | null
  /** From the first send to the last answer. */
  durationMs: number
  /** Frames sent per second, all streams together, over `durationMs`. */
  achievedFps: number
  perStream: StreamSummary[]
  /** The server closed a stream before the end. */
  closed: { streamIndex: number; code: number; reason: string } | null
}

export interface SummaryInput {
  source: ReplaySource
  pace: Pace
  loops: number
  tally: Tally
  perStream: StreamSummary[]
  decisions: DecisionCounts
  /** `performance.now()` of the first send (undefined: nothing sent) and of the last send or answer. */
  firstSendAt: number | undefined
  endAt: number
  closed: ReplaySummary['closed']
}

export function buildSummary(input: SummaryInput): ReplaySummary {
  const { source, pace, tally, perStream } = input
  const results = tally.latenciesMs.result
  const framesSent = perStream.reduce((sum, s) => sum + s.framesSent, 0)
  const durationMs = input.firstSendAt === undefined ? 0 : round1(input.endAt - input.firstSendAt)
  return {
    type: 'summary',
    source: { kind: source.kind, frames: source.frames.length },
    pace: pace.kind,
    fps: pace.kind === 'fps' ? pace.fps : null,
    streams: perStream.length,
    loops: input.loops,
    framesSent,
    answers: tally.answers,
    unanswered: perStream.reduce((sum, s) => sum + s.unanswered, 0),
    unexpectedAnswers: tally.unexpectedAnswers,
    errorsByCode: tally.errorsByCode,
    decisions: input.decisions,
    latencyMs:
      results.length === 0
        ? null
        : {
            p50: round1(percentile(results, 50)),
            p95: round1(percentile(results, 95)),
            p99: round1(percentile(results, 99)),
          },
    durationMs,
    achievedFps: durationMs > 0 ? round1((framesSent * 1000) / durationMs) : 0,
    perStream,
    closed: input.closed,
  }
}

export function summaryText(summary: ReplaySummary, sourcePath: string): string {
  const a = summary.answers
  const pace = summary.pace === 'fps' ? `${String(summary.fps)} fps` : `${summary.pace} pace`
  const decided = [
    ...Object.entries(summary.decisions.matched)
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([name, count]) => `${name} ${String(count)}`),
    `uncertain ${String(summary.decisions.uncertain)}`,
    `unknown ${String(summary.decisions.unknown)}`,
  ]
  const latency = summary.latencyMs
  return [
    `replayed ${sourcePath}: ${String(summary.source.frames)} frames (${summary.source.kind}) x ${String(summary.loops)} loop(s) x ${String(summary.streams)} stream(s), ${pace}`,
    `frames sent: ${String(summary.framesSent)} in ${(summary.durationMs / 1000).toFixed(2)} s (${String(summary.achievedFps)} fps)`,
    `answers: ${String(a.result)} result, ${String(a.dropped)} dropped, ${String(a.throttled)} throttled, ${String(a.error)} error, ${String(summary.unanswered)} unanswered`,
    ...Object.entries(summary.errorsByCode).map(([code, count]) => `  ${code}: ${String(count)}`),
    `decisions (${String(summary.decisions.tracks)} tracks): ${decided.join(', ')}`,
    latency === null
      ? 'latency (send to result): no results'
      : `latency (send to result): p50 ${String(latency.p50)} ms, p95 ${String(latency.p95)} ms, p99 ${String(latency.p99)} ms`,
  ].join('\n')
}
