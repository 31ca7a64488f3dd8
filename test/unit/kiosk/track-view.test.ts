import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Decision, StreamFace } from '../../../protocol/wire.js'
import {
  createTrackMemory,
  describeTrack,
  PROMPTS,
  type FaceHints,
} from '../../../client/kiosk/track-view.js'

const good: FaceHints = { widthPx: 180, luma: 0.5 }

function face(decision: Partial<Decision>, extra: Partial<StreamFace> = {}): StreamFace {
  return {
    box: { x: 80, y: 80, width: 160, height: 160 },
    landmarks: [],
    quality: 0.8,
    decision: { status: 'unknown', similarity: 0.1, margin: 0.1, threshold: 0.45, ...decision },
    candidates: [],
    track: { id: 1, source: 'client', frames: 3 },
    ...extra,
  }
}

const ada = { id: 'id-ada', name: 'Ada Lovelace' }

test('a match shows the name and is announced as a welcome', () => {
  const view = describeTrack(createTrackMemory(), face({ status: 'match', identity: ada }), good, 2)
  assert.deepEqual(view, {
    status: 'match',
    text: 'Ada Lovelace',
    announce: 'Welcome, Ada Lovelace',
    identityId: 'id-ada',
  })
})

test('uncertain shows Checking...; unknown waits for switchFrames frames before it is shown', () => {
  const memory = createTrackMemory()
  assert.equal(
    describeTrack(memory, face({ status: 'uncertain', identity: ada }), good, 2).text,
    'Checking...',
  )
  const early = face({ status: 'unknown' }, { track: { id: 1, source: 'client', frames: 1 } })
  assert.equal(describeTrack(memory, early, good, 2).status, 'checking')
  const view = describeTrack(memory, face({ status: 'unknown' }), good, 2)
  assert.deepEqual(view, { status: 'unknown', text: 'Unknown', announce: 'Unknown person' })
})

test('a liveness refusal becomes a prompt: move closer, more light, then blink, then look', () => {
  const refused = face({ status: 'uncertain', identity: ada, reason: 'liveness' })
  assert.equal(
    describeTrack(createTrackMemory(), refused, { widthPx: 40, luma: 0.5 }, 2).text,
    PROMPTS.closer,
  )
  assert.equal(
    describeTrack(createTrackMemory(), refused, { widthPx: 200, luma: 0.1 }, 2).text,
    PROMPTS.light,
  )
  const memory = createTrackMemory()
  const blink = describeTrack(memory, refused, good, 2)
  assert.deepEqual(blink, { status: 'prompt', text: PROMPTS.blink, announce: PROMPTS.blink })
  describeTrack(memory, face({ status: 'uncertain' }, { eyes: { open: 0.05, closed: true } }), good, 2)
  assert.equal(describeTrack(memory, refused, good, 2).text, PROMPTS.look, 'blinked and still refused')
})

test('closed eyes on a face that is not a match ask the person to open them', () => {
  const closed = face({ status: 'unknown' }, { eyes: { open: 0.1, closed: true } })
  assert.equal(describeTrack(createTrackMemory(), closed, good, 2).text, PROMPTS.openEyes)
  const matched = face({ status: 'match', identity: ada }, { eyes: { open: 0.1, closed: true } })
  assert.equal(
    describeTrack(createTrackMemory(), matched, good, 2).status,
    'match',
    'a blink does not undo a match',
  )
})

test('a low-quality face is explained from what the kiosk sees of it', () => {
  const poor = face({ status: 'unknown' }, { quality: 0.1 })
  assert.equal(describeTrack(createTrackMemory(), poor, { widthPx: 300, luma: 0.95 }, 2).text, PROMPTS.glare)
  assert.equal(describeTrack(createTrackMemory(), poor, good, 2).text, PROMPTS.look)
})

test('answers without a face keep the view once, then ask the person to look at the camera', () => {
  const memory = createTrackMemory()
  describeTrack(memory, face({ status: 'match', identity: ada }), good, 2)
  assert.equal(describeTrack(memory, undefined, good, 2).status, 'match')
  assert.equal(describeTrack(memory, undefined, good, 2).text, PROMPTS.look)
  assert.equal(describeTrack(memory, face({ status: 'match', identity: ada }), good, 2).status, 'match')
})
