import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildProtocol, rankOneRate, tpirAtFpir, type TopOne } from '../../../server/cli/openset.js'

const people = [
  { name: 'Ann', photos: ['2.jpg', '1.jpg', '3.jpg'] },
  { name: 'Bob', photos: ['1.jpg'] },
  { name: 'Cid', photos: ['1.jpg', '2.jpg'] },
  { name: 'Dee', photos: ['1.jpg', '2.jpg'] },
  { name: 'Eve', photos: ['1.jpg'] },
  { name: 'Fay', photos: ['1.jpg', '2.jpg'] },
]

test('enrolls people spread over the alphabet from their first photos and probes with the next', () => {
  const protocol = buildProtocol(people, { enrolled: 2, enrollPhotos: 1, strangers: 'single' })
  assert.deepEqual(protocol.enrolled, [
    { name: 'Ann', photos: ['1.jpg'] },
    { name: 'Dee', photos: ['1.jpg'] },
  ])
  assert.deepEqual(protocol.probes, [
    { name: 'Ann', photo: '2.jpg' },
    { name: 'Dee', photo: '2.jpg' },
  ])
  assert.deepEqual(
    protocol.strangers.map((s) => s.name),
    ['Bob', 'Eve'],
  )
})

test('with --strangers rest the people not enrolled become strangers too, never an enrolled one', () => {
  const protocol = buildProtocol(people, { enrolled: 2, enrollPhotos: 1, strangers: 'rest' })
  const strangers = protocol.strangers.map((s) => s.name).sort()
  assert.deepEqual(strangers, ['Bob', 'Cid', 'Eve', 'Fay'])
  for (const e of protocol.enrolled) assert.ok(!strangers.includes(e.name))
})

test('enrolling from two photos needs three, and asking for more people than qualify is refused', () => {
  const protocol = buildProtocol(people, { enrolled: 'all', enrollPhotos: 2, strangers: 'single' })
  assert.deepEqual(protocol.enrolled, [{ name: 'Ann', photos: ['1.jpg', '2.jpg'] }])
  assert.deepEqual(protocol.probes, [{ name: 'Ann', photo: '3.jpg' }])
  assert.throws(
    () => buildProtocol(people, { enrolled: 5, enrollPhotos: 1, strangers: 'single' }),
    RangeError,
  )
})

test('TPIR at FPIR sets the threshold above the strangers it must refuse', () => {
  const strangers: TopOne[] = [0.9, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1].map((score) => ({
    best: { name: 'x', score },
  }))
  const probes: TopOne[] = [
    { truth: 'a', best: { name: 'a', score: 0.95 } },
    { truth: 'b', best: { name: 'b', score: 0.6 } },
    { truth: 'c', best: { name: 'z', score: 0.99 } }, // wrong person: never a hit
    { truth: 'd' }, // no face
  ]
  const at10 = tpirAtFpir(probes, strangers, 0.1)
  assert.ok(at10.threshold > 0.5 && at10.threshold < 0.5001)
  assert.equal(at10.tpir, 0.5)
  assert.equal(at10.measurable, true)
  const at0 = tpirAtFpir(probes, strangers, 0.01)
  assert.ok(at0.threshold > 0.9)
  assert.equal(at0.tpir, 0.25)
  assert.equal(at0.measurable, false, '10 strangers cannot resolve 1%')
  assert.equal(rankOneRate(probes), 0.5)
})
