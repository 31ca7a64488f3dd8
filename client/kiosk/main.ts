/**
 * The kiosk page: provisioning, camera, in-browser detection and tracking, one context crop per
 * track streamed to /ws/detect at the server's pace, the answers shown per face, and enrollment.
 * Everything that can be decided without the DOM lives in the pure modules next to this one.
 */
import { encodeFrame } from '../../protocol/frame.js'
import type { StreamAnswer, StreamHello, StreamResult } from '../../protocol/wire.js'
import { createApi } from './api.js'
import { createBackoff, DEFAULT_BACKOFF } from './backoff.js'
import { openCamera } from './camera.js'
import { createStreamConnection, type StreamConnection } from './connection.js'
import { JPEG_QUALITY, planCrop } from './crop.js'
import { clipBox } from './detector-decode.js'
import { createDetector, type FaceDetector } from './detector.js'
import { createEnrollmentCapture, describeEnrollError, type EnrollmentCapture } from './enrollment.js'
import { createPacer, DEFAULT_PACER } from './pacer.js'
import { provision } from './provisioning.js'
import { nextScreen, type Screen, type ScreenEvent } from './screens.js'
import {
  createRateMeter,
  createStats,
  MAX_DECISIONS,
  MAX_SAMPLES,
  median,
  pushBounded,
  type KioskStats,
} from './stats.js'
import { hasScope, isExpired, msUntilExpiry, readTokenClaims } from './token.js'
import {
  createTrackMemory,
  describeTrack,
  type FaceHints,
  type TrackMemory,
  type TrackView,
} from './track-view.js'
import { createTracker, type Track } from './tracker.js'
import { createView, type KioskView } from './view.js'

declare global {
  interface Window {
    kioskStats: KioskStats
  }
}

/** Detector runs per second at most: enough to follow a walking person, light on a small PC. */
const MAX_DETECT_FPS = 15
const STATUS_INTERVAL_MS = 250
/** After enrolling, how long the kiosk waits to recognize the person before giving up. */
const CONFIRM_TIMEOUT_MS = 20_000
const ENROLL_RESULT_MS = 3000
const MAX_TIMER_MS = 0x7fffffff

interface TrackState {
  memory: TrackMemory
  hints: FaceHints
  /** The status (and name) last recorded in kioskStats.decisions. */
  recorded: string | undefined
}

interface SentRecord {
  trackId: number
  sentAt: number
  image: Uint8Array
}

interface Enrolling {
  name: string
  capture: EnrollmentCapture
  phase: 'capturing' | 'saving' | 'confirming' | 'done'
  identityId?: string
  deadline?: number
}

function detectorModel(): { url: string; inputSize: number } {
  const meta = document.querySelector('meta[name="facewire-detector"]')
  const url = meta?.getAttribute('content')
  const inputSize = Number(meta?.getAttribute('data-input-size'))
  if (url === null || url === undefined || !(inputSize > 0))
    throw new Error('the page names no detector model')
  return { url, inputSize }
}

function nextFrame(video: HTMLVideoElement, minGapMs: number, since: number): Promise<void> {
  const wait = Math.max(0, minGapMs - (performance.now() - since))
  return new Promise((resolve) => {
    setTimeout(() => {
      if ('requestVideoFrameCallback' in video)
        video.requestVideoFrameCallback(() => {
          resolve()
        })
      else
        requestAnimationFrame(() => {
          resolve()
        })
    }, wait)
  })
}

async function start(view: KioskView, stats: KioskStats): Promise<void> {
  let screen: Screen = 'starting'
  const go = (event: ScreenEvent): void => {
    screen = nextScreen(screen, event)
    view.setScreen(screen)
  }
  /** A screen that needs the operator: the kiosk will not connect. */
  const halt = (event: ScreenEvent): void => {
    stats.connection = 'closed'
    view.setStatus('closed', 'Not connected')
    go(event)
  }

  const { token, camera, fromFragment } = provision(location.hash, sessionStorage)
  // The token must not stay in the address bar, the history or a bookmark.
  if (fromFragment) history.replaceState(null, '', location.pathname + location.search)
  if (token === undefined) {
    halt({ type: 'token-missing' })
    return
  }
  const claims = readTokenClaims(token)
  if (claims === undefined || isExpired(claims, Date.now()) || !hasScope(claims, 'detect')) {
    halt({ type: 'token-rejected' })
    return
  }
  const canEnroll = hasScope(claims, 'enroll')

  const [cameraResult, detectorResult] = await Promise.all([
    openCamera(),
    createDetector(detectorModel()).then(
      (detector): { detector: FaceDetector } => ({ detector }),
      (error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }),
    ),
  ])
  if (!cameraResult.ok) {
    const missing = cameraResult.reason === 'missing'
    halt({ type: missing ? 'camera-missing' : 'camera-denied' })
    view.setDetail(missing ? 'no-camera' : 'camera-denied', cameraResult.detail)
    return
  }
  if ('error' in detectorResult) {
    view.setDetail('starting', `The face detector did not load: ${detectorResult.error}`)
    halt({ type: 'camera-ready' })
    return
  }
  const { detector } = detectorResult
  const video = view.video
  video.srcObject = cameraResult.stream
  await video.play()

  const tracker = createTracker()
  const states = new Map<number, TrackState>()
  const pacer = createPacer({ ...DEFAULT_PACER, fps: 1 })
  const sent = new Map<number, SentRecord>()
  const sendRate = createRateMeter()
  const cropCanvas = document.createElement('canvas')
  const cropContext = cropCanvas.getContext('2d')
  const api = createApi(location.origin, token)
  let hello: StreamHello | undefined
  let retryAt: number | undefined
  let lastError: string | undefined
  let enrolling: Enrolling | undefined
  let stopped = false

  const frameSize = (): [number, number] => [video.videoWidth, video.videoHeight]

  const render = (now: number): void => {
    const [width, height] = frameSize()
    const visible = tracker.visible(now)
    view.renderTracks(
      visible.map((t) => ({ id: t.id, box: t.box, view: stateOf(t).memory.view })),
      width,
      height,
    )
    // Record each status once it is on screen: decidedAt is when the person could read it.
    const renderedAt = performance.now()
    for (const track of visible) record(track, stateOf(track).memory.view, renderedAt)
  }

  const stateOf = (track: Track): TrackState => {
    let state = states.get(track.id)
    if (state === undefined) {
      state = {
        memory: createTrackMemory(),
        hints: { widthPx: track.box.width, luma: 0.5 },
        recorded: undefined,
      }
      states.set(track.id, state)
    }
    return state
  }

  const record = (track: Track, trackView: TrackView, at: number): void => {
    const state = stateOf(track)
    const key = trackView.status === 'match' ? `match:${trackView.text}` : trackView.status
    if (state.recorded === key) return
    state.recorded = key
    pushBounded(
      stats.decisions,
      {
        trackId: track.id,
        status: trackView.status,
        ...(trackView.status === 'match' ? { name: trackView.text } : {}),
        firstSeenAt: track.firstSeenAt,
        decidedAt: at,
      },
      MAX_DECISIONS,
    )
  }

  const connection: StreamConnection = createStreamConnection({
    origin: location.origin,
    token,
    backoff: createBackoff({ ...DEFAULT_BACKOFF, random: Math.random }),
    handlers: {
      state(state) {
        stats.connection = state
      },
      hello(message) {
        hello = message
        retryAt = undefined
        pacer.reset(message.suggestedFps)
        sent.clear()
        go({ type: 'connected' })
      },
      answer: (answer) => {
        onAnswer(answer)
      },
      rejected() {
        stop()
        go({ type: 'token-rejected' })
      },
      unreachable(at) {
        retryAt = at
        hello = undefined
        endEnrollment('The connection to the server was lost.')
        go({ type: 'unreachable' })
      },
    },
  })

  const stop = (): void => {
    stopped = true
    connection.stop()
    for (const track of cameraResult.stream.getTracks()) track.stop()
    view.renderTracks([], ...frameSize())
  }

  const onAnswer = (answer: StreamAnswer): void => {
    const now = performance.now()
    stats.answers[answer.type]++
    const frameId = answer.frameId
    const frame = frameId === undefined ? undefined : sent.get(frameId)
    if (frameId !== undefined) {
      sent.delete(frameId)
      pacer.answered(frameId)
    }
    switch (answer.type) {
      case 'result':
        if (frame !== undefined) {
          pushBounded(stats.roundTripMs, Math.round((now - frame.sentAt) * 10) / 10, MAX_SAMPLES)
          onResult(answer, frame, now)
        }
        break
      case 'throttled':
        pacer.throttle(answer.retryAfterMs, now)
        break
      case 'error':
        lastError = answer.error.code
        break
      case 'dropped':
        break
    }
  }

  const onResult = (answer: StreamResult, frame: SentRecord, now: number): void => {
    const track = tracker.get(frame.trackId)
    if (track === undefined) return
    const state = stateOf(track)
    const face = answer.faces.find((f) => f.track.source === 'client' && f.track.id === frame.trackId)
    const before = state.memory.view
    const after = describeTrack(state.memory, face, state.hints, hello?.track.switchFrames ?? 2)
    if (after !== before) {
      render(now)
      if (after.announce !== undefined && after.text !== before.text) view.announce(after.announce)
    }
    if (enrolling !== undefined)
      onEnrollAnswer(enrolling, frame, answer.faces.length, face?.quality ?? 0, now)
    if (
      enrolling?.phase === 'confirming' &&
      after.status === 'match' &&
      after.identityId === enrolling.identityId
    ) {
      enrolling.phase = 'done'
      view.enroll.status.textContent = `Recognized: ${enrolling.name}`
      setTimeout(() => {
        endEnrollment()
      }, ENROLL_RESULT_MS)
    }
  }

  const sendDue = (now: number): void => {
    if (hello === undefined || cropContext === null) return
    const [width, height] = frameSize()
    const fresh = tracker
      .visible(now)
      .filter((t) => t.lastSeenAt === now)
      .sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height)
      .slice(0, Math.max(1, hello.limits.maxFaces))
    const trackId = pacer.pick(
      fresh.map((t) => t.id),
      now,
    )
    const track = trackId === undefined ? undefined : tracker.get(trackId)
    if (track === undefined) return
    const frameId = pacer.sent(track.id, now)
    const plan = planCrop(track.box, width, height)
    cropCanvas.width = plan.side
    cropCanvas.height = plan.side
    const { x, y, width: w, height: h } = plan.source
    cropContext.drawImage(video, x, y, w, h, 0, 0, plan.side, plan.side)
    cropCanvas.toBlob(
      (blob) => {
        void (async () => {
          const image = blob === null ? undefined : new Uint8Array(await blob.arrayBuffer())
          const message =
            image === undefined
              ? undefined
              : encodeFrame(
                  { frameId, trackId: track.id, ...(camera === undefined ? {} : { camera }) },
                  image,
                )
          if (image === undefined || message === undefined || !connection.send(message)) {
            pacer.answered(frameId)
            return
          }
          const sentAt = performance.now()
          sent.set(frameId, { trackId: track.id, sentAt, image })
          stats.framesSent++
          stats.bytesSent += message.byteLength
          sendRate.add(sentAt)
        })()
      },
      'image/jpeg',
      JPEG_QUALITY,
    )
  }

  const detectLoop = async (): Promise<void> => {
    let last = -Infinity
    while (!stopped) {
      await nextFrame(video, 1000 / MAX_DETECT_FPS, last)
      last = performance.now()
      const [width, height] = frameSize()
      if (width === 0 || height === 0) continue
      let frame
      try {
        frame = await detector.detect(video)
      } catch (error) {
        lastError = error instanceof Error ? error.message : String(error)
        continue
      }
      pushBounded(stats.detectorMs, Math.round(frame.ms * 100) / 100, MAX_SAMPLES)
      const now = performance.now()
      const detections = frame.detections
        .map((d) => ({ score: d.score, box: clipBox(d.box, width, height) }))
        .filter((d) => d.box.width > 1 && d.box.height > 1)
      for (const track of tracker.update(detections, now)) {
        if (track.lastSeenAt === now)
          stateOf(track).hints = { widthPx: track.box.width, luma: frame.luma(track.box) }
      }
      for (const id of states.keys()) if (tracker.get(id) === undefined) states.delete(id)
      render(now)
      if (screen === 'running' || screen === 'enrolling') sendDue(now)
    }
  }

  const statusLine = (): void => {
    const now = performance.now()
    if (retryAt !== undefined) view.setCountdown((retryAt - now) / 1000)
    const rtt = median(stats.roundTripMs.slice(-20))
    const parts = [
      stats.connection === 'open'
        ? 'Connected'
        : stats.connection === 'connecting'
          ? 'Connecting...'
          : 'Disconnected',
      ...(camera === undefined ? [] : [camera]),
      `${sendRate.rate(now).toFixed(1)} frames/s`,
      Number.isFinite(rtt) ? `${Math.round(rtt)} ms round trip` : 'no answers yet',
      ...(lastError === undefined ? [] : [`last error ${lastError}`]),
    ]
    view.setStatus(stats.connection, parts.join(' \u00b7 '))
    if (enrolling?.phase === 'confirming' && enrolling.deadline !== undefined && now > enrolling.deadline) {
      enrolling.phase = 'done'
      view.enroll.status.textContent = `${enrolling.name} is enrolled but not recognized yet: come closer and try again.`
      setTimeout(() => {
        endEnrollment()
      }, ENROLL_RESULT_MS)
    }
  }

  /* ---- enrollment ---- */

  const onEnrollAnswer = (
    state: Enrolling,
    frame: SentRecord,
    faces: number,
    quality: number,
    now: number,
  ): void => {
    if (state.phase !== 'capturing') return
    const followed = state.capture.trackId
    if (followed !== undefined && tracker.visible(now).every((t) => t.id !== followed))
      state.capture.restart()
    const verdict = state.capture.offer({
      trackId: frame.trackId,
      faces,
      quality,
      image: frame.image,
      atMs: now,
    })
    const status = view.enroll.status
    switch (verdict) {
      case 'taken':
        status.textContent = `Photo ${state.capture.photos.length} of 3 taken: hold still...`
        break
      case 'low-quality':
        status.textContent = `Look straight at the camera (quality ${quality.toFixed(2)})`
        break
      case 'not-one-face':
      case 'other-person':
        status.textContent = 'One person at a time, please.'
        break
      case 'too-soon':
        break
      case 'complete':
        state.phase = 'saving'
        void save(state)
        break
    }
  }

  const save = async (state: Enrolling): Promise<void> => {
    view.enroll.status.textContent = `Saving ${state.name}...`
    const created = await api.createIdentity(state.name)
    if (!created.ok) {
      failEnrollment(describeEnrollError(created.error))
      return
    }
    const reasons: string[] = []
    let enrolled = 0
    for (const photo of state.capture.photos) {
      const added = await api.addFace(created.value.id, photo)
      if (added.ok) enrolled++
      else reasons.push(describeEnrollError(added.error))
    }
    if (enrolled === 0) {
      await api.deleteIdentity(created.value.id)
      failEnrollment(reasons[0] ?? 'no photo was accepted')
      return
    }
    state.identityId = created.value.id
    state.phase = 'confirming'
    state.deadline = performance.now() + CONFIRM_TIMEOUT_MS
    view.enroll.status.textContent = `${state.name} enrolled (${enrolled} photos). Looking for ${state.name}...`
  }

  const failEnrollment = (reason: string): void => {
    if (enrolling === undefined) return
    enrolling.phase = 'done'
    view.enroll.status.textContent = `Could not enroll: ${reason}`
    setTimeout(() => {
      endEnrollment()
    }, ENROLL_RESULT_MS)
  }

  const endEnrollment = (message?: string): void => {
    if (enrolling === undefined) return
    enrolling = undefined
    if (message !== undefined) view.enroll.status.textContent = message
    view.enroll.form.hidden = true
    view.enroll.open.hidden = !canEnroll
    go({ type: 'enroll-end' })
  }

  view.enroll.open.hidden = !canEnroll
  view.enroll.open.addEventListener('click', () => {
    view.enroll.form.hidden = false
    view.enroll.open.hidden = true
    view.enroll.status.textContent = 'Type the name, then Start.'
    view.enroll.name.focus()
  })
  view.enroll.form.addEventListener('submit', (event) => {
    event.preventDefault()
    const name = view.enroll.name.value.trim()
    if (name === '' || name.length > 200) {
      view.enroll.status.textContent = 'Type a name (at most 200 characters).'
      return
    }
    if (screen !== 'running') return
    enrolling = { name, capture: createEnrollmentCapture(), phase: 'capturing' }
    go({ type: 'enroll-start' })
    view.enroll.status.textContent = `${name}: look straight at the camera.`
  })
  view.enroll.cancel.addEventListener('click', () => {
    if (enrolling === undefined) {
      view.enroll.form.hidden = true
      view.enroll.open.hidden = !canEnroll
      view.enroll.status.textContent = ''
    } else endEnrollment('Enrollment cancelled.')
  })

  setTimeout(
    () => {
      stop()
      go({ type: 'token-rejected' })
    },
    Math.min(MAX_TIMER_MS, Math.max(0, msUntilExpiry(claims, Date.now()))),
  )
  setInterval(statusLine, STATUS_INTERVAL_MS)
  connection.start()
  await detectLoop()
}

const view = createView()
const stats = createStats()
window.kioskStats = stats
start(view, stats).catch((error: unknown) => {
  view.setDetail('starting', `The kiosk stopped: ${error instanceof Error ? error.message : String(error)}`)
})
