/**
 * Image fixtures made at test time: synthetic pictures through sharp, and hostile or unsupported
 * files written byte by byte (no binary fixtures in the repository).
 */
import { existsSync, readdirSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { deflateSync } from 'node:zlib'
import sharp from 'sharp'
import type { RgbImage } from '../../server/pipeline/vision/index.js'
import { seededBytes, seededRandom } from './random.js'

/**
 * A test's `skip` option when it needs the shared photos: the reason they are absent, or false.
 * (CI always has them; a bare checkout elsewhere may not.)
 */
export function skipWithoutFaces(): string | false {
  return facesDir() === undefined ? 'the shared face photos (../shared/faces) are absent' : false
}

/** The shared photo folder (see ../shared/faces/README.md), or undefined when it is absent. */
export function facesDir(): string | undefined {
  // dist/test/helpers/images.js -> project root is three levels up.
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
  const dir = process.env['FACEWIRE_FACES'] ?? path.resolve(root, '../shared/faces')
  return existsSync(dir) ? dir : undefined
}

/**
 * The first photo of the first `count` LFW View 1 people (by name) in the shared photo folder;
 * call only when facesDir() found it.
 */
export function lfwPeople(count: number): { name: string; file: string }[] {
  const root = path.join(facesDir() ?? '', 'lfw-view1')
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .slice(0, count)
    .map((name) => ({
      name,
      file: path.join(root, name, readdirSync(path.join(root, name)).sort()[0] ?? ''),
    }))
}

/** A photo of the face_recognition examples in the shared folder (`barack_obama/1.jpg`). */
export function examplePhoto(file: string): Promise<Buffer> {
  return readFile(path.join(facesDir() ?? '', 'face_recognition-examples', file))
}

/** Seeded generators (re-exported: image tests import them from here). */
export { seededBytes, seededRandom }

/** An RgbImage whose pixel (x, y) is `pixel(x, y)` (values rounded and clamped). */
export function makeImage(
  width: number,
  height: number,
  pixel: (x: number, y: number) => readonly [number, number, number],
): RgbImage {
  const data = new Uint8Array(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y)
      const o = (y * width + x) * 3
      data[o] = clamp(r)
      data[o + 1] = clamp(g)
      data[o + 2] = clamp(b)
    }
  }
  return { data, width, height }
}

/** Reads one pixel. */
export function pixelAt(image: RgbImage, x: number, y: number): [number, number, number] {
  const o = (y * image.width + x) * 3
  return [image.data[o] ?? -1, image.data[o + 1] ?? -1, image.data[o + 2] ?? -1]
}

/** A photo-like test scene: smooth gradients, a few hard-edged shapes and fine deterministic texture. */
export function texturedScene(width: number, height: number, seed = 1): RgbImage {
  const random = seededRandom(seed)
  const noise = new Float32Array(width * height).map(() => random() * 60 - 30)
  return makeImage(width, height, (x, y) => {
    const inDisc = (x - width * 0.5) ** 2 + (y - height * 0.45) ** 2 < (Math.min(width, height) * 0.3) ** 2
    const stripe = Math.floor(x / 6) % 2 === 0 ? 40 : -40
    const base = inDisc ? 150 + stripe : 90 + (60 * y) / height
    const n = noise[y * width + x] ?? 0
    return [base + n, base * 0.8 + n, base * 0.6 + n]
  })
}

/** Encodes an RgbImage with sharp. */
export async function encode(
  image: RgbImage,
  format: 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff',
  options: { quality?: number } = {},
): Promise<Uint8Array> {
  const input = sharp(Buffer.from(image.data), {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
  const quality = options.quality ?? 92
  switch (format) {
    case 'jpeg':
      return new Uint8Array(await input.jpeg({ quality }).toBuffer())
    case 'png':
      return new Uint8Array(await input.png().toBuffer())
    case 'webp':
      return new Uint8Array(await input.webp({ quality }).toBuffer())
    case 'gif':
      return new Uint8Array(await input.gif().toBuffer())
    case 'tiff':
      return new Uint8Array(await input.tiff().toBuffer())
  }
}

/** CRC-32 (IEEE 802.3, as PNG uses it); zlib.crc32 only arrived in Node 22. */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff
  for (const byte of bytes) {
    crc ^= byte
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

/**
 * A PNG whose IHDR announces `width` x `height` 8-bit RGB but whose IDAT holds a few bytes: a
 * decompression bomb's header without the bomb.
 */
export function pngWithHeader(width: number, height: number): Uint8Array {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr.set([8, 2, 0, 0, 0], 8) // bit depth 8, colour type RGB, deflate, adaptive filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(16))),
    pngChunk('IEND', Buffer.alloc(0)),
  ])
}

/**
 * A copy of an encoded JPEG (first SOFn), PNG (IHDR, CRC rewritten) or WebP (VP8, VP8L or VP8X)
 * whose header declares `width` x `height`; the pixel data is left as it was. Each side is
 * written in its field's width (16 bits for JPEG, 14 for VP8 and VP8L, 24 for VP8X, 32 for PNG).
 */
export function withDeclaredSize(
  encoded: Uint8Array,
  format: 'jpeg' | 'png' | 'webp',
  width: number,
  height: number,
): Uint8Array {
  const out = Buffer.from(encoded)
  switch (format) {
    case 'jpeg': {
      for (let at = 2; at + 4 <= out.length; at += 2 + out.readUInt16BE(at + 2)) {
        const marker = out[at + 1] ?? 0
        if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
          out.writeUInt16BE(height, at + 5)
          out.writeUInt16BE(width, at + 7)
          return out
        }
      }
      throw new Error('withDeclaredSize: no JPEG frame header')
    }
    case 'png': {
      out.writeUInt32BE(width >>> 0, 16)
      out.writeUInt32BE(height >>> 0, 20)
      out.writeUInt32BE(crc32(out.subarray(12, 29)), 29)
      return out
    }
    case 'webp': {
      const chunk = out.toString('ascii', 12, 16)
      if (chunk === 'VP8 ') {
        out.writeUInt16LE((out.readUInt16LE(26) & 0xc000) | (width & 0x3fff), 26)
        out.writeUInt16LE((out.readUInt16LE(28) & 0xc000) | (height & 0x3fff), 28)
      } else if (chunk === 'VP8L') {
        const rest = out.readUInt32LE(21) & 0xf0000000
        out.writeUInt32LE((rest | ((width - 1) & 0x3fff) | (((height - 1) & 0x3fff) << 14)) >>> 0, 21)
      } else if (chunk === 'VP8X') {
        out.writeUIntLE((width - 1) & 0xffffff, 24, 3)
        out.writeUIntLE((height - 1) & 0xffffff, 27, 3)
      } else {
        throw new Error(`withDeclaredSize: unknown WebP chunk ${chunk}`)
      }
      return out
    }
  }
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length, 0)
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body), 0)
  return Buffer.concat([length, body, crc])
}

/** A valid 1x1 GIF89a (one black pixel), 35 bytes written by hand. */
export function gif1x1(): Uint8Array {
  const header = Buffer.from('GIF89a', 'ascii')
  const screen = [0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00] // 1x1, global palette of 2, background 0
  const palette = [0x00, 0x00, 0x00, 0xff, 0xff, 0xff] // black, white
  const descriptor = [0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00] // image at 0,0, 1x1
  const pixels = [0x02, 0x02, 0x44, 0x01, 0x00] // LZW minimum code size 2, one 2-byte block, end
  return Uint8Array.from([...header, ...screen, ...palette, ...descriptor, ...pixels, 0x3b])
}

/** A binary PGM (P5), as in the AT&T face set. */
export function pgm(width: number, height: number): Uint8Array {
  return Buffer.concat([
    Buffer.from(`P5\n${width} ${height}\n255\n`, 'ascii'),
    Buffer.alloc(width * height, 128),
  ])
}

/** A 1x1 24-bit BMP. */
export function bmp1x1(): Uint8Array {
  const out = Buffer.alloc(58)
  out.write('BM', 0, 'ascii')
  out.writeUInt32LE(58, 2) // file size
  out.writeUInt32LE(54, 10) // pixel data offset
  out.writeUInt32LE(40, 14) // BITMAPINFOHEADER
  out.writeInt32LE(1, 18)
  out.writeInt32LE(1, 22)
  out.writeUInt16LE(1, 26) // planes
  out.writeUInt16LE(24, 28) // bits per pixel
  out.writeUInt32LE(4, 34) // image size (one padded row)
  return out
}

/** A small SVG document. */
export function svg(): Uint8Array {
  return Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="red"/></svg>',
  )
}

function clamp(value: number): number {
  return Math.min(255, Math.max(0, Math.round(value)))
}
