import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  CAMERA_KEY,
  provision,
  toCameraLabel,
  TOKEN_KEY,
  type KeyValueStore,
} from '../../../client/kiosk/provisioning.js'

function memoryStore(): KeyValueStore & { data: Map<string, string> } {
  const data = new Map<string, string>()
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) }
}

test('the fragment provisions the token and camera, which are kept for the next load', () => {
  const store = memoryStore()
  assert.deepEqual(provision('#token=abc.def.ghi&camera=front-door', store), {
    token: 'abc.def.ghi',
    camera: 'front-door',
    fromFragment: true,
  })
  assert.equal(store.data.get(TOKEN_KEY), 'abc.def.ghi')
  assert.deepEqual(provision('', store), { token: 'abc.def.ghi', camera: 'front-door', fromFragment: false })
})

test('without a fragment or a stored token there is no token', () => {
  assert.deepEqual(provision('#', memoryStore()), {
    token: undefined,
    camera: undefined,
    fromFragment: false,
  })
})

test('a new link replaces the stored token; a camera label over 64 bytes is not used', () => {
  const store = memoryStore()
  provision('#token=old&camera=door', store)
  const next = provision(`#token=new&camera=${'x'.repeat(65)}`, store)
  assert.equal(next.token, 'new')
  assert.equal(next.camera, 'door', 'the stored label stays')
  assert.equal(store.data.get(CAMERA_KEY), 'door')
  assert.equal(toCameraLabel('  lobby '), 'lobby')
  assert.equal(toCameraLabel('é'.repeat(33)), undefined, '66 bytes of UTF-8')
  assert.equal(toCameraLabel(''), undefined)
})
