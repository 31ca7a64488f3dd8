import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createMemoryLogger } from '../helpers/app.js'

test('tokens in headers, query strings and claims are redacted from log lines', () => {
  const { logger, lines } = createMemoryLogger()
  const token = 'eyJhbGciOiJIUzI1NiJ9.secret-payload.signature'
  logger.info({ headers: { authorization: `Bearer ${token}`, host: 'x' } }, 'ws.upgrade')
  logger.info({ query: { access_token: token } }, 'ws.upgrade')
  logger.info({ access_token: token, authorization: token }, 'ws.upgrade')
  logger.info({ req: { headers: { authorization: token } } }, 'http.request')
  logger.flush()
  const text = JSON.stringify(lines())
  assert.equal(lines().length, 4)
  assert.doesNotMatch(text, /secret-payload/)
  assert.match(text, /\[redacted\]/)
  assert.match(text, /"host":"x"/)
})
