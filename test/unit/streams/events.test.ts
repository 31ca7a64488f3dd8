import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createEventHub, type EventSink } from '../../../server/streams/events.js'
import type { TrackDecision } from '../../../server/streams/tracks.js'
import type { DecisionStatus } from '../../../protocol/wire.js'

function decided(status: DecisionStatus, identityId = 'kit'): TrackDecision {
  return {
    decision: {
      status,
      ...(status === 'unknown' ? {} : { identity: { id: identityId, name: 'Kit' } }),
      similarity: 0.7,
      margin: 0.3,
      threshold: 0.5,
    },
    candidates: [],
    frames: 3,
    changed: true,
  }
}

test('every event the hub publishes reaches each sink once, with its organization, and nothing else does', () => {
  const published: [string, string][] = []
  const received: [string, unknown][][] = [[], []]
  const sinks: EventSink[] = received.map((into) => (org, event) => {
    into.push([org, event])
  })
  const hub = createEventHub({
    publish: (topic, text) => published.push([topic, text]),
    sinks,
    cooldownMs: 30_000,
    unknownEvents: true,
  })
  const context = {
    session: 's1',
    org: 'acme',
    camera: 'front-door',
    track: { id: 1, source: 'server' as const },
  }
  const match = hub.trackDecided({ ...context, decided: decided('match'), nowMs: 1000 })
  assert.ok(match?.type === 'match')
  // Within the cooldown: no event, for the watchers or the sinks.
  assert.equal(hub.trackDecided({ ...context, decided: decided('match'), nowMs: 2000 }), undefined)
  // Uncertain decisions are not events.
  assert.equal(
    hub.trackDecided({
      ...context,
      track: { id: 2, source: 'server' },
      decided: decided('uncertain'),
      nowMs: 2000,
    }),
    undefined,
  )
  const unknown = hub.trackDecided({
    ...context,
    org: 'other-org',
    camera: null,
    track: { id: 3, source: 'client' },
    decided: decided('unknown'),
    nowMs: 3000,
  })
  assert.ok(unknown?.type === 'unknown')
  for (const into of received) {
    assert.deepEqual(into, [
      ['acme', match],
      ['other-org', unknown],
    ])
  }
  assert.deepEqual(
    published.map(([topic, text]) => [topic, JSON.parse(text) as unknown]),
    [
      ['events/acme', match],
      ['events/other-org', unknown],
    ],
  )
})
