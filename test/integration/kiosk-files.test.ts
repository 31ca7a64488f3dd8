import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { KIOSK_CSP } from '../../server/kiosk.js'
import { startTestApp, tempDataDir } from '../helpers/app.js'
import { httpRequest } from '../helpers/http.js'

/** A kiosk build of three files, listed in files.json the way scripts/build-kiosk.mjs lists them. */
function fakeKioskBuild(): { dir: string; script: string } {
  const dir = tempDataDir()
  mkdirSync(join(dir, 'ort'))
  const script = 'console.log("kiosk");\n'.repeat(200)
  const contents: [string, string, string, boolean][] = [
    ['index.html', 'text/html; charset=utf-8', '<!doctype html><title>kiosk</title>', false],
    ['kiosk.0123abcd.js', 'text/javascript; charset=utf-8', script, true],
    ['ort/runtime.wasm', 'application/wasm', 'not really wasm', false],
  ]
  const files = contents.map(([path, type, body, immutable]) => {
    writeFileSync(join(dir, path), body)
    const sha256 = createHash('sha256').update(body).digest('hex')
    return { path, type, bytes: body.length, gzipBytes: 0, sha256, immutable }
  })
  writeFileSync(join(dir, 'files.json'), JSON.stringify({ files }))
  return { dir, script }
}

test('/kiosk serves the built page and only its listed files, with the CSP, caching headers and gzip', async (t) => {
  const { dir, script } = fakeKioskBuild()
  const { port, stop } = await startTestApp({}, { kioskDir: dir })
  t.after(async () => {
    await stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const page = await httpRequest(port, '/kiosk')
  assert.equal(page.status, 200)
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  assert.equal(page.headers['content-security-policy'], KIOSK_CSP)
  assert.match(KIOSK_CSP, /default-src 'self'/)
  assert.doesNotMatch(KIOSK_CSP, /unsafe-inline|https?:|\*/, 'nothing from another origin, no inline script')
  assert.equal(page.headers['cache-control'], 'no-cache')
  assert.equal(page.headers['x-content-type-options'], 'nosniff')
  assert.equal(page.body, '<!doctype html><title>kiosk</title>')
  assert.equal((await httpRequest(port, '/kiosk/')).body, page.body, '/kiosk/ is the page too')

  const js = await httpRequest(port, '/kiosk/kiosk.0123abcd.js')
  assert.equal(js.status, 200)
  assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable')
  assert.equal(js.body, script)

  const wasm = await httpRequest(port, '/kiosk/ort/runtime.wasm')
  assert.equal(wasm.headers['content-type'], 'application/wasm')

  // gzip when accepted (read raw: the helper decodes as UTF-8)
  const zipped = await new Promise<Buffer>((resolve, reject) => {
    import('node:http')
      .then(({ get }) => {
        get(
          {
            host: '127.0.0.1',
            port,
            path: '/kiosk/kiosk.0123abcd.js',
            headers: { 'accept-encoding': 'gzip' },
            agent: false,
          },
          (res) => {
            assert.equal(res.headers['content-encoding'], 'gzip')
            assert.equal(res.headers['vary'], 'accept-encoding')
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('end', () => {
              resolve(Buffer.concat(chunks))
            })
          },
        ).on('error', reject)
      })
      .catch(reject)
  })
  assert.ok(zipped.length < script.length / 10)
  assert.equal(gunzipSync(zipped).toString('utf8'), script)

  const etag = String(page.headers['etag'])
  const again = await httpRequest(port, '/kiosk', { headers: { 'if-none-match': etag } })
  assert.equal(again.status, 304)
  assert.equal(again.body, '')

  for (const path of [
    '/kiosk/files.json',
    '/kiosk/../package.json',
    '/kiosk/%2e%2e/package.json',
    '/kiosk/nope.js',
  ]) {
    const missing = await httpRequest(port, path)
    assert.equal(missing.status, 404, path)
    assert.equal((JSON.parse(missing.body) as { error: { code: string } }).error.code, 'ERR_NOT_FOUND')
  }
})

test('without a kiosk build, /kiosk answers 404 and the rest of the server works', async (t) => {
  const empty = tempDataDir()
  const { port, stop, lines } = await startTestApp({}, { kioskDir: empty })
  t.after(async () => {
    await stop()
    rmSync(empty, { recursive: true, force: true })
  })
  assert.equal((await httpRequest(port, '/kiosk')).status, 404)
  assert.equal((await httpRequest(port, '/health')).status, 200)
  assert.ok(lines().some((line) => String(line['msg']).startsWith('kiosk.missing')))
})
