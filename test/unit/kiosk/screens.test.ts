import assert from 'node:assert/strict'
import { test } from 'node:test'
import { nextScreen, type Screen, type ScreenEvent } from '../../../client/kiosk/screens.js'

const run = (events: ScreenEvent['type'][], from: Screen = 'starting'): Screen =>
  events.reduce<Screen>((screen, type) => nextScreen(screen, { type }), from)

test('a kiosk starts, opens its stream and runs', () => {
  assert.equal(run(['camera-ready', 'connected']), 'running')
})

test('a token screen is final: nothing later paints over it', () => {
  assert.equal(run(['token-rejected', 'connected', 'unreachable', 'camera-ready']), 'token-expired')
  assert.equal(run(['token-missing', 'connected']), 'no-token')
  assert.equal(run(['token-rejected'], 'running'), 'token-expired')
})

test('camera screens hold until the camera works', () => {
  assert.equal(run(['camera-denied', 'connected', 'unreachable']), 'camera-denied')
  assert.equal(run(['camera-missing', 'camera-ready', 'connected']), 'running')
})

test('an unreachable server shows the countdown until a stream opens again', () => {
  assert.equal(run(['unreachable'], 'running'), 'unreachable')
  assert.equal(run(['unreachable', 'connected'], 'running'), 'running')
  assert.equal(run(['unreachable'], 'enrolling'), 'unreachable', 'enrollment ends with the stream')
})

test('enrollment starts only from the running screen and returns to it', () => {
  assert.equal(run(['enroll-start'], 'running'), 'enrolling')
  assert.equal(run(['enroll-start', 'connected', 'enroll-end'], 'running'), 'running')
  assert.equal(run(['enroll-start'], 'unreachable'), 'unreachable')
})
