import assert from 'node:assert/strict'
import { test } from 'node:test'
import { within } from '../../../server/outbound/within.js'

test('within answers the value when it comes in time, and undefined when it is late or fails', async () => {
  assert.equal(await within(Promise.resolve('offline said'), 1000), 'offline said')
  const startedAt = performance.now()
  assert.equal(await within(new Promise<string>(() => undefined), 20), undefined)
  assert.ok(performance.now() - startedAt < 1000, 'the bound ended the wait')
  assert.equal(await within(Promise.reject<string>(new Error('broker gone')), 1000), undefined)
})
