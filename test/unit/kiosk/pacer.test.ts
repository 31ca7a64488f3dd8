import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createPacer } from '../../../client/kiosk/pacer.js'

const options = { fps: 10, maxUnanswered: 2, answerTimeoutMs: 5000 }

test('frames are spaced by 1 / fps over the connection', () => {
  const pacer = createPacer(options)
  assert.equal(pacer.pick([1], 0), 1)
  const frameId = pacer.sent(1, 0)
  pacer.answered(frameId)
  assert.equal(pacer.pick([1], 50), undefined, 'too soon at 10 fps')
  assert.equal(pacer.pick([1], 100), 1)
})

test('a track with an unanswered frame is not sent again until its answer', () => {
  const pacer = createPacer(options)
  const first = pacer.sent(1, 0)
  assert.equal(pacer.pick([1], 500), undefined)
  assert.deepEqual(pacer.answered(first), { frameId: first, trackId: 1, sentAt: 0 })
  assert.equal(pacer.answered(first), undefined, 'one answer per frame')
  assert.equal(pacer.pick([1], 500), 1)
})

test('the track that waited longest goes first, and at most maxUnanswered frames are out', () => {
  const pacer = createPacer(options)
  pacer.sent(pacer.pick([1, 2, 3], 0) ?? -1, 0)
  const second = pacer.pick([1, 2, 3], 100)
  assert.equal(second, 2)
  pacer.sent(2, 100)
  assert.equal(pacer.pick([1, 2, 3], 200), undefined, 'two frames unanswered')
  assert.equal(pacer.unanswered, 2)
  pacer.answered(1)
  assert.equal(pacer.pick([1, 2, 3], 200), 3, 'never sent: it waited longest')
})

test('throttled pauses sending for retryAfterMs; a new connection takes its own rate', () => {
  const pacer = createPacer(options)
  pacer.throttle(1000, 0)
  assert.equal(pacer.pick([1], 999), undefined)
  assert.equal(pacer.pick([1], 1000), 1)
  pacer.sent(1, 1000)
  pacer.reset(2)
  assert.equal(pacer.unanswered, 0, 'frames of the old stream are forgotten')
  pacer.sent(1, 2000)
  pacer.answered(2)
  assert.equal(pacer.pick([1], 2400), undefined, '2 fps: 500 ms apart')
  assert.equal(pacer.pick([1], 2500), 1)
})

test('a frame never answered is given up after answerTimeoutMs', () => {
  const pacer = createPacer(options)
  pacer.sent(1, 0)
  assert.equal(pacer.pick([1], 4000), undefined)
  assert.equal(pacer.pick([1], 5001), 1)
})

test('frame ids are distinct uint32s', () => {
  const pacer = createPacer({ ...options, maxUnanswered: 100 })
  const ids = Array.from({ length: 50 }, (_, i) => pacer.sent(i, i * 1000))
  assert.equal(new Set(ids).size, 50)
  assert.ok(ids.every((id) => Number.isInteger(id) && id > 0 && id <= 0xffffffff))
})
