/**
 * Fuzzing of the /ws/detect frame codec (protocol/frame.ts): parseFrame never throws, answers a
 * valid frame or a reason, and a frame it accepts re-encodes to the very same bytes. Seeded; see
 * test/helpers/fuzz.ts for longer runs (FACEWIRE_FUZZ_ITERATIONS) and reproducing a failure.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  encodeFrame,
  FRAME_PROTOCOL_VERSION,
  MAX_CAMERA_LABEL_BYTES,
  parseFrame,
  type FrameHeader,
  type FrameParse,
} from '../../../protocol/frame.js'
import {
  fuzz,
  fuzzIterations,
  integer,
  mutate,
  pick,
  randomBytes,
  randomText,
  type Random,
} from '../../helpers/fuzz.js'

const encoder = new TextEncoder()
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function wellFormed(text: string): string {
  return strict.decode(encoder.encode(text))
}

function randomHeader(random: Random): FrameHeader {
  const header: FrameHeader = { frameId: pick(random, [0, 1, 0xffffffff, integer(random, 0, 0xffffffff)]) }
  if (random() < 0.5) header.trackId = pick(random, [0, 0xffffffff, integer(random, 0, 0xffffffff)])
  if (random() < 0.5) {
    let camera = randomText(random, 24)
    while (encoder.encode(camera).length > MAX_CAMERA_LABEL_BYTES) camera = camera.slice(1)
    // A label that would encode to nothing is not one encodeFrame accepts.
    if (camera !== '') header.camera = camera
  }
  return header
}

/** Bytes shaped like a header more often than chance would make them. */
function randomMessage(random: Random): Uint8Array {
  const length = pick(random, [0, 1, 5, 6, 7, 10, integer(random, 0, 96)])
  const bytes = randomBytes(random, length)
  if (length > 0 && random() < 0.8) bytes[0] = FRAME_PROTOCOL_VERSION
  if (length > 1 && random() < 0.8) bytes[1] = integer(random, 0, 3)
  return bytes
}

/** The invariants of one parse; returns the parse for the caller's own checks. */
function checkParse(message: Uint8Array): FrameParse {
  const parsed = parseFrame(message)
  if (!parsed.ok) {
    assert.equal(typeof parsed.reason, 'string')
    assert.ok(parsed.reason.length > 0, 'a refusal names its reason')
    const expectedId =
      message.length >= 6 ? new DataView(message.buffer, message.byteOffset).getUint32(2) : undefined
    assert.equal(parsed.frameId, expectedId, 'the frame id is reported once the header holds it')
    return parsed
  }
  const { frame } = parsed
  const flags = message[1] ?? 0
  assert.equal(message[0], FRAME_PROTOCOL_VERSION)
  assert.equal(flags & ~3, 0)
  assert.ok(Number.isInteger(frame.frameId) && frame.frameId >= 0 && frame.frameId <= 0xffffffff)
  assert.equal(frame.trackId !== undefined, (flags & 1) !== 0, 'a track id exactly when flagged')
  assert.equal(frame.camera !== undefined, (flags & 2) !== 0, 'a camera exactly when flagged')
  assert.ok(frame.image.length >= 1, 'an accepted frame has image bytes')
  const header: FrameHeader = { frameId: frame.frameId }
  if (frame.trackId !== undefined) header.trackId = frame.trackId
  if (frame.camera !== undefined) header.camera = frame.camera
  assert.deepEqual(
    encodeFrame(header, frame.image),
    Uint8Array.from(message),
    'it re-encodes to the same bytes',
  )
  return parsed
}

test('parseFrame never throws on random bytes and every frame it accepts re-encodes to the same bytes', async () => {
  let accepted = 0
  await fuzz(fuzzIterations(20_000), (random) => {
    if (checkParse(randomMessage(random)).ok) accepted++
  })
  assert.ok(accepted > 0, 'some random messages are valid frames')
})

test('encodeFrame output parses back to its header and image, and mutations of it never break the parser', async () => {
  await fuzz(fuzzIterations(10_000), (random) => {
    const header = randomHeader(random)
    const image = randomBytes(random, integer(random, 1, 32))
    const message = encodeFrame(header, image)
    const parsed = checkParse(message)
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason)
    // A lone surrogate cannot be encoded: TextEncoder writes U+FFFD for it.
    const expected = header.camera === undefined ? header : { ...header, camera: wellFormed(header.camera) }
    assert.deepEqual(parsed.frame, { ...expected, image })
    // The same frame at an offset inside a larger buffer (as a transport may hand it over).
    const padded = new Uint8Array(message.length + 7)
    padded.set(message, 3)
    assert.deepEqual(checkParse(padded.subarray(3, 3 + message.length)), parsed)
    checkParse(mutate(random, message, 3, 16))
  })
})

test('a camera label that starts with a byte order mark keeps it', () => {
  const message = encodeFrame({ frameId: 7, camera: '\ufeffgate' }, Uint8Array.of(1))
  const parsed = parseFrame(message)
  assert.ok(parsed.ok)
  assert.equal(parsed.frame.camera, '\ufeffgate')
  // A label of just the mark was read as an empty camera, which encodeFrame refuses.
  const onlyMark = parseFrame(encodeFrame({ frameId: 8, camera: '\ufeff' }, Uint8Array.of(1)))
  assert.ok(onlyMark.ok)
  assert.equal(onlyMark.frame.camera, '\ufeff')
})
