/**
 * Which screen the kiosk shows: one small state machine, so that a late event (a socket closing
 * after the token was found expired, a camera error after the page gave up) cannot paint over a
 * screen that asks for the operator. Token screens need a new provisioning link and are final;
 * camera screens end only when the camera works; `unreachable` ends when a connection opens.
 * Pure.
 */

export type Screen =
  | 'starting'
  | 'no-token'
  | 'token-expired'
  | 'camera-denied'
  | 'no-camera'
  | 'unreachable'
  | 'running'
  | 'enrolling'

export type ScreenEvent =
  /** No token in the link or the session. */
  | { type: 'token-missing' }
  /** Expired (by its `exp` or the server's 401), revoked, malformed, or lacking `detect`. */
  | { type: 'token-rejected' }
  | { type: 'camera-denied' }
  | { type: 'camera-missing' }
  | { type: 'camera-ready' }
  /** The stream opened (hello received). */
  | { type: 'connected' }
  /** A connection attempt failed and the server did not answer the probe either. */
  | { type: 'unreachable' }
  | { type: 'enroll-start' }
  | { type: 'enroll-end' }

const FINAL: ReadonlySet<Screen> = new Set<Screen>(['no-token', 'token-expired'])
const CAMERA: ReadonlySet<Screen> = new Set<Screen>(['camera-denied', 'no-camera'])

export function nextScreen(current: Screen, event: ScreenEvent): Screen {
  if (event.type === 'token-missing') return 'no-token'
  if (event.type === 'token-rejected') return 'token-expired'
  if (FINAL.has(current)) return current
  switch (event.type) {
    case 'camera-denied':
      return 'camera-denied'
    case 'camera-missing':
      return 'no-camera'
    case 'camera-ready':
      return CAMERA.has(current) ? 'starting' : current
    case 'connected':
      return current === 'starting' || current === 'unreachable' ? 'running' : current
    case 'unreachable':
      return CAMERA.has(current) ? current : 'unreachable'
    case 'enroll-start':
      return current === 'running' ? 'enrolling' : current
    case 'enroll-end':
      return current === 'enrolling' ? 'running' : current
  }
}
