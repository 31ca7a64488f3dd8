/** docs/integrations.md against what the server really signs, defaults to and publishes. */
import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { test } from 'node:test'
import { DEFAULT_MQTT_QUEUE, parseConfig } from '../../server/config.js'
import { toSignatureHeader } from '../../server/outbound/signature.js'
import { cameraLevel, eventTopic, NO_CAMERA_LEVEL } from '../../server/outbound/topics.js'
import { WEBHOOK_DEFAULTS } from '../../server/outbound/webhooks-file.js'
import { tempDataDir } from '../helpers/temp-dir.js'

const doc = readFile(new URL('../../../docs/integrations.md', import.meta.url), 'utf8')

test("the receiver's verification snippet accepts what the server signs, and refuses a changed body or an old timestamp", async (t) => {
  const js = /```js\n([\s\S]*?)```/.exec(await doc)?.[1] ?? ''
  const source = /function verified\(header, body\) \{[\s\S]*?\n\}/.exec(js)?.[0]
  assert.ok(source !== undefined, 'a verified(header, body) function in the first js block')
  const secret = 'whsec_docs_0123456789abcdef0123456789abcdef'
  // The snippet as a receiver would paste it, with its imports and its secret.
  const dir = tempDataDir('facewire-docs-')
  t.after(() => {
    rmSync(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'receiver.mjs')
  writeFileSync(
    file,
    `import { createHmac, timingSafeEqual } from 'node:crypto'\nconst secret = ${JSON.stringify(secret)}\nexport ${source}\n`,
  )
  const { verified } = (await import(pathToFileURL(file).href)) as {
    verified: (header: string | undefined, body: string) => boolean
  }
  const body = '{"id":"3f1d","org":"acme","type":"match"}'
  const now = Math.floor(Date.now() / 1000)
  assert.equal(verified(toSignatureHeader(secret, now, body), body), true)
  assert.equal(verified(toSignatureHeader(secret, now, body), body.replace('acme', 'acmf')), false)
  assert.equal(verified(toSignatureHeader(secret, now - 3600, body), body), false)
  assert.equal(verified(toSignatureHeader(secret + 'x', now, body), body), false)
  assert.equal(verified(undefined, body), false)
})

test('the endpoint defaults and the MQTT queue default in the docs are the ones the server uses', async () => {
  const text = await doc
  const row = (field: string) => new RegExp(`^\\| \`${field}\`\\s*\\| \`([^\`]+)\``, 'm').exec(text)?.[1]
  assert.equal(row('events'), JSON.stringify(WEBHOOK_DEFAULTS.events).replace(',', ', '))
  for (const field of ['timeoutMs', 'maxAttempts', 'backoffBaseMs', 'backoffMaxMs', 'queueSize'] as const) {
    assert.equal(row(field), String(WEBHOOK_DEFAULTS[field]), field)
  }
  assert.match(text, new RegExp(`\`FACEWIRE_MQTT_QUEUE\` \\(default ${String(DEFAULT_MQTT_QUEUE)}\\)`))
  assert.equal(
    parseConfig({ FACEWIRE_MQTT_URL: 'mqtt://b', FACEWIRE_MQTT_ORGS: 'a' }).outbound.mqtt?.queueSize,
    DEFAULT_MQTT_QUEUE,
  )
})

test('the topics the docs name are the ones the server publishes on', async () => {
  const text = await doc
  for (const [camera, topic] of [
    ['front-door', 'facewire/acme/front-door/match'],
    [null, `facewire/acme/${NO_CAMERA_LEVEL}/match`],
  ] as const) {
    assert.equal(eventTopic('facewire', 'acme', camera, 'match'), topic)
    assert.ok(text.includes(topic), `${topic} in docs/integrations.md`)
  }
  assert.equal(cameraLevel('garage/left'), 'garage_left')
  assert.ok(text.includes('(`garage/left` -> `garage_left`)'))
})
