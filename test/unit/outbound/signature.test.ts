import assert from 'node:assert/strict'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { test } from 'node:test'
import { signWebhook, toSignatureHeader } from '../../../server/outbound/signature.js'

const secret = 'whsec_test_0123456789abcdef0123456789abcdef'
const body = '{"type":"match","id":"7f1c"}'

test('the signature is HMAC-SHA256 of "<timestamp>.<body>" under the secret, in hex', () => {
  // Computed with `printf '%s' '1700000000.<body>' | openssl dgst -sha256 -hmac <secret>`.
  assert.equal(
    signWebhook(secret, 1_700_000_000, body),
    '7f3017c342df003a66c59d7321cc9adedd3add24494c373be30fad426246b1b0',
  )
  const independent = createHmac('sha256', secret).update(`1700000123.${body}`).digest('hex')
  assert.equal(signWebhook(secret, 1_700_000_123, body), independent)
})

test('the header carries the timestamp and the v1 signature, and what a receiver verifies with', () => {
  const header = toSignatureHeader(secret, 1_700_000_000, body)
  assert.equal(header, 't=1700000000,v1=7f3017c342df003a66c59d7321cc9adedd3add24494c373be30fad426246b1b0')
  // The receiver's side, as docs/integrations.md shows it.
  const parts = Object.fromEntries(header.split(',').map((part) => part.split('=') as [string, string]))
  const expected = createHmac('sha256', secret)
    .update(`${parts['t'] ?? ''}.${body}`)
    .digest()
  assert.ok(timingSafeEqual(expected, Buffer.from(parts['v1'] ?? '', 'hex')))
  // Another body, timestamp or secret does not verify.
  assert.notEqual(signWebhook(secret, 1_700_000_000, body + ' '), signWebhook(secret, 1_700_000_000, body))
  assert.notEqual(signWebhook(secret, 1_700_000_001, body), signWebhook(secret, 1_700_000_000, body))
  assert.notEqual(signWebhook(secret + 'x', 1_700_000_000, body), signWebhook(secret, 1_700_000_000, body))
})
