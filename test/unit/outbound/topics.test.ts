import assert from 'node:assert/strict'
import { test } from 'node:test'
import { cameraLevel, eventTopic, NO_CAMERA_LEVEL, statusTopic } from '../../../server/outbound/topics.js'

test('events go to <prefix>/<org>/<camera>/<type>, status to <prefix>/<org>/status', () => {
  assert.equal(eventTopic('facewire', 'acme', 'front-door', 'match'), 'facewire/acme/front-door/match')
  assert.equal(
    eventTopic('home/facewire', 'acme', 'Porte d’entrée', 'unknown'),
    'home/facewire/acme/Porte d’entrée/unknown',
  )
  assert.equal(statusTopic('facewire', 'acme'), 'facewire/acme/status')
})

test('a frame without a camera label publishes under _none', () => {
  assert.equal(NO_CAMERA_LEVEL, '_none')
  assert.equal(eventTopic('facewire', 'acme', null, 'match'), 'facewire/acme/_none/match')
})

test('separators, wildcards and control characters in a camera label become _', () => {
  assert.equal(cameraLevel('garage/left'), 'garage_left')
  assert.equal(cameraLevel('+#'), '__')
  assert.equal(cameraLevel('a\u0000b\nc\u007f'), 'a_b_c_')
  assert.equal(cameraLevel('hall 2 (east)'), 'hall 2 (east)')
})
