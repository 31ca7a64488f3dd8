import assert from 'node:assert/strict'
import { test } from 'node:test'
import { findMetadataProblem, MAX_METADATA_BYTES, MAX_METADATA_DEPTH } from '../../../server/api/metadata.js'

function nested(depth: number, open: string, close: string, inner: string): unknown {
  return JSON.parse(open.repeat(depth) + inner + close.repeat(depth))
}

test('metadata nested up to the depth bound is accepted and one level more is refused at its path', () => {
  assert.equal(MAX_METADATA_DEPTH, 32)
  assert.equal(findMetadataProblem(nested(MAX_METADATA_DEPTH - 1, '{"a":', '}', '{}')), undefined)
  assert.deepEqual(findMetadataProblem(nested(MAX_METADATA_DEPTH, '{"a":', '}', '{}')), {
    path: Array.from({ length: MAX_METADATA_DEPTH }, () => 'a'),
    message: 'must be nested at most 32 levels deep',
  })
  const arrays = findMetadataProblem({ list: nested(MAX_METADATA_DEPTH, '[', ']', '') })
  assert.deepEqual(arrays?.path, ['list', ...Array.from({ length: MAX_METADATA_DEPTH - 1 }, () => 0)])
})

test('metadata a hundred thousand levels deep is refused without recursion', () => {
  const problem = findMetadataProblem(nested(100_000, '[', ']', ''))
  assert.equal(problem?.path.length, MAX_METADATA_DEPTH)
})

test('a __proto__ key parsed from JSON is refused at any depth, other keys named like builtins are not', () => {
  assert.deepEqual(findMetadataProblem(JSON.parse('{"__proto__":{"admin":true}}')), {
    path: ['__proto__'],
    message: 'the key __proto__ is not allowed',
  })
  assert.deepEqual(findMetadataProblem(JSON.parse('{"a":[1,{"__proto__":1}]}'))?.path, ['a', 1, '__proto__'])
  assert.equal(findMetadataProblem({ constructor: 1, prototype: { toString: 2 } }), undefined)
})

test('metadata of exactly the byte bound is accepted and one byte more is refused', () => {
  const exact = { t: 'x'.repeat(MAX_METADATA_BYTES - '{"t":""}'.length) }
  assert.equal(Buffer.byteLength(JSON.stringify(exact)), MAX_METADATA_BYTES)
  assert.equal(findMetadataProblem(exact), undefined)
  assert.deepEqual(findMetadataProblem({ t: `${exact.t}x` }), {
    path: [],
    message: 'must be at most 4096 bytes of JSON',
  })
  // Multi-byte characters count in UTF-8 bytes.
  assert.notEqual(findMetadataProblem({ t: 'é'.repeat(2100) }), undefined)
})

test('values that are not objects are left to the schema', () => {
  for (const value of [null, 1, 'text', true, undefined]) assert.equal(findMetadataProblem(value), undefined)
})
