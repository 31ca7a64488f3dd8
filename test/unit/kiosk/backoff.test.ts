import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createBackoff } from '../../../client/kiosk/backoff.js'

test('delays double from the initial one up to the cap, each drawn in [delay / 2, delay]', () => {
  const low = createBackoff({ initialMs: 1000, maxMs: 8000, factor: 2, random: () => 0 })
  assert.deepEqual(
    Array.from({ length: 6 }, () => low.next()),
    [500, 1000, 2000, 4000, 4000, 4000],
  )
  const high = createBackoff({ initialMs: 1000, maxMs: 8000, factor: 2, random: () => 0.999999 })
  assert.deepEqual(
    Array.from({ length: 6 }, () => high.next()),
    [1000, 2000, 4000, 8000, 8000, 8000],
  )
  assert.equal(high.attempts, 6)
})

test('a successful connection starts the delays over', () => {
  const backoff = createBackoff({ initialMs: 100, maxMs: 10_000, factor: 3, random: () => 0.999999 })
  backoff.next()
  backoff.next()
  backoff.reset()
  assert.equal(backoff.attempts, 0)
  assert.equal(backoff.next(), 100)
})

test('options that cannot make a schedule are refused with the option named', () => {
  const random = (): number => 0
  assert.throws(() => createBackoff({ initialMs: 0, maxMs: 1, factor: 2, random }), /initialMs/)
  assert.throws(() => createBackoff({ initialMs: 10, maxMs: 5, factor: 2, random }), /maxMs/)
  assert.throws(() => createBackoff({ initialMs: 10, maxMs: 50, factor: 0.5, random }), /factor/)
})
