import { FacewireError } from '../../errors.js'

/** The formats a frame may be sent in. */
export type ImageFormat = 'jpeg' | 'png' | 'webp'

/** Width and height as the file's header announces them (before any EXIF orientation). */
export interface HeaderSize {
  width: number
  height: number
}

/**
 * The dimensions a JPEG (first SOFn frame header), PNG (IHDR) or WebP (VP8, VP8L or VP8X
 * canvas) header announces, read from the bytes without a decoder; undefined when the header is
 * cut short, malformed or announces a zero side. A cheap first look, not a validation: the
 * decoder still reads the same header, and whoever needs certainty about a frame this returns
 * undefined for asks the decoder.
 */
export function readHeaderSize(bytes: Uint8Array, format: ImageFormat): HeaderSize | undefined {
  switch (format) {
    case 'jpeg':
      return readJpegSize(bytes)
    case 'png':
      return readPngSize(bytes)
    case 'webp':
      return readWebpSize(bytes)
  }
}

/** The size bounds of a frame: width * height and the longer side. */
export interface PixelLimits {
  maxPixels: number
  maxSide: number
}

export function isWithinLimits(width: number, height: number, limits: PixelLimits): boolean {
  return width * height <= limits.maxPixels && Math.max(width, height) <= limits.maxSide
}

export function tooManyPixels(
  format: ImageFormat,
  width: number,
  height: number,
  limits: PixelLimits,
): FacewireError {
  return new FacewireError('ERR_FRAME_TOO_MANY_PIXELS', undefined, {
    details: { format, width, height, maxPixels: limits.maxPixels, maxSide: limits.maxSide },
  })
}

/**
 * The size the header declares, refused with ERR_FRAME_TOO_MANY_PIXELS when it is over `limits`,
 * whatever a decoder would make of it: a header declaring more than a decoder's own bounds
 * (libjpeg's 65500, libwebp's 16383, PNG's 2^31 - 1) is still a frame too large, not a damaged
 * one, and no decoder sees it. Undefined when the header cannot be read (the decoder decides).
 */
export function parseHeaderSize(
  bytes: Uint8Array,
  format: ImageFormat,
  limits: PixelLimits,
): HeaderSize | undefined {
  const declared = readHeaderSize(bytes, format)
  if (declared === undefined) return undefined
  const bounds = decoderLimits(format, limits)
  if (!isWithinLimits(declared.width, declared.height, bounds)) {
    throw tooManyPixels(format, declared.width, declared.height, bounds)
  }
  return declared
}

/**
 * The longest side each decoder accepts: libjpeg's JPEG_MAX_DIMENSION and libwebp's
 * WEBP_MAX_DIMENSION. PNG's 2^31 - 1 is far past any configurable limit.
 */
const DECODER_MAX_SIDE: Readonly<Record<ImageFormat, number>> = { jpeg: 65500, png: 0x7fffffff, webp: 16383 }

/** `limits` with the format's decoder bound folded in, so a side past it is too large too. */
export function decoderLimits(format: ImageFormat, limits: PixelLimits): PixelLimits {
  return { maxPixels: limits.maxPixels, maxSide: Math.min(limits.maxSide, DECODER_MAX_SIDE[format]) }
}

function sized(width: number, height: number): HeaderSize | undefined {
  return width > 0 && height > 0 ? { width, height } : undefined
}

function u16be(bytes: Uint8Array, at: number): number {
  return ((bytes[at] as number) << 8) | (bytes[at + 1] as number)
}

function u32be(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at] as number) * 0x1000000 +
    (((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number))
  )
}

function u24le(bytes: Uint8Array, at: number): number {
  return (bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16)
}

function asciiAt(bytes: Uint8Array, at: number, text: string): boolean {
  if (bytes.length < at + text.length) return false
  for (let i = 0; i < text.length; i++) if (bytes[at + i] !== text.charCodeAt(i)) return false
  return true
}

// Start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc
}

/** Walks the marker segments after SOI up to the first SOFn, as libjpeg's header reader does. */
function readJpegSize(bytes: Uint8Array): HeaderSize | undefined {
  const end = bytes.length
  let at = 2
  while (at + 1 < end) {
    if (bytes[at] !== 0xff) return undefined
    // Any number of 0xFF fill bytes may precede a marker code.
    while (at + 1 < end && bytes[at + 1] === 0xff) at++
    if (at + 1 >= end) return undefined
    const marker = bytes[at + 1] as number
    at += 2
    // Markers without a segment: TEM and RSTn (SOI again is malformed, libjpeg refuses it).
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue
    // SOI, EOI or SOS before a frame header, or a zero marker code: not a header we trust.
    if (marker === 0xd8 || marker === 0xd9 || marker === 0xda || marker === 0x00) return undefined
    if (at + 2 > end) return undefined
    const length = u16be(bytes, at)
    if (length < 2) return undefined
    if (isStartOfFrame(marker)) {
      // length(2) precision(1) height(2) width(2)
      if (length < 8 || at + 7 > end) return undefined
      return sized(u16be(bytes, at + 5), u16be(bytes, at + 3))
    }
    at += length
  }
  return undefined
}

/** The IHDR chunk, which the PNG specification requires to come first. */
function readPngSize(bytes: Uint8Array): HeaderSize | undefined {
  if (bytes.length < 24 || u32be(bytes, 8) !== 13 || !asciiAt(bytes, 12, 'IHDR')) return undefined
  // What the header declares, even past the specification's cap of 2^31 - 1 (which is far over
  // any pixel limit: parseHeaderSize refuses it as too large).
  return sized(u32be(bytes, 16), u32be(bytes, 20))
}

/** The first chunk of a WebP RIFF: a lossy frame header, a lossless header, or the VP8X canvas. */
function readWebpSize(bytes: Uint8Array): HeaderSize | undefined {
  if (bytes.length < 30) return undefined
  if (asciiAt(bytes, 12, 'VP8 ')) {
    // Frame tag (3 bytes), start code 9D 01 2A, then 14-bit width and height (2 scale bits each).
    if (bytes[23] !== 0x9d || bytes[24] !== 0x01 || bytes[25] !== 0x2a) return undefined
    const width = ((bytes[26] as number) | ((bytes[27] as number) << 8)) & 0x3fff
    const height = ((bytes[28] as number) | ((bytes[29] as number) << 8)) & 0x3fff
    return sized(width, height)
  }
  if (asciiAt(bytes, 12, 'VP8L')) {
    // Signature 0x2F, then width - 1 and height - 1 in 14 bits each, least significant bit first.
    if (bytes[20] !== 0x2f) return undefined
    const b1 = bytes[21] as number
    const b2 = bytes[22] as number
    const b3 = bytes[23] as number
    const b4 = bytes[24] as number
    const width = 1 + (((b2 & 0x3f) << 8) | b1)
    const height = 1 + (((b4 & 0x0f) << 10) | (b3 << 2) | ((b2 & 0xc0) >> 6))
    return sized(width, height)
  }
  if (asciiAt(bytes, 12, 'VP8X')) {
    // Flags (1 byte), reserved (3), then canvas width - 1 and height - 1 in 24 bits each.
    return sized(1 + u24le(bytes, 24), 1 + u24le(bytes, 27))
  }
  return undefined
}
