import assert from 'node:assert/strict'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { startMain, type Child } from '../helpers/child.js'
import { httpRequest } from '../helpers/http.js'
import { tempDataDir } from '../helpers/temp-dir.js'

const SECRET = 'a-secret-that-is-long-enough-for-tests-1234'

async function exitCode(server: Child): Promise<number | null> {
  if (server.child.exitCode !== null) return server.child.exitCode
  const [code] = (await once(server.child, 'exit')) as [number | null]
  return code
}

async function listeningPort(server: Child): Promise<number> {
  return Number((await server.waitFor(/^server\.listening$/))['port'])
}

test('the server names the native uWS engine at startup and exits 0 on SIGTERM', async (t) => {
  const server = startMain({ FACEWIRE_JWT_SECRET: 'a-secret-that-is-long-enough-for-tests-1234' })
  t.after(() => server.child.kill('SIGKILL'))
  const engine = await server.waitFor(/^transport\.engine/)
  assert.match(String(engine['msg']), /uWebSockets\.js .*native uws_linux_x64_\d+\.node/)
  assert.equal((engine['engine'] as { native: boolean }).native, true)
  const listening = await server.waitFor(/^server\.listening$/)
  const port = Number(listening['port'])
  assert.equal((await httpRequest(port, '/health')).status, 200)
  const models = await server.waitFor(/^pipeline\.ready$/)
  assert.ok(Array.isArray(models['models']) && models['models'].length >= 3, 'the workers loaded the models')
  assert.equal((await httpRequest(port, '/ready')).status, 200)

  server.child.kill('SIGTERM')
  const [code] = (await once(server.child, 'exit')) as [number | null]
  assert.equal(code, 0)
  const stopped = server.lines.find((line) => line['msg'] === 'server.stopped')
  assert.equal(stopped?.['drained'], true)
})

test('without FACEWIRE_JWT_SECRET in development a secret is generated with a warning that shows no secret', async (t) => {
  const server = startMain({})
  t.after(() => server.child.kill('SIGKILL'))
  const warning = await server.waitFor(/^config\.dev_secret/)
  assert.equal(warning['level'], 40)
  await server.waitFor(/^server\.listening$/)
  server.child.kill('SIGINT')
  const [code] = (await once(server.child, 'exit')) as [number | null]
  assert.equal(code, 0)
})

test('bad config exits non-zero with a message naming the variable', async () => {
  const server = startMain({ PORT: 'http' })
  const [code] = (await once(server.child, 'exit')) as [number | null]
  assert.equal(code, 78)
  assert.match(server.stderr(), /PORT: must be a number/)
})

test('production without FACEWIRE_JWT_SECRET refuses to start', async () => {
  const server = startMain({ NODE_ENV: 'production' })
  const [code] = (await once(server.child, 'exit')) as [number | null]
  assert.equal(code, 78)
  assert.match(server.stderr(), /FACEWIRE_JWT_SECRET: required when NODE_ENV=production/)
  assert.equal(
    server.lines.some((line) => line['msg'] === 'server.listening'),
    false,
  )
})

test('a models folder that cannot be loaded stops the server with exit 1 and ERR_MODEL_INVALID', async () => {
  const server = startMain({
    FACEWIRE_JWT_SECRET: 'a-secret-that-is-long-enough-for-tests-1234',
    FACEWIRE_MODELS_DIR: '/nonexistent-models-dir',
  })
  const [code] = (await once(server.child, 'exit')) as [number | null]
  assert.equal(code, 1)
  // The pipeline and the gallery both read the manifest; whichever fails first stops the server.
  const failed = server.lines.find(
    (line) => line['msg'] === 'pipeline.failed' || line['msg'] === 'gallery.failed',
  )
  assert.ok(failed, 'pipeline.failed or gallery.failed is logged')
  assert.match(JSON.stringify(failed), /ERR_MODEL_INVALID/)
})

test('npm start runs the server itself: SIGTERM to the npm process reaches it, it shuts down gracefully and npm exits 0', async (t) => {
  const server = startMain(
    { FACEWIRE_JWT_SECRET: SECRET, HOME: process.env['HOME'], npm_config_update_notifier: 'false' },
    { command: ['npm', 'start'] },
  )
  t.after(() => server.child.kill('SIGKILL'))
  const port = await listeningPort(server)
  assert.equal((await httpRequest(port, '/health')).status, 200)
  server.child.kill('SIGTERM') // the npm process, as a supervisor stopping `npm start` would
  assert.equal(await exitCode(server), 0)
  const stopped = server.lines.find((line) => line['msg'] === 'server.stopped')
  assert.equal(stopped?.['drained'], true, 'the graceful shutdown of the server ran')
  await assert.rejects(httpRequest(port, '/health'), /ECONNREFUSED/, 'nothing is left listening')
})

test('a second server on the port of a running one exits 1 saying the address is in use, and the first keeps serving alone', async (t) => {
  const first = startMain({ FACEWIRE_JWT_SECRET: SECRET })
  t.after(() => first.child.kill('SIGKILL'))
  const port = await listeningPort(first)
  const second = startMain({ FACEWIRE_JWT_SECRET: SECRET, PORT: String(port) })
  t.after(() => second.child.kill('SIGKILL'))
  assert.equal(await exitCode(second), 1)
  const failed = second.lines.find((line) => String(line['msg']).startsWith('server.listen_failed'))
  assert.match(
    String(failed?.['msg']),
    new RegExp(
      `could not listen on 127\\.0\\.0\\.1:${String(port)}: address already in use \\(EADDRINUSE\\)`,
    ),
  )
  assert.ok(!second.lines.some((line) => line['msg'] === 'server.listening'))
  // Alone: with a shared port (SO_REUSEPORT) the kernel would spread these over both processes.
  for (let i = 0; i < 8; i++) assert.equal((await httpRequest(port, '/health')).status, 200)
  assert.equal(first.child.exitCode, null)
})

test('a port held by another program: the server exits 1 and says why it could not listen', async (t) => {
  const holder = createServer()
  holder.listen(0, '127.0.0.1')
  await once(holder, 'listening')
  t.after(() => holder.close())
  const address = holder.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const server = startMain({ FACEWIRE_JWT_SECRET: SECRET, PORT: String(port) })
  t.after(() => server.child.kill('SIGKILL'))
  assert.equal(await exitCode(server), 1)
  const failed = server.lines.find((line) => String(line['msg']).startsWith('server.listen_failed'))
  assert.equal(
    failed?.['msg'],
    `server.listen_failed: could not listen on 127.0.0.1:${String(port)}: address already in use (EADDRINUSE): another process listens on port ${String(port)} (another facewire?)`,
  )
})

test('a data directory that is a file, or under a file, stops the server before it listens: one line naming FACEWIRE_DATA_DIR, exit 78', async () => {
  const parent = tempDataDir()
  const file = join(parent, 'not-a-folder')
  writeFileSync(file, '')
  for (const [dataDir, problem] of [
    [file, `cannot create ${file}: it is a file, not a folder`],
    [join(file, 'data'), `cannot create ${join(file, 'data')}: ${file} is a file, not a folder`],
  ] as const) {
    // Without a secret the development secret would be written there first: both paths are checked.
    for (const secret of [SECRET, undefined]) {
      const server = startMain({ FACEWIRE_JWT_SECRET: secret, FACEWIRE_DATA_DIR: dataDir })
      assert.equal(await exitCode(server), 78)
      assert.equal(server.stderr(), `facewire: invalid configuration: FACEWIRE_DATA_DIR: ${problem}\n`)
      assert.deepEqual(server.lines, [], 'nothing logged: no server.listening')
    }
  }
})

test('an upload aborted mid-body does not hold up shutdown: SIGTERM exits 0 with drained:true', async (t) => {
  const server = startMain({ FACEWIRE_JWT_SECRET: SECRET, FACEWIRE_SHUTDOWN_TIMEOUT_MS: '5000' })
  t.after(() => server.child.kill('SIGKILL'))
  const port = await listeningPort(server)
  const upload = connect(port, '127.0.0.1')
  upload.write(
    'POST /api/v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n' +
      'x'.repeat(1000),
  )
  // The request has reached the server once a later one on another connection is answered.
  assert.equal((await httpRequest(port, '/health')).status, 200)
  upload.destroy()
  await once(upload, 'close')
  assert.equal((await httpRequest(port, '/health')).status, 200)
  server.child.kill('SIGTERM')
  assert.equal(await exitCode(server), 0)
  const stopped = server.lines.find((line) => line['msg'] === 'server.stopped')
  assert.equal(stopped?.['drained'], true)
})
