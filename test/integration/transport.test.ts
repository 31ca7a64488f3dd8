import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseConfig } from '../../server/config.js'
import { FacewireError } from '../../server/errors.js'
import { createTransport, jsonReply } from '../../server/transport/index.js'
import { loadNativeEngine } from '../../server/transport/native-engine.js'
import { createMemoryLogger } from '../helpers/app.js'
import { httpRequest } from '../helpers/http.js'

test('a platform without a native uWS binary is refused with ERR_TRANSPORT_NATIVE_MISSING', () => {
  assert.throws(
    () => loadNativeEngine('plan9', 'mips', '1'),
    (error: unknown) =>
      error instanceof FacewireError &&
      error.code === 'ERR_TRANSPORT_NATIVE_MISSING' &&
      /uws_plan9_mips_1\.node/.test(error.message),
  )
})

test('the engine on this machine is the native binary', () => {
  const { engine, uws } = loadNativeEngine()
  assert.equal(engine.native, true)
  assert.match(engine.binary, /^uws_linux_x64_\d+\.node$/)
  assert.equal(typeof uws.App, 'function')
})

test('shutdown finishes an in-flight request before draining', async () => {
  const { logger } = createMemoryLogger()
  let release: () => void = () => undefined
  let markStarted: () => void = () => undefined
  const started = new Promise<void>((resolve) => (markStarted = resolve))
  const transport = createTransport({
    logger,
    maxBodyBytes: 1024,
    routes: [
      {
        method: 'GET',
        pattern: '/slow',
        handler: () =>
          new Promise((resolve) => {
            release = () => {
              resolve(jsonReply(200, { finished: true }))
            }
            markStarted()
          }),
      },
    ],
  })
  const port = await transport.listen('127.0.0.1', 0)
  const response = httpRequest(port, '/slow')
  await started
  transport.stopAccepting()
  assert.equal(transport.inFlight, 1)
  let drained = false
  const draining = transport.drain().then(() => (drained = true))
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(drained, false, 'drain waits for the in-flight request')
  await assert.rejects(httpRequest(port, '/slow'), /ECONNREFUSED/, 'no new connections once stopped')
  release()
  const answered = await response
  assert.equal(answered.status, 200)
  assert.deepEqual(JSON.parse(answered.body), { finished: true })
  await draining
  assert.equal(transport.inFlight, 0)
})

test('bodies over the bound are answered 413 ERR_BODY_TOO_LARGE and the server keeps serving', async (t) => {
  const { logger } = createMemoryLogger()
  const transport = createTransport({
    logger,
    maxBodyBytes: 1024,
    routes: [
      {
        method: 'POST',
        pattern: '/echo/:name',
        handler: (request) => jsonReply(200, { name: request.params[0], bytes: request.body?.byteLength }),
      },
    ],
  })
  const port = await transport.listen('127.0.0.1', 0)
  t.after(() => {
    transport.stopAccepting()
  })
  const big = await httpRequest(port, '/echo/a', { method: 'POST', body: new Uint8Array(4096) })
  assert.equal(big.status, 413)
  assert.equal((JSON.parse(big.body) as { error: { code: string } }).error.code, 'ERR_BODY_TOO_LARGE')
  const small = await httpRequest(port, '/echo/b%20c', { method: 'POST', body: new Uint8Array(1000) })
  assert.equal(small.status, 200)
  assert.deepEqual(JSON.parse(small.body), { name: 'b c', bytes: 1000 })
})

test('a handler that throws an unknown error answers 500 ERR_INTERNAL without its message', async (t) => {
  const { logger, lines } = createMemoryLogger()
  const transport = createTransport({
    logger,
    maxBodyBytes: 1024,
    routes: [{ method: 'GET', pattern: '/boom', handler: () => Promise.reject(new Error('secret detail')) }],
  })
  const port = await transport.listen('127.0.0.1', 0)
  t.after(() => {
    transport.stopAccepting()
  })
  const response = await httpRequest(port, '/boom')
  assert.equal(response.status, 500)
  assert.doesNotMatch(response.body, /secret detail/)
  assert.equal((JSON.parse(response.body) as { error: { code: string } }).error.code, 'ERR_INTERNAL')
  assert.ok(lines().some((line) => line['msg'] === 'http.failed'))
})

test('requests carry the forwarded client address only when the peer is a trusted proxy', async (t) => {
  const { logger } = createMemoryLogger()
  const start = async (trustedProxies: string | undefined) => {
    const transport = createTransport({
      logger,
      maxBodyBytes: 1024,
      trustedProxies: parseConfig({ FACEWIRE_TRUSTED_PROXIES: trustedProxies }).trustedProxies,
      routes: [
        { method: 'GET', pattern: '/ip', handler: (request) => jsonReply(200, { ip: request.clientIp }) },
      ],
    })
    const port = await transport.listen('127.0.0.1', 0)
    t.after(() => {
      transport.stopAccepting()
    })
    return async (headers: Record<string, string>) =>
      (JSON.parse((await httpRequest(port, '/ip', { headers })).body) as { ip: string }).ip
  }
  const direct = await start(undefined)
  assert.equal(await direct({}), '127.0.0.1')
  assert.equal(await direct({ 'x-forwarded-for': '203.0.113.7' }), '127.0.0.1')
  const proxied = await start('127.0.0.1')
  assert.equal(await proxied({ 'x-forwarded-for': '198.51.100.1, 203.0.113.7' }), '203.0.113.7')
  assert.equal(await proxied({ 'x-real-ip': '203.0.113.8' }), '203.0.113.8')
  assert.equal(await proxied({}), '127.0.0.1')
})
