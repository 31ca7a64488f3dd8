import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decide, searchDepth } from '../../../server/gallery/decide.js'
import type { DecisionPolicy, Neighbour } from '../../../server/gallery/types.js'
import type { IdentityRef } from '../../../protocol/wire.js'

const POLICY: DecisionPolicy = { threshold: 0.93, margin: 0.02, topK: 5 }

/** Labels 10-19 are Ada's faces, 20-29 Bob's, 30-39 Cy's, and so on; 99 has no identity. */
function identityOf(label: number): IdentityRef | undefined {
  const names = ['Ada', 'Bob', 'Cy', 'Dee', 'Eve', 'Fay', 'Gus', 'Hal']
  const name = names[Math.floor(label / 10) - 1]
  return name === undefined || label === 99 ? undefined : { id: `id-${name}`, name }
}

function n(label: number, similarity: number): Neighbour {
  return { label, similarity }
}

test('no neighbours is unknown with similarity and margin 0 and no candidates', () => {
  assert.deepEqual(decide([], identityOf, POLICY), {
    decision: { status: 'unknown', similarity: 0, margin: 0, threshold: 0.93 },
    candidates: [],
  })
})

test('a best identity above the threshold with enough lead is a match', () => {
  const { decision } = decide([n(10, 0.96), n(20, 0.9)], identityOf, POLICY)
  assert.deepEqual(decision, {
    status: 'match',
    identity: { id: 'id-Ada', name: 'Ada' },
    similarity: 0.96,
    margin: 0.06,
    threshold: 0.93,
  })
})

test('a lone identity above the threshold is a match whose margin is its similarity', () => {
  const { decision, candidates } = decide([n(10, 0.95), n(11, 0.94)], identityOf, POLICY)
  assert.equal(decision.status, 'match')
  assert.equal(decision.margin, 0.95)
  assert.equal(candidates.length, 1)
})

test('a best identity above the threshold with too small a lead is uncertain, identity included', () => {
  const { decision } = decide([n(10, 0.95), n(20, 0.94)], identityOf, POLICY)
  assert.deepEqual(decision, {
    status: 'uncertain',
    identity: { id: 'id-Ada', name: 'Ada' },
    similarity: 0.95,
    margin: 0.01,
    threshold: 0.93,
  })
})

test('a best identity below the threshold is unknown without an identity, candidates kept', () => {
  const { decision, candidates } = decide([n(10, 0.8), n(20, 0.5)], identityOf, POLICY)
  assert.deepEqual(decision, { status: 'unknown', similarity: 0.8, margin: 0.3, threshold: 0.93 })
  assert.equal('identity' in decision, false)
  assert.deepEqual(
    candidates.map((c) => c.identity.name),
    ['Ada', 'Bob'],
  )
})

test('faces are grouped by identity, each scoring its best face, ranked best first', () => {
  const { decision, candidates } = decide(
    [n(20, 0.9), n(10, 0.94), n(21, 0.97), n(11, 0.96), n(30, 0.5)],
    identityOf,
    POLICY,
  )
  assert.deepEqual(candidates, [
    { identity: { id: 'id-Bob', name: 'Bob' }, similarity: 0.97 },
    { identity: { id: 'id-Ada', name: 'Ada' }, similarity: 0.96 },
    { identity: { id: 'id-Cy', name: 'Cy' }, similarity: 0.5 },
  ])
  assert.equal(decision.status, 'uncertain', 'a second face of the runner-up does not count twice')
  assert.equal(decision.margin, 0.01)
})

test('a similarity exactly at the threshold and a lead exactly at the margin are a match', () => {
  // 0.94 - 0.92 is 0.01999999999999991 in floating point: the rounded margin is what counts.
  const { decision } = decide([n(10, 0.94), n(20, 0.92)], identityOf, { ...POLICY, threshold: 0.94 })
  assert.deepEqual(decision, {
    status: 'match',
    identity: { id: 'id-Ada', name: 'Ada' },
    similarity: 0.94,
    margin: 0.02,
    threshold: 0.94,
  })
  const below = decide([n(10, 0.9399), n(20, 0.5)], identityOf, { ...POLICY, threshold: 0.94 })
  assert.equal(below.decision.status, 'unknown')
  const short = decide([n(10, 0.94), n(20, 0.9201)], identityOf, POLICY)
  assert.equal(short.decision.status, 'uncertain')
})

test('similarities and margins are rounded to 4 decimals', () => {
  const { decision, candidates } = decide([n(10, 0.987654321), n(20, 0.123456789)], identityOf, POLICY)
  assert.equal(decision.similarity, 0.9877)
  assert.equal(decision.margin, 0.8642)
  assert.deepEqual(
    candidates.map((c) => c.similarity),
    [0.9877, 0.1235],
  )
})

test('labels without an identity (deleted meanwhile) are skipped', () => {
  const { decision, candidates } = decide([n(99, 0.99), n(10, 0.95), n(5, 0.97)], identityOf, POLICY)
  assert.equal(decision.identity?.name, 'Ada')
  assert.equal(decision.status, 'match')
  assert.equal(candidates.length, 1)
  assert.deepEqual(decide([n(99, 0.99)], identityOf, POLICY), {
    decision: { status: 'unknown', similarity: 0, margin: 0, threshold: 0.93 },
    candidates: [],
  })
})

test('candidates are cut to topK distinct identities', () => {
  const neighbours = [80, 70, 60, 50, 40, 30, 20, 10].map((label, i) => n(label, 0.99 - i * 0.05))
  const { candidates } = decide(neighbours, identityOf, { ...POLICY, topK: 3 })
  assert.deepEqual(
    candidates.map((c) => [c.identity.name, c.similarity]),
    [
      ['Hal', 0.99],
      ['Gus', 0.94],
      ['Fay', 0.89],
    ],
  )
})

test('searchDepth asks for enough faces to fill topK identities with several faces each', () => {
  assert.equal(searchDepth(1), 20)
  assert.equal(searchDepth(4), 20)
  assert.equal(searchDepth(5), 25)
  assert.equal(searchDepth(50), 250)
})
