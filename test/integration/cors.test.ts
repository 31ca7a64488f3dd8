/**
 * CORS for the REST API: preflights and actual requests over real HTTP, then a real headless
 * Chromium on another origin calling the API (allowed) and a page on a third origin refused.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import type { IdentityBody, ListResponse } from '../../protocol/wire.js'
import { launchHeadlessChromium } from '../helpers/browser.js'
import { startTestApp, testToken } from '../helpers/app.js'
import { httpRequest } from '../helpers/http.js'

const ALLOWED = 'https://app.example.com'
const OTHER = 'https://evil.example.com'

function preflight(
  port: number,
  path: string,
  origin: string,
  method = 'POST',
  requestHeaders = 'authorization,content-type',
) {
  return httpRequest(port, path, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': requestHeaders,
    },
  })
}

function codeAndReason(body: string): [string, unknown] {
  const { error } = JSON.parse(body) as { error: { code: string; details?: { reason?: unknown } } }
  return [error.code, error.details?.reason]
}

test('a preflight from an allowed origin is answered 204 with that origin, the methods, the headers and a max-age', async (t) => {
  const started = await startTestApp({ FACEWIRE_CORS_ORIGINS: `${ALLOWED},http://localhost:3000` })
  t.after(() => started.stop())
  for (const path of [
    '/api/v1/identities',
    '/api/v1/identities/2b1d7d5e-0000-4000-8000-000000000000/faces',
  ]) {
    const answer = await preflight(started.port, path, ALLOWED)
    assert.equal(answer.status, 204, path)
    assert.equal(answer.headers['access-control-allow-origin'], ALLOWED)
    assert.equal(answer.headers['access-control-allow-methods'], 'GET, POST, PATCH, DELETE')
    assert.equal(answer.headers['access-control-allow-headers'], 'Authorization, Content-Type')
    assert.equal(answer.headers['access-control-max-age'], '600')
    assert.match(String(answer.headers.vary), /\bOrigin\b/)
    assert.equal(answer.headers['access-control-allow-credentials'], undefined, 'bearer tokens, no cookies')
    assert.equal(answer.body, '')
  }
  const second = await preflight(started.port, '/api/v1/recognize', 'http://localhost:3000', 'DELETE')
  assert.equal(second.headers['access-control-allow-origin'], 'http://localhost:3000', 'each origin echoed')
})

test('a preflight from an origin not in the list, or for another method or header, is refused 403 without CORS headers', async (t) => {
  const started = await startTestApp({ FACEWIRE_CORS_ORIGINS: ALLOWED })
  t.after(() => started.stop())
  const refusals: [string, string, string, unknown][] = [
    [OTHER, 'POST', 'authorization', 'origin'],
    [`${ALLOWED}:8443`, 'GET', 'authorization', 'origin'],
    [ALLOWED, 'PUT', 'authorization', 'method'],
    [ALLOWED, 'POST', 'authorization,x-api-key', 'headers'],
  ]
  for (const [origin, method, headers, reason] of refusals) {
    const answer = await preflight(started.port, '/api/v1/identities', origin, method, headers)
    assert.equal(answer.status, 403, `${origin} ${method} ${headers}`)
    assert.deepEqual(codeAndReason(answer.body), ['ERR_CORS_REFUSED', reason])
    assert.equal(answer.headers['access-control-allow-origin'], undefined)
    assert.equal(answer.headers['access-control-allow-methods'], undefined)
    assert.match(String(answer.headers.vary), /\bOrigin\b/)
  }
  // An OPTIONS request that is no preflight is one more method the route does not take.
  const plain = await httpRequest(started.port, '/api/v1/identities', { method: 'OPTIONS' })
  assert.equal(plain.status, 405)
  // Outside the API nothing is cross-origin.
  const health = await preflight(started.port, '/health', ALLOWED, 'GET')
  assert.equal(health.status, 405)
  assert.equal(health.headers['access-control-allow-origin'], undefined)
})

test('without FACEWIRE_CORS_ORIGINS every preflight is refused and no answer carries CORS headers', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const answer = await preflight(started.port, '/api/v1/identities', ALLOWED)
  assert.equal(answer.status, 403)
  assert.deepEqual(codeAndReason(answer.body), ['ERR_CORS_REFUSED', 'origin'])
  const actual = await httpRequest(started.port, '/api/v1/identities', {
    headers: { origin: ALLOWED, authorization: `Bearer ${testToken('acme', ['enroll'])}` },
  })
  assert.equal(actual.status, 200)
  assert.equal(actual.headers['access-control-allow-origin'], undefined)
  assert.equal(actual.headers.vary, undefined)
})

test('actual requests from an allowed origin carry the origin and the exposed headers, errors included; others do not', async (t) => {
  const started = await startTestApp({ FACEWIRE_CORS_ORIGINS: ALLOWED })
  t.after(() => started.stop())
  const token = testToken('acme', ['enroll'])
  const created = await httpRequest(started.port, '/api/v1/identities', {
    method: 'POST',
    headers: { origin: ALLOWED, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Ada' }),
  })
  assert.equal(created.status, 201)
  assert.equal(created.headers['access-control-allow-origin'], ALLOWED)
  assert.equal(created.headers['access-control-expose-headers'], 'Retry-After, Location')
  assert.equal(created.headers.vary, 'Origin')
  assert.ok(created.headers.location !== undefined)

  // An error answer is readable by the page too (its code tells it what to do).
  const refused = await httpRequest(started.port, '/api/v1/identities', { headers: { origin: ALLOWED } })
  assert.equal(refused.status, 401)
  assert.equal(refused.headers['access-control-allow-origin'], ALLOWED)
  const missing = await httpRequest(started.port, '/api/v1/nothing-here', { headers: { origin: ALLOWED } })
  assert.equal(missing.status, 404)
  assert.equal(missing.headers['access-control-allow-origin'], ALLOWED)

  const other = await httpRequest(started.port, '/api/v1/identities', {
    headers: { origin: OTHER, authorization: `Bearer ${token}` },
  })
  assert.equal(other.status, 200, 'the server answers; the browser keeps the answer from the page')
  assert.equal(other.headers['access-control-allow-origin'], undefined)
  assert.equal(other.headers.vary, 'Origin')
  const health = await httpRequest(started.port, '/health', { headers: { origin: ALLOWED } })
  assert.equal(health.headers['access-control-allow-origin'], undefined)
})

/** A page server on its own port: its origin is http://127.0.0.1:<port>. */
async function pageServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title>')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, origin: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}` }
}

interface FetchOutcome {
  ok: boolean
  status?: number
  body?: unknown
  error?: string
}

test('a browser page on an allowed origin calls the API; a page on another origin is refused by its preflight', async (t) => {
  const allowed = await pageServer()
  const other = await pageServer()
  const started = await startTestApp({ FACEWIRE_CORS_ORIGINS: allowed.origin })
  const browser = await launchHeadlessChromium()
  t.after(async () => {
    await browser.close()
    allowed.server.close()
    other.server.close()
    await started.stop()
  })
  const api = `http://127.0.0.1:${String(started.port)}/api/v1`
  const token = testToken('acme', ['enroll'])
  const page = await browser.newPage()
  const call = (init: { method: string; body?: string }) =>
    page.evaluate(
      async ({ url, token: bearer, method, body }): Promise<FetchOutcome> => {
        try {
          const headers: Record<string, string> = { authorization: `Bearer ${bearer}` }
          if (body !== undefined) headers['content-type'] = 'application/json'
          const response = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) })
          return { ok: true, status: response.status, body: await response.json() }
        } catch (error) {
          return { ok: false, error: String(error) }
        }
      },
      { url: `${api}/identities`, token, method: init.method, body: init.body },
    )

  await page.goto(allowed.origin)
  const created = await call({ method: 'POST', body: JSON.stringify({ name: 'From the browser' }) })
  assert.equal(created.ok, true, created.error)
  assert.equal(created.status, 201)
  const listed = await call({ method: 'GET' })
  assert.equal(listed.status, 200)
  assert.deepEqual(
    (listed.body as ListResponse<IdentityBody>).items.map((identity) => identity.name),
    ['From the browser'],
  )

  await page.goto(other.origin)
  const refused = await call({ method: 'POST', body: JSON.stringify({ name: 'Not allowed' }) })
  assert.equal(refused.ok, false)
  assert.match(String(refused.error), /TypeError: Failed to fetch/)
  const stillOne = await httpRequest(started.port, '/api/v1/identities', {
    headers: { authorization: `Bearer ${token}` },
  })
  assert.equal(
    (JSON.parse(stillOne.body) as ListResponse<IdentityBody>).items.length,
    1,
    'the refused preflight kept the POST from being sent',
  )
})
