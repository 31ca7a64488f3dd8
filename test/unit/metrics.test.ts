import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createMetrics, MAX_ORG_LABELS, OTHER_ORG_LABEL } from '../../server/metrics.js'
import { sampleValue } from '../helpers/metrics.js'

const face = (status: string) => ({ decision: { status } })

test('decisions are counted by source and status, with an org label for the first 20 organizations only', async () => {
  const metrics = createMetrics()
  metrics.countDecisions('stream', 'acme', [face('match'), face('unknown'), face('match')])
  metrics.countDecisions('rest', 'acme', [face('uncertain')])
  const orgs = Array.from({ length: MAX_ORG_LABELS + 5 }, (_, i) => `org-${String(i).padStart(2, '0')}`)
  for (const org of orgs) metrics.countDecisions('rest', org, [face('unknown')])
  // An org first seen after the bound keeps sharing _other; one labelled before keeps its label.
  metrics.countDecisions('rest', 'acme', [face('unknown')])
  metrics.countDecisions('rest', orgs.at(-1) ?? '', [face('unknown')])

  const text = await metrics.registry.metrics()
  const count = (labels: Record<string, string>) => sampleValue(text, 'facewire_decisions_total', labels)
  assert.equal(count({ source: 'stream', status: 'match', org: 'acme' }), 2)
  assert.equal(count({ source: 'stream', status: 'unknown', org: 'acme' }), 1)
  assert.equal(count({ source: 'rest', status: 'uncertain', org: 'acme' }), 1)
  assert.equal(count({ source: 'rest', status: 'unknown', org: 'acme' }), 1)
  // acme took one of the 20 labels: 19 of the others get theirs, 6 events go to _other.
  assert.equal(count({ source: 'rest', status: 'unknown', org: 'org-18' }), 1)
  assert.equal(count({ source: 'rest', status: 'unknown', org: 'org-19' }), 0)
  assert.equal(count({ source: 'rest', status: 'unknown', org: OTHER_ORG_LABEL }), 7)
  const labels = new Set([...text.matchAll(/facewire_decisions_total\{[^}]*org="([^"]+)"/g)].map((m) => m[1]))
  assert.equal(labels.size, MAX_ORG_LABELS + 1)
})
