import assert from 'node:assert/strict'
import { test } from 'node:test'
import { round1, toWireTimings } from '../../server/wire-timings.js'

test('round1 keeps one decimal, rounding halves up', () => {
  assert.equal(round1(12.34), 12.3)
  assert.equal(round1(12.35), 12.4)
  assert.equal(round1(0.04), 0)
  assert.equal(round1(-1.26), -1.3)
})

test('wire timings take the queue and the stages from the analysis and the search and total from the caller, each to 0.1 ms', () => {
  const analysis = {
    queueMs: 1.04,
    timings: {
      decodeMs: 2.26,
      detectMs: 10.01,
      landmarksMs: 3.95,
      alignMs: 0.449,
      embedMs: 20.55,
      livenessMs: 0,
      totalMs: 99,
      inferenceMs: 30,
    },
  }
  assert.deepEqual(toWireTimings(analysis, 0.333, 41.06), {
    queueMs: 1,
    decodeMs: 2.3,
    detectMs: 10,
    landmarksMs: 4,
    alignMs: 0.4,
    embedMs: 20.6,
    livenessMs: 0,
    searchMs: 0.3,
    totalMs: 41.1,
  })
})
