import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEFAULT_RETRY, describeRedisUrl, retryDelayMs } from '../../../server/cluster/redis.js'

test('reconnection waits grow exponentially to the cap, each jittered between half and all of it', () => {
  const retry = { baseMs: 100, maxMs: 5000 }
  const ceilings = [100, 200, 400, 800, 1600, 3200, 5000, 5000]
  ceilings.forEach((ceiling, i) => {
    assert.equal(
      retryDelayMs(i + 1, retry, () => 1),
      ceiling,
      `attempt ${String(i + 1)}, highest`,
    )
    assert.equal(
      retryDelayMs(i + 1, retry, () => 0),
      ceiling / 2,
      `attempt ${String(i + 1)}, lowest`,
    )
  })
  assert.equal(
    retryDelayMs(10_000, retry, () => 1),
    5000,
    'no overflow after many attempts',
  )
  assert.equal(
    retryDelayMs(1, { baseMs: 1, maxMs: 1 }, () => 0),
    1,
    'never 0',
  )
  const spread = new Set(Array.from({ length: 50 }, () => retryDelayMs(8, DEFAULT_RETRY)))
  assert.ok(spread.size > 10, 'instances that lost Redis together do not retry in step')
  for (const delay of spread) assert.ok(delay >= DEFAULT_RETRY.maxMs / 2 && delay <= DEFAULT_RETRY.maxMs)
})

test('what the logs say of a Redis URL names the server, never the user or password', () => {
  assert.deepEqual(describeRedisUrl('redis://app:s3cret@cache.internal:6380/3'), {
    target: 'cache.internal:6380',
    db: 3,
    tls: false,
  })
  assert.deepEqual(describeRedisUrl('rediss://:s3cret@cache'), { target: 'cache:6379', db: 0, tls: true })
  assert.ok(!JSON.stringify(describeRedisUrl('redis://app:s3cret@h')).includes('s3cret'))
})
