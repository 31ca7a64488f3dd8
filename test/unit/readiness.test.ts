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
