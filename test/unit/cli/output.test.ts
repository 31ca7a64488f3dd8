import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatRecord, formatTable, outputMode } from '../../../client/cli/output.js'

test('a table on a terminal and JSON in a pipe, unless --json or --table says otherwise', () => {
  assert.equal(outputMode({}, true), 'table')
  assert.equal(outputMode({}, false), 'json')
  assert.equal(outputMode({ json: true }, true), 'json')
  assert.equal(outputMode({ table: true }, false), 'table')
})

test('table columns are as wide as their widest cell, null shown as a dash, no trailing blanks', () => {
  const rows = [
    { id: 'a', name: 'Ada Lovelace', faces: 2, external: null },
    { id: 'bbbb', name: 'Grace', faces: 10, external: 'emp-7' },
  ]
  const text = formatTable(
    [
      { header: 'id', value: (row: (typeof rows)[number]) => row.id },
      { header: 'name', value: (row: (typeof rows)[number]) => row.name },
      { header: 'faces', value: (row: (typeof rows)[number]) => row.faces },
      { header: 'external id', value: (row: (typeof rows)[number]) => row.external },
    ],
    rows,
  )
  assert.equal(
    text,
    [
      'ID    NAME          FACES  EXTERNAL ID',
      'a     Ada Lovelace  2      -',
      'bbbb  Grace         10     emp-7',
    ].join('\n'),
  )
  assert.equal(
    formatRecord([
      ['id', 'x'],
      ['external id', null],
    ]),
    'id:          x\nexternal id: -',
  )
})
