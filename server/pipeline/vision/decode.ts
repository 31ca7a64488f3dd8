import sharp from 'sharp'
import { FacewireError } from '../../errors.js'
import {
  decoderLimits,
  isWithinLimits,
  parseHeaderSize,
  tooManyPixels,
  type ImageFormat,
  type PixelLimits,
} from './image-header.js'
import type { RgbImage } from './types.js'

export type { ImageFormat }

/**
 * How strict the decoder is with damaged pixel data (sharp's `failOn`, weakest to strictest).
 * `warning` is the default: libjpeg reports a JPEG whose entropy-coded data is corrupt (not just
 * cut short) only as a warning, and under `truncated` or `error` such a frame decodes into
 * garbage pixels that could still be detected, embedded and matched.
 */
export type DecodeStrictness = 'truncated' | 'error' | 'warning'

export interface DecodeLimits extends PixelLimits {
  /** Largest width * height accepted, checked on the header before any pixel is decoded. */
  maxPixels: number
  /** Largest width or height accepted, checked on the header too. */
  maxSide: number
  /** Default `warning`. */
  failOn?: DecodeStrictness
}

// Other formats named in ERR_FRAME_UNSUPPORTED details, so a client learns what it sent.
const KNOWN_UNSUPPORTED: ReadonlyArray<{ format: string; test: (bytes: Uint8Array) => boolean }> = [
  { format: 'gif', test: (b) => startsWithAscii(b, 'GIF87a') || startsWithAscii(b, 'GIF89a') },
  { format: 'bmp', test: (b) => startsWithAscii(b, 'BM') },
  {
    format: 'tiff',
    test: (b) => startsWithBytes(b, [0x49, 0x49, 0x2a, 0x00]) || startsWithBytes(b, [0x4d, 0x4d, 0x00, 0x2a]),
  },
  {
    format: 'netpbm',
    test: (b) => b.length >= 2 && b[0] === 0x50 && (b[1] ?? 0) >= 0x31 && (b[1] ?? 0) <= 0x37,
  },
  { format: 'heif', test: (b) => b.length >= 12 && asciiAt(b, 4, 'ftyp') },
  { format: 'jpeg2000', test: (b) => startsWithBytes(b, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20]) },
  { format: 'jpegxl', test: (b) => startsWithBytes(b, [0xff, 0x0a]) },
  { format: 'ico', test: (b) => startsWithBytes(b, [0x00, 0x00, 0x01, 0x00]) },
  { format: 'svg', test: (b) => /^\s*<(\?xml|svg|!DOCTYPE svg)/i.test(asciiPrefix(b, 64)) },
]

/**
 * The format announced by the first bytes (JPEG `FF D8 FF`, the 8-byte PNG signature, or
 * `RIFF....WEBP`), or undefined for anything else. Only the magic is read: a truncated or corrupt
 * body is the decoder's business.
 */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWithBytes(bytes, [0xff, 0xd8, 0xff])) return 'jpeg'
  if (startsWithBytes(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png'
  if (bytes.length >= 12 && asciiAt(bytes, 0, 'RIFF') && asciiAt(bytes, 8, 'WEBP')) return 'webp'
  return undefined
}

/**
 * Settings for the process's libvips, meant to be called once by each worker at start: no
 * operation cache (frames never repeat, and the cache would hold decoded pixels) and one libvips
 * thread per operation, because the pool already runs one worker per core.
 */
export function configureSharp(options: { concurrency?: number } = {}): void {
  sharp.cache(false)
  sharp.concurrency(options.concurrency ?? 1)
}

/**
 * Decodes a JPEG, PNG or WebP frame into 8-bit sRGB, EXIF orientation applied, alpha flattened
 * onto black, first frame only for animations.
 *
 * Errors, in the order they are checked:
 * - empty input: ERR_FRAME_INVALID;
 * - magic bytes other than JPEG/PNG/WebP (GIF, BMP, TIFF, PGM, SVG, HEIF, random bytes...):
 *   ERR_FRAME_UNSUPPORTED, before sharp sees the bytes, so no other libvips loader is reachable;
 * - header dimensions over `maxPixels` or `maxSide`: ERR_FRAME_TOO_MANY_PIXELS, from the header
 *   alone: whatever size the header declares (read in JavaScript by `parseHeaderSize`, even one
 *   past the decoder's own bounds), or libvips' reading when that reader cannot size it; sharp's
 *   `limitInputPixels` and a check of the decoded size are further fences;
 * - anything the decoder rejects (truncated, corrupt): ERR_FRAME_INVALID.
 * Errors carry the format and dimensions in `details`, the decoder's error as `cause`, never bytes.
 */
export async function decodeImage(bytes: Uint8Array, limits: DecodeLimits): Promise<RgbImage> {
  checkLimits(limits)
  if (bytes.byteLength === 0) throw new FacewireError('ERR_FRAME_INVALID', 'the frame is empty')
  const format = sniffFormat(bytes)
  if (format === undefined) {
    const known = KNOWN_UNSUPPORTED.find((entry) => entry.test(bytes))
    throw new FacewireError(
      'ERR_FRAME_UNSUPPORTED',
      undefined,
      known === undefined ? {} : { details: { format: known.format } },
    )
  }

  // A view, not a copy: frames arrive as transferred ArrayBuffers.
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const failOn = limits.failOn ?? 'warning'
  const options = { failOn, limitInputPixels: limits.maxPixels, autoOrient: true, pages: 1 } as const

  // The header's size, read in JavaScript: a declared size over the limits is refused here,
  // before any decoder (whose own bounds would call it damaged) sees it, and a frame inside them
  // (almost all) costs one libvips call, not two. A header this reader cannot size asks libvips.
  const announced = parseHeaderSize(bytes, format, limits)
  if (announced === undefined) {
    let width: number
    let height: number
    try {
      // Header only: unfenced, so an oversized frame is refused below with its dimensions.
      const metadata = await sharp(input, { failOn, limitInputPixels: false, pages: 1 }).metadata()
      width = metadata.width
      height = metadata.height
    } catch (error) {
      throw toDecodeError(error, format)
    }
    if (!(width > 0 && height > 0)) {
      throw new FacewireError('ERR_FRAME_INVALID', undefined, { details: { format } })
    }
    const bounds = decoderLimits(format, limits)
    if (!isWithinLimits(width, height, bounds)) throw tooManyPixels(format, width, height, bounds)
  }

  try {
    const { data, info } = await sharp(input, options)
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true })
    if (info.channels !== 3 || data.byteLength !== info.width * info.height * 3) {
      throw new Error(`decoder produced ${info.channels} channels of ${info.width}x${info.height}`)
    }
    // Second fence for the JavaScript header read (libvips' limitInputPixels is the first).
    if (!isWithinLimits(info.width, info.height, limits)) {
      throw tooManyPixels(format, info.width, info.height, limits)
    }
    // An exact ArrayBuffer, so the worker can transfer it without copying.
    const exact =
      data.byteOffset === 0 && data.byteLength === data.buffer.byteLength
        ? new Uint8Array(data.buffer)
        : new Uint8Array(data)
    return { data: exact, width: info.width, height: info.height }
  } catch (error) {
    if (error instanceof FacewireError) throw error
    throw toDecodeError(error, format)
  }
}

function toDecodeError(error: unknown, format: ImageFormat): FacewireError {
  const message = error instanceof Error ? error.message : String(error)
  // sharp refuses images over limitInputPixels before decoding; keep that distinct from damage.
  if (/pixel limit/i.test(message)) {
    return new FacewireError('ERR_FRAME_TOO_MANY_PIXELS', undefined, { cause: error, details: { format } })
  }
  return new FacewireError('ERR_FRAME_INVALID', undefined, { cause: error, details: { format } })
}

function checkLimits(limits: DecodeLimits): void {
  for (const name of ['maxPixels', 'maxSide'] as const) {
    const value = limits[name]
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`decodeImage: limits.${name} must be a positive integer, got ${value}`)
    }
  }
}

function startsWithBytes(bytes: Uint8Array, prefix: readonly number[]): boolean {
  if (bytes.length < prefix.length) return false
  return prefix.every((value, index) => bytes[index] === value)
}

function asciiAt(bytes: Uint8Array, offset: number, text: string): boolean {
  if (bytes.length < offset + text.length) return false
  for (let i = 0; i < text.length; i++) if (bytes[offset + i] !== text.charCodeAt(i)) return false
  return true
}

function startsWithAscii(bytes: Uint8Array, text: string): boolean {
  return asciiAt(bytes, 0, text)
}

function asciiPrefix(bytes: Uint8Array, length: number): string {
  return String.fromCharCode(...bytes.subarray(0, length))
}
