/**
 * npm run bench:soak — hours-long behaviour in minutes: mixed load against a server started in the
 * same run with the shipped models, for --minutes (default 30), then a check that every frame got
 * exactly one answer. The load, all at once:
 *
 * - streams at capacity: --streams /ws/detect streams (default twice the workers) each sending
 *   kiosk crops of an enrolled person at --fps (default 10): more than the pool can take, so every
 *   worker stays busy and latest-frame-wins drops the surplus (answered `dropped`);
 * - enrollments and deletions: a new identity enrolled from an LFW photo every few seconds, the
 *   oldest of them deleted once there are eight, a face deleted now and then;
 * - watchers: /ws/events connections opened every two seconds and closed after a few seconds;
 * - invalid traffic: every few seconds a connection flooding tiny invalid messages (closed by the
 *   server with 1008), a text message on a short-lived stream, and a malformed REST body.
 *
 * Every minute, a row from the server's /metrics (RSS, heap used, event-loop lag p99 over the
 * minute: the server resets that histogram on each scrape, and nothing else scrapes it here,
 * active handles, open WebSockets) and from the client side (answers per second by type). At the
 * end the rows as a table, then one JSON object on the last line. Exits 1 when a frame went
 * unanswered, was answered twice, or an answer was not sent (`facewire_ws_answers_dropped_total`),
 * and when a step of the load failed (`totals.failures`).
 *
 *   npm run bench:soak -- [--minutes 30] [--streams N] [--fps 10] [--workers N] [--faces ../shared/faces]
 */
import { randomBytes } from 'node:crypto'
import { readdir, readFile, rm } from 'node:fs/promises'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { ApiError, createApiClient, type ApiClient } from '../client/api-client.js'
import { within } from '../client/replay/pacing.js'
import { createTally, type SentFrame, type StreamTally } from '../client/replay/tally.js'
import { openDetectStream, openEventStream, type DetectStream } from '../client/stream-client.js'
import type { AnswerType } from '../client/replay/tally.js'
import { mintToken } from '../server/auth.js'
import { tempDataDir } from '../test/helpers/temp-dir.js'
import { flood } from '../test/helpers/ws-flood.js'
import { defaultFacesDir, parsePositive } from './args.js'
import { kioskCrop, metricValue, requireBenchInputs, startBenchServer, stopBenchServer } from './shared.js'
import { round, table } from './stats.js'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    streams: { type: 'string' },
    fps: { type: 'string', default: '10' },
    workers: { type: 'string' },
    faces: { type: 'string', default: defaultFacesDir },
  },
})

const minutes = parsePositive('minutes', values.minutes)
const fps = parsePositive('fps', values.fps)
const workersOption =
  values.workers === undefined ? undefined : parsePositive('workers', values.workers, true)
const lfwDir = join(values.faces, 'lfw-view1')

const ORG = 'soak'
const MiB = 1024 * 1024
const REPORT_EVERY_MS = 60_000
/** People streamed (enrolled first, never deleted). */
const STREAMED_PEOPLE = 4
/** Enrollment churn: one identity enrolled per tick, the oldest deleted past this many. */
const CHURN_TICK_MS = 4000
const CHURN_KEEP = 8
const WATCHER_EVERY_MS = 2000
const WATCHER_STAYS_MS = [1000, 8000] as const
const INVALID_EVERY_MS = 3000
/** One flood: this long, at most this many messages (the server closes it after ten). */
const FLOOD_MS = 300
const FLOOD_MAX_MESSAGES = 2_000_000
/** After the load stops, how long answers still owed may take. */
const ANSWER_GRACE_MS = 15_000

/* ---- the server ---- */

interface ServerSample {
  rssMiB: number
  heapUsedMiB: number
  lagP99Ms: number
  handles: number
  websockets: number
  answersNotSent: number
  policyCloses: number
}

async function sampleServer(baseUrl: string): Promise<ServerSample> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text()
  const closes1008 = text
    .split('\n')
    .filter((line) => line.startsWith('facewire_ws_closes_total{') && line.includes('code="1008"'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
  return {
    rssMiB: round(metricValue(text, 'facewire_process_resident_memory_bytes') / MiB, 1),
    heapUsedMiB: round(metricValue(text, 'facewire_nodejs_heap_size_used_bytes') / MiB, 1),
    lagP99Ms: round(metricValue(text, 'facewire_nodejs_eventloop_lag_p99_seconds') * 1000, 1),
    handles: metricValue(text, 'facewire_nodejs_active_handles_total'),
    websockets: metricValue(text, 'facewire_ws_connections'),
    answersNotSent: metricValue(text, 'facewire_ws_answers_dropped_total'),
    policyCloses: closes1008,
  }
}

/* ---- people ---- */

interface Streamed {
  name: string
  crops: Uint8Array[]
}

/** LFW people with at least two photos, in a fixed order. */
async function lfwPeople(): Promise<{ name: string; files: string[] }[]> {
  const names = (await readdir(lfwDir)).filter((name) => !name.includes('.')).sort()
  const people: { name: string; files: string[] }[] = []
  for (const name of names) {
    const files = (await readdir(join(lfwDir, name))).filter((file) => file.endsWith('.jpg')).sort()
    if (files.length >= 2) people.push({ name, files })
  }
  return people
}

/**
 * Enrolls LFW person `folder` as `name` from its first photo with an enrollable face; undefined
 * when none has one.
 */
async function enroll(
  api: ApiClient,
  name: string,
  folder: string,
  files: readonly string[],
): Promise<string | undefined> {
  const identity = await api.createIdentity({ name })
  for (const file of files) {
    try {
      await api.addFace(identity.id, await readFile(join(lfwDir, folder, file)))
      return identity.id
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 422) throw error
    }
  }
  await api.deleteIdentity(identity.id)
  return undefined
}

/* ---- the load ---- */

interface Counters {
  answers: Record<AnswerType, number>
  enrolled: number
  deleted: number
  facesDeleted: number
  watchersOpened: number
  events: number
  floods: number
  floodCloses1008: number
  invalidAnswered: number
  streamReopens: number
  failures: Record<string, number>
}

function newCounters(): Counters {
  return {
    answers: { result: 0, dropped: 0, throttled: 0, error: 0 },
    enrolled: 0,
    deleted: 0,
    facesDeleted: 0,
    watchersOpened: 0,
    events: 0,
    floods: 0,
    floodCloses1008: 0,
    invalidAnswered: 0,
    streamReopens: 0,
    failures: {},
  }
}

function fail(counters: Counters, what: string, error: unknown): void {
  const key = `${what}: ${error instanceof Error ? error.message.slice(0, 80) : String(error)}`
  counters.failures[key] = (counters.failures[key] ?? 0) + 1
}

/** Sends `task` every `everyMs` until `stop`; a run still going when the next is due is skipped. */
function every(everyMs: number, stop: AbortSignal, task: () => Promise<void>): Promise<void> {
  return (async () => {
    while (!stop.aborted) {
      const started = performance.now()
      await task()
      await sleep(Math.max(0, everyMs - (performance.now() - started)), undefined, { signal: stop }).catch(
        () => undefined,
      )
    }
  })()
}

interface Stream {
  socket: DetectStream
  frames: StreamTally<SentFrame>
  nextFrameId: number
}

/* ---- the run ---- */

requireBenchInputs('bench:soak', lfwDir)

const dataDir = tempDataDir('facewire-bench-soak-')
const secret = randomBytes(32).toString('base64url')
const ttlSeconds = Math.ceil(minutes * 60) + 3600
const token = mintToken({
  org: ORG,
  scopes: ['detect', 'enroll', 'watch'],
  sub: 'bench-soak',
  ttlSeconds,
  key: secret,
})
const server = await startBenchServer({
  FACEWIRE_DATA_DIR: dataDir,
  FACEWIRE_JWT_SECRET: secret,
  FACEWIRE_WORKERS: workersOption === undefined ? undefined : String(workersOption),
}).catch(async (error: unknown) => {
  await rm(dataDir, { recursive: true, force: true })
  throw error
})
const port = Number(new URL(server.baseUrl).port)
let exitCode = 0
try {
  const api = createApiClient({ baseUrl: server.baseUrl, token })
  const pool = await lfwPeople()
  const streamed: Streamed[] = []
  let next = 0
  while (streamed.length < STREAMED_PEOPLE && next < pool.length) {
    const person = pool[next++]
    if (person === undefined) break
    const [enrollFile, ...rest] = person.files
    const crops: Uint8Array[] = []
    for (const file of rest.slice(0, 3)) {
      const crop = await kioskCrop(api, await readFile(join(lfwDir, person.name, file)))
      if (crop !== undefined) crops.push(crop)
    }
    if (crops.length === 0 || enrollFile === undefined) continue
    if ((await enroll(api, person.name, person.name, [enrollFile])) !== undefined)
      streamed.push({ name: person.name, crops })
  }
  if (streamed.length === 0) throw new Error(`no enrollable LFW person with 2+ photos in ${lfwDir}`)
  const streamCount =
    values.streams === undefined ? 2 * server.workers : parsePositive('streams', values.streams, true)

  const tally = createTally()
  const counters = newCounters()
  const stop = new AbortController()
  const startedAt = performance.now()
  const endAt = startedAt + minutes * 60_000

  // Streams: each sends on its own clock; one the server closes is reopened (and counted).
  const streams: Stream[] = []
  const openStream = async (index: number): Promise<Stream> => {
    const socket = await openDetectStream({ baseUrl: server.baseUrl, token })
    const stream: Stream = { socket, frames: tally.stream(), nextFrameId: 1 }
    socket.onAnswer((answer) => {
      counters.answers[answer.type]++
      stream.frames.recordAnswer(answer)
    })
    void socket.closed.then(() => {
      stream.frames.release()
      if (stop.signal.aborted) return
      counters.streamReopens++
      openStream(index).then(
        (reopened) => (streams[index] = reopened),
        (error: unknown) => {
          fail(counters, 'stream reopen', error)
        },
      )
    })
    return stream
  }
  for (let i = 0; i < streamCount; i++) streams.push(await openStream(i))
  const periodMs = 1000 / fps
  const sending = streams.map((_, index) =>
    (async () => {
      await sleep((index / streamCount) * periodMs)
      for (let slot = performance.now(); !stop.signal.aborted; slot += periodMs) {
        const stream = streams[index]
        const person = streamed[index % streamed.length]
        if (
          stream !== undefined &&
          person !== undefined &&
          stream.socket.socket.readyState === stream.socket.socket.OPEN
        ) {
          const frameId = stream.nextFrameId++
          const image = person.crops[frameId % person.crops.length]
          if (image !== undefined) {
            stream.frames.recordSend(frameId, { sentAt: performance.now() })
            stream.socket.send({ frameId, trackId: 1, camera: `soak-${String(index)}` }, image)
          }
        }
        // A slot missed by a late timer is skipped, not caught up.
        const now = performance.now()
        while (slot + periodMs < now) slot += periodMs
        await sleep(Math.max(0, slot + periodMs - now))
      }
    })(),
  )

  // Enrollment churn, with a face deletion every third tick.
  const churn: string[] = []
  let tick = 0
  const enrolling = every(CHURN_TICK_MS, stop.signal, async () => {
    tick++
    try {
      const person = pool[next++ % pool.length]
      if (person !== undefined) {
        const id = await enroll(api, `${person.name}-${String(tick)}`, person.name, person.files.slice(0, 2))
        if (id !== undefined) {
          churn.push(id)
          counters.enrolled++
        }
      }
      if (tick % 3 === 0 && churn.length > 0) {
        const faces = await api.listFaces(churn[churn.length - 1] ?? '')
        const face = faces.items[0]
        if (face !== undefined) {
          await api.deleteFace(face.id)
          counters.facesDeleted++
        }
      }
      while (churn.length > CHURN_KEEP) {
        await api.deleteIdentity(churn.shift() ?? '')
        counters.deleted++
      }
    } catch (error) {
      fail(counters, 'churn', error)
    }
  })

  // Watchers that come and go.
  const watching = every(WATCHER_EVERY_MS, stop.signal, async () => {
    try {
      const watcher = await openEventStream({ baseUrl: server.baseUrl, token })
      counters.watchersOpened++
      watcher.onEvent(() => counters.events++)
      const [least, most] = WATCHER_STAYS_MS
      setTimeout(
        () => {
          watcher.close()
        },
        least + Math.random() * (most - least),
      )
    } catch (error) {
      fail(counters, 'watcher', error)
    }
  })

  // Invalid traffic: a flood, a text message on a stream of its own, a malformed REST body.
  const invalid = every(INVALID_EVERY_MS, stop.signal, async () => {
    try {
      const tallyOfFlood = await flood({
        port,
        path: '/ws/detect',
        token,
        maxMessages: FLOOD_MAX_MESSAGES,
        untilMs: performance.now() + FLOOD_MS,
        reconnect: false,
      })
      counters.floods++
      counters.floodCloses1008 += tallyOfFlood.closeCodes.filter((code) => code === 1008).length
      const stray = await openDetectStream({ baseUrl: server.baseUrl, token })
      const answered = new Promise<void>((resolve) => {
        stray.onAnswer((answer) => {
          if (answer.type === 'error' && answer.error.code === 'ERR_MESSAGE_INVALID')
            counters.invalidAnswered++
          resolve()
        })
      })
      stray.socket.send('not a frame')
      await within(answered, 5000, stop.signal)
      stray.close()
      const response = await fetch(`${server.baseUrl}/api/v1/identities`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{"name":',
      })
      await response.body?.cancel()
      if (response.status === 400) counters.invalidAnswered++
    } catch (error) {
      fail(counters, 'invalid', error)
    }
  })

  // Every minute: a row.
  interface Row {
    minute: number
    rssMiB: number
    heapUsedMiB: number
    lagP99Ms: number
    handles: number
    websockets: number
    answersPerS: number
    resultsPerS: number
    droppedPerS: number
    enrolled: number
    deleted: number
    watchers: number
    floodCloses1008: number
  }
  const rows: Row[] = []
  await sampleServer(server.baseUrl) // starts the first minute's lag window
  let previous = { ...counters, answers: { ...counters.answers } }
  let minuteStart = performance.now()
  while (performance.now() < endAt) {
    await sleep(Math.min(REPORT_EVERY_MS, endAt - performance.now()))
    const sample = await sampleServer(server.baseUrl)
    const now = performance.now()
    const seconds = (now - minuteStart) / 1000
    const answered = (type: AnswerType): number => counters.answers[type] - previous.answers[type]
    const all = answered('result') + answered('dropped') + answered('throttled') + answered('error')
    const row: Row = {
      minute: rows.length + 1,
      rssMiB: sample.rssMiB,
      heapUsedMiB: sample.heapUsedMiB,
      lagP99Ms: sample.lagP99Ms,
      handles: sample.handles,
      websockets: sample.websockets,
      answersPerS: round(all / seconds, 1),
      resultsPerS: round(answered('result') / seconds, 1),
      droppedPerS: round(answered('dropped') / seconds, 1),
      enrolled: counters.enrolled - previous.enrolled,
      deleted: counters.deleted - previous.deleted,
      watchers: counters.watchersOpened - previous.watchersOpened,
      floodCloses1008: counters.floodCloses1008 - previous.floodCloses1008,
    }
    rows.push(row)
    process.stderr.write(`${JSON.stringify(row)}\n`)
    previous = { ...counters, answers: { ...counters.answers } }
    minuteStart = now
  }

  stop.abort()
  await Promise.all([...sending, enrolling, watching, invalid])
  const settled = Promise.all(streams.map((stream) => stream.frames.settled()))
  await within(settled, ANSWER_GRACE_MS, new AbortController().signal)
  const final = await sampleServer(server.baseUrl)
  for (const stream of streams) stream.socket.close()

  const everyFrameAnsweredOnce =
    tally.unanswered === 0 && tally.unexpectedAnswers === 0 && final.answersNotSent === 0
  const failures = Object.values(counters.failures).reduce((sum, count) => sum + count, 0)
  if (!everyFrameAnsweredOnce || failures > 0) exitCode = 1
  const first = rows[0]
  const last = rows[rows.length - 1]
  const report = {
    bench: 'soak',
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
    config: { minutes, streams: streamCount, fps, workers: server.workers, streamedPeople: streamed.length },
    minutes: rows,
    totals: {
      framesSent: tally.sent,
      answers: tally.answers,
      errorsByCode: tally.errorsByCode,
      unanswered: tally.unanswered,
      unexpectedAnswers: tally.unexpectedAnswers,
      answersNotSent: final.answersNotSent,
      streamReopens: counters.streamReopens,
      enrolled: counters.enrolled,
      identitiesDeleted: counters.deleted,
      facesDeleted: counters.facesDeleted,
      watchersOpened: counters.watchersOpened,
      events: counters.events,
      floods: counters.floods,
      floodCloses1008: counters.floodCloses1008,
      serverPolicyCloses: final.policyCloses,
      invalidAnswered: counters.invalidAnswered,
      failures: counters.failures,
    },
    summary: {
      everyFrameAnsweredOnce,
      rssGrowthMiB: first === undefined || last === undefined ? null : round(last.rssMiB - first.rssMiB, 1),
      heapGrowthMiB:
        first === undefined || last === undefined ? null : round(last.heapUsedMiB - first.heapUsedMiB, 1),
      worstLagP99Ms: Math.max(...rows.map((row) => row.lagP99Ms)),
    },
  }
  process.stdout.write(
    `${String(streamCount)} streams x ${String(fps)} fps of ${String(streamed.length)} people, ${String(server.workers)} workers, ${String(minutes)} min\n` +
      table(
        [
          'min',
          'RSS MiB',
          'heap MiB',
          'lag p99 ms',
          'handles',
          'ws',
          'answers/s',
          'results/s',
          'dropped/s',
          'enrolled',
          'deleted',
          'watchers',
          '1008',
        ],
        rows.map((row) => [
          row.minute,
          row.rssMiB,
          row.heapUsedMiB,
          row.lagP99Ms,
          row.handles,
          row.websockets,
          row.answersPerS,
          row.resultsPerS,
          row.droppedPerS,
          row.enrolled,
          row.deleted,
          row.watchers,
          row.floodCloses1008,
        ]),
      ) +
      `\nframes ${String(tally.sent)}: ${String(tally.answers.result)} result, ${String(tally.answers.dropped)} dropped, ${String(
        tally.answers.throttled,
      )} throttled, ${String(tally.answers.error)} error; unanswered ${String(tally.unanswered)}, answered twice ${String(
        tally.unexpectedAnswers,
      )}, not sent ${String(final.answersNotSent)}: ${everyFrameAnsweredOnce ? 'every frame answered once' : 'ANSWERS MISSING'}\n` +
      `${String(counters.enrolled)} enrolled, ${String(counters.deleted)} identities and ${String(counters.facesDeleted)} faces deleted, ${String(counters.watchersOpened)} watchers (${String(counters.events)} events), ${String(counters.floods)} floods (${String(counters.floodCloses1008)} closed 1008), ${String(counters.invalidAnswered)} invalid messages answered, ${String(failures)} failures\n` +
      `${JSON.stringify(report)}\n`,
  )
} finally {
  await stopBenchServer(server)
  await rm(dataDir, { recursive: true, force: true })
}
process.exit(exitCode)
