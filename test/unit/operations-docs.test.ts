/** The operator-facing docs against what the server really registers, logs and sends. */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { DATA_TOOL_ERRORS } from '../../server/gallery/data-tool-error.js'
import { createMetrics } from '../../server/metrics.js'
import { buildFaceModels } from '../../server/pipeline/face-models.js'
import { loadManifest } from '../../server/pipeline/manifest.js'
import type { StreamHello } from '../../protocol/wire.js'

const root = new URL('../../../', import.meta.url)
const doc = (name: string) => readFile(new URL(`docs/${name}`, root), 'utf8')

test('docs/operations.md lists every metric the registry holds, and none it does not', async () => {
  const { registry } = createMetrics()
  // Node's default process metrics are documented as a group ("the default process metrics").
  const defaults = /^facewire_(process|nodejs)_/
  const registered = registry
    .getMetricsAsArray()
    .map((metric) => metric.name)
    .filter((name) => !defaults.test(name))
  const row = (await doc('operations.md')).split('\n').find((line) => line.startsWith('| `GET /metrics`'))
  assert.ok(row !== undefined, 'the /metrics row of the endpoint table')
  const documented = [...row.matchAll(/`(facewire_[a-z_]+)/g)].map((match) => match[1])
  assert.deepEqual([...new Set(documented)].sort(), registered.sort())
})

test('every log event docs/configuration.md and docs/operations.md name is one the server logs', async () => {
  const source: string[] = []
  for (const entry of await readdir(new URL('server/', root), { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts')) {
      source.push(await readFile(path.join(entry.parentPath, entry.name), 'utf8'))
    }
  }
  const code = source.join('\n')
  const events = new Set<string>()
  for (const name of ['configuration.md', 'operations.md']) {
    for (const match of (await doc(name)).matchAll(/`([a-z]+\.[a-z_]+)`/g)) {
      const event = match[1] ?? ''
      // File names and prose placeholders, not events.
      if (/\.(db|json|jsonl|md|env|conf)$/.test(event) || event === 'area.verb' || event === 'process.env')
        continue
      events.add(event)
    }
  }
  assert.ok(events.size >= 10, [...events].join(', '))
  for (const event of events) {
    // Logged as the message ('gallery.ready') or its prefix ('gallery.unencrypted: ...', also in a
    // template literal).
    const logged = [`'${event}'`, `'${event}:`, `\`${event}:`].some((form) => code.includes(form))
    assert.ok(logged, `${event} is logged by server/`)
  }
})

test("the hello example of docs/protocol.md lists the models the shipped manifest's pipeline loads, in order", async () => {
  const manifest = await loadManifest(new URL('models/', root).pathname)
  const { ids } = await buildFaceModels(manifest, () => Promise.resolve(() => Promise.resolve({})))
  const example = /### hello[\s\S]*?```json\n([\s\S]*?)```/.exec(await doc('protocol.md'))
  assert.ok(example?.[1] !== undefined, 'a JSON example under "### hello"')
  const hello = JSON.parse(example[1]) as StreamHello
  assert.deepEqual(hello.models, ids)
})

test('docs/operations.md lists every failure code of backup, restore and rotate-key, and none they do not have', async () => {
  const section = /## Backup and restore([\s\S]*?)\n## /.exec(await doc('operations.md'))?.[1] ?? ''
  const documented = [...section.matchAll(/^\| `(ERR_[A-Z_]+)`/gm)].map((match) => match[1])
  assert.deepEqual(documented.sort(), [...DATA_TOOL_ERRORS, 'ERR_CONFIG_INVALID'].sort())
})
