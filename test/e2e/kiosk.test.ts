/**
 * The kiosk end to end: the compiled server (real models, its own data directory) as a child
 * process, a person enrolled over REST from LFW photos, and the built page in a headless Chromium
 * whose camera plays a video made from other photos (test/helpers/video.ts). Every browser request
 * must stay on the server's origin.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { after, before, test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createApiClient } from '../../client/api-client.js'
import { mintToken } from '../../server/auth.js'
import { launchKioskBrowser, type KioskBrowser } from '../helpers/browser.js'
import { freePort, mainPath, startMain, whenReady, type Child } from '../helpers/child.js'
import { facesDir } from '../helpers/images.js'
import {
  kioskStats,
  kioskUrl,
  pageNow,
  recordKiosk,
  shownEvents,
  waitForDecision,
  waitForResults,
  waitForScreen,
} from '../helpers/kiosk-page.js'
import { tempDataDir } from '../helpers/temp-dir.js'
import { writeFakeVideo, type VideoSegment } from '../helpers/video.js'

const faces = facesDir()
const noFaces = faces === undefined ? 'the shared face photos (../shared/faces) are absent' : false
const lfw = join(faces ?? '', 'lfw-view1')

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const kioskFiles = resolve(dirname(mainPath), '../kiosk/files.json')
const SCREENSHOT = join(projectRoot, 'test-results', 'kiosk-recognized.png')

const SECRET = 'kiosk-e2e-secret-that-is-long-enough-0123456789'
const ORG = 'kiosk-e2e'
/** Enrolled from three photos; the camera shows five others. */
const PERSON = { folder: 'Ricardo_Lagos', name: 'Ricardo Lagos' }
const ENROLL_PHOTOS = ['1.jpg', '2.jpg', '3.jpg']
const CAMERA_PHOTOS = ['9.jpg', '17.jpg', '18.jpg', '22.jpg', '23.jpg']
/** Never enrolled. */
const STRANGER = { folder: 'Jennifer_Lopez', photos: ['7.jpg', '9.jpg', '10.jpg', '15.jpg'] }
/** Longer than the kiosk tracker's memory of a face (1.5 s), so each walk-up is a new track. */
const EMPTY_SECONDS = 2

/** Page load, model loading and the first decisions on a busy 2-core machine. */
const DECISION_TIMEOUT_MS = 60_000
/** The kiosk's reconnect backoff (1 s doubling) over a server that takes a few seconds to start. */
const RECONNECT_TIMEOUT_MS = 60_000
/** Answers the stranger's run waits through after its first `unknown`, more than a video loop. */
const STRANGER_ANSWERS = 10

let port = 0
let dataDir = ''
let workDir = ''
let server: Child | undefined
let baseUrl = ''
/** Set while the test stops the server on purpose. */
let stopping = false

const photo = (folder: string, file: string): string => join(lfw, folder, file)

function token(scopes: ('detect' | 'enroll')[]): string {
  return mintToken({ org: ORG, scopes, sub: 'kiosk-e2e', ttlSeconds: 3600, key: SECRET })
}

async function startServer(): Promise<void> {
  server = startMain({
    FACEWIRE_JWT_SECRET: SECRET,
    PORT: String(port),
    FACEWIRE_DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
  })
  const started = server
  started.child.once('exit', (code, signal) => {
    if (stopping) return
    // A crash fails the test at its next wait; this says why.
    const lines = started.lines.slice(-5).map((line) => JSON.stringify(line))
    process.stderr.write(
      `the server exited unexpectedly (${String(code ?? signal)}):\n${started.stderr()}\n${lines.join('\n')}\n`,
    )
  })
  baseUrl = (await whenReady(server)).baseUrl
}

async function stopServer(): Promise<number | null> {
  const child = server?.child
  if (child === undefined || child.exitCode !== null) return child?.exitCode ?? null
  const exited = once(child, 'exit') as Promise<[number | null]>
  stopping = true
  child.kill('SIGTERM')
  try {
    return (await exited)[0]
  } finally {
    stopping = false
  }
}

/** A browser whose camera plays `segments`, on the provisioned kiosk page, closed after the test. */
async function openKiosk(t: TestContext, name: string, segments: VideoSegment[]): Promise<KioskBrowser> {
  const video = await writeFakeVideo(join(workDir, `${name}.y4m`), segments)
  const kiosk = await launchKioskBrowser({ videoFile: video.file })
  t.after(() => kiosk.close())
  await recordKiosk(kiosk.page)
  await kiosk.page.goto(kioskUrl(baseUrl, token(['detect'])))
  const screen = await waitForScreen(
    kiosk.page,
    ['running', 'no-token', 'token-expired', 'camera-denied', 'no-camera', 'unreachable'],
    DECISION_TIMEOUT_MS,
  )
  assert.equal(screen, 'running', `the kiosk should run, it shows '${screen}'`)
  return kiosk
}

/** Console errors other than `allowed` ones. */
function consoleErrors(kiosk: KioskBrowser, allowed?: RegExp): string[] {
  return kiosk.consoleErrors.filter((line) => allowed === undefined || !allowed.test(line))
}

function assertOwnOrigin(kiosk: KioskBrowser): void {
  assert.ok(kiosk.requests.length > 0, 'the page made requests')
  assert.deepEqual(kiosk.foreignRequests(baseUrl), [], 'every request stays on the server origin')
}

before(async () => {
  if (noFaces !== false) return
  assert.ok(existsSync(kioskFiles), `the kiosk page is not built (${kioskFiles}): run npm run build`)
  port = await freePort()
  dataDir = tempDataDir()
  workDir = tempDataDir()
  await startServer()
  const api = createApiClient({ baseUrl, token: token(['enroll', 'detect']) })
  const identity = await api.createIdentity({ name: PERSON.name })
  for (const file of ENROLL_PHOTOS) await api.addFace(identity.id, await readFile(photo(PERSON.folder, file)))
})

after(async () => {
  stopping = true
  server?.child.kill('SIGKILL')
  if (dataDir !== '') await rm(dataDir, { recursive: true, force: true })
  if (workDir !== '') await rm(workDir, { recursive: true, force: true })
})

test(
  'the kiosk names an enrolled person, seen in photos other than the enrolled ones, on the face and aloud',
  { skip: noFaces, timeout: 120_000 },
  async (t) => {
    const kiosk = await openKiosk(
      t,
      'person',
      CAMERA_PHOTOS.map((file) => ({ photo: photo(PERSON.folder, file), seconds: 1 })),
    )
    const { page } = kiosk
    const decision = await waitForDecision(page, { status: 'match', name: PERSON.name }, DECISION_TIMEOUT_MS)
    assert.ok(decision.decidedAt >= decision.firstSeenAt)

    const label = page.locator('.track[data-status="match"] .track-name', { hasText: PERSON.name })
    await label.first().waitFor({ timeout: DECISION_TIMEOUT_MS })
    await mkdir(dirname(SCREENSHOT), { recursive: true })
    await page.screenshot({ path: SCREENSHOT })

    const shown = await shownEvents(page)
    assert.ok(
      shown.some((event) => event.kind === 'track' && event.value === `match:${PERSON.name}`),
      'a track showed the name',
    )
    assert.ok(
      shown.some((event) => event.kind === 'announce' && event.value.includes(PERSON.name)),
      '#announce said the name',
    )
    const stats = await kioskStats(page)
    assert.ok(stats.framesSent > 0 && stats.bytesSent > 0 && stats.answers.result > 0)
    assert.ok(stats.detectorMs.length > 0, 'the in-browser detector ran')
    assertOwnOrigin(kiosk)
    assert.deepEqual(consoleErrors(kiosk), [])
  },
)

test(
  'a stranger is shown as unknown and never under an enrolled name',
  { skip: noFaces, timeout: 120_000 },
  async (t) => {
    const kiosk = await openKiosk(
      t,
      'stranger',
      STRANGER.photos.map((file) => ({ photo: photo(STRANGER.folder, file), seconds: 1 })),
    )
    const { page } = kiosk
    await waitForDecision(page, { status: 'unknown' }, DECISION_TIMEOUT_MS)
    // Keep watching through more answers than one loop of the video brings.
    const results = (await kioskStats(page)).answers.result
    await waitForResults(page, results + STRANGER_ANSWERS, DECISION_TIMEOUT_MS)

    const shown = await shownEvents(page)
    assert.ok(shown.some((event) => event.kind === 'track' && event.value === 'unknown:Unknown'))
    assert.ok(shown.some((event) => event.kind === 'announce' && event.value.includes('Unknown')))
    const named = shown.filter((event) => event.value.includes(PERSON.name))
    assert.deepEqual(named, [], 'the enrolled name never appeared')
    const stats = await kioskStats(page)
    assert.deepEqual(
      stats.decisions.filter((d) => d.status === 'match'),
      [],
    )
    assertOwnOrigin(kiosk)
    assert.deepEqual(consoleErrors(kiosk), [])
  },
)

test(
  'when the server stops the kiosk says it is unreachable, then reconnects to the restarted server and recognizes again',
  { skip: noFaces, timeout: 150_000 },
  async (t) => {
    const [first, second] = CAMERA_PHOTOS
    const walkUps: VideoSegment[] = [
      { seconds: EMPTY_SECONDS },
      { photo: photo(PERSON.folder, first ?? ''), seconds: 2 },
      { seconds: EMPTY_SECONDS },
      { photo: photo(PERSON.folder, second ?? ''), seconds: 2 },
    ]
    const kiosk = await openKiosk(t, 'reconnect', walkUps)
    const { page } = kiosk
    await waitForDecision(page, { status: 'match', name: PERSON.name }, DECISION_TIMEOUT_MS)

    assert.equal(await stopServer(), 0, 'the server exits cleanly on SIGTERM')
    await page
      .locator('#status[data-connection="closed"]')
      .waitFor({ state: 'attached', timeout: RECONNECT_TIMEOUT_MS })
    await waitForScreen(page, ['unreachable'], RECONNECT_TIMEOUT_MS)
    const countdown = page.locator('#countdown')
    await countdown.waitFor({ state: 'visible', timeout: 5000 })
    assert.match((await countdown.textContent()) ?? '', /^\d+$/)

    await startServer()
    await waitForScreen(page, ['running'], RECONNECT_TIMEOUT_MS)
    await page
      .locator('#status[data-connection="open"]')
      .waitFor({ state: 'attached', timeout: RECONNECT_TIMEOUT_MS })
    const reconnectedAt = await pageNow(page)
    const again = await waitForDecision(
      page,
      { status: 'match', name: PERSON.name, afterMs: reconnectedAt },
      DECISION_TIMEOUT_MS,
    )
    assert.ok(again.decidedAt > reconnectedAt)

    const connections = (await shownEvents(page))
      .filter((event) => event.kind === 'connection')
      .map((event) => event.value)
    const closedAt = connections.indexOf('closed')
    assert.ok(
      closedAt > 0 && connections.indexOf('open', closedAt) > closedAt,
      `closed then open: ${String(connections)}`,
    )
    assertOwnOrigin(kiosk)
    // While the server was down the browser logs the refused connections; nothing else may fail.
    assert.deepEqual(consoleErrors(kiosk, /ERR_CONNECTION_REFUSED|WebSocket connection/), [])
  },
)
