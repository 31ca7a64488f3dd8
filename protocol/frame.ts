/**
 * The binary frame a client sends on /ws/detect: a small header, then the image bytes.
 * Pure code on Uint8Array/DataView, shared by the server, the CLI and the browser client.
 *
 *   byte 0      protocol version (1)
 *   byte 1      flags: bit 0 = track id present, bit 1 = camera label present; others 0
 *   bytes 2-5   frame id, uint32 big-endian (the client's; echoed in the answer)
 *   [4 bytes]   track id, uint32 big-endian, when flag bit 0
 *   [1 + n]     camera label: length n (1-64), then n bytes of UTF-8, when flag bit 1
 *   rest        the image: JPEG, PNG or WebP
 */

export const FRAME_PROTOCOL_VERSION = 1
export const MAX_CAMERA_LABEL_BYTES = 64

const FLAG_TRACK = 1
const FLAG_CAMERA = 2

export interface FrameHeader {
  frameId: number
  trackId?: number
  camera?: string
}

export interface ParsedFrame extends FrameHeader {
  image: Uint8Array
}

/**
 * The outcome of reading a frame: the header and image, or why the header is not valid (the server
 * answers ERR_FRAME_HEADER_INVALID with that reason, and the frame id when the header got that far).
 */
export type FrameParse =
  { ok: true; frame: ParsedFrame } | { ok: false; reason: string; frameId: number | undefined }

const encoder = new TextEncoder()
// ignoreBOM: a label's leading U+FEFF is one of its characters, not a mark to strip (a label of
// just that would otherwise read as the empty string, which no encoder sends).
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function isUint32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffffffff
}

/** Header + image in one message. */
export function encodeFrame(header: FrameHeader, image: Uint8Array): Uint8Array {
  if (!isUint32(header.frameId)) throw new RangeError('frameId must be a uint32')
  if (header.trackId !== undefined && !isUint32(header.trackId))
    throw new RangeError('trackId must be a uint32')
  const label = header.camera === undefined ? undefined : encoder.encode(header.camera)
  if (label !== undefined && (label.length === 0 || label.length > MAX_CAMERA_LABEL_BYTES)) {
    throw new RangeError(`camera must be 1-${String(MAX_CAMERA_LABEL_BYTES)} bytes of UTF-8`)
  }
  const size = 6 + (header.trackId === undefined ? 0 : 4) + (label === undefined ? 0 : 1 + label.length)
  const out = new Uint8Array(size + image.length)
  const view = new DataView(out.buffer)
  out[0] = FRAME_PROTOCOL_VERSION
  out[1] = (header.trackId === undefined ? 0 : FLAG_TRACK) | (label === undefined ? 0 : FLAG_CAMERA)
  view.setUint32(2, header.frameId)
  let offset = 6
  if (header.trackId !== undefined) {
    view.setUint32(offset, header.trackId)
    offset += 4
  }
  if (label !== undefined) {
    out[offset] = label.length
    out.set(label, offset + 1)
    offset += 1 + label.length
  }
  out.set(image, offset)
  return out
}

/** Splits a message into header and image, or names what is wrong with the header. */
export function parseFrame(message: Uint8Array): FrameParse {
  const invalid = (reason: string, frameId?: number): FrameParse => ({ ok: false, reason, frameId })
  if (message.length < 6) return invalid('a frame starts with a 6-byte header')
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength)
  const version = message[0]
  const flags = message[1] ?? 0
  const frameId = view.getUint32(2)
  if (version !== FRAME_PROTOCOL_VERSION) {
    return invalid(`unsupported frame protocol version ${String(version)}`, frameId)
  }
  if ((flags & ~(FLAG_TRACK | FLAG_CAMERA)) !== 0) return invalid('unknown header flags', frameId)
  const frame: ParsedFrame = { frameId, image: message }
  let offset = 6
  if ((flags & FLAG_TRACK) !== 0) {
    if (message.length < offset + 4) return invalid('the header is cut short (track id)', frameId)
    frame.trackId = view.getUint32(offset)
    offset += 4
  }
  if ((flags & FLAG_CAMERA) !== 0) {
    const length = message[offset] ?? 0
    if (length === 0 || length > MAX_CAMERA_LABEL_BYTES || message.length < offset + 1 + length) {
      return invalid('the camera label is empty, too long or cut short', frameId)
    }
    try {
      frame.camera = decoder.decode(message.subarray(offset + 1, offset + 1 + length))
    } catch {
      return invalid('the camera label is not UTF-8', frameId)
    }
    offset += 1 + length
  }
  if (offset >= message.length) return invalid('the frame has no image bytes', frameId)
  frame.image = message.subarray(offset)
  return { ok: true, frame }
}
