import assert from 'node:assert/strict'
import { test } from 'node:test'
import { hasScope, isExpired, msUntilExpiry, readTokenClaims } from '../../../client/kiosk/token.js'

const jwt = (payload: unknown): string =>
  ['{"alg":"HS256","typ":"JWT"}', JSON.stringify(payload)]
    .map((part) => Buffer.from(part).toString('base64url'))
    .concat('c2lnbmF0dXJl')
    .join('.')

test('reads exp, scope and org from the payload without verifying it', () => {
  const claims = readTokenClaims(jwt({ org: 'acme', scope: 'detect  enroll', exp: 1_800_000_000, sub: 'x' }))
  assert.deepEqual(claims, { expiresAtMs: 1_800_000_000_000, scopes: ['detect', 'enroll'], org: 'acme' })
})

test('decodes base64url payloads with UTF-8 and without padding', () => {
  const claims = readTokenClaims(jwt({ org: 'café-ü?>', scope: 'detect', exp: 1 }))
  assert.equal(claims?.org, 'café-ü?>')
})

test('anything that is not a compact JWT with a JSON object payload reads as undefined', () => {
  for (const token of [
    '',
    'abc',
    'a.b',
    'a.b.c.d',
    'x.!!!.y',
    `x.${Buffer.from('[1]').toString('base64url')}.y`,
  ]) {
    assert.equal(readTokenClaims(token), undefined, token)
  }
  assert.equal(readTokenClaims(`x.${Buffer.from('not json').toString('base64url')}.y`), undefined)
})

test('a token is expired at its exp, and one without exp counts as expired', () => {
  const claims = readTokenClaims(jwt({ scope: 'detect', exp: 100 }))
  assert.ok(claims)
  assert.equal(isExpired(claims, 99_999), false)
  assert.equal(isExpired(claims, 100_000), true)
  assert.equal(msUntilExpiry(claims, 40_000), 60_000)
  const noExp = readTokenClaims(jwt({ scope: 'detect' }))
  assert.ok(noExp)
  assert.equal(isExpired(noExp, 0), true)
})

test('admin implies every scope; a missing scope claim grants none', () => {
  const admin = readTokenClaims(jwt({ scope: 'admin', exp: 1 }))
  assert.ok(admin)
  assert.equal(hasScope(admin, 'enroll'), true)
  const detect = readTokenClaims(jwt({ scope: 'detect', exp: 1 }))
  assert.ok(detect)
  assert.equal(hasScope(detect, 'enroll'), false)
  const none = readTokenClaims(jwt({ exp: 1 }))
  assert.deepEqual(none?.scopes, [])
})
