/** MJPEG files as a camera or `ffmpeg -f mjpeg` writes them: JPEGs one after another. */

/** A JPEG in the file whose markers cannot be walked. */
export class MalformedMjpeg extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'MalformedMjpeg'
  }
}

type JpegEnd = { end: number } | { truncated: true } | { malformed: string }

/**
 * Where the JPEG starting at `start` (its SOI) ends: walks the marker segments by their lengths
 * (so FFD9 inside an APPn segment, an EXIF thumbnail say, is not taken for the end) and the
 * entropy-coded data, where FF is stuffed (FF00) and only RSTn markers may appear.
 */
function jpegEnd(bytes: Uint8Array, start: number): JpegEnd {
  let i = start + 2
  for (;;) {
    if (i + 1 >= bytes.length) return { truncated: true }
    if (bytes[i] !== 0xff) return { malformed: `expected a marker at byte ${String(i)}` }
    const marker = bytes[i + 1] ?? 0
    if (marker === 0xff) {
      i++ // fill byte
      continue
    }
    if (marker === 0xd9) return { end: i + 2 }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2 // markers without a length
      continue
    }
    if (marker === 0xd8 || marker === 0x00) return { malformed: `unexpected marker at byte ${String(i)}` }
    if (i + 3 >= bytes.length) return { truncated: true }
    const length = ((bytes[i + 2] ?? 0) << 8) | (bytes[i + 3] ?? 0)
    if (length < 2) return { malformed: `a segment length below 2 at byte ${String(i)}` }
    i += 2 + length
    if (marker !== 0xda) continue
    // Entropy-coded data after SOS runs to the next marker other than FF00 and RSTn.
    for (;;) {
      if (i + 1 >= bytes.length) return { truncated: true }
      if (bytes[i] !== 0xff) {
        i++
        continue
      }
      const next = bytes[i + 1] ?? 0
      if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) i += 2
      else if (next === 0xff) i++
      else break
    }
  }
}

function indexOfSoi(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 2 < bytes.length; i++) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd8 && bytes[i + 2] === 0xff) return i
  }
  return -1
}

/**
 * Splits an MJPEG file (JPEGs one after another) into its frames. Bytes between frames
 * (multipart boundaries and headers) are skipped; a last frame cut short is left out. Throws
 * MalformedMjpeg naming the frame whose markers cannot be walked.
 */
export function splitMjpeg(bytes: Uint8Array): { frames: Uint8Array[]; truncatedTail: boolean } {
  const frames: Uint8Array[] = []
  let at = indexOfSoi(bytes, 0)
  while (at >= 0) {
    const found = jpegEnd(bytes, at)
    if ('truncated' in found) return { frames, truncatedTail: true }
    if ('malformed' in found) {
      throw new MalformedMjpeg(
        `frame ${String(frames.length + 1)} (at byte ${String(at)}): ${found.malformed}`,
      )
    }
    frames.push(bytes.subarray(at, found.end))
    at = indexOfSoi(bytes, found.end)
  }
  return { frames, truncatedTail: false }
}
