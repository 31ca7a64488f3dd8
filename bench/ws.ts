/**
 * npm run bench:ws — live /ws/detect streams against a server started in the same run with the
 * shipped models: N streams x F frames/s for T seconds per step, N ramping up. Per step: offered and
 * answered frames/s, send->answer latency, dropped / throttled / error ratios, server CPU and RSS
 * (sampled from /metrics every 500 ms). The baseline, measured in the same run, is one stream
 * sending one frame at a time (the next when the previous is answered): the unloaded latency.
 * Prints a table, then one JSON object on the last line.
 *
 *   npm run bench:ws -- [--streams 1,2,4,8,16,32] [--fps 10] [--seconds 10] [--identities 8]
 *                       [--baseline-frames 40] [--workers N] [--faces ../shared/faces]
 *
 * Frames are face crops as a kiosk sends them (about twice the face box, at most 320 px, JPEG
 * quality 80), cut at startup from LFW photos in the shared faces folder; the same people are
 * enrolled first (from another photo), so every frame runs a real gallery search.
 */
import { randomBytes } from 'node:crypto'
import { readdir, readFile, rm } from 'node:fs/promises'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { createApiClient, type ApiClient } from '../client/api-client.js'
import { within } from '../client/replay/pacing.js'
import { createTally, type SentFrame, type StreamTally, type Tally } from '../client/replay/tally.js'
import { openDetectStream, type DetectStream } from '../client/stream-client.js'
import { mintToken } from '../server/auth.js'
import type { StreamAnswer } from '../protocol/wire.js'
import { tempDataDir } from '../test/helpers/temp-dir.js'
import { defaultFacesDir, parsePositive } from './args.js'
import {
  kioskCrop,
  metricValue,
  requireBenchInputs,
  startBenchServer,
  stopBenchServer,
  type BenchServer,
} from './shared.js'
import { percentile, round, table } from './stats.js'

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '1,2,4,8,16,32' },
    fps: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '10' },
    identities: { type: 'string', default: '8' },
    'baseline-frames': { type: 'string', default: '40' },
    workers: { type: 'string' },
    faces: { type: 'string', default: defaultFacesDir },
  },
})

const streamSteps = values.streams.split(',').map((part) => Math.round(parsePositive('streams', part.trim())))
const fps = parsePositive('fps', values.fps)
const seconds = parsePositive('seconds', values.seconds)
const identityCount = Math.round(parsePositive('identities', values.identities))
const baselineFrames = Math.round(parsePositive('baseline-frames', values['baseline-frames']))
const workers =
  values.workers === undefined ? undefined : Math.round(parsePositive('workers', values.workers))
const lfwDir = join(values.faces, 'lfw-view1')

/** The latency bar the ramp looks for: the largest N whose result p99 is under it. */
const P99_BAR_MS = 100
/** The same knee relative to this run's unloaded latency: result p99 under this x baseline p99. */
const BASELINE_FACTOR = 2
/** A step is saturated once its results/s reach this share of the run's peak. */
const SATURATION_SHARE = 0.9
/** How long a step waits, after its last frame, for the answers still owed. */
const ANSWER_GRACE_MS = 10_000
const SAMPLE_INTERVAL_MS = 500
const ORG = 'bench'
const MiB = 1024 * 1024

/* ---- the server, as a child process ---- */

type Server = BenchServer

function startServer(dataDir: string, secret: string): Promise<Server> {
  return startBenchServer({
    FACEWIRE_DATA_DIR: dataDir,
    FACEWIRE_JWT_SECRET: secret,
    // Far above what the pipeline sustains: the rate limits must not hide its capacity.
    FACEWIRE_STREAM_MAX_FPS: '1000',
    FACEWIRE_ORG_MAX_FPS: '100000',
    // The server's default pool size unless --workers says otherwise.
    FACEWIRE_WORKERS: workers === undefined ? undefined : String(workers),
  })
}

const stopServer = stopBenchServer

/* ---- /metrics sampling ---- */

interface Sample {
  /** performance.now() of the answer. */
  atMs: number
  cpuSeconds: number
  rssBytes: number
  /** Answers the server did not send (send buffer over its bound), all types. */
  answersNotSent: number
}

async function sampleMetrics(baseUrl: string): Promise<Sample> {
  const response = await fetch(`${baseUrl}/metrics`)
  const text = await response.text()
  return {
    atMs: performance.now(),
    cpuSeconds: metricValue(text, 'facewire_process_cpu_seconds_total'),
    rssBytes: metricValue(text, 'facewire_process_resident_memory_bytes'),
    answersNotSent: metricValue(text, 'facewire_ws_answers_dropped_total'),
  }
}

/** Samples /metrics every SAMPLE_INTERVAL_MS until stopped; the first and last are taken on call. */
async function startSampler(baseUrl: string): Promise<{ stop: () => Promise<Sample[]> }> {
  const samples: Sample[] = [await sampleMetrics(baseUrl)]
  let pending: Promise<void> = Promise.resolve()
  const timer = setInterval(() => {
    pending = pending.then(async () => {
      samples.push(await sampleMetrics(baseUrl))
    })
  }, SAMPLE_INTERVAL_MS)
  return {
    stop: async () => {
      clearInterval(timer)
      await pending
      samples.push(await sampleMetrics(baseUrl))
      return samples
    },
  }
}

/* ---- frames ---- */

interface Person {
  name: string
  identityId: string
  crops: Uint8Array[]
}

async function loadPeople(api: ApiClient): Promise<Person[]> {
  const names = (await readdir(lfwDir)).filter((name) => !name.includes('.')).sort()
  const people: Person[] = []
  for (const name of names) {
    if (people.length >= identityCount) break
    const files = (await readdir(join(lfwDir, name))).filter((file) => file.endsWith('.jpg')).sort()
    if (files.length < 2) continue
    const [enrollFile, ...streamFiles] = files
    if (enrollFile === undefined) continue
    const crops: Uint8Array[] = []
    for (const file of streamFiles.slice(0, 3)) {
      const crop = await kioskCrop(api, await readFile(join(lfwDir, name, file)))
      if (crop !== undefined) crops.push(crop)
    }
    if (crops.length === 0) continue
    const identity = await api.createIdentity({ name })
    try {
      await api.addFace(identity.id, await readFile(join(lfwDir, name, enrollFile)))
    } catch {
      // No face good enough to enroll in that photo: take the next person.
      await api.deleteIdentity(identity.id)
      continue
    }
    people.push({ name, identityId: identity.id, crops })
  }
  return people
}

/* ---- one step ---- */

function personFor(people: readonly Person[], stream: number): Person {
  const person = people[stream % people.length]
  if (person === undefined) throw new Error('no people to stream')
  return person
}

/** A step's answers (the tally facewire replay keeps too) and what bench:ws reads in its results. */
interface StepTally {
  answers: Tally
  /** The server's own `timings.totalMs` of each result (arrival to answer, no network). */
  serverTotalMs: number[]
  /** Of which: behind the stream's previous frame, waiting for a worker, in the worker. */
  serverWaitMs: number[]
  serverQueueMs: number[]
  serverPipelineMs: number[]
  /** The rest of the server's time: worker hand-off, tracks and search, the event loop. */
  serverOtherMs: number[]
  resultsWithFace: number
  /** Results whose first face's decision is a match with the person the stream shows. */
  matchedExpected: number
  unexpectedCloses: number
}

function newStepTally(): StepTally {
  return {
    answers: createTally(),
    serverTotalMs: [],
    serverWaitMs: [],
    serverQueueMs: [],
    serverPipelineMs: [],
    serverOtherMs: [],
    resultsWithFace: 0,
    matchedExpected: 0,
    unexpectedCloses: 0,
  }
}

interface Tracked {
  stream: DetectStream
  person: Person
  /** Frames sent and not answered yet, with their send time. */
  frames: StreamTally<SentFrame>
  nextFrameId: number
  closing: boolean
}

/** Opens a stream whose answers are tallied against the send time of their frame. */
async function openTracked(
  baseUrl: string,
  token: string,
  person: Person,
  tally: StepTally,
): Promise<Tracked> {
  const stream = await openDetectStream({ baseUrl, token })
  const tracked: Tracked = { stream, person, frames: tally.answers.stream(), nextFrameId: 1, closing: false }
  stream.onAnswer((answer: StreamAnswer) => {
    tracked.frames.recordAnswer(answer)
    if (answer.type !== 'result') return
    const t = answer.timings
    tally.serverTotalMs.push(t.totalMs)
    tally.serverWaitMs.push(t.waitMs)
    tally.serverQueueMs.push(t.queueMs)
    const pipelineMs = t.decodeMs + t.detectMs + t.landmarksMs + t.alignMs + t.embedMs
    tally.serverPipelineMs.push(pipelineMs)
    tally.serverOtherMs.push(t.totalMs - t.waitMs - t.queueMs - pipelineMs)
    const face = answer.faces[0]
    if (face !== undefined) {
      tally.resultsWithFace++
      const decision = face.decision
      if (decision.status === 'match' && decision.identity?.id === person.identityId) tally.matchedExpected++
    }
  })
  void stream.closed.then(() => {
    if (!tracked.closing) tally.unexpectedCloses++
    tracked.frames.release()
  })
  return tracked
}

async function closeTracked(tracked: Tracked): Promise<void> {
  tracked.closing = true
  tracked.stream.close()
  await tracked.stream.closed
}

function sendFrame(tracked: Tracked): void {
  const frameId = tracked.nextFrameId++
  const crops = tracked.person.crops
  const image = crops[frameId % crops.length]
  if (image === undefined || tracked.stream.socket.readyState !== tracked.stream.socket.OPEN) return
  tracked.frames.recordSend(frameId, { sentAt: performance.now() })
  tracked.stream.send({ frameId, trackId: 1, camera: 'bench' }, image)
}

/** One stream, one frame at a time: the pipeline's latency with nothing else to do. */
async function baseline(server: Server, token: string, person: Person, frames: number): Promise<number[]> {
  const tracked = await openTracked(server.baseUrl, token, person, newStepTally())
  const latencies: number[] = []
  for (let i = 0; i < frames; i++) {
    const frameId = tracked.nextFrameId
    const answered = tracked.stream.answerFor(frameId)
    const sentAt = performance.now()
    sendFrame(tracked)
    const answer = await answered
    if (answer.type === 'result') latencies.push(performance.now() - sentAt)
  }
  await closeTracked(tracked)
  return latencies
}

interface Latency {
  n: number
  p50: number
  p95: number
  p99: number
  max: number
}

interface StepReport {
  streams: number
  offeredFps: number
  answeredFps: number
  resultMs: Latency
  answerMs: Latency
  /** The server's `timings` of the results: arrival to answer, and its parts. */
  serverMs: Record<'total' | 'wait' | 'queue' | 'pipeline' | 'other', Latency>
  /** Result p99 over the baseline's p99 (one stream, one frame at a time), same run. */
  p99ToBaselineP99: number
  droppedRatio: number
  throttledRatio: number
  errorRatio: number
  errors: number
  errorCodes: Record<string, number>
  unanswered: number
  unexpectedAnswers: number
  answersNotSent: number
  unexpectedCloses: number
  resultsWithFaceRatio: number
  matchedExpectedRatio: number
  suggestedFps: number
  serverCpuPercent: number
  benchCpuPercent: number
  rssMiB: { min: number; max: number }
  /** [seconds since the step started, server CPU % over the interval, RSS MiB] */
  samples: [number, number, number][]
}

function latencySummary(values: readonly number[]): Latency {
  return {
    n: values.length,
    p50: round(percentile(values, 50), 1),
    p95: round(percentile(values, 95), 1),
    p99: round(percentile(values, 99), 1),
    max: round(values.length === 0 ? NaN : Math.max(...values), 1),
  }
}

async function runStep(
  server: Server,
  token: string,
  people: Person[],
  streamCount: number,
): Promise<StepReport> {
  const tally = newStepTally()
  const answers = tally.answers
  const tracked: Tracked[] = await Promise.all(
    Array.from({ length: streamCount }, (_, i) =>
      openTracked(server.baseUrl, token, personFor(people, i), tally),
    ),
  )
  const suggestedFps = Math.min(...tracked.map((t) => t.stream.hello.suggestedFps))

  const sampler = await startSampler(server.baseUrl)
  const benchCpu = process.cpuUsage()
  const periodMs = 1000 / fps
  const started = performance.now()
  const endAt = started + seconds * 1000
  const timers = new Set<NodeJS.Timeout>()
  // Each stream sends on its own clock, whatever its answers: phases spread over one period, as
  // unsynchronised cameras would be. A slot missed by a late timer is skipped, not caught up.
  const schedule = (t: Tracked, slotAt: number): void => {
    const timer = setTimeout(
      () => {
        timers.delete(timer)
        sendFrame(t)
        let next = slotAt + periodMs
        const now = performance.now()
        while (next < now) next += periodMs
        if (next < endAt) schedule(t, next)
      },
      Math.max(0, slotAt - performance.now()),
    )
    timers.add(timer)
  }
  tracked.forEach((t, i) => {
    schedule(t, started + (i / streamCount) * periodMs)
  })
  await sleep(Math.max(0, endAt - performance.now()))
  for (const timer of timers) clearTimeout(timer)
  const sendingMs = performance.now() - started
  const benchCpuUsed = process.cpuUsage(benchCpu)
  const samples = await sampler.stop()

  const allSettled = Promise.all(tracked.map((t) => t.frames.settled()))
  await within(allSettled, ANSWER_GRACE_MS, new AbortController().signal)
  const unanswered = answers.unanswered
  await Promise.all(tracked.map(closeTracked))

  const first = samples[0]
  const last = samples[samples.length - 1]
  if (first === undefined || last === undefined) throw new Error('no /metrics samples')
  const rss = samples.map((s) => s.rssBytes / MiB)
  const resultMs = latencySummary(answers.latenciesMs.result)
  const results = answers.answers.result
  const sent = answers.sent
  return {
    streams: streamCount,
    offeredFps: round(sent / (sendingMs / 1000), 1),
    answeredFps: round(results / (sendingMs / 1000), 1),
    resultMs,
    answerMs: latencySummary(Object.values(answers.latenciesMs).flat()),
    serverMs: {
      total: latencySummary(tally.serverTotalMs),
      wait: latencySummary(tally.serverWaitMs),
      queue: latencySummary(tally.serverQueueMs),
      pipeline: latencySummary(tally.serverPipelineMs),
      other: latencySummary(tally.serverOtherMs),
    },
    p99ToBaselineP99: NaN, // set once the baseline after the ramp is in
    droppedRatio: round(answers.answers.dropped / Math.max(1, sent), 3),
    throttledRatio: round(answers.answers.throttled / Math.max(1, sent), 3),
    errorRatio: round(answers.answers.error / Math.max(1, sent), 3),
    errors: answers.answers.error,
    errorCodes: answers.errorsByCode,
    unanswered,
    unexpectedAnswers: answers.unexpectedAnswers,
    answersNotSent: last.answersNotSent - first.answersNotSent,
    unexpectedCloses: tally.unexpectedCloses,
    resultsWithFaceRatio: round(tally.resultsWithFace / Math.max(1, results), 3),
    matchedExpectedRatio: round(tally.matchedExpected / Math.max(1, results), 3),
    suggestedFps,
    serverCpuPercent: round(
      (100 * (last.cpuSeconds - first.cpuSeconds)) / ((last.atMs - first.atMs) / 1000),
      1,
    ),
    benchCpuPercent: round((100 * (benchCpuUsed.user + benchCpuUsed.system)) / 1000 / sendingMs, 1),
    rssMiB: { min: round(Math.min(...rss), 1), max: round(Math.max(...rss), 1) },
    samples: samples.slice(1).map((s, i): [number, number, number] => {
      const previous = samples[i] ?? s
      const cpu =
        (100 * (s.cpuSeconds - previous.cpuSeconds)) / Math.max(0.001, (s.atMs - previous.atMs) / 1000)
      return [round((s.atMs - started) / 1000, 1), round(cpu, 0), round(s.rssBytes / MiB, 1)]
    }),
  }
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${String(value)}`
}

/** The last step of the ramp before the first whose result p99 is at or over `barMs`. */
function lastUnder(steps: readonly StepReport[], barMs: number): StepReport | undefined {
  let last: StepReport | undefined
  for (const step of steps) {
    if (!(step.resultMs.p99 < barMs)) break
    last = step
  }
  return last
}

/* ---- the run ---- */

requireBenchInputs('bench:ws', lfwDir)

const dataDir = tempDataDir('facewire-bench-ws-')
const secret = randomBytes(32).toString('base64url')
const token = mintToken({
  org: ORG,
  scopes: ['detect', 'enroll'],
  sub: 'bench-ws',
  ttlSeconds: 3600,
  key: secret,
})
const server = await startServer(dataDir, secret).catch(async (error: unknown) => {
  await rm(dataDir, { recursive: true, force: true })
  throw error
})
try {
  const api = createApiClient({ baseUrl: server.baseUrl, token })
  const people = await loadPeople(api)
  const firstPerson = people[0]
  if (firstPerson === undefined) throw new Error(`no enrollable LFW person with 2+ photos in ${lfwDir}`)
  const cropBytes = people.flatMap((p) => p.crops.map((c) => c.length))

  // Warm-up (first inferences are slow), then the baseline before and after the ramp.
  await baseline(server, token, firstPerson, 5)
  const before = await baseline(server, token, firstPerson, baselineFrames)

  const steps: StepReport[] = []
  for (const n of streamSteps) {
    const step = await runStep(server, token, people, n)
    steps.push(step)
    process.stderr.write(
      `N=${String(n)}: ${String(step.answeredFps)} results/s, p99 ${String(step.resultMs.p99)} ms\n`,
    )
  }
  const after = await baseline(server, token, firstPerson, baselineFrames)
  const baselineAll = [...before, ...after]
  const baselineP99 = percentile(baselineAll, 99)
  for (const step of steps) step.p99ToBaselineP99 = round(step.resultMs.p99 / baselineP99)

  const firstStep = steps[0]
  const lastStep = steps[steps.length - 1]
  const peakFps = Math.max(...steps.map((s) => s.answeredFps))
  const capacity = lastUnder(steps, P99_BAR_MS)
  // The same knee against the unloaded latency of this run, which a noisy machine moves too.
  const capacityVsBaseline = lastUnder(steps, BASELINE_FACTOR * baselineP99)
  // Saturation: the first step whose results/s reach SATURATION_SHARE of the peak. Past it, more
  // streams add no answers, only dropped frames (and refusals once the pool's queue is full).
  const saturation = steps.find((s) => s.answeredFps >= SATURATION_SHARE * peakFps)
  // From the first step with a stream per worker every worker can be busy at once (a stream holds
  // at most one frame in the pipeline), so each has allocated its working memory: RSS is flat from
  // there or it is not.
  const allWorkers = steps.find((s) => s.streams >= server.workers) ?? firstStep
  const summary = {
    largestStreamsUnderP99Bar: capacity?.streams ?? null,
    answeredFpsThere: capacity?.answeredFps ?? null,
    largestStreamsUnder2xBaselineP99: capacityVsBaseline?.streams ?? null,
    peakAnsweredFps: peakFps,
    saturation:
      saturation === undefined
        ? null
        : {
            streams: saturation.streams,
            answeredFps: saturation.answeredFps,
            p99Ms: saturation.resultMs.p99,
          },
    pastSaturation:
      saturation === undefined || lastStep === undefined || lastStep === saturation
        ? null
        : {
            largestStreams: lastStep.streams,
            largestP99Ms: lastStep.resultMs.p99,
            largestMaxMs: lastStep.resultMs.max,
            p99ToSaturationP99: round(lastStep.resultMs.p99 / saturation.resultMs.p99),
            streamsToSaturationStreams: round(lastStep.streams / saturation.streams),
            answeredFpsLargestToPeak: round(lastStep.answeredFps / peakFps),
          },
    rss:
      firstStep === undefined || lastStep === undefined || allWorkers === undefined
        ? null
        : {
            firstStepMaxMiB: firstStep.rssMiB.max,
            allWorkersStreams: allWorkers.streams,
            allWorkersStepMaxMiB: allWorkers.rssMiB.max,
            lastStepMaxMiB: lastStep.rssMiB.max,
            deltaFromFirstMiB: round(lastStep.rssMiB.max - firstStep.rssMiB.max, 1),
            deltaFromAllWorkersMiB: round(lastStep.rssMiB.max - allWorkers.rssMiB.max, 1),
            /** Growth within the last (heaviest) step, from its first sample to its last. */
            lastStepDriftMiB: round(
              (lastStep.samples[lastStep.samples.length - 1]?.[2] ?? NaN) - (lastStep.samples[0]?.[2] ?? NaN),
              1,
            ),
          },
    everyFrameAnsweredOnce: steps.every(
      (s) => s.unanswered === 0 && s.unexpectedAnswers === 0 && s.answersNotSent === 0,
    ),
  }

  const report = {
    bench: 'ws',
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
    config: {
      streams: streamSteps,
      fps,
      seconds,
      workers: server.workers,
      identities: people.length,
      crops: cropBytes.length,
      cropBytesP50: percentile(cropBytes, 50),
      p99BarMs: P99_BAR_MS,
    },
    baselineMs: {
      before: latencySummary(before),
      after: latencySummary(after),
      all: latencySummary(baselineAll),
    },
    steps,
    summary,
  }

  const errorText = (s: StepReport): string =>
    s.errors === 0
      ? '0'
      : Object.entries(s.errorCodes)
          .map(([code, count]) => `${String(count)} ${code.replace(/^ERR_/, '')}`)
          .join(', ')
  process.stdout.write(
    `${String(people.length)} enrolled identities, ${String(cropBytes.length)} crops (p50 ${String(
      Math.round(percentile(cropBytes, 50) / 1024),
    )} KiB), ${String(server.workers)} workers, ${String(fps)} fps per stream, ${String(seconds)} s per step\n` +
      `baseline (1 stream, 1 frame at a time): p50 ${String(round(percentile(before, 50), 1))} ms before the ramp, ${String(
        round(percentile(after, 50), 1),
      )} ms after; p99 ${String(round(percentile(baselineAll, 99), 1))} ms\n\n`,
  )
  process.stdout.write(
    table(
      [
        'N',
        'offered/s',
        'results/s',
        'p50 ms',
        'p95 ms',
        'p99 ms',
        'max ms',
        'p99/base',
        'all p99',
        'dropped',
        'throttled',
        'errors',
        'srv CPU%',
        'RSS MiB',
        'bench CPU%',
      ],
      steps.map((s) => [
        s.streams,
        s.offeredFps,
        s.answeredFps,
        s.resultMs.p50,
        s.resultMs.p95,
        s.resultMs.p99,
        s.resultMs.max,
        `${String(s.p99ToBaselineP99)}x`,
        s.answerMs.p99,
        `${String(round(s.droppedRatio * 100, 1))}%`,
        `${String(round(s.throttledRatio * 100, 1))}%`,
        errorText(s),
        s.serverCpuPercent,
        `${String(s.rssMiB.min)}-${String(s.rssMiB.max)}`,
        s.benchCpuPercent,
      ]),
    ) + '\n\n',
  )
  const p50p99 = (l: Latency): string => `${String(round(l.p50, 1))} / ${String(round(l.p99, 1))}`
  process.stdout.write(
    "server timings of the results, p50 / p99 ms (wait: behind the stream's previous frame; queue: for a worker; pipeline: decode to embed; other: hand-off, tracks, search)\n\n" +
      table(
        ['N', 'total', 'wait', 'queue', 'pipeline', 'other', 'suggestedFps', 'matched'],
        steps.map((s) => [
          s.streams,
          p50p99(s.serverMs.total),
          p50p99(s.serverMs.wait),
          p50p99(s.serverMs.queue),
          p50p99(s.serverMs.pipeline),
          p50p99(s.serverMs.other),
          s.suggestedFps,
          `${String(round(s.matchedExpectedRatio * 100, 1))}%`,
        ]),
      ) +
      '\n\n',
  )
  const lines: string[] = []
  lines.push(
    capacity === undefined
      ? `no step kept result p99 under ${String(P99_BAR_MS)} ms (peak ${String(peakFps)} results/s)`
      : `largest N with result p99 < ${String(P99_BAR_MS)} ms: ${String(capacity.streams)} (${String(
          capacity.answeredFps,
        )} results/s; peak ${String(peakFps)} results/s)`,
    `largest N with result p99 < ${String(BASELINE_FACTOR)}x the baseline p99 (${String(
      round(BASELINE_FACTOR * baselineP99, 1),
    )} ms): ${capacityVsBaseline === undefined ? 'none' : String(capacityVsBaseline.streams)}`,
  )
  const sat = summary.saturation
  const past = summary.pastSaturation
  if (sat !== null)
    lines.push(
      `saturation (results/s >= ${String(SATURATION_SHARE * 100)}% of the peak) at N=${String(sat.streams)}: ${String(
        sat.answeredFps,
      )} results/s, p99 ${String(sat.p99Ms)} ms` +
        (past === null
          ? ''
          : `; at N=${String(past.largestStreams)}: p99 ${String(past.largestP99Ms)} ms (${String(
              past.p99ToSaturationP99,
            )}x for ${String(past.streamsToSaturationStreams)}x the streams), max ${String(
              past.largestMaxMs,
            )} ms, ${String(past.answeredFpsLargestToPeak)}x the peak results/s`),
    )
  const rss = summary.rss
  if (rss !== null)
    lines.push(
      `RSS max: ${String(rss.firstStepMaxMiB)} MiB at N=${String(firstStep?.streams)}, ${String(
        rss.allWorkersStepMaxMiB,
      )} MiB at N=${String(rss.allWorkersStreams)} (first step with a stream per worker), ${String(
        rss.lastStepMaxMiB,
      )} MiB at N=${String(lastStep?.streams)}: ${signed(rss.deltaFromAllWorkersMiB)} MiB from N=${String(
        rss.allWorkersStreams,
      )}, ${signed(rss.lastStepDriftMiB)} MiB within the last step`,
    )
  lines.push(`every frame answered exactly once: ${summary.everyFrameAnsweredOnce ? 'yes' : 'NO'}`)
  process.stdout.write(lines.join('\n') + '\n\n')
  process.stdout.write(JSON.stringify(report) + '\n')
} finally {
  await stopServer(server)
  await rm(dataDir, { recursive: true, force: true })
}
