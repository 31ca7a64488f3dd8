import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createReadiness } from '../../server/readiness.js'

test('readiness is false until every registered component is ready', () => {
  const readiness = createReadiness()
  assert.equal(readiness.isReady(), false, 'nothing registered is not ready')
  readiness.register('transport')
  readiness.register('models')
  readiness.markReady('transport')
  assert.equal(readiness.isReady(), false)
  readiness.markReady('models')
  assert.equal(readiness.isReady(), true)
  readiness.markNotReady('transport')
  assert.equal(readiness.isReady(), false)
  assert.deepEqual(readiness.snapshot(), { transport: false, models: true })
})

test('registering a component twice does not reset it', () => {
  const readiness = createReadiness()
  readiness.register('models')
  readiness.markReady('models')
  readiness.register('models')
  assert.equal(readiness.isReady(), true)
})

test('a degraded component keeps readiness and is reported until it recovers', () => {
  const readiness = createReadiness()
  readiness.register('database')
  readiness.markReady('database')
  readiness.setDegraded('database', 'connection refused')
  assert.equal(readiness.isReady(), true, 'degraded is still ready: recognition goes on')
  assert.deepEqual(readiness.degraded(), { database: 'connection refused' })
  readiness.setDegraded('database', undefined)
  assert.deepEqual(readiness.degraded(), {})
})
