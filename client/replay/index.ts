/**
 * Replaying recorded frames to /ws/detect: the source (a directory of images, an MJPEG file), when
 * each frame goes out, what came back, and the summary. The `facewire replay` command
 * (client/cli/replay.ts) is its command line; bench:ws shares the tally.
 */
export { splitMjpeg, MalformedMjpeg } from './mjpeg.js'
export { planSends, type Pace, type PlannedSend } from './pacing.js'
export { replay, type ReplayAnswerLine, type ReplayOptions } from './session.js'
export {
  checkCamera,
  loadSource,
  parseManifest,
  SourceError,
  type ManifestLine,
  type ReplaySource,
  type SourceFrame,
} from './source.js'
export { percentile, round1 } from './stats.js'
export { buildSummary, summaryText, type ReplaySummary, type StreamSummary } from './summary.js'
export {
  createTally,
  noAnswers,
  type AnswerCounts,
  type AnswerType,
  type Answered,
  type SentFrame,
  type StreamTally,
  type Tally,
} from './tally.js'
export { createTrackDecisions, type DecisionCounts, type TrackDecisions } from './track-decisions.js'
