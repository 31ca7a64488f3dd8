import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  createEnrollmentCapture,
  describeEnrollError,
  type Sample,
} from '../../../client/kiosk/enrollment.js'

const sample = (atMs: number, extra: Partial<Sample> = {}): Sample => ({
  trackId: 7,
  faces: 1,
  quality: 0.8,
  image: Uint8Array.of(atMs & 0xff),
  atMs,
  ...extra,
})

test('three good photos of one face, at least minGapMs apart, complete the capture', () => {
  const capture = createEnrollmentCapture({ shots: 3, minQuality: 0.5, minGapMs: 500 })
  assert.equal(capture.offer(sample(0)), 'taken')
  assert.equal(capture.offer(sample(200)), 'too-soon')
  assert.equal(capture.offer(sample(600, { quality: 0.4 })), 'low-quality')
  assert.equal(capture.offer(sample(700, { faces: 2 })), 'not-one-face')
  assert.equal(capture.offer(sample(700, { trackId: 8 })), 'other-person')
  assert.equal(capture.offer(sample(700)), 'taken')
  assert.equal(capture.complete, false)
  assert.equal(capture.offer(sample(1300)), 'complete')
  assert.equal(capture.complete, true)
  assert.deepEqual(
    capture.photos.map((p) => p[0]),
    [0, 700 & 0xff, 1300 & 0xff],
  )
  assert.equal(capture.offer(sample(2000)), 'complete', 'nothing more is taken')
})

test('restarting forgets the photos and the person', () => {
  const capture = createEnrollmentCapture()
  capture.offer(sample(0))
  capture.restart()
  assert.equal(capture.photos.length, 0)
  assert.equal(capture.trackId, undefined)
  assert.equal(capture.offer(sample(1, { trackId: 9 })), 'taken')
})

test('a low-quality refusal names the weakest quality factor', () => {
  const message = describeEnrollError({
    code: 'ERR_FACE_LOW_QUALITY',
    message: 'x',
    details: { quality: 0.2, factors: { size: 0.9, brightness: 0.05, pose: 0.6 } },
  })
  assert.match(message, /too dark/)
  assert.match(describeEnrollError({ code: 'ERR_FACE_LOW_QUALITY', message: 'x' }), /not good enough/)
  assert.match(describeEnrollError({ code: 'ERR_FACE_MULTIPLE', message: 'x' }), /one person/)
  assert.equal(describeEnrollError({ code: 'ERR_RATE_LIMITED', message: 'slow down' }), 'slow down')
})
