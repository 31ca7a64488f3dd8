import assert from 'node:assert/strict'
import { FacewireError } from '../../server/errors.js'

/** The catalogue code a promise rejects with; fails the test if it resolves or throws otherwise. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof FacewireError, `expected a FacewireError, got ${String(error)}`)
    return error.code
  }
  assert.fail('expected a rejection with a catalogue code')
}
