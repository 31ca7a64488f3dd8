import assert from 'node:assert/strict'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { prepareDataDir } from '../../server/data-dir.js'
import { FacewireError } from '../../server/errors.js'
import { tempDataDir } from '../helpers/temp-dir.js'

test('a missing data directory is created, private, with nothing left behind by the write check', () => {
  const dir = join(tempDataDir(), 'a', 'b')
  prepareDataDir(dir)
  assert.equal(statSync(dir).mode & 0o777, 0o700)
  assert.deepEqual(readdirSync(dir), [])
  prepareDataDir(dir) // an existing folder is fine
})

test('a file where the folder should be, or above it, is ERR_CONFIG_INVALID naming FACEWIRE_DATA_DIR and the file', () => {
  const file = join(tempDataDir(), 'file')
  writeFileSync(file, '')
  for (const [dir, message] of [
    [file, `${file}: it is a file, not a folder`],
    [join(file, 'x', 'y'), `${file} is a file, not a folder`],
  ] as const) {
    assert.throws(
      () => {
        prepareDataDir(dir)
      },
      (error: unknown) =>
        error instanceof FacewireError &&
        error.code === 'ERR_CONFIG_INVALID' &&
        error.message.startsWith('invalid configuration: FACEWIRE_DATA_DIR: ') &&
        error.message.endsWith(message),
    )
  }
})
