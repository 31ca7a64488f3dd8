import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Decision } from '../../protocol/wire.js'
import { livenessTurn, requireLiveness } from '../../server/recognize.js'

const match: { decision: Decision } = {
  decision: {
    status: 'match',
    identity: { id: 'a', name: 'Ada' },
    similarity: 0.8,
    margin: 0.3,
    threshold: 0.5,
  },
}

test('require mode turns a match that is not live, or not scored, into uncertain with reason liveness', () => {
  const policy = { mode: 'require' as const, threshold: 0.5 }
  assert.equal(requireLiveness(match, 0.9, policy), match, 'live: unchanged')
  const refused = requireLiveness(match, 0.2, policy)
  assert.deepEqual(refused.decision, { ...match.decision, status: 'uncertain', reason: 'liveness' })
  assert.equal(refused.decision.identity?.name, 'Ada', 'the identity stays for the prompt')
  assert.equal(requireLiveness(match, undefined, policy).decision.reason, 'liveness')
  const unknown = { decision: { ...match.decision, status: 'unknown' as const } }
  assert.equal(requireLiveness(unknown, 0.1, policy), unknown, 'only matches are refused')
})

test('report and off modes never change a decision', () => {
  for (const mode of ['report', 'off'] as const) {
    assert.equal(requireLiveness(match, 0, { mode, threshold: 0.5 }), match)
  }
})

test('streams score liveness on every frame in require mode, every other frame in report mode, never when off', () => {
  const frames = [0, 1, 2, 3, 4, 5]
  assert.deepEqual(
    frames.map((f) => livenessTurn('require', f)),
    [true, true, true, true, true, true],
  )
  assert.deepEqual(
    frames.map((f) => livenessTurn('report', f)),
    [true, false, true, false, true, false],
  )
  assert.deepEqual(
    frames.map((f) => livenessTurn('off', f)),
    [false, false, false, false, false, false],
  )
})
