/**
 * The kiosk's DOM: the screen, the status line, the aria-live announcements, the countdown and
 * one labelled box per visible track over the video. The element ids and data attributes are the
 * page's contract with the end-to-end test and the benchmark (docs/kiosk.md).
 */
import type { Box } from './geometry.js'
import type { Screen } from './screens.js'
import type { ConnectionState } from './stats.js'
import type { TrackView } from './track-view.js'

/** A face whose box ends below this fraction of the frame's height gets its name above it. */
const LABEL_ABOVE_FROM = 0.8

function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const element = document.getElementById(id)
  if (!(element instanceof type)) throw new Error(`the page has no #${id}`)
  return element
}

export interface TrackRender {
  id: number
  box: Box
  view: TrackView
}

export interface KioskView {
  readonly video: HTMLVideoElement
  readonly enroll: {
    open: HTMLButtonElement
    form: HTMLFormElement
    name: HTMLInputElement
    start: HTMLButtonElement
    cancel: HTMLButtonElement
    status: HTMLElement
  }
  setScreen: (screen: Screen) => void
  setDetail: (screen: Screen, text: string) => void
  setStatus: (connection: ConnectionState, text: string) => void
  announce: (text: string) => void
  setCountdown: (seconds: number) => void
  /** Draws one box per visible track and removes the boxes of tracks no longer visible. */
  renderTracks: (tracks: readonly TrackRender[], frameWidth: number, frameHeight: number) => void
}

export function createView(): KioskView {
  const main = byId('kiosk', HTMLElement)
  const video = byId('video', HTMLVideoElement)
  const viewport = byId('viewport', HTMLElement)
  const layer = byId('tracks', HTMLElement)
  const status = byId('status', HTMLElement)
  const live = byId('announce', HTMLElement)
  const countdown = byId('countdown', HTMLElement)
  const elements = new Map<number, { root: HTMLElement; name: HTMLElement }>()
  let placed = ''

  /** Puts the track layer over the video's picture: object-fit: contain leaves bars around it. */
  const placeLayer = (frameWidth: number, frameHeight: number): void => {
    const boxWidth = viewport.clientWidth
    const boxHeight = viewport.clientHeight
    const scale = Math.min(boxWidth / frameWidth, boxHeight / frameHeight)
    const width = frameWidth * scale
    const height = frameHeight * scale
    const key = `${boxWidth}x${boxHeight}:${frameWidth}x${frameHeight}`
    if (key === placed || !(scale > 0)) return
    placed = key
    layer.style.left = `${(boxWidth - width) / 2}px`
    layer.style.top = `${(boxHeight - height) / 2}px`
    layer.style.width = `${width}px`
    layer.style.height = `${height}px`
    layer.style.right = 'auto'
    layer.style.bottom = 'auto'
  }

  return {
    video,
    enroll: {
      open: byId('enroll-open', HTMLButtonElement),
      form: byId('enroll-form', HTMLFormElement),
      name: byId('enroll-name', HTMLInputElement),
      start: byId('enroll-start', HTMLButtonElement),
      cancel: byId('enroll-cancel', HTMLButtonElement),
      status: byId('enroll-status', HTMLElement),
    },
    setScreen(screen) {
      if (main.dataset['screen'] !== screen) main.dataset['screen'] = screen
    },
    setDetail(screen, text) {
      const detail = main.querySelector(`[data-for="${screen}"] .detail`)
      if (detail !== null) detail.textContent = text
    },
    setStatus(connection, text) {
      status.dataset['connection'] = connection
      status.textContent = text
    },
    announce(text) {
      // Re-set even when unchanged so a second "Welcome" after a pause is announced again.
      live.textContent = ''
      live.textContent = text
    },
    setCountdown(seconds) {
      const text = String(Math.max(0, Math.ceil(seconds)))
      if (countdown.textContent !== text) countdown.textContent = text
    },
    renderTracks(tracks, frameWidth, frameHeight) {
      placeLayer(frameWidth, frameHeight)
      const seen = new Set<number>()
      for (const { id, box, view } of tracks) {
        seen.add(id)
        let element = elements.get(id)
        if (element === undefined) {
          const root = document.createElement('div')
          root.className = 'track'
          root.dataset['trackId'] = String(id)
          const name = document.createElement('div')
          name.className = 'track-name'
          root.append(name)
          layer.append(root)
          element = { root, name }
          elements.set(id, element)
        }
        const { root, name } = element
        root.style.left = `${(100 * box.x) / frameWidth}%`
        root.style.top = `${(100 * box.y) / frameHeight}%`
        root.style.width = `${(100 * box.width) / frameWidth}%`
        root.style.height = `${(100 * box.height) / frameHeight}%`
        if (root.dataset['status'] !== view.status) root.dataset['status'] = view.status
        // The name goes under the face, or over it when the face is near the bottom of the picture.
        const label = box.y + box.height > LABEL_ABOVE_FROM * frameHeight ? 'above' : 'below'
        if (root.dataset['label'] !== label) root.dataset['label'] = label
        if (name.textContent !== view.text) name.textContent = view.text
      }
      for (const [id, element] of elements) {
        if (seen.has(id)) continue
        element.root.remove()
        elements.delete(id)
      }
    },
  }
}
