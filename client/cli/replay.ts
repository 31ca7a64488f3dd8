/**
 * facewire replay: streams recorded frames (a directory of images, or an MJPEG file) to
 * /ws/detect at the recorded pace, a fixed rate or as fast as answers come, prints the tracks'
 * decisions as they change and a summary of what came back.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import type { StreamAnswer, StreamFace } from '../../protocol/wire.js'
import { MAX_CAMERA_LABEL_BYTES, type FrameHeader } from '../../protocol/frame.js'
import { imageTypeOf } from '../api-client.js'
import { openDetectStream, UpgradeRefused, type Closed, type DetectStream } from '../stream-client.js'
import { createProgress } from './progress.js'
import { connectionOptions, tokenFrom } from './connection.js'

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

/** How long to wait for an answer before counting its frame unanswered. */
const ANSWER_TIMEOUT_MS = 10_000
/** How long to wait for the close handshake when the replay is over. */
const CLOSE_TIMEOUT_MS = 1_000
/** The largest SOURCE read into memory (frames are preloaded so reading never disturbs the pace). */
const MAX_SOURCE_BYTES = 1024 * 1024 * 1024
const MAX_STREAMS = 64
const MAX_LOOPS = 100_000
const MAX_FPS = 1000
/** The longest frame header: version, flags, frame id, track id, camera label. */
const MAX_HEADER_BYTES = 6 + 4 + 1 + MAX_CAMERA_LABEL_BYTES
const MANIFEST = 'frames.jsonl'

/** A SOURCE that cannot be replayed: exit status 2. */
export class SourceError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SourceError'
  }
}

export interface SourceFrame {
  image: Uint8Array
  /** Path relative to the directory; absent for MJPEG frames. */
  file?: string
  /** Recorded time, ms from the start (frames.jsonl only). */
  t?: number
  trackId?: number
  camera?: string
}

export interface ReplaySource {
  kind: 'directory' | 'frames.jsonl' | 'mjpeg'
  frames: SourceFrame[]
}

export interface ManifestLine {
  file: string
  t: number
  track?: number
  camera?: string
}

const isUint32 = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff

function checkCamera(label: string, where: string): string {
  const bytes = Buffer.byteLength(label, 'utf8')
  if (bytes === 0 || bytes > MAX_CAMERA_LABEL_BYTES) {
    throw new SourceError(`${where}: camera must be 1-${String(MAX_CAMERA_LABEL_BYTES)} bytes of UTF-8`)
  }
  return label
}

/** Parses frames.jsonl; throws SourceError naming the line. */
export function parseManifest(text: string): ManifestLine[] {
  const lines: ManifestLine[] = []
  let previousT = 0
  for (const [i, raw] of text.split('\n').entries()) {
    if (raw.trim() === '') continue
    const where = `${MANIFEST} line ${String(i + 1)}`
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch {
      throw new SourceError(`${where}: not JSON`)
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new SourceError(`${where}: expected an object {"file", "t", "track"?, "camera"?}`)
    }
    const { file, t, track, camera } = value as Record<string, unknown>
    if (typeof file !== 'string' || file === '') throw new SourceError(`${where}: file must be a file name`)
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) {
      throw new SourceError(`${where}: t must be ms from the start (a number >= 0)`)
    }
    if (t < previousT)
      throw new SourceError(`${where}: t goes back in time (${String(t)} after ${String(previousT)})`)
    previousT = t
    const line: ManifestLine = { file, t }
    if (track !== undefined) {
      if (!isUint32(track)) throw new SourceError(`${where}: track must be a uint32`)
      line.track = track
    }
    if (camera !== undefined) {
      if (typeof camera !== 'string') throw new SourceError(`${where}: camera must be a string`)
      line.camera = checkCamera(camera, where)
    }
    lines.push(line)
  }
  if (lines.length === 0) throw new SourceError(`${MANIFEST} lists no frames`)
  return lines
}

type JpegEnd = { end: number } | { truncated: true } | { malformed: string }

/**
 * Where the JPEG starting at `start` (its SOI) ends: walks the marker segments by their lengths
 * (so FFD9 inside an APPn segment, an EXIF thumbnail say, is not taken for the end) and the
 * entropy-coded data, where FF is stuffed (FF00) and only RSTn markers may appear.
 */
function jpegEnd(bytes: Uint8Array, start: number): JpegEnd {
  let i = start + 2
  for (;;) {
    if (i + 1 >= bytes.length) return { truncated: true }
    if (bytes[i] !== 0xff) return { malformed: `expected a marker at byte ${String(i)}` }
    const marker = bytes[i + 1] ?? 0
    if (marker === 0xff) {
      i++ // fill byte
      continue
    }
    if (marker === 0xd9) return { end: i + 2 }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2 // markers without a length
      continue
    }
    if (marker === 0xd8 || marker === 0x00) return { malformed: `unexpected marker at byte ${String(i)}` }
    if (i + 3 >= bytes.length) return { truncated: true }
    const length = ((bytes[i + 2] ?? 0) << 8) | (bytes[i + 3] ?? 0)
    if (length < 2) return { malformed: `a segment length below 2 at byte ${String(i)}` }
    i += 2 + length
    if (marker !== 0xda) continue
    // Entropy-coded data after SOS runs to the next marker other than FF00 and RSTn.
    for (;;) {
      if (i + 1 >= bytes.length) return { truncated: true }
      if (bytes[i] !== 0xff) {
        i++
        continue
      }
      const next = bytes[i + 1] ?? 0
      if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) i += 2
      else if (next === 0xff) i++
      else break
    }
  }
}

function indexOfSoi(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 2 < bytes.length; i++) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd8 && bytes[i + 2] === 0xff) return i
  }
  return -1
}

/**
 * Splits an MJPEG file (JPEGs one after another) into its frames. Bytes between frames
 * (multipart boundaries and headers) are skipped; a last frame cut short is left out.
 */
export function splitMjpeg(bytes: Uint8Array): { frames: Uint8Array[]; truncatedTail: boolean } {
  const frames: Uint8Array[] = []
  let at = indexOfSoi(bytes, 0)
  while (at >= 0) {
    const found = jpegEnd(bytes, at)
    if ('truncated' in found) return { frames, truncatedTail: true }
    if ('malformed' in found) {
      throw new SourceError(`frame ${String(frames.length + 1)} (at byte ${String(at)}): ${found.malformed}`)
    }
    frames.push(bytes.subarray(at, found.end))
    at = indexOfSoi(bytes, found.end)
  }
  return { frames, truncatedTail: false }
}

async function readBounded(path: string, budget: { left: number }): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (error) {
    throw new SourceError(`cannot read ${path}: ${(error as Error).message}`)
  }
  budget.left -= bytes.length
  if (budget.left < 0) throw new SourceError(`SOURCE is over ${String(MAX_SOURCE_BYTES)} bytes`)
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
}

/** Reads SOURCE into memory: a directory of images (with an optional frames.jsonl) or an MJPEG file. */
export async function loadSource(path: string): Promise<ReplaySource> {
  let isDirectory: boolean
  try {
    isDirectory = (await stat(path)).isDirectory()
  } catch (error) {
    throw new SourceError(`cannot read ${path}: ${(error as Error).message}`)
  }
  const budget = { left: MAX_SOURCE_BYTES }
  if (!isDirectory) {
    const { frames, truncatedTail } = splitMjpeg(await readBounded(path, budget))
    if (frames.length === 0)
      throw new SourceError(`${path} holds no JPEG (an MJPEG file is JPEGs one after another)`)
    if (truncatedTail)
      process.stderr.write(`facewire replay: the last frame of ${path} is cut short; left out\n`)
    return { kind: 'mjpeg', frames: frames.map((image) => ({ image })) }
  }
  let manifest: string | undefined
  try {
    manifest = await readFile(join(path, MANIFEST), 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SourceError(`cannot read ${join(path, MANIFEST)}: ${(error as Error).message}`)
    }
  }
  if (manifest !== undefined) {
    const frames: SourceFrame[] = []
    for (const line of parseManifest(manifest)) {
      const frame: SourceFrame = {
        image: await readBounded(join(path, line.file), budget),
        file: line.file,
        t: line.t,
      }
      if (line.track !== undefined) frame.trackId = line.track
      if (line.camera !== undefined) frame.camera = line.camera
      frames.push(frame)
    }
    return { kind: 'frames.jsonl', frames }
  }
  const files = (await readdir(path, { withFileTypes: true }))
    .filter((entry) => entry.isFile() && !entry.name.startsWith('.') && imageTypeOf(entry.name) !== undefined)
    .map((entry) => entry.name)
    .sort()
  if (files.length === 0) throw new SourceError(`${path} holds no .jpg, .jpeg, .png or .webp file`)
  const frames: SourceFrame[] = []
  for (const file of files) frames.push({ image: await readBounded(join(path, file), budget), file })
  return { kind: 'directory', frames }
}

export type Pace = { kind: 'recorded' } | { kind: 'fps'; fps: number } | { kind: 'max' }

interface Planned {
  /** Index into the source's frames. */
  index: number
  /** When to send it, ms after the replay starts (unused at --max). */
  offsetMs: number
}

/** The sends of one stream: every frame of every loop, with its time. */
function plan(source: ReplaySource, pace: Pace, loops: number, fallbackFps: number): Planned[] {
  const frames = source.frames
  const out: Planned[] = []
  const first = frames[0]?.t ?? 0
  const span = (frames[frames.length - 1]?.t ?? 0) - first
  // A loop starts one mean frame interval after the previous loop's last frame.
  const period = span + (frames.length > 1 ? span / (frames.length - 1) : 1000 / fallbackFps)
  for (let loop = 0; loop < loops; loop++) {
    for (const [index, frame] of frames.entries()) {
      const position = out.length
      const offsetMs =
        pace.kind === 'recorded'
          ? loop * period + (frame.t ?? 0) - first
          : pace.kind === 'fps'
            ? (position * 1000) / pace.fps
            : 0
      out.push({ index, offsetMs })
    }
  }
  return out
}

type AnswerType = StreamAnswer['type']
type AnswerCounts = Record<AnswerType, number>

const noAnswers = (): AnswerCounts => ({ result: 0, dropped: 0, throttled: 0, error: 0 })

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
  decisions: { tracks: number; matched: Record<string, number>; uncertain: number; unknown: number }
  /** From sending a frame to its `result` (other answers are left out); null without results. */
  latencyMs: { p50: number; p95: number; p99: number } | null
  /** From the first send to the last answer. */
  durationMs: number
  /** Frames sent per second, all streams together, over `durationMs`. */
  achievedFps: number
  perStream: {
    streamIndex: number
    session: string
    framesSent: number
    answers: AnswerCounts
    unanswered: number
  }[]
  /** The server closed a stream before the end. */
  closed: { streamIndex: number; code: number; reason: string } | null
}

interface InFlight {
  sentAt: number
  index: number
  resolve?: (answer: StreamAnswer | undefined) => void
}

interface TrackState {
  decisionKey: string
  lastStatus: StreamFace['decision']['status']
  matched: Set<string>
}

/** Close codes whose reason the server may leave empty. */
const CLOSE_NAMES: Record<number, string> = {
  1001: 'ERR_SHUTTING_DOWN',
  1006: 'connection lost',
  1008: 'policy violation',
  1009: 'ERR_BODY_TOO_LARGE',
  1011: 'ERR_INTERNAL',
  4401: 'ERR_AUTH_EXPIRED',
}

function percentile(sorted: number[], p: number): number {
  const value = sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0
  return Math.round(value * 10) / 10
}

const round1 = (value: number): number => Math.round(value * 10) / 10

/** Resolves with `promise`'s value, or undefined after `ms` or on abort; leaves no timer behind. */
function within<T>(promise: Promise<T>, ms: number, signal: AbortSignal): Promise<T | undefined> {
  return new Promise((resolve) => {
    const finish = (value: T | undefined): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      resolve(value)
    }
    const onAbort = (): void => {
      finish(undefined)
    }
    const timer = setTimeout(onAbort, ms)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(finish, onAbort)
  })
}

/** Waits until `performance.now()` reaches `due` (timers run on whole milliseconds and may wake early). */
async function until(due: number, signal: AbortSignal): Promise<void> {
  for (let left = due - performance.now(); left > 0 && !signal.aborted; left = due - performance.now()) {
    await sleep(Math.ceil(left), undefined, { signal }).catch(() => undefined)
  }
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

/** Replays `source` on every stream (already open) and returns the summary; closes the streams. */
export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  const { streams, source, pace, json } = options
  const fallbackFps = Math.min(...streams.map((stream) => stream.hello.suggestedFps))
  const planned = plan(source, pace, options.loops, fallbackFps)
  const total = planned.length * streams.length
  const abort = new AbortController()
  const answers = noAnswers()
  const errorsByCode: Record<string, number> = {}
  const latencies: number[] = []
  const tracks = new Map<string, TrackState>()
  let unexpectedAnswers = 0
  let answered = 0
  let closedEarly: ReplaySummary['closed'] = null
  // Every stream's schedule counts from here (set just before the first send).
  let startedAt = performance.now()
  let firstSendAt: number | undefined
  let lastAnswerAt: number | undefined
  let lastSendAt = 0

  const describe = (face: StreamFace): string => {
    const d = face.decision
    const who = d.identity === undefined ? '' : ` ${d.identity.name}`
    const frames = face.track.frames
    return `${d.status} ${who} ${d.similarity.toFixed(3)} (${String(frames)} frame${frames === 1 ? '' : 's'})`
  }

  const runs = streams.map((stream, streamIndex) => {
    const inFlight = new Map<number, InFlight>()
    const counts = noAnswers()
    let sent = 0
    let closing = false
    let closed = false
    const idleWaiters: (() => void)[] = []
    const wakeIdle = (): void => {
      if (inFlight.size === 0 || closed) for (const wake of idleWaiters.splice(0)) wake()
    }
    const prefix = streams.length > 1 ? `stream ${String(streamIndex)}  ` : ''
    stream.socket.on('error', () => undefined) // reported by the close that follows
    void stream.closed.then((info: Closed) => {
      closed = true
      if (!closing && closedEarly === null) {
        closedEarly = { streamIndex, code: info.code, reason: info.reason || (CLOSE_NAMES[info.code] ?? '') }
        abort.abort()
      }
      for (const frame of inFlight.values()) frame.resolve?.(undefined)
      wakeIdle()
    })

    stream.onAnswer((answer) => {
      const now = performance.now()
      lastAnswerAt = now
      answers[answer.type]++
      counts[answer.type]++
      const frame = answer.frameId === undefined ? undefined : inFlight.get(answer.frameId)
      if (frame === undefined) unexpectedAnswers++
      else if (answer.frameId !== undefined) {
        inFlight.delete(answer.frameId)
        answered++
        options.onAnswered?.(answered, total)
      }
      const latencyMs = frame === undefined ? undefined : round1(now - frame.sentAt)
      if (answer.type === 'result' && latencyMs !== undefined) latencies.push(latencyMs)
      if (answer.type === 'error')
        errorsByCode[answer.error.code] = (errorsByCode[answer.error.code] ?? 0) + 1
      const sourceFrame = frame === undefined ? undefined : source.frames[frame.index]
      if (json) {
        const line: ReplayAnswerLine = { ...answer, streamIndex }
        if (frame !== undefined) {
          line.sentMs = round1(frame.sentAt - startedAt)
          if (latencyMs !== undefined) line.latencyMs = latencyMs
          if (sourceFrame?.file !== undefined) line.file = sourceFrame.file
          else line.sourceIndex = frame.index
        }
        options.onLine(JSON.stringify(line))
      } else if (answer.type === 'error') {
        const id = answer.frameId === undefined ? '?' : String(answer.frameId)
        options.onLine(`${prefix}frame ${id}  error  ${answer.error.code}: ${answer.error.message}`)
      }
      if (answer.type === 'result') {
        for (const face of answer.faces) {
          const key = `${String(streamIndex)}:${face.track.source}:${String(face.track.id)}`
          const decision = face.decision
          const decisionKey = `${decision.status}:${decision.identity?.id ?? ''}`
          let track = tracks.get(key)
          if (track === undefined) {
            track = { decisionKey: '', lastStatus: decision.status, matched: new Set() }
            tracks.set(key, track)
          }
          track.lastStatus = decision.status
          if (decision.status === 'match' && decision.identity !== undefined)
            track.matched.add(decision.identity.name)
          if (track.decisionKey !== decisionKey) {
            track.decisionKey = decisionKey
            const label = `${face.track.source === 'client' ? 'c' : 's'}${String(face.track.id)}`
            if (!json)
              options.onLine(`${prefix}frame ${String(answer.frameId)}  track ${label}  ${describe(face)}`)
          }
        }
      }
      if (frame !== undefined) frame.resolve?.(answer)
      wakeIdle()
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
        inFlight.set(frameId, entry)
        firstSendAt ??= entry.sentAt
        stream.send(header, frame.image)
        sent++
        lastSendAt = performance.now()
        if (answer !== undefined) {
          const got = await within(answer, ANSWER_TIMEOUT_MS, abort.signal)
          if (got?.type === 'throttled') await until(performance.now() + got.retryAfterMs, abort.signal)
        }
      }
      // Every frame sent gets one answer: wait for the last ones.
      if (inFlight.size > 0 && !closed) {
        await within(
          new Promise<void>((resolve) => idleWaiters.push(resolve)),
          ANSWER_TIMEOUT_MS,
          abort.signal,
        )
      }
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
        framesSent: sent,
        answers: counts,
        unanswered: inFlight.size,
      }),
    }
  })

  startedAt = performance.now()
  await Promise.all(runs.map((run) => run.play()))
  await Promise.all(runs.map((run) => run.stop()))

  const perStream = runs.map((run) => run.stats())
  const framesSent = perStream.reduce((sum, s) => sum + s.framesSent, 0)
  const sorted = [...latencies].sort((a, b) => a - b)
  const end = Math.max(lastAnswerAt ?? 0, lastSendAt)
  const durationMs = firstSendAt === undefined ? 0 : round1(end - firstSendAt)
  const matched: Record<string, number> = {}
  let uncertain = 0
  let unknown = 0
  for (const track of tracks.values()) {
    for (const name of track.matched) matched[name] = (matched[name] ?? 0) + 1
    if (track.matched.size > 0) continue
    if (track.lastStatus === 'uncertain') uncertain++
    else if (track.lastStatus === 'unknown') unknown++
  }
  return {
    type: 'summary',
    source: { kind: source.kind, frames: source.frames.length },
    pace: pace.kind,
    fps: pace.kind === 'fps' ? pace.fps : null,
    streams: streams.length,
    loops: options.loops,
    framesSent,
    answers,
    unanswered: perStream.reduce((sum, s) => sum + s.unanswered, 0),
    unexpectedAnswers,
    errorsByCode,
    decisions: { tracks: tracks.size, matched, uncertain, unknown },
    latencyMs:
      sorted.length === 0
        ? null
        : { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) },
    durationMs,
    achievedFps: durationMs > 0 ? round1((framesSent * 1000) / durationMs) : 0,
    perStream,
    closed: closedEarly,
  }
}

function summaryText(summary: ReplaySummary, sourcePath: string): string {
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
