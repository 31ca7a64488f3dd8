/**
 * facewire replay: streams recorded frames (a directory of images, or an MJPEG file) to
 * /ws/detect at the recorded pace, a fixed rate or as fast as answers come, prints the tracks'
 * decisions as they change and a summary of what came back. The arguments, the streams and the
 * exit status; the replay itself is client/replay/.
 */
import { parseArgs } from 'node:util'
import { MAX_CAMERA_LABEL_BYTES } from '../../protocol/frame.js'
import {
  checkCamera,
  loadSource,
  replay,
  SourceError,
  summaryText,
  type Pace,
  type ReplayOptions,
  type ReplaySource,
} from '../replay/index.js'
import { openDetectStream, UpgradeRefused } from '../stream-client.js'
import { connectionOptions, tokenFrom } from './connection.js'
import { createProgress } from './progress.js'

const USAGE = `usage: facewire replay SOURCE [--server URL] [--token TOKEN] [--camera LABEL]
                       [--fps N | --max] [--streams N] [--loop K] [--json]

Streams recorded frames to /ws/detect and reports what the server answered. SOURCE is
  - a directory of images (.jpg .jpeg .png .webp) sent in name order (plain string order: pad the
    numbers, 0001.jpg), or, when it holds a frames.jsonl, in that file's order at its timestamps:
    one JSON object per line, {"file": "0001.jpg", "t": 0, "track": 7, "camera": "door"}, where t
    is ms from the start (never decreasing) and track (a uint32 client track id) and camera are
    optional;
  - an MJPEG file: JPEGs one after another (bytes between them, e.g. multipart headers, are skipped).
Pace: the recorded timestamps of frames.jsonl; otherwise --fps, or the server's suggestedFps.
  --server URL      default $FACEWIRE_URL or http://127.0.0.1:8080
  --token TOKEN     a token with the detect scope (default $FACEWIRE_TOKEN; see facewire token)
  --camera LABEL    camera label of every frame (a frames.jsonl camera wins)
  --fps N           send N frames per second per stream, ignoring recorded timestamps
  --max             send each frame when the previous one's answer arrives (after retryAfterMs when
                    throttled): measures the server's capacity without replaced frames
  --streams N       open N streams in parallel, each replaying SOURCE (default 1, at most 64)
  --loop K          play SOURCE K times (default 1)
  --json            one JSON object per answer (the answer plus streamIndex, sentMs, latencyMs and
                    file or sourceIndex), then one {"type": "summary", ...} object
Without --json, prints a line when a track's decision changes (and one per error answer), then
frames sent, answers by type, tracks per decided identity and the latency from send to result
(p50/p95/p99). Answers are awaited up to 10 s after the last frame. A progress bar shows on a TTY.
Exit status: 0 done; 1 the server refused the stream (its code on stderr), closed it before the
end or left frames unanswered; 2 usage errors or a SOURCE that cannot be read.`

const MAX_STREAMS = 64
const MAX_LOOPS = 100_000
const MAX_FPS = 1000
/** The longest frame header: version, flags, frame id, track id, camera label. */
const MAX_HEADER_BYTES = 6 + 4 + 1 + MAX_CAMERA_LABEL_BYTES

function positiveInteger(value: string | undefined, name: string, max: number): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new Error(`--${name} must be an integer from 1 to ${String(max)}`)
  return n
}

export async function runReplay(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const usageError = (message: string): number => {
    process.stderr.write(`facewire replay: ${message}\n\n${USAGE}\n`)
    return 2
  }
  let parsed
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...connectionOptions(env),
        camera: { type: 'string' },
        fps: { type: 'string' },
        max: { type: 'boolean', default: false },
        streams: { type: 'string', default: '1' },
        loop: { type: 'string', default: '1' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (error) {
    return usageError((error as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help === true) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  const sourcePath = positionals[0]
  const token = tokenFrom(values, env)
  if (sourcePath === undefined || positionals.length > 1) return usageError('one SOURCE is required')
  if (token === undefined) return usageError('a token is required (--token or $FACEWIRE_TOKEN)')
  let streamCount: number
  let loops: number
  let pace: Pace | undefined
  try {
    streamCount = positiveInteger(values.streams, 'streams', MAX_STREAMS)
    loops = positiveInteger(values.loop, 'loop', MAX_LOOPS)
    if (values.max && values.fps !== undefined) throw new Error('--fps and --max exclude each other')
    if (values.max) pace = { kind: 'max' }
    else if (values.fps !== undefined) {
      const fps = Number(values.fps)
      if (!Number.isFinite(fps) || fps <= 0 || fps > MAX_FPS)
        throw new Error(`--fps must be a number in (0, ${String(MAX_FPS)}]`)
      pace = { kind: 'fps', fps }
    }
    if (values.camera !== undefined) checkCamera(values.camera, '--camera')
  } catch (error) {
    return usageError((error as Error).message)
  }

  let source: ReplaySource
  try {
    source = await loadSource(sourcePath)
  } catch (error) {
    if (!(error instanceof SourceError)) throw error
    process.stderr.write(`facewire replay: ${error.message}\n`)
    return 2
  }
  if (source.frames.length * loops > 0xffffffff) return usageError('too many frames for uint32 frame ids')
  pace ??= source.kind === 'frames.jsonl' ? { kind: 'recorded' } : undefined

  const opened = await Promise.allSettled(
    Array.from({ length: streamCount }, () => openDetectStream({ baseUrl: values.server, token })),
  )
  const streams = opened.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []))
  const refused = opened.find((outcome) => outcome.status === 'rejected')
  const fail = (message: string): number => {
    for (const stream of streams) stream.close()
    process.stderr.write(`facewire replay: ${message}\n`)
    return 1
  }
  if (refused !== undefined) {
    const reason: unknown = refused.reason
    if (reason instanceof UpgradeRefused) {
      return fail(`the server refused the stream: ${reason.code} (HTTP ${String(reason.status)})`)
    }
    return fail(
      `cannot open ${values.server}/ws/detect: ${reason instanceof Error ? reason.message : String(reason)}`,
    )
  }
  const maxFrameBytes = Math.min(...streams.map((stream) => stream.hello.limits.maxFrameBytes))
  const tooLarge = source.frames.findIndex((frame) => frame.image.length + MAX_HEADER_BYTES > maxFrameBytes)
  if (tooLarge >= 0) {
    const frame = source.frames[tooLarge]
    return fail(
      `${frame?.file ?? `frame ${String(tooLarge)}`} is ${String(frame?.image.length)} bytes: over the server's maxFrameBytes (${String(maxFrameBytes)})`,
    )
  }
  pace ??= { kind: 'fps', fps: Math.min(...streams.map((stream) => stream.hello.suggestedFps)) }

  // The bar (stderr) and the lines (stdout) share a terminal: clear the bar before each line.
  const shared = process.stderr.isTTY && process.stdout.isTTY
  const bar = createProgress('replaying', source.frames.length * loops * streamCount)
  const options: ReplayOptions = {
    streams,
    source,
    pace,
    loops,
    json: values.json,
    onLine: (line) => {
      if (shared) process.stderr.write('\r\x1b[K')
      process.stdout.write(line + '\n')
    },
    onAnswered: (answered) => {
      bar.tick(answered)
    },
  }
  if (values.camera !== undefined) options.camera = values.camera
  const summary = await replay(options)
  bar.finish()
  process.stdout.write((values.json ? JSON.stringify(summary) : summaryText(summary, sourcePath)) + '\n')
  if (summary.closed !== null) {
    const { streamIndex, code, reason } = summary.closed
    process.stderr.write(
      `facewire replay: the server closed stream ${String(streamIndex)} before the end: ${String(code)} ${reason}\n`,
    )
    return 1
  }
  if (summary.unanswered > 0) {
    process.stderr.write(`facewire replay: ${String(summary.unanswered)} frame(s) got no answer\n`)
    return 1
  }
  return 0
}
