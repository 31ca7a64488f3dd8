import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createBoundedQueue } from '../../../server/outbound/bounded-queue.js'

test('first in, first out below the bound', () => {
  const queue = createBoundedQueue<number>(3)
  assert.equal(queue.push(1), undefined)
  assert.equal(queue.push(2), undefined)
  assert.equal(queue.size, 2)
  assert.equal(queue.shift(), 1)
  assert.equal(queue.push(3), undefined)
  assert.equal(queue.push(4), undefined)
  assert.deepEqual(queue.drain(), [2, 3, 4])
  assert.equal(queue.size, 0)
  assert.equal(queue.shift(), undefined)
})

test('when full, the oldest item is dropped and handed back, and the size stays at the bound', () => {
  const queue = createBoundedQueue<string>(2)
  queue.push('a')
  queue.push('b')
  assert.equal(queue.push('c'), 'a')
  assert.equal(queue.push('d'), 'b')
  assert.equal(queue.size, 2)
  assert.equal(queue.capacity, 2)
  assert.deepEqual(queue.drain(), ['c', 'd'])
  // Wrapping around the ring many times keeps the order.
  const dropped: number[] = []
  const ring = createBoundedQueue<number>(3)
  for (let i = 0; i < 100; i++) {
    const out = ring.push(i)
    if (out !== undefined) dropped.push(out)
  }
  assert.deepEqual(
    dropped,
    Array.from({ length: 97 }, (_, i) => i),
  )
  assert.deepEqual(ring.drain(), [97, 98, 99])
})

test('a bound below 1 is refused', () => {
  assert.throws(() => createBoundedQueue(0), RangeError)
  assert.throws(() => createBoundedQueue(1.5), RangeError)
})
