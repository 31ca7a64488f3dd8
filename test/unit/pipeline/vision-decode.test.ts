import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import sharp from 'sharp'
import { FacewireError, toWireError } from '../../../server/errors.js'
import type { ErrorCode } from '../../../protocol/errors.js'
import { decodeImage, readHeaderSize, sniffFormat } from '../../../server/pipeline/vision/index.js'
import {
  bmp1x1,
  encode,
  facesDir,
  gif1x1,
  makeImage,
  pgm,
  pixelAt,
  pngWithHeader,
  seededBytes,
  svg,
  texturedScene,
  withDeclaredSize,
} from '../../helpers/images.js'

const limits = { maxPixels: 4096 * 4096, maxSide: 8192 }

async function decodeError(bytes: Uint8Array, options = limits): Promise<FacewireError> {
  try {
    await decodeImage(bytes, options)
  } catch (error) {
    assert.ok(error instanceof FacewireError, `expected a FacewireError, got ${String(error)}`)
    return error
  }
  assert.fail('decodeImage resolved, expected it to reject')
}

async function assertRejects(bytes: Uint8Array, code: ErrorCode, options = limits): Promise<FacewireError> {
  const error = await decodeError(bytes, options)
  assert.equal(error.code, code, `${error.code}: ${error.message}`)
  return error
}

/** A copy of `bytes` with `count` bytes flipped, every `step` bytes from `fraction` of the length. */
function flipBits(bytes: Uint8Array, fraction: number, count: number, step: number): Uint8Array {
  const out = new Uint8Array(bytes)
  const start = Math.floor(out.length * fraction)
  for (let i = 0; i < count; i++) out[start + i * step] = (out[start + i * step] ?? 0) ^ 0x55
  return out
}

/** Offset of the FF C0 marker of a baseline JPEG's frame header (sharp writes one). */
function startOfFrame(jpeg: Uint8Array): number {
  for (let i = 2; i + 1 < jpeg.length; i++) if (jpeg[i] === 0xff && jpeg[i + 1] === 0xc0) return i
  assert.fail('no SOF0 marker')
}

const quadrants = makeImage(64, 48, (x, y) => (x < 32 ? (y < 24 ? [255, 0, 0] : [0, 255, 0]) : [0, 0, 255]))

test('the hand-written GIF and PNG fixtures are valid files of their formats', async () => {
  const gif = gif1x1()
  assert.equal(gif.length, 35)
  const gifInfo = await sharp(gif).metadata()
  assert.deepEqual([gifInfo.format, gifInfo.width, gifInfo.height], ['gif', 1, 1])
  // sharp parses the header (so the CRCs are right) and reports the dimensions it announces.
  const pngInfo = await sharp(pngWithHeader(30000, 30000), { limitInputPixels: false }).metadata()
  assert.deepEqual([pngInfo.format, pngInfo.width, pngInfo.height], ['png', 30000, 30000])
})

test('sniffFormat recognises JPEG, PNG and WebP from their magic bytes only', async () => {
  assert.equal(sniffFormat(await encode(quadrants, 'jpeg')), 'jpeg')
  assert.equal(sniffFormat(await encode(quadrants, 'png')), 'png')
  assert.equal(sniffFormat(await encode(quadrants, 'webp')), 'webp')
  assert.equal(sniffFormat(Uint8Array.from([0xff, 0xd8, 0xff])), 'jpeg')
  assert.equal(sniffFormat(gif1x1()), undefined)
  assert.equal(sniffFormat(await encode(quadrants, 'tiff')), undefined)
  assert.equal(sniffFormat(pgm(2, 2)), undefined)
  assert.equal(sniffFormat(bmp1x1()), undefined)
  assert.equal(sniffFormat(svg()), undefined)
  assert.equal(sniffFormat(new Uint8Array(0)), undefined)
  assert.equal(sniffFormat(Buffer.from('RIFF\0\0\0\0WAVE', 'ascii')), undefined)
})

for (const format of ['jpeg', 'png', 'webp'] as const) {
  test(`decodes a ${format} frame into interleaved 8-bit RGB of the same size`, async () => {
    const image = await decodeImage(await encode(quadrants, format, { quality: 100 }), limits)
    assert.equal(image.width, 64)
    assert.equal(image.height, 48)
    assert.equal(image.data.length, 64 * 48 * 3)
    const tolerance = format === 'png' ? 0 : 12
    for (const [x, y, expected] of [
      [8, 8, [255, 0, 0]],
      [8, 40, [0, 255, 0]],
      [56, 24, [0, 0, 255]],
    ] as const) {
      const actual = pixelAt(image, x, y)
      for (let c = 0; c < 3; c++) {
        assert.ok(
          Math.abs((actual[c] ?? 0) - (expected[c] ?? 0)) <= tolerance,
          `${format} (${x},${y}) = ${actual.join(',')}`,
        )
      }
    }
  })
}

test('returns pixels in an ArrayBuffer of their own, ready to transfer', async () => {
  const image = await decodeImage(await encode(quadrants, 'png'), limits)
  assert.equal(image.data.byteOffset, 0)
  assert.equal(image.data.buffer.byteLength, image.data.byteLength)
})

test('decodes a frame that is a view into a larger buffer', async () => {
  const png = await encode(quadrants, 'png')
  const larger = new Uint8Array(png.length + 20)
  larger.set(png, 10)
  const image = await decodeImage(larger.subarray(10, 10 + png.length), limits)
  assert.deepEqual(pixelAt(image, 56, 24), [0, 0, 255])
})

test('applies the EXIF orientation before returning pixels', async () => {
  const leftRedRightBlue = makeImage(20, 10, (x) => (x < 10 ? [255, 0, 0] : [0, 0, 255]))
  const jpeg = await sharp(Buffer.from(leftRedRightBlue.data), {
    raw: { width: 20, height: 10, channels: 3 },
  })
    .jpeg({ quality: 100 })
    .withMetadata({ orientation: 6 })
    .toBuffer()
  const image = await decodeImage(jpeg, limits)
  // Orientation 6 is displayed rotated 90° clockwise: the left half ends up on top.
  assert.equal(image.width, 10)
  assert.equal(image.height, 20)
  assert.ok((pixelAt(image, 5, 2)[0] ?? 0) > 200, 'top is red')
  assert.ok((pixelAt(image, 5, 17)[2] ?? 0) > 200, 'bottom is blue')
})

test('flattens transparency onto black and always returns three channels', async () => {
  const rgba = await sharp({
    create: { width: 4, height: 4, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } },
  })
    .png()
    .toBuffer()
  const flattened = await decodeImage(rgba, limits)
  assert.equal(flattened.data.length, 4 * 4 * 3)
  assert.deepEqual(pixelAt(flattened, 1, 1), [128, 0, 0])

  const grey = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#404040' } })
    .greyscale()
    .png()
    .toBuffer()
  const fromGrey = await decodeImage(grey, limits)
  assert.deepEqual(pixelAt(fromGrey, 0, 0), [64, 64, 64])

  const sixteenBit = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#808080' } })
    .toColourspace('rgb16')
    .png()
    .toBuffer()
  const fromSixteen = await decodeImage(sixteenBit, limits)
  assert.deepEqual(pixelAt(fromSixteen, 3, 3), [128, 128, 128])
})

test('rejects GIF, TIFF, BMP, PGM and SVG as unsupported, naming the format it saw', async () => {
  const cases: [Uint8Array, string][] = [
    [gif1x1(), 'gif'],
    [await encode(quadrants, 'gif'), 'gif'],
    [await encode(quadrants, 'tiff'), 'tiff'],
    [bmp1x1(), 'bmp'],
    [pgm(4, 4), 'netpbm'],
    [svg(), 'svg'],
  ]
  for (const [bytes, format] of cases) {
    const error = await assertRejects(bytes, 'ERR_FRAME_UNSUPPORTED')
    assert.deepEqual(error.details, { format })
  }
})

test('rejects random bytes as an unsupported format', async () => {
  for (const seed of [1, 2, 3]) {
    const error = await assertRejects(seededBytes(seed, 4096), 'ERR_FRAME_UNSUPPORTED')
    assert.equal(error.http, 415)
  }
})

test('rejects an empty frame as invalid', async () => {
  await assertRejects(new Uint8Array(0), 'ERR_FRAME_INVALID')
})

test('rejects a truncated JPEG instead of returning a half-grey image', async () => {
  const jpeg = await encode(texturedScene(160, 120), 'jpeg')
  for (const fraction of [0.3, 0.6, 0.9]) {
    const error = await assertRejects(
      jpeg.subarray(0, Math.floor(jpeg.length * fraction)),
      'ERR_FRAME_INVALID',
    )
    assert.equal(error.details?.['format'], 'jpeg')
    assert.ok(error.cause instanceof Error, 'the decoder error is kept as the cause')
  }
})

test('rejects a JPEG whose entropy-coded data is corrupt, even though it is complete', async () => {
  const jpeg = await encode(texturedScene(160, 120), 'jpeg')
  await assertRejects(flipBits(jpeg, 0.4, 40, 7), 'ERR_FRAME_INVALID')
})

test('rejects truncated and corrupt PNG and WebP frames as invalid', async () => {
  const scene = texturedScene(96, 96)
  const png = Buffer.from(await encode(scene, 'png'))
  await assertRejects(png.subarray(0, png.length >> 1), 'ERR_FRAME_INVALID')
  await assertRejects(flipBits(png, 0.5, 20, 13), 'ERR_FRAME_INVALID')
  const webp = await encode(scene, 'webp')
  await assertRejects(webp.subarray(0, webp.length >> 1), 'ERR_FRAME_INVALID')
})

test('rejects the right magic bytes followed by garbage as invalid', async () => {
  for (const magic of [
    [0xff, 0xd8, 0xff],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
  ]) {
    const bytes = new Uint8Array(512)
    bytes.set(seededBytes(7, 512))
    bytes.set(magic)
    await assertRejects(bytes, 'ERR_FRAME_INVALID')
  }
})

test('refuses a 30000x30000 PNG from its header alone', async () => {
  const bomb = pngWithHeader(30000, 30000)
  assert.ok(bomb.length < 100, 'the fixture is a header, not pixels')
  // Decoding the tiny IDAT would fail as ERR_FRAME_INVALID: this code proves nothing was decoded.
  const error = await assertRejects(bomb, 'ERR_FRAME_TOO_MANY_PIXELS')
  assert.equal(error.http, 413)
  assert.deepEqual(error.details, {
    format: 'png',
    width: 30000,
    height: 30000,
    maxPixels: limits.maxPixels,
    maxSide: 8192,
  })
})

test('refuses headers declaring more than a decoder itself accepts as too many pixels, not as damage', async () => {
  const small = texturedScene(64, 48)
  const jpeg = await encode(small, 'jpeg')
  const lossless = new Uint8Array(
    await sharp(await encode(small, 'png'))
      .webp({ lossless: true })
      .toBuffer(),
  )
  const withAlpha = new Uint8Array(
    await sharp(await encode(small, 'png'))
      .ensureAlpha(0.5)
      .webp()
      .toBuffer(),
  )
  assert.equal(Buffer.from(lossless).toString('ascii', 12, 16), 'VP8L')
  assert.equal(Buffer.from(withAlpha).toString('ascii', 12, 16), 'VP8X')
  // Each answered 400 ERR_FRAME_INVALID: the decoder, not the limit, refused the header.
  const cases: [string, Uint8Array, number][] = [
    ['png 2^31-1 square', pngWithHeader(0x7fffffff, 0x7fffffff), 0x7fffffff],
    ['png past the specification', pngWithHeader(0xffffffff, 1), 0xffffffff],
    ['jpeg 65535 square', withDeclaredSize(jpeg, 'jpeg', 65535, 65535), 65535],
    ['webp VP8L 16384 square', withDeclaredSize(lossless, 'webp', 16384, 16384), 16384],
    ['webp VP8X 16384 square', withDeclaredSize(withAlpha, 'webp', 16384, 16384), 16384],
    ['webp VP8X 2^24 square', withDeclaredSize(withAlpha, 'webp', 1 << 24, 1 << 24), 1 << 24],
    ['webp VP8 16383 square', withDeclaredSize(await encode(small, 'webp'), 'webp', 16383, 16383), 16383],
  ]
  for (const [name, bytes, side] of cases) {
    const error = await assertRejects(bytes, 'ERR_FRAME_TOO_MANY_PIXELS')
    assert.equal(error.details?.['width'], side, name)
    assert.equal(error.http, 413)
  }
  // The same under the largest limits the configuration allows: a side past the decoder's own
  // bound (libjpeg's 65500, libwebp's 16383) is reported with that bound.
  const widest = { maxPixels: 1_000_000_000, maxSide: 100_000 }
  const webp = await assertRejects(
    withDeclaredSize(lossless, 'webp', 16384, 16384),
    'ERR_FRAME_TOO_MANY_PIXELS',
    widest,
  )
  assert.equal(webp.details?.['maxSide'], 16383)
  const tall = await assertRejects(
    withDeclaredSize(jpeg, 'jpeg', 10, 65535),
    'ERR_FRAME_TOO_MANY_PIXELS',
    widest,
  )
  assert.equal(tall.details?.['maxSide'], 65500)
})

test('refuses a frame over maxSide even when its pixel count is allowed', async () => {
  await assertRejects(pngWithHeader(9000, 10), 'ERR_FRAME_TOO_MANY_PIXELS')
})

test('accepts a frame of exactly maxPixels and refuses one pixel more', async () => {
  const png = await encode(quadrants, 'png')
  const exact = await decodeImage(png, { maxPixels: 64 * 48, maxSide: 64 })
  assert.equal(exact.width, 64)
  await assertRejects(png, 'ERR_FRAME_TOO_MANY_PIXELS', { maxPixels: 64 * 48 - 1, maxSide: 64 })
  await assertRejects(png, 'ERR_FRAME_TOO_MANY_PIXELS', { maxPixels: 64 * 48, maxSide: 63 })
})

test('puts no image bytes on the wire when it rejects a frame', async () => {
  const jpeg = await encode(texturedScene(64, 64), 'jpeg')
  const errors = [
    await decodeError(jpeg.subarray(0, 300)),
    await decodeError(seededBytes(11, 300)),
    await decodeError(pngWithHeader(30000, 30000)),
  ]
  for (const error of errors) {
    const wire = JSON.stringify(toWireError(error))
    assert.ok(wire.length < 400, wire)
    assert.doesNotMatch(wire, /\\u00|[A-Za-z0-9+/]{40,}/)
  }
})

test('refuses limits that are not positive integers', async () => {
  const png = await encode(quadrants, 'png')
  await assert.rejects(decodeImage(png, { maxPixels: 0, maxSide: 10 }), RangeError)
  await assert.rejects(decodeImage(png, { maxPixels: 100, maxSide: 1.5 }), RangeError)
})

test('decodes every JPEG and PNG of the shared example photos and refuses the AT&T PGMs', async (t) => {
  const dir = facesDir()
  if (dir === undefined) {
    t.skip('../shared/faces is absent (set FACEWIRE_FACES to run this test)')
    return
  }
  const examples = path.join(dir, 'face_recognition-examples')
  const files: string[] = []
  for (const entry of await readdir(examples, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && /\.(jpe?g|png)$/i.test(entry.name))
      files.push(path.join(entry.parentPath, entry.name))
  }
  assert.ok(files.length > 10, `found ${files.length} example photos`)
  for (const file of files) {
    const image = await decodeImage(await readFile(file), { maxPixels: 40_000_000, maxSide: 10_000 })
    assert.equal(image.data.length, image.width * image.height * 3, file)
  }
  const pgmFile = path.join(dir, 'att_faces', 's1', '1.pgm')
  const error = await assertRejects(await readFile(pgmFile), 'ERR_FRAME_UNSUPPORTED')
  assert.deepEqual(error.details, { format: 'netpbm' })
})

test('readHeaderSize reads the size every JPEG, PNG and WebP flavour announces', async () => {
  const cases: [string, number, number, (input: ReturnType<typeof sharp>) => ReturnType<typeof sharp>][] = [
    ['baseline jpeg', 37, 23, (s) => s.jpeg()],
    ['progressive jpeg', 64, 48, (s) => s.jpeg({ progressive: true })],
    ['greyscale jpeg', 20, 31, (s) => s.greyscale().jpeg()],
    ['jpeg with EXIF', 40, 10, (s) => s.jpeg().withMetadata({ orientation: 6 })],
    ['1x1 jpeg', 1, 1, (s) => s.jpeg()],
    ['rgb png', 37, 23, (s) => s.png()],
    ['rgba png', 5, 300, (s) => s.ensureAlpha().png()],
    ['16-bit png', 33, 2, (s) => s.toColourspace('rgb16').png()],
    ['lossy webp', 37, 23, (s) => s.webp()],
    ['lossless webp', 301, 7, (s) => s.webp({ lossless: true })],
    ['webp with alpha', 64, 48, (s) => s.ensureAlpha(0.5).webp()],
    ['webp with EXIF', 12, 34, (s) => s.webp().withMetadata({ orientation: 3 })],
  ]
  for (const [name, width, height, encodeAs] of cases) {
    const input = sharp({ create: { width, height, channels: 3, background: '#806040' } })
    const bytes = new Uint8Array(await encodeAs(input).toBuffer())
    const format = sniffFormat(bytes)
    assert.ok(format !== undefined, name)
    assert.deepEqual(readHeaderSize(bytes, format), { width, height }, name)
  }
  assert.deepEqual(readHeaderSize(pngWithHeader(30000, 20000), 'png'), { width: 30000, height: 20000 })
})

test('readHeaderSize answers undefined for a header cut short, and never throws on garbage', async () => {
  for (const format of ['jpeg', 'png', 'webp'] as const) {
    const bytes = await encode(quadrants, format)
    const headerEnd = format === 'png' ? 24 : format === 'webp' ? 30 : startOfFrame(bytes) + 9
    for (let length = 0; length < headerEnd; length++) {
      assert.equal(readHeaderSize(bytes.subarray(0, length), format), undefined, `${format} cut at ${length}`)
    }
  }
  for (let seed = 1; seed <= 200; seed++) {
    const bytes = seededBytes(seed, 64 + seed)
    for (const format of ['jpeg', 'png', 'webp'] as const) {
      const size = readHeaderSize(bytes, format)
      assert.ok(size === undefined || (size.width > 0 && size.height > 0))
    }
  }
})

test('a frame the header reader cannot size is still decoded or refused by the decoder', async () => {
  // A JPEG whose SOF announces a zero height: the JavaScript reader does not trust it, libvips
  // reads the header itself and refuses it as invalid, as before.
  const jpeg = new Uint8Array(await encode(quadrants, 'jpeg'))
  const sof = startOfFrame(jpeg)
  jpeg[sof + 5] = 0
  jpeg[sof + 6] = 0
  assert.equal(readHeaderSize(jpeg, 'jpeg'), undefined)
  await assertRejects(jpeg, 'ERR_FRAME_INVALID')
})
