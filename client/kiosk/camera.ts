/** Opening the camera, with each way it can fail named for the screen that explains it. */

export type CameraResult =
  { ok: true; stream: MediaStream } | { ok: false; reason: 'denied' | 'missing'; detail: string }

export async function openCamera(): Promise<CameraResult> {
  if (navigator.mediaDevices?.getUserMedia === undefined) {
    // Browsers offer cameras only to secure contexts: https, or http://localhost.
    return { ok: false, reason: 'missing', detail: 'This page must be opened over HTTPS to use a camera.' }
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: 'user', width: { ideal: 1280 }, height: { ideal: 720 } },
    })
    return { ok: true, stream }
  } catch (error) {
    const name = error instanceof DOMException ? error.name : ''
    if (name === 'NotAllowedError' || name === 'SecurityError') {
      return { ok: false, reason: 'denied', detail: 'Allow this site to use the camera, then reload.' }
    }
    if (name === 'NotReadableError' || name === 'AbortError') {
      return { ok: false, reason: 'missing', detail: 'The camera is in use by another program.' }
    }
    return { ok: false, reason: 'missing', detail: 'Connect a camera, then reload.' }
  }
}
