import assert from 'node:assert/strict'
import { test } from 'node:test'
import { backoffDelayMs } from '../../../server/backoff.js'

const policy = { baseMs: 1000, maxMs: 60_000 }
const almostOne = 1 - Number.EPSILON

test('full jitter: a delay between 0 and a cap that doubles with each retry', () => {
  assert.equal(
    backoffDelayMs(1, policy, () => 0),
    0,
  )
  assert.equal(
    backoffDelayMs(1, policy, () => almostOne),
    999,
  )
  assert.equal(
    backoffDelayMs(2, policy, () => almostOne),
    1999,
  )
  assert.equal(
    backoffDelayMs(3, policy, () => almostOne),
    3999,
  )
  assert.equal(
    backoffDelayMs(3, policy, () => 0.5),
    2000,
  )
})

test('the cap stops at maxMs, however many retries (no overflow to Infinity or NaN)', () => {
  assert.equal(
    backoffDelayMs(7, policy, () => almostOne),
    59_999,
  )
  assert.equal(
    backoffDelayMs(10_000, policy, () => almostOne),
    59_999,
  )
  assert.equal(
    backoffDelayMs(10_000, policy, () => 0),
    0,
  )
  assert.equal(
    backoffDelayMs(1, { baseMs: 5000, maxMs: 100 }, () => almostOne),
    99,
  )
})

test('with Math.random every delay stays within its cap', () => {
  for (let retry = 1; retry <= 12; retry++) {
    const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** (retry - 1))
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelayMs(retry, policy)
      assert.ok(
        Number.isInteger(delay) && delay >= 0 && delay < cap,
        `retry ${String(retry)}: ${String(delay)}`,
      )
    }
  }
})
