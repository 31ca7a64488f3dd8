/**
 * Fake-camera videos for Chromium's `--use-file-for-fake-video-capture`: a YUV4MPEG2 (.y4m) file of
 * raw I420 frames, built from segments that each hold one photo (or an empty scene) for some
 * seconds. Chromium plays the file at its frame rate and loops it.
 *
 * Each frame can carry a marker: a row of black and white blocks at the left edge, halfway down,
 * that spells the segment's index in binary, so that a page reading its own camera can tell which
 * segment it was shown (the benchmark's ground truth). Photos are placed in the middle, so the
 * marker never covers a face.
 */
import { open } from 'node:fs/promises'
import sharp from 'sharp'

export interface VideoSegment {
  /** A photo to show (scaled into the frame, aspect kept); none for an empty scene. */
  photo?: string
  seconds: number
}

export interface FakeVideoOptions {
  width?: number
  height?: number
  fps?: number
  /** The scene's background, RGB. */
  background?: readonly [number, number, number]
  /** The photo's height as a share of the frame's (it also fits the width). */
  photoScale?: number
  /** Draw the segment-index marker (MARKER_BITS blocks) in every frame. */
  marker?: boolean
}

export const DEFAULT_VIDEO = Object.freeze({
  width: 640,
  height: 480,
  fps: 10,
  background: [128, 128, 128] as const,
  photoScale: 1,
  marker: false,
})

/**
 * Marker blocks: bit i (least significant first) is block i, white for 1, from the left edge; 80 px
 * in all, the bar beside a square photo in a 640x480 frame.
 */
export const MARKER_BITS = 10
export const MARKER_BLOCK_PX = 8

export interface WrittenSegment {
  photo: string | undefined
  /** The segment's first and last frame (inclusive), and its place in the loop in seconds. */
  firstFrame: number
  lastFrame: number
  startS: number
  endS: number
}

export interface WrittenVideo {
  file: string
  width: number
  height: number
  fps: number
  frames: number
  bytes: number
  /** One loop of the file, in seconds. */
  durationS: number
  segments: WrittenSegment[]
}

/** The stream header (the frame rate as an integer ratio, square pixels, progressive). */
export function y4mHeader(width: number, height: number, fps: number): string {
  const [num, den] = Number.isInteger(fps) ? [fps, 1] : [Math.round(fps * 1000), 1000]
  return `YUV4MPEG2 W${String(width)} H${String(height)} F${String(num)}:${String(den)} Ip A1:1 C420jpeg\n`
}

const FRAME_HEADER = Buffer.from('FRAME\n', 'ascii')

const clampByte = (value: number): number => (value < 0 ? 0 : value > 255 ? 255 : Math.round(value))

/** BT.601 studio range: Y in [16, 235], Cb and Cr in [16, 240]. */
export function rgbToYcbcr(r: number, g: number, b: number): [number, number, number] {
  return [
    clampByte(16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255),
    clampByte(128 + (-37.797 * r - 74.203 * g + 112 * b) / 255),
    clampByte(128 + (112 * r - 93.786 * g - 18.214 * b) / 255),
  ]
}

/**
 * Packed RGB (3 bytes a pixel) to planar I420: full-resolution Y, then U and V from each 2x2 block's
 * mean colour (the chroma sample sits in the block's centre, as C420jpeg says). Even sizes only.
 */
export function rgbToI420(rgb: Uint8Array, width: number, height: number): Uint8Array {
  if (width % 2 !== 0 || height % 2 !== 0) throw new RangeError('I420 needs an even width and height')
  if (rgb.length !== width * height * 3) throw new RangeError('rgb must hold width * height * 3 bytes')
  const lumaSize = width * height
  const chromaWidth = width / 2
  const out = new Uint8Array(lumaSize + 2 * (lumaSize / 4))
  for (let i = 0; i < lumaSize; i++) {
    const o = i * 3
    out[i] = rgbToYcbcr(rgb[o] ?? 0, rgb[o + 1] ?? 0, rgb[o + 2] ?? 0)[0]
  }
  const uOffset = lumaSize
  const vOffset = lumaSize + lumaSize / 4
  for (let cy = 0; cy < height / 2; cy++) {
    for (let cx = 0; cx < chromaWidth; cx++) {
      let r = 0
      let g = 0
      let b = 0
      for (const [dx, dy] of [
        [0, 0],
        [1, 0],
        [0, 1],
        [1, 1],
      ] as const) {
        const o = ((cy * 2 + dy) * width + cx * 2 + dx) * 3
        r += rgb[o] ?? 0
        g += rgb[o + 1] ?? 0
        b += rgb[o + 2] ?? 0
      }
      const [, u, v] = rgbToYcbcr(r / 4, g / 4, b / 4)
      out[uOffset + cy * chromaWidth + cx] = u
      out[vOffset + cy * chromaWidth + cx] = v
    }
  }
  return out
}

/** Where the marker's blocks lie: x of block 0, y of their top row. */
export function markerOrigin(height: number): { x: number; y: number } {
  return { x: 0, y: Math.round(height / 2 - MARKER_BLOCK_PX / 2) }
}

function drawMarker(rgb: Uint8Array, width: number, height: number, index: number): void {
  if (index >= 2 ** MARKER_BITS)
    throw new RangeError(`the marker holds at most ${String(2 ** MARKER_BITS)} segments`)
  const origin = markerOrigin(height)
  for (let bit = 0; bit < MARKER_BITS; bit++) {
    const value = (index >> bit) & 1 ? 255 : 0
    for (let y = origin.y; y < origin.y + MARKER_BLOCK_PX; y++) {
      for (let x = origin.x + bit * MARKER_BLOCK_PX; x < origin.x + (bit + 1) * MARKER_BLOCK_PX; x++) {
        rgb.fill(value, (y * width + x) * 3, (y * width + x) * 3 + 3)
      }
    }
  }
}

async function sceneRgb(
  segment: VideoSegment,
  width: number,
  height: number,
  background: readonly [number, number, number],
  photoScale: number,
): Promise<Uint8Array> {
  const [r, g, b] = background
  const rgb = new Uint8Array(width * height * 3)
  for (let i = 0; i < rgb.length; i += 3) {
    rgb[i] = r
    rgb[i + 1] = g
    rgb[i + 2] = b
  }
  if (segment.photo === undefined) return rgb
  const { data, info } = await sharp(segment.photo)
    .flatten({ background: { r, g, b } })
    .resize({
      width: Math.round(width * photoScale),
      height: Math.round(height * photoScale),
      fit: 'inside',
    })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true })
  const left = Math.floor((width - info.width) / 2)
  const top = Math.floor((height - info.height) / 2)
  for (let y = 0; y < info.height; y++) {
    const from = y * info.width * 3
    rgb.set(data.subarray(from, from + info.width * 3), ((top + y) * width + left) * 3)
  }
  return rgb
}

/**
 * Writes `segments` to `file` as a .y4m video: each segment's scene rendered once, converted to
 * I420 and repeated for round(seconds * fps) frames (at least one).
 */
export async function writeFakeVideo(
  file: string,
  segments: readonly VideoSegment[],
  options: FakeVideoOptions = {},
): Promise<WrittenVideo> {
  const { width, height, fps, background, photoScale, marker } = { ...DEFAULT_VIDEO, ...options }
  if (segments.length === 0) throw new RangeError('a video needs at least one segment')
  if (!(photoScale > 0 && photoScale <= 1)) throw new RangeError('photoScale must be in (0, 1]')
  const handle = await open(file, 'w')
  const written: WrittenSegment[] = []
  let frames = 0
  let bytes = 0
  try {
    const header = Buffer.from(y4mHeader(width, height, fps), 'ascii')
    await handle.write(header)
    bytes += header.length
    for (const [index, segment] of segments.entries()) {
      if (!(segment.seconds > 0)) throw new RangeError(`segment ${String(index)}: seconds must be positive`)
      const rgb = await sceneRgb(segment, width, height, background, photoScale)
      if (marker) drawMarker(rgb, width, height, index)
      const frame = Buffer.concat([FRAME_HEADER, rgbToI420(rgb, width, height)])
      const count = Math.max(1, Math.round(segment.seconds * fps))
      for (let i = 0; i < count; i++) await handle.write(frame)
      written.push({
        photo: segment.photo,
        firstFrame: frames,
        lastFrame: frames + count - 1,
        startS: frames / fps,
        endS: (frames + count) / fps,
      })
      frames += count
      bytes += count * frame.length
    }
  } finally {
    await handle.close()
  }
  return { file, width, height, fps, frames, bytes, durationS: frames / fps, segments: written }
}
