import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { FacewireError, toFacewireError, toWireError } from '../../server/errors.js'
import { ERRORS, ERROR_CODES } from '../../protocol/errors.js'
import { createRateLimiter, rateLimited } from '../../server/rate-limit.js'
import { errorReply } from '../../server/transport/index.js'

const docsUrl = new URL('../../../docs/errors.md', import.meta.url)

test('docs/errors.md documents exactly the codes in the catalogue, with their statuses', async () => {
  const docs = await readFile(docsUrl, 'utf8')
  const rows = new Map<string, { http: string; close: string }>()
  for (const match of docs.matchAll(/^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|/gm)) {
    rows.set(match[1] ?? '', { http: match[2] ?? '', close: match[3] ?? '' })
  }
  assert.deepEqual([...rows.keys()].sort(), [...ERROR_CODES].sort())
  for (const code of ERROR_CODES) {
    const row = rows.get(code)
    assert.ok(row)
    assert.equal(row.http, String(ERRORS[code].http), `${code} HTTP status in docs`)
    const close = ERRORS[code].close
    assert.equal(row.close, close === null ? '-' : String(close), `${code} close code in docs`)
  }
})

test('every code is upper snake case starting with ERR_', () => {
  for (const code of ERROR_CODES) assert.match(code, /^ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/)
})

test('close codes are valid WebSocket close codes', () => {
  for (const code of ERROR_CODES) {
    const close = ERRORS[code].close
    if (close !== null) assert.ok((close >= 1000 && close <= 1014) || (close >= 4000 && close <= 4999), code)
  }
})

test('unknown errors become ERR_INTERNAL and never show their cause on the wire', () => {
  const secret = new Error('database password is hunter2')
  const error = toFacewireError(secret)
  assert.equal(error.code, 'ERR_INTERNAL')
  assert.equal(error.cause, secret)
  const wire = JSON.stringify(toWireError(error))
  assert.doesNotMatch(wire, /hunter2/)
  assert.equal(error.http, 500)
})

test('a catalogue error keeps its code, status and close code', () => {
  const error = new FacewireError('ERR_BODY_TOO_LARGE')
  assert.equal(toFacewireError(error), error)
  assert.equal(error.http, 413)
  assert.equal(error.close, 1009)
})

test('errorReply: the catalogue status, the wire error as the body, Retry-After only when the error says how long to wait', () => {
  const limited = errorReply(rateLimited(1200))
  assert.equal(limited.status, 429)
  assert.equal(limited.headers?.['retry-after'], '2')
  assert.deepEqual(JSON.parse(String(limited.body)), {
    error: {
      code: 'ERR_RATE_LIMITED',
      message: ERRORS.ERR_RATE_LIMITED.message,
      details: { retryAfterMs: 1200 },
    },
  })
  const notReady = errorReply(new FacewireError('ERR_NOT_READY'), { components: { pipeline: false } })
  assert.equal(notReady.status, 503)
  assert.equal(notReady.headers?.['retry-after'], undefined)
  assert.deepEqual(JSON.parse(String(notReady.body)), {
    error: { code: 'ERR_NOT_READY', message: ERRORS.ERR_NOT_READY.message },
    components: { pipeline: false },
  })
})

test('the rate-limit adapter answers 0 within the limit and the wait in ms beyond it, per key', async () => {
  const limiter = createRateLimiter({ points: 2 })
  assert.equal(await limiter.take('a'), 0)
  assert.equal(await limiter.take('a'), 0)
  const wait = await limiter.take('a')
  assert.ok(wait >= 1 && wait <= 1000, `wait ${String(wait)} ms`)
  assert.equal(await limiter.take('b'), 0)
})
