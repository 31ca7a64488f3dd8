import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { CONFIG_VARIABLES } from '../../server/config.js'

const root = new URL('../../../', import.meta.url)

test('docs/configuration.md and .env.example name every configuration variable', async () => {
  const docs = await readFile(new URL('docs/configuration.md', root), 'utf8')
  const example = await readFile(new URL('.env.example', root), 'utf8')
  for (const name of CONFIG_VARIABLES) {
    assert.match(docs, new RegExp(`^\\|\\s*\`${name}\`\\s*\\|`, 'm'), `${name} in docs/configuration.md`)
    assert.match(example, new RegExp(`^# ${name}=`, 'm'), `${name} in .env.example`)
  }
  const documented = [...docs.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1])
  assert.deepEqual(documented.sort(), [...CONFIG_VARIABLES].sort(), 'no stale variables in the docs')
})
