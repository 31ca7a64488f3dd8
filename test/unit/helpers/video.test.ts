import assert from 'node:assert/strict'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import sharp from 'sharp'
import { tempDataDir } from '../../helpers/temp-dir.js'
import {
  MARKER_BITS,
  MARKER_BLOCK_PX,
  markerOrigin,
  rgbToI420,
  rgbToYcbcr,
  writeFakeVideo,
  y4mHeader,
} from '../../helpers/video.js'

test('BT.601 studio range: black, white, grey and the primaries convert to their textbook values', () => {
  assert.deepEqual(rgbToYcbcr(0, 0, 0), [16, 128, 128])
  assert.deepEqual(rgbToYcbcr(255, 255, 255), [235, 128, 128])
  assert.deepEqual(rgbToYcbcr(128, 128, 128), [126, 128, 128])
  assert.deepEqual(rgbToYcbcr(255, 0, 0), [81, 90, 240])
  assert.deepEqual(rgbToYcbcr(0, 255, 0), [145, 54, 34])
  assert.deepEqual(rgbToYcbcr(0, 0, 255), [41, 240, 110])
})

test('I420 keeps full-resolution luma and one chroma sample per 2x2 block, from its mean colour', () => {
  // 4x2: a red 2x2 block, then a block of two white and two black pixels.
  const rgb = new Uint8Array([
    ...[255, 0, 0, 255, 0, 0, 255, 255, 255, 0, 0, 0],
    ...[255, 0, 0, 255, 0, 0, 0, 0, 0, 255, 255, 255],
  ])
  const i420 = rgbToI420(rgb, 4, 2)
  assert.equal(i420.length, 4 * 2 + 2 * 2)
  assert.deepEqual([...i420.subarray(0, 8)], [81, 81, 235, 16, 81, 81, 16, 235])
  assert.deepEqual([...i420.subarray(8)], [90, 128, 240, 128])
  assert.throws(() => rgbToI420(new Uint8Array(3 * 3 * 2), 3, 2), /even/)
})

test('the header names the size, the frame rate and 4:2:0 chroma', () => {
  assert.equal(y4mHeader(640, 480, 10), 'YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n')
  assert.equal(y4mHeader(640, 480, 12.5), 'YUV4MPEG2 W640 H480 F12500:1000 Ip A1:1 C420jpeg\n')
})

test('a video holds each segment for its seconds: header, frame count, file size, photo and empty scene', async (t) => {
  const dir = tempDataDir()
  t.after(() => rm(dir, { recursive: true, force: true }))
  // A pure red 100x50 "photo": scaled to 64x32 (aspect kept) in the middle of a 64x48 frame.
  const photo = join(dir, 'red.png')
  await sharp({ create: { width: 100, height: 50, channels: 3, background: { r: 255, g: 0, b: 0 } } })
    .png()
    .toFile(photo)
  const file = join(dir, 'scene.y4m')
  const video = await writeFakeVideo(file, [{ seconds: 0.5 }, { photo, seconds: 1 }], {
    width: 64,
    height: 48,
    fps: 4,
    background: [255, 255, 255],
  })
  assert.equal(video.frames, 2 + 4)
  assert.equal(video.durationS, 1.5)
  assert.deepEqual(
    video.segments.map((segment) => [segment.firstFrame, segment.lastFrame, segment.startS, segment.endS]),
    [
      [0, 1, 0, 0.5],
      [2, 5, 0.5, 1.5],
    ],
  )

  const bytes = await readFile(file)
  const header = y4mHeader(64, 48, 4)
  const frameSize = 'FRAME\n'.length + 64 * 48 * 1.5
  assert.equal(bytes.length, header.length + 6 * frameSize)
  assert.equal(video.bytes, bytes.length)
  assert.equal(bytes.subarray(0, header.length).toString('ascii'), header)
  const frame = (n: number): Buffer =>
    bytes.subarray(header.length + n * frameSize, header.length + (n + 1) * frameSize)
  for (let n = 0; n < 6; n++) assert.equal(frame(n).subarray(0, 6).toString('ascii'), 'FRAME\n')
  const luma = (n: number, x: number, y: number): number => frame(n)[6 + y * 64 + x] ?? -1
  const u = (n: number, x: number, y: number): number =>
    frame(n)[6 + 64 * 48 + (y >> 1) * 32 + (x >> 1)] ?? -1
  const v = (n: number, x: number, y: number): number =>
    frame(n)[6 + 64 * 48 + 32 * 24 + (y >> 1) * 32 + (x >> 1)] ?? -1
  // The empty scene: white everywhere.
  assert.deepEqual([luma(0, 32, 24), u(0, 32, 24), v(0, 32, 24)], [235, 128, 128])
  // The photo: red in the middle rows, white bands above and below it.
  assert.deepEqual([luma(3, 32, 24), u(3, 32, 24), v(3, 32, 24)], [81, 90, 240])
  assert.deepEqual([luma(3, 32, 2), luma(3, 32, 45)], [235, 235])
})

test('the marker spells each segment index in black and white blocks at the left edge', async (t) => {
  const dir = tempDataDir()
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'marked.y4m')
  const width = MARKER_BITS * MARKER_BLOCK_PX + 8
  const video = await writeFakeVideo(file, [{ seconds: 1 }, { seconds: 1 }, { seconds: 1 }, { seconds: 1 }], {
    width,
    height: 48,
    fps: 1,
    marker: true,
  })
  const bytes = await readFile(file)
  const headerLength = y4mHeader(width, 48, 1).length
  const frameSize = 6 + width * 48 * 1.5
  const { x, y } = markerOrigin(48)
  const readIndex = (n: number): number => {
    let index = 0
    for (let bit = 0; bit < MARKER_BITS; bit++) {
      const px = x + bit * MARKER_BLOCK_PX + MARKER_BLOCK_PX / 2
      const py = y + MARKER_BLOCK_PX / 2
      const value = bytes[headerLength + n * frameSize + 6 + py * width + px] ?? 0
      if (value > 128) index |= 1 << bit
    }
    return index
  }
  assert.deepEqual(
    video.segments.map((segment) => readIndex(segment.firstFrame)),
    [0, 1, 2, 3],
  )
})
