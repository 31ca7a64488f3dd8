import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createRateMeter, createStats, median, pushBounded } from '../../../client/kiosk/stats.js'

test('kioskStats starts empty and connecting', () => {
  assert.deepEqual(createStats(), {
    connection: 'connecting',
    framesSent: 0,
    bytesSent: 0,
    answers: { result: 0, dropped: 0, throttled: 0, error: 0 },
    detectorMs: [],
    roundTripMs: [],
    decisions: [],
  })
})

test('bounded lists keep the latest values', () => {
  const list: number[] = []
  for (let i = 0; i < 205; i++) pushBounded(list, i, 200)
  assert.equal(list.length, 200)
  assert.equal(list[0], 5)
  assert.equal(list.at(-1), 204)
})

test('median and rate', () => {
  assert.equal(median([3, 1, 2]), 2)
  assert.equal(median([4, 1, 2, 3]), 2.5)
  assert.ok(Number.isNaN(median([])))
  const meter = createRateMeter(1000)
  for (let t = 0; t < 1000; t += 100) meter.add(t)
  assert.equal(meter.rate(999), 10)
  assert.equal(meter.rate(1950), 0)
})
