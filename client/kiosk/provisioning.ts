/**
 * Provisioning: an operator opens `/kiosk#token=...&camera=front-door` once; the kiosk keeps the
 * token and camera label in session storage (they survive reloads of the tab, not the browser)
 * and the caller clears the fragment so the token does not stay in the address bar or history.
 * Pure: storage is passed in (sessionStorage satisfies it).
 */
import { MAX_CAMERA_LABEL_BYTES } from '../../protocol/frame.js'

export interface KeyValueStore {
  getItem: (key: string) => string | null
  setItem: (key: string, value: string) => void
}

export const TOKEN_KEY = 'facewire.kiosk.token'
export const CAMERA_KEY = 'facewire.kiosk.camera'

export interface Provisioning {
  token: string | undefined
  /** The camera label sent in every frame header (1-64 bytes of UTF-8), if any. */
  camera: string | undefined
  /** Whether the fragment carried provisioning (and should now be cleared from the URL). */
  fromFragment: boolean
}

const encoder = new TextEncoder()

/** A camera label the frame header accepts, or undefined (empty, or longer than 64 bytes). */
export function toCameraLabel(value: string | null | undefined): string | undefined {
  const label = value?.trim()
  if (label === undefined || label === '') return undefined
  const bytes = encoder.encode(label).length
  return bytes <= MAX_CAMERA_LABEL_BYTES ? label : undefined
}

/** Reads the fragment (`#token=...&camera=...`), stores what it carries, and returns the settings. */
export function provision(hash: string, store: KeyValueStore): Provisioning {
  const params = new URLSearchParams(hash.replace(/^#/, ''))
  const token = params.get('token')?.trim()
  const fromFragment = params.has('token') || params.has('camera')
  if (token !== undefined && token !== '') store.setItem(TOKEN_KEY, token)
  const camera = toCameraLabel(params.get('camera'))
  if (camera !== undefined) store.setItem(CAMERA_KEY, camera)
  const storedToken = store.getItem(TOKEN_KEY) ?? undefined
  return {
    token: storedToken === '' ? undefined : storedToken,
    camera: toCameraLabel(store.getItem(CAMERA_KEY)),
    fromFragment,
  }
}
