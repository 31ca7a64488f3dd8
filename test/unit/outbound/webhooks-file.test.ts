import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import type { FacewireError } from '../../../server/errors.js'
import {
  loadWebhooksFile,
  parseWebhooksFile,
  WEBHOOK_DEFAULTS,
} from '../../../server/outbound/webhooks-file.js'
import { tempDataDir } from '../../helpers/temp-dir.js'

const secret = 'whsec_5f0c1d7e9a3b4c2d8e6f1a0b9c8d7e6f'
const endpoint = { id: 'alarm', org: 'acme', url: 'https://alarm.example.com/hooks', secret }

function refusal(action: () => unknown): FacewireError {
  try {
    action()
  } catch (error) {
    return error as FacewireError
  }
  assert.fail('expected ERR_CONFIG_INVALID')
}

test('an endpoint gets the documented defaults for what it does not set', () => {
  const [parsed] = parseWebhooksFile({ endpoints: [endpoint] }, 'webhooks.json')
  assert.deepEqual(parsed, {
    ...endpoint,
    events: ['match', 'unknown'],
    timeoutMs: WEBHOOK_DEFAULTS.timeoutMs,
    maxAttempts: WEBHOOK_DEFAULTS.maxAttempts,
    backoffBaseMs: WEBHOOK_DEFAULTS.backoffBaseMs,
    backoffMaxMs: WEBHOOK_DEFAULTS.backoffMaxMs,
    queueSize: WEBHOOK_DEFAULTS.queueSize,
  })
  const [custom] = parseWebhooksFile(
    { endpoints: [{ ...endpoint, events: ['match'], maxAttempts: 3, queueSize: 10 }] },
    'webhooks.json',
  )
  assert.deepEqual(custom?.events, ['match'])
  assert.equal(custom?.maxAttempts, 3)
})

test('a bad entry is ERR_CONFIG_INVALID naming the variable, the path in the file and the file, never the secret', () => {
  const cases: [unknown, RegExp][] = [
    [{ endpoints: [{ ...endpoint, url: 'ftp://example.com/x' }] }, /endpoints\.0\.url: must be an http/],
    [
      { endpoints: [{ ...endpoint, url: 'https://user:pw@example.com/' }] },
      /endpoints\.0\.url: must not carry credentials/,
    ],
    [
      { endpoints: [endpoint, { ...endpoint, org: 'bad org' }] },
      /endpoints\.1\.org: must be an organization id/,
    ],
    [
      { endpoints: [{ ...endpoint, secret: 'short-secret' }] },
      /endpoints\.0\.secret: must be at least 32 characters/,
    ],
    [
      { endpoints: [{ ...endpoint, events: ['enter'] }] },
      /endpoints\.0\.events\.0: must be "match" or "unknown"/,
    ],
    [
      { endpoints: [{ ...endpoint, timeoutMs: 0 }] },
      /endpoints\.0\.timeoutMs: must be between 100 and 60000/,
    ],
    [{ endpoints: [endpoint, endpoint] }, /endpoints\.1\.id: is used by another endpoint/],
    [{ endpoints: [{ ...endpoint, retries: 3 }] }, /endpoints\.0: Unrecognized key/],
    [{ hooks: [] }, /Unrecognized key|endpoints/],
  ]
  for (const [json, message] of cases) {
    const error = refusal(() => parseWebhooksFile(json, '/etc/facewire/webhooks.json'))
    assert.equal(error.code, 'ERR_CONFIG_INVALID')
    assert.match(error.message, /^invalid configuration: FACEWIRE_WEBHOOKS_FILE: /)
    assert.match(error.message, message)
    assert.match(error.message, /\(in \/etc\/facewire\/webhooks\.json\)$/)
    assert.deepEqual(error.details, { variables: ['FACEWIRE_WEBHOOKS_FILE'] })
    assert.ok(!error.message.includes('short-secret') && !error.message.includes(secret), error.message)
    assert.ok(!error.message.includes(':pw@'), error.message)
  }
})

test('a missing file and a file that is not JSON are refused without quoting the file', (t) => {
  const dir = tempDataDir()
  t.after(() => {
    rmSync(dir, { recursive: true, force: true })
  })
  const missing = refusal(() => loadWebhooksFile(join(dir, 'absent.json')))
  assert.match(missing.message, /FACEWIRE_WEBHOOKS_FILE: cannot read the file \(ENOENT\)/)
  const broken = join(dir, 'broken.json')
  // V8's own message would quote the text around the error: here, the secret.
  writeFileSync(broken, `{"endpoints": [{"secret": "${secret}" "id": "x"}]}`)
  const error = refusal(() => loadWebhooksFile(broken))
  assert.equal(error.code, 'ERR_CONFIG_INVALID')
  assert.match(error.message, /FACEWIRE_WEBHOOKS_FILE: is not valid JSON/)
  assert.ok(!error.message.includes(secret))
  const good = join(dir, 'good.json')
  writeFileSync(good, JSON.stringify({ endpoints: [endpoint] }))
  assert.equal(loadWebhooksFile(good)[0]?.id, 'alarm')
})
