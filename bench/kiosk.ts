/**
 * npm run bench:kiosk — the kiosk page (dist/kiosk) in headless Chromium against a server started
 * in the same run, its camera a fake device playing a video of walk-ups: an empty scene, then an
 * enrolled person's photo, then the next person. The video holds one walk-up per enrolled person
 * and Chromium loops it, so the run watches walk-ups until --walkups of them are complete.
 *
 * Per walk-up: the time from the kiosk first detecting the face (its track's firstSeenAt) to the
 * first rendering of the right name (decidedAt), as window.kioskStats records them; also from the
 * photo's first frame on the camera to the name. Over the run: frames and bytes sent per decision,
 * the in-browser detector's ms per frame, wrong names (a match naming someone else; must be 0),
 * the bundle's size (dist/kiosk/files.json) and what the page load transferred. Prints a table,
 * then one JSON object on the last line.
 *
 *   npm run bench:kiosk -- [--walkups 20] [--people 6] [--empty 2] [--hold 2.5] [--warmup 1]
 *                          [--workers 1] [--faces ../shared/faces]
 *
 * Ground truth comes from the video itself: every frame carries its segment's index as a marker
 * (test/helpers/video.ts) that a sampler installed in the page reads from the camera stream the
 * page opened, so a decision is judged against the photo the camera showed when it was made.
 * Each person is enrolled from two LFW photos and shown a third; a photo is used only when the
 * REST API finds one face in it and names the person, so the benchmark measures the kiosk, not
 * a hard photo.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readdir, readFile, rm } from 'node:fs/promises'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { createApiClient, type ApiClient } from '../client/api-client.js'
import { mintToken } from '../server/auth.js'
import { launchKioskBrowser } from '../test/helpers/browser.js'
import { mainPath, startMain, whenReady } from '../test/helpers/child.js'
import {
  kioskStats,
  kioskUrl,
  waitForScreen,
  type KioskDecision,
  type KioskStats,
} from '../test/helpers/kiosk-page.js'
import { tempDataDir } from '../test/helpers/temp-dir.js'
import {
  MARKER_BITS,
  MARKER_BLOCK_PX,
  markerOrigin,
  writeFakeVideo,
  type VideoSegment,
} from '../test/helpers/video.js'
import { defaultFacesDir, parsePositive } from './args.js'
import { percentile, round, table } from './stats.js'

const { values } = parseArgs({
  options: {
    walkups: { type: 'string', default: '20' },
    people: { type: 'string', default: '6' },
    empty: { type: 'string', default: '2' },
    hold: { type: 'string', default: '2.5' },
    warmup: { type: 'string', default: '1' },
    workers: { type: 'string', default: '1' },
    faces: { type: 'string', default: defaultFacesDir },
  },
})

const walkups = Math.round(parsePositive('walkups', values.walkups))
const peopleCount = Math.round(parsePositive('people', values.people))
/** Longer than the kiosk tracker's memory (1.5 s), so every walk-up is a new track. */
const emptySeconds = parsePositive('empty', values.empty)
const holdSeconds = parsePositive('hold', values.hold)
const warmup = values.warmup === '0' ? 0 : Math.round(parsePositive('warmup', values.warmup))
const workers = Math.round(parsePositive('workers', values.workers))
const lfwDir = join(values.faces, 'lfw-view1')
const filesJson = join(dirname(mainPath), '../kiosk/files.json')

const ORG = 'bench-kiosk'
const ENROLL_PHOTOS = 2
const POLL_MS = 500
/** A decision's track may be first seen this long before the sampler saw the photo's first frame. */
const SAMPLER_SLACK_MS = 300
const SAMPLER_INTERVAL_MS = 40
const TARGET_P50_MS = 500

/* ---- people ---- */

interface Person {
  name: string
  cameraPhoto: string
}

const byNumber = (a: string, b: string): number => Number.parseInt(a, 10) - Number.parseInt(b, 10)

/** Enrolls people from LFW until `peopleCount` have a camera photo the server recognizes. */
async function enrollPeople(api: ApiClient): Promise<{ people: Person[]; skipped: number }> {
  const people: Person[] = []
  let skipped = 0
  for (const folder of (await readdir(lfwDir)).sort()) {
    if (people.length >= peopleCount) break
    if (folder.includes('.')) continue
    const files = (await readdir(join(lfwDir, folder))).filter((file) => file.endsWith('.jpg')).sort(byNumber)
    const cameraFile = files[ENROLL_PHOTOS]
    if (cameraFile === undefined) continue
    const name = folder.replaceAll('_', ' ')
    const identity = await api.createIdentity({ name })
    let enrolled = 0
    for (const file of files.slice(0, ENROLL_PHOTOS)) {
      try {
        await api.addFace(identity.id, await readFile(join(lfwDir, folder, file)))
        enrolled++
      } catch {
        // No face good enough in that photo; the person needs at least one.
      }
    }
    const cameraPhoto = join(lfwDir, folder, cameraFile)
    const check = enrolled === 0 ? undefined : await api.recognize(await readFile(cameraPhoto))
    const [face, ...others] = check?.faces ?? []
    if (
      face?.decision.identity?.id !== identity.id ||
      face.decision.status !== 'match' ||
      others.length > 0
    ) {
      await api.deleteIdentity(identity.id)
      skipped++
      continue
    }
    people.push({ name, cameraPhoto })
  }
  if (people.length < peopleCount) throw new Error(`only ${String(people.length)} usable people in ${lfwDir}`)
  return { people, skipped }
}

/* ---- the sampler in the page ---- */

interface Mark {
  at: number
  segment: number
}

interface SamplerGlobals {
  navigator: { mediaDevices: { getUserMedia: (constraints: unknown) => Promise<unknown> } }
  document: { createElement: (tag: string) => unknown }
  performance: { now: () => number }
  setInterval: (callback: () => void, ms: number) => unknown
  markerTimeline?: Mark[]
}

interface SamplerVideo {
  muted: boolean
  srcObject: unknown
  videoWidth: number
  videoHeight: number
  play: () => Promise<void>
}

interface SamplerCanvas {
  width: number
  height: number
  getContext: (
    type: '2d',
    options: { willReadFrequently: boolean },
  ) => {
    drawImage: (image: unknown, ...box: number[]) => void
    getImageData: (x: number, y: number, w: number, h: number) => { data: Uint8ClampedArray }
  } | null
}

/**
 * Runs in the page before its scripts: wraps getUserMedia so that the camera stream the page opens
 * also plays in a hidden video whose marker is read every few ms; each change of segment is
 * appended to `window.markerTimeline` with the page's performance.now().
 */
function installSampler(marker: {
  bits: number
  blockPx: number
  y: number
  frameHeight: number
  everyMs: number
}): void {
  const page = globalThis as unknown as SamplerGlobals
  const timeline: Mark[] = []
  page.markerTimeline = timeline
  const devices = page.navigator.mediaDevices
  const original = devices.getUserMedia.bind(devices)
  devices.getUserMedia = async (constraints) => {
    const stream = await original(constraints)
    const video = page.document.createElement('video') as SamplerVideo
    video.muted = true
    video.srcObject = stream
    void video.play()
    const canvas = page.document.createElement('canvas') as SamplerCanvas
    const width = marker.bits * marker.blockPx
    canvas.width = width
    canvas.height = marker.blockPx
    const context = canvas.getContext('2d', { willReadFrequently: true })
    page.setInterval(() => {
      if (context === null || video.videoHeight === 0) return
      const scale = video.videoHeight / marker.frameHeight
      context.drawImage(
        video,
        0,
        marker.y * scale,
        width * scale,
        marker.blockPx * scale,
        0,
        0,
        width,
        marker.blockPx,
      )
      const { data } = context.getImageData(0, 0, width, marker.blockPx)
      let segment = 0
      for (let bit = 0; bit < marker.bits; bit++) {
        const x = bit * marker.blockPx + marker.blockPx / 2
        const luma = data[((marker.blockPx / 2) * width + x) * 4 + 1] ?? 0
        if (luma > 128) segment |= 1 << bit
      }
      if (timeline[timeline.length - 1]?.segment !== segment)
        timeline.push({ at: page.performance.now(), segment })
    }, marker.everyMs)
    return stream
  }
}

/* ---- judging ---- */

interface Visit {
  person: Person
  /** Page time the sampler first saw the photo, and first saw it gone. */
  start: number
  end: number | undefined
}

interface Sample {
  at: number
  framesSent: number
  bytesSent: number
}

function visitsOf(timeline: readonly Mark[], personOf: (segment: number) => Person | undefined): Visit[] {
  const visits: Visit[] = []
  for (const mark of timeline) {
    const open = visits[visits.length - 1]
    if (open !== undefined && open.end === undefined) open.end = mark.at
    const person = personOf(mark.segment)
    if (person !== undefined) visits.push({ person, start: mark.at, end: undefined })
  }
  return visits
}

/** Walk-ups that began after the kiosk ran, less the warm-up ones, and are over. */
function countedVisits(visits: readonly Visit[], runningAt: number): Visit[] {
  return visits
    .filter((visit) => visit.start >= runningAt)
    .slice(warmup)
    .filter((visit) => visit.end !== undefined)
}

function visitOf(visits: readonly Visit[], decision: KioskDecision): Visit | undefined {
  return visits.find(
    (v) => decision.firstSeenAt >= v.start - SAMPLER_SLACK_MS && decision.firstSeenAt < (v.end ?? Infinity),
  )
}

/** The latest sample at or before `at` (or the first), and the earliest at or after (or the last). */
function sampleAround(samples: readonly Sample[], at: number, side: 'before' | 'after'): Sample | undefined {
  if (side === 'before') return samples.filter((s) => s.at <= at).pop() ?? samples[0]
  return samples.find((s) => s.at >= at) ?? samples[samples.length - 1]
}

/* ---- bundle ---- */

interface ListedFile {
  path: string
  bytes: number
  gzipBytes: number
}

async function bundleSizes(): Promise<Record<string, { bytes: number; gzipBytes: number }>> {
  const { files } = JSON.parse(await readFile(filesJson, 'utf8')) as { files: ListedFile[] }
  const part = (test: (path: string) => boolean): { bytes: number; gzipBytes: number } => {
    const chosen = files.filter((file) => test(file.path))
    return {
      bytes: chosen.reduce((sum, file) => sum + file.bytes, 0),
      gzipBytes: chosen.reduce((sum, file) => sum + file.gzipBytes, 0),
    }
  }
  return {
    total: part(() => true),
    kioskJs: part((path) => !path.includes('/') && path.endsWith('.js')),
    onnxRuntime: part((path) => path.startsWith('ort/')),
    detectorModel: part((path) => path.startsWith('models/')),
    htmlCss: part((path) => /\.(html|css)$/.test(path)),
  }
}

/* ---- the run ---- */

if (!existsSync(lfwDir)) throw new Error(`no LFW photos at ${lfwDir} (--faces)`)
if (!existsSync(filesJson)) throw new Error(`the kiosk is not built (${filesJson}): npm run build`)

const secret = randomBytes(32).toString('hex')
const dataDir = tempDataDir()
const workDir = tempDataDir()
const server = startMain(
  {
    FACEWIRE_JWT_SECRET: secret,
    FACEWIRE_DATA_DIR: dataDir,
    FACEWIRE_WORKERS: String(workers),
    LOG_LEVEL: 'info',
  },
  {
    onLine: (line) => {
      if (typeof line['level'] === 'number' && line['level'] >= 50)
        process.stderr.write(`server: ${JSON.stringify(line)}\n`)
    },
  },
)
const token = (scopes: ('detect' | 'enroll')[]): string =>
  mintToken({ org: ORG, scopes, sub: 'bench-kiosk', ttlSeconds: 3600, key: secret })

try {
  const { baseUrl } = await whenReady(server)
  const { people, skipped } = await enrollPeople(
    createApiClient({ baseUrl, token: token(['enroll', 'detect']) }),
  )

  const segments: VideoSegment[] = people.flatMap((person) => [
    { seconds: emptySeconds },
    { photo: person.cameraPhoto, seconds: holdSeconds },
  ])
  const video = await writeFakeVideo(join(workDir, 'walkups.y4m'), segments, { marker: true })
  const personOf = (segment: number): Person | undefined =>
    segments[segment]?.photo === undefined ? undefined : people[(segment - 1) / 2]

  const kiosk = await launchKioskBrowser({ videoFile: video.file })
  let loadBytes = 0
  kiosk.context.on('requestfinished', (request) => {
    void request.sizes().then((sizes) => (loadBytes += sizes.responseBodySize + sizes.responseHeadersSize))
  })
  try {
    const { page } = kiosk
    await page.addInitScript(installSampler, {
      bits: MARKER_BITS,
      blockPx: MARKER_BLOCK_PX,
      y: markerOrigin(video.height).y,
      frameHeight: video.height,
      everyMs: SAMPLER_INTERVAL_MS,
    })
    const loadStarted = performance.now()
    await page.goto(kioskUrl(baseUrl, token(['detect'])))
    const screen = await waitForScreen(
      page,
      ['running', 'no-token', 'token-expired', 'camera-denied', 'no-camera'],
      120_000,
    )
    if (screen !== 'running') throw new Error(`the kiosk shows '${screen}'`)
    const runningAt = await page.evaluate(() => performance.now())
    const readyMs = performance.now() - loadStarted

    // Poll until enough walk-ups that began after the kiosk ran (and after the warm-up) are over.
    const deadline =
      performance.now() + 120_000 + (walkups + warmup + people.length) * video.durationS * 1000 * 2
    const samples: Sample[] = []
    let stats: KioskStats
    let timeline: Mark[]
    for (;;) {
      stats = await kioskStats(page)
      timeline = await page.evaluate(() => (globalThis as unknown as SamplerGlobals).markerTimeline ?? [])
      samples.push({
        at: await page.evaluate(() => performance.now()),
        framesSent: stats.framesSent,
        bytesSent: stats.bytesSent,
      })
      const over = countedVisits(visitsOf(timeline, personOf), runningAt).length
      if (over >= walkups) break
      if (performance.now() > deadline) throw new Error(`only ${String(over)} walk-ups before the deadline`)
      await sleep(POLL_MS)
    }
    const visits = visitsOf(timeline, personOf)
    const counted = countedVisits(visits, runningAt).slice(0, walkups)
    const matches = stats.decisions.filter((d) => d.status === 'match')
    const wrong = matches.filter((d) => {
      const visit = visitOf(visits, d)
      return visit !== undefined && d.name !== visit.person.name
    })
    const unattributed = matches.filter((d) => visitOf(visits, d) === undefined)
    const seenToName: number[] = []
    const cameraToName: number[] = []
    /** Missed walk-ups by person, and by the last status their tracks showed. */
    const missedBy: Record<string, number> = {}
    const missedAs: Record<string, number> = {}
    for (const visit of counted) {
      const right = matches.find((d) => visitOf(visits, d) === visit && d.name === visit.person.name)
      if (right === undefined) {
        const shown = stats.decisions.filter((d) => visitOf(visits, d) === visit).pop()
        const as = shown === undefined ? 'not detected' : shown.status
        missedBy[visit.person.name] = (missedBy[visit.person.name] ?? 0) + 1
        missedAs[as] = (missedAs[as] ?? 0) + 1
        continue
      }
      seenToName.push(right.decidedAt - right.firstSeenAt)
      cameraToName.push(right.decidedAt - visit.start)
    }
    const first = counted[0]
    const last = counted[counted.length - 1]
    const from = first === undefined ? undefined : sampleAround(samples, first.start, 'before')
    const to = last?.end === undefined ? undefined : sampleAround(samples, last.end, 'after')
    const framesSent = (to?.framesSent ?? 0) - (from?.framesSent ?? 0)
    const bytesSent = (to?.bytesSent ?? 0) - (from?.bytesSent ?? 0)
    const decided = seenToName.length
    const bundle = await bundleSizes()

    const summary = (values: number[]): { p50: number; p95: number; max: number } => ({
      p50: round(percentile(values, 50), 1),
      p95: round(percentile(values, 95), 1),
      max: round(Math.max(...values), 1),
    })
    const report = {
      bench: 'kiosk',
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
      workers,
      people: people.length,
      skippedPeople: skipped,
      video: { fps: video.fps, loopS: video.durationS, emptyS: emptySeconds, holdS: holdSeconds },
      walkups: counted.length,
      decided,
      missed: counted.length - seenToName.length,
      missedBy,
      missedAs,
      wrongNames: wrong.length,
      unattributedMatches: unattributed.length,
      seenToNameMs: summary(seenToName),
      cameraToNameMs: summary(cameraToName),
      framesPerDecision: round(framesSent / Math.max(1, decided), 2),
      bytesPerFrame: Math.round(bytesSent / Math.max(1, framesSent)),
      detectorMs: { ...summary(stats.detectorMs), frames: stats.detectorMs.length },
      roundTripMs: { ...summary(stats.roundTripMs), frames: stats.roundTripMs.length },
      answers: stats.answers,
      pageReadyMs: Math.round(readyMs),
      pageLoadBytes: loadBytes,
      bundle,
      targetP50Ms: TARGET_P50_MS,
      meetsTarget: decided > 0 && percentile(seenToName, 50) < TARGET_P50_MS && wrong.length === 0,
    }
    const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`
    process.stdout.write(
      table(
        ['measure', 'p50', 'p95', 'max / value'],
        [
          [
            'face seen -> name (ms)',
            report.seenToNameMs.p50,
            report.seenToNameMs.p95,
            report.seenToNameMs.max,
          ],
          [
            'photo on camera -> name (ms)',
            report.cameraToNameMs.p50,
            report.cameraToNameMs.p95,
            report.cameraToNameMs.max,
          ],
          ['detector per frame (ms)', report.detectorMs.p50, report.detectorMs.p95, report.detectorMs.max],
          ['crop round trip (ms)', report.roundTripMs.p50, report.roundTripMs.p95, report.roundTripMs.max],
          ['walk-ups named / counted', '', '', `${String(decided)} / ${String(counted.length)}`],
          [
            'missed, by what they showed',
            '',
            '',
            Object.entries(missedAs)
              .map(([as, count]) => `${String(count)} ${as}`)
              .join(', ') || 'none',
          ],
          ['wrong names', '', '', wrong.length],
          ['frames sent per decision', '', '', report.framesPerDecision],
          ['bytes per frame', '', '', report.bytesPerFrame],
          ['bundle, all files (gzip)', '', '', kib(bundle.total?.gzipBytes ?? 0)],
          ['bundle, kiosk JS (gzip)', '', '', kib(bundle.kioskJs?.gzipBytes ?? 0)],
          ['bundle, onnxruntime-web (gzip)', '', '', kib(bundle.onnxRuntime?.gzipBytes ?? 0)],
          ['page load transferred', '', '', kib(loadBytes)],
          ['page load to running (ms)', '', '', report.pageReadyMs],
        ],
      ) +
        `\n\n${String(people.length)} people, ${String(walkups)} walk-ups; target p50 < ${String(TARGET_P50_MS)} ms` +
        ` face -> name: ${report.meetsTarget ? 'met' : 'NOT met'}\n\n`,
    )
    process.stdout.write(JSON.stringify(report) + '\n')
    if (wrong.length > 0) process.exitCode = 1
  } finally {
    await kiosk.close()
  }
} finally {
  if (server.child.exitCode === null) {
    const exited = once(server.child, 'exit')
    server.child.kill('SIGTERM')
    await exited
  }
  await rm(dataDir, { recursive: true, force: true })
  await rm(workDir, { recursive: true, force: true })
}
