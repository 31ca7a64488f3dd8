import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { test } from 'node:test'
import jwt from 'jsonwebtoken'
import { createAuthenticator, mintToken, requireScope, tokenFromRequest } from '../../server/auth.js'
import { FacewireError } from '../../server/errors.js'
import { parseScopes, parseTtl } from '../../server/cli/token.js'

const secret = 'unit-test-secret-that-is-long-enough-000'

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof FacewireError, String(error))
    return error.code
  }
  return 'no error'
}

test('a minted token verifies to its organization, subject, scopes and expiry', () => {
  const auth = createAuthenticator({ algorithm: 'HS256', secret })
  const before = Date.now()
  const token = mintToken({
    org: 'acme',
    scopes: ['detect', 'watch'],
    sub: 'gate-1',
    ttlSeconds: 60,
    key: secret,
  })
  const principal = auth.verify(token)
  assert.equal(principal.org, 'acme')
  assert.equal(principal.sub, 'gate-1')
  assert.deepEqual([...principal.scopes].sort(), ['detect', 'watch'])
  assert.ok(principal.expiresAtMs >= before + 58_000 && principal.expiresAtMs <= Date.now() + 61_000)
})

test('forged, expired, unsigned, wrongly-typed and org-less tokens are refused with their codes', () => {
  const auth = createAuthenticator({ algorithm: 'HS256', secret })
  const sign = (payload: object, options: jwt.SignOptions = { expiresIn: 60 }, key = secret) =>
    jwt.sign(payload, key, options)
  assert.equal(
    codeOf(() => auth.verify('garbage')),
    'ERR_AUTH_INVALID',
  )
  assert.equal(
    codeOf(() => auth.verify(sign({ org: 'a', scope: 'detect' }, {}, 'x'.repeat(40)))),
    'ERR_AUTH_INVALID',
  )
  assert.equal(
    codeOf(() =>
      auth.verify(sign({ org: 'a', scope: 'detect', exp: Math.floor(Date.now() / 1000) - 5 }, {})),
    ),
    'ERR_AUTH_EXPIRED',
  )
  assert.equal(
    codeOf(() =>
      auth.verify(jwt.sign({ org: 'a', scope: 'admin' }, '', { algorithm: 'none', expiresIn: 60 })),
    ),
    'ERR_AUTH_INVALID',
  )
  assert.equal(
    codeOf(() => auth.verify(sign({ scope: 'detect' }))),
    'ERR_AUTH_INVALID',
  )
  assert.equal(
    codeOf(() => auth.verify(sign({ org: '../etc', scope: 'detect' }))),
    'ERR_AUTH_INVALID',
  )
  assert.equal(
    codeOf(() => auth.verify(sign({ org: 'a', scope: 'detect' }, {}))),
    'ERR_AUTH_INVALID',
    'no exp',
  )
  assert.equal(
    codeOf(() => auth.verify(sign({ org: 'a', scope: 7 }))),
    'ERR_AUTH_INVALID',
  )
  // HS256 signed with the public key of an RS256 setup (algorithm confusion) is refused.
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const rs = createAuthenticator({ algorithm: 'RS256', publicKey: pem })
  assert.equal(
    codeOf(() => rs.verify(sign({ org: 'a', scope: 'detect' }, { expiresIn: 60 }, pem))),
    'ERR_AUTH_INVALID',
  )
})

test('a token is refused with ERR_AUTH_EXPIRED from the second its exp names, with no leeway', () => {
  const exp = 1_700_000_000
  const token = jwt.sign({ org: 'acme', scope: 'detect', exp }, secret)
  const at = (ms: number) => createAuthenticator({ algorithm: 'HS256', secret, now: () => ms })
  assert.equal(at(exp * 1000 - 1).verify(token).expiresAtMs, exp * 1000)
  assert.equal(
    codeOf(() => at(exp * 1000).verify(token)),
    'ERR_AUTH_EXPIRED',
  )
  // Accepted until exp + 5 s before.
  assert.equal(
    codeOf(() => at(exp * 1000 + 4_000).verify(token)),
    'ERR_AUTH_EXPIRED',
  )
  // On the real clock, one second after exp.
  const auth = createAuthenticator({ algorithm: 'HS256', secret })
  const justExpired = jwt.sign(
    { org: 'acme', scope: 'detect', exp: Math.floor(Date.now() / 1000) - 1 },
    secret,
  )
  assert.equal(
    codeOf(() => auth.verify(justExpired)),
    'ERR_AUTH_EXPIRED',
  )
})

test('a token before its nbf is refused as not valid yet, naming when it becomes valid', () => {
  const nbf = 1_700_000_000
  const token = jwt.sign({ org: 'acme', scope: 'detect', nbf, exp: nbf + 60 }, secret)
  const at = (ms: number) => createAuthenticator({ algorithm: 'HS256', secret, now: () => ms })
  try {
    at(nbf * 1000 - 1).verify(token)
    assert.fail('expected the early token to be refused')
  } catch (error) {
    assert.ok(error instanceof FacewireError)
    assert.equal(error.code, 'ERR_AUTH_INVALID')
    assert.equal(error.message, 'the token is not valid before 2023-11-14T22:13:20.000Z (nbf)')
    assert.deepEqual(error.details, { notBefore: '2023-11-14T22:13:20.000Z' })
  }
  assert.equal(at(nbf * 1000).verify(token).org, 'acme')
})

test('org ids are 1-128 letters, digits, dots, underscores and dashes starting with a letter or digit', () => {
  const auth = createAuthenticator({ algorithm: 'HS256', secret })
  const sign = (org: string) => jwt.sign({ org, scope: 'detect' }, secret, { expiresIn: 60 })
  for (const org of ['0', 'a..b', 'a_', 'Acme.eu-west_2', `a${'b'.repeat(127)}`]) {
    assert.equal(auth.verify(sign(org)).org, org)
  }
  for (const org of ['..', '.', '_', '-a', '.hidden', 'a/b', 'a b', '', `a${'b'.repeat(128)}`]) {
    assert.equal(
      codeOf(() => auth.verify(sign(org))),
      'ERR_AUTH_INVALID',
      org,
    )
    assert.equal(
      codeOf(() => mintToken({ org, scopes: ['detect'], ttlSeconds: 60, key: secret })),
      'ERR_REQUEST_INVALID',
      org,
    )
  }
})

test('RS256 tokens verify with the configured public key only', () => {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicKey = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const auth = createAuthenticator({ algorithm: 'RS256', publicKey })
  const key = (k: typeof pair.privateKey) => k.export({ type: 'pkcs8', format: 'pem' }).toString()
  const good = mintToken({
    org: 'acme',
    scopes: ['detect'],
    ttlSeconds: 60,
    algorithm: 'RS256',
    key: key(pair.privateKey),
  })
  assert.equal(auth.verify(good).org, 'acme')
  const bad = mintToken({
    org: 'acme',
    scopes: ['detect'],
    ttlSeconds: 60,
    algorithm: 'RS256',
    key: key(other.privateKey),
  })
  assert.equal(
    codeOf(() => auth.verify(bad)),
    'ERR_AUTH_INVALID',
  )
})

test('the token is read from Authorization: Bearer or access_token, never both; a non-Bearer header is refused', () => {
  const query = new URLSearchParams('access_token=from-query')
  assert.equal(
    tokenFromRequest({ authorization: 'Bearer from-header' }, new URLSearchParams()),
    'from-header',
  )
  assert.equal(
    tokenFromRequest({ authorization: 'Bearer from-header' }, new URLSearchParams('access_token=')),
    'from-header',
  )
  assert.equal(tokenFromRequest({ authorization: '' }, query), 'from-query')
  assert.equal(tokenFromRequest({}, query), 'from-query')
  assert.equal(
    codeOf(() => tokenFromRequest({ authorization: 'Bearer from-header' }, query)),
    'ERR_AUTH_INVALID',
  )
  assert.equal(tokenFromRequest({}, new URLSearchParams()), undefined)
  assert.equal(
    codeOf(() => tokenFromRequest({ authorization: 'Basic abc' }, query)),
    'ERR_AUTH_INVALID',
  )
  const auth = createAuthenticator({ algorithm: 'HS256', secret })
  assert.equal(
    codeOf(() => auth.authenticate({}, new URLSearchParams())),
    'ERR_AUTH_MISSING',
  )
})

test('a route scope is required unless the token holds admin', () => {
  const principal = (scopes: string[]) =>
    ({ org: 'a', sub: 's', scopes: new Set(scopes), expiresAtMs: 0 }) as Parameters<typeof requireScope>[0]
  assert.equal(
    codeOf(() => {
      requireScope(principal(['detect']), 'enroll')
    }),
    'ERR_AUTH_SCOPE',
  )
  assert.equal(
    codeOf(() => {
      requireScope(principal(['enroll']), 'enroll')
    }),
    'no error',
  )
  assert.equal(
    codeOf(() => {
      requireScope(principal(['admin']), 'watch')
    }),
    'no error',
  )
})

test('the CLI parses lifetimes and scopes and names what is wrong', () => {
  assert.equal(parseTtl('30s'), 30)
  assert.equal(parseTtl('15m'), 900)
  assert.equal(parseTtl('1h'), 3600)
  assert.equal(parseTtl('7d'), 604_800)
  assert.equal(parseTtl('90'), 90)
  assert.throws(() => parseTtl('1y'), /--ttl/)
  assert.throws(() => parseTtl('0s'), /--ttl/)
  assert.deepEqual(parseScopes('detect enroll'), ['detect', 'enroll'])
  assert.throws(() => parseScopes('detect root'), /unknown scope 'root'/)
})
