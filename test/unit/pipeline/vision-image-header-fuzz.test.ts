/**
 * Fuzzing of image header sniffing (server/pipeline/vision/image-header.ts) and of decodeImage
 * behind it: random and mutated JPEG, PNG and WebP headers never throw anything but a catalogue
 * FacewireError, and a declared size over the limits never gets through. Seeded; see
 * test/helpers/fuzz.ts for longer runs (FACEWIRE_FUZZ_ITERATIONS) and reproducing a failure.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import sharp from 'sharp'
import { isErrorCode } from '../../../protocol/errors.js'
import { FacewireError } from '../../../server/errors.js'
import {
  decodeImage,
  parseHeaderSize,
  readHeaderSize,
  sniffFormat,
  type ImageFormat,
} from '../../../server/pipeline/vision/index.js'
import { decoderLimits, isWithinLimits } from '../../../server/pipeline/vision/image-header.js'
import { encode, texturedScene, withDeclaredSize } from '../../helpers/images.js'
import { fuzz, fuzzIterations, integer, mutate, pick, randomBytes, type Random } from '../../helpers/fuzz.js'

type Sharp = ReturnType<typeof sharp>

// Small, so random declared sizes land on both sides of them.
const limits = { maxPixels: 48 * 48, maxSide: 64 }
const FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp']

interface Seed {
  name: string
  format: ImageFormat
  bytes: Uint8Array
}

async function seeds(): Promise<Seed[]> {
  const scene = texturedScene(40, 30)
  const png = Buffer.from(await encode(scene, 'png'))
  const make = async (name: string, format: ImageFormat, build: (s: Sharp) => Sharp) => ({
    name,
    format,
    bytes: new Uint8Array(await build(sharp(png)).toBuffer()),
  })
  return Promise.all([
    make('baseline jpeg', 'jpeg', (s) => s.jpeg()),
    make('progressive jpeg', 'jpeg', (s) => s.jpeg({ progressive: true })),
    make('jpeg with EXIF', 'jpeg', (s) => s.jpeg().withMetadata({ orientation: 6 })),
    make('png', 'png', (s) => s.png()),
    make('rgba png', 'png', (s) => s.ensureAlpha(0.5).png()),
    make('lossy webp', 'webp', (s) => s.webp()),
    make('lossless webp', 'webp', (s) => s.webp({ lossless: true })),
    make('webp with alpha (VP8X)', 'webp', (s) => s.ensureAlpha(0.5).webp()),
  ])
}

/** A side drawn near the limits, near the field widths' ends, or anywhere. */
function randomSide(random: Random): number {
  return pick(random, [
    integer(random, 1, 80),
    integer(random, 1, 4096),
    pick(random, [1, 47, 48, 49, 63, 64, 65, 16383, 16384, 65500, 65535, 0x7fffffff, 0xffffffff]),
    integer(random, 0, 0xffffffff),
  ])
}

/** A seed image with a random declared size and 0-3 random edits of its first 64 bytes, or noise after a magic. */
function randomImage(random: Random, all: readonly Seed[]): Uint8Array {
  const seed = pick(random, all)
  if (random() < 0.1) {
    const magic = seed.bytes.subarray(0, seed.format === 'webp' ? 16 : 8)
    return Uint8Array.from([...magic, ...randomBytes(random, integer(random, 0, 64))])
  }
  let bytes = seed.bytes
  if (random() < 0.7) {
    const side = (): number => {
      const value = randomSide(random)
      // Each format's field width: JPEG 16 bits, WebP 14 (VP8, VP8L) or 24 (VP8X), PNG 32.
      if (seed.format === 'jpeg') return value & 0xffff
      if (seed.format === 'webp') return Math.max(1, value & 0xffffff)
      return value
    }
    bytes = withDeclaredSize(bytes, seed.format, side(), side())
  }
  return random() < 0.8 ? mutate(random, bytes, 3, 64) : bytes
}

function assertCatalogueError(error: unknown): FacewireError {
  assert.ok(error instanceof FacewireError, `only catalogue errors: got ${String(error)}`)
  assert.ok(isErrorCode(error.code))
  return error
}

test('header sniffing never throws anything but ERR_FRAME_TOO_MANY_PIXELS, and refuses every declared size over the limits', async () => {
  const all = await seeds()
  let refused = 0
  await fuzz(fuzzIterations(20_000), (random) => {
    const bytes = random() < 0.1 ? randomBytes(random, integer(random, 0, 48)) : randomImage(random, all)
    for (const format of FORMATS) {
      const declared = readHeaderSize(bytes, format)
      if (declared !== undefined) {
        assert.ok(
          Number.isSafeInteger(declared.width) && declared.width > 0,
          `width ${String(declared.width)}`,
        )
        assert.ok(
          Number.isSafeInteger(declared.height) && declared.height > 0,
          `height ${String(declared.height)}`,
        )
      }
      const bounds = decoderLimits(format, limits)
      const over = declared !== undefined && !isWithinLimits(declared.width, declared.height, bounds)
      try {
        const parsed = parseHeaderSize(bytes, format, limits)
        assert.ok(!over, `${format} declared ${JSON.stringify(declared)} got through`)
        assert.deepEqual(parsed, declared)
      } catch (error) {
        assert.equal(assertCatalogueError(error).code, 'ERR_FRAME_TOO_MANY_PIXELS')
        assert.ok(over, `${format}: refused a size within the limits`)
        assert.deepEqual(
          [(error as FacewireError).details?.['width'], (error as FacewireError).details?.['height']],
          [declared?.width, declared?.height],
        )
        refused++
      }
    }
  })
  assert.ok(refused > 0, 'some cases declare a size over the limits')
})

test('decodeImage answers mutated headers with a decoded image within the limits or a frame error, never anything else', async () => {
  const all = await seeds()
  const outcomes = new Map<string, number>()
  await fuzz(fuzzIterations(300), async (random) => {
    const bytes = randomImage(random, all)
    const format = sniffFormat(bytes)
    const declared = format === undefined ? undefined : readHeaderSize(bytes, format)
    const over =
      format !== undefined &&
      declared !== undefined &&
      !isWithinLimits(declared.width, declared.height, decoderLimits(format, limits))
    let outcome: string
    try {
      const image = await decodeImage(bytes, limits)
      assert.ok(!over, `declared ${JSON.stringify(declared)} over the limits was decoded`)
      assert.ok(
        isWithinLimits(image.width, image.height, limits),
        `decoded ${String(image.width)}x${String(image.height)}`,
      )
      assert.equal(image.data.length, image.width * image.height * 3)
      outcome = 'decoded'
    } catch (error) {
      const { code } = assertCatalogueError(error)
      assert.ok(
        ['ERR_FRAME_INVALID', 'ERR_FRAME_UNSUPPORTED', 'ERR_FRAME_TOO_MANY_PIXELS'].includes(code),
        `a frame error, got ${code}`,
      )
      if (over) assert.equal(code, 'ERR_FRAME_TOO_MANY_PIXELS', `declared ${JSON.stringify(declared)}`)
      outcome = code
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
  })
  // The generator reaches every outcome, or the test proves little.
  for (const outcome of ['decoded', 'ERR_FRAME_INVALID', 'ERR_FRAME_TOO_MANY_PIXELS']) {
    assert.ok((outcomes.get(outcome) ?? 0) > 0, `${outcome} in ${JSON.stringify([...outcomes])}`)
  }
})
