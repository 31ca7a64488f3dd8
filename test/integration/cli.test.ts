import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createApiClient } from '../../client/api-client.js'
import type { EnrollSummary } from '../../client/cli/enroll.js'
import { startTestApp, TEST_SECRET } from '../helpers/app.js'
import { runCli } from '../helpers/child.js'
import { encode, facesDir, texturedScene } from '../helpers/images.js'

const faces = facesDir()
const noFaces = faces === undefined ? 'the shared face photos (../shared/faces) are absent' : false

const facewire = runCli

test('facewire token mints a token the server accepts, with the scopes asked for', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const minted = await facewire(['token', '--org', 'acme', '--scope', 'detect enroll', '--ttl', '5m'], {
    FACEWIRE_JWT_SECRET: TEST_SECRET,
  })
  assert.equal(minted.code, 0, minted.stderr)
  const principal = started.app.auth.verify(minted.stdout.trim())
  assert.equal(principal.org, 'acme')
  assert.deepEqual([...principal.scopes].sort(), ['detect', 'enroll'])
  assert.ok(principal.expiresAtMs <= Date.now() + 301_000)

  const noSecret = await facewire(['token', '--org', 'acme'], { NODE_ENV: 'production' })
  assert.equal(noSecret.code, 2)
  assert.match(noSecret.stderr, /FACEWIRE_JWT_SECRET/)
  const badScope = await facewire(['token', '--org', 'acme', '--scope', 'root'], {
    FACEWIRE_JWT_SECRET: TEST_SECRET,
  })
  assert.equal(badScope.code, 2)
  assert.match(badScope.stderr, /unknown scope 'root'/)
})

test('facewire token uses the development secret the server keeps in its data directory', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facewire-cli-'))
  t.after(() => {
    rmSync(dataDir, { recursive: true, force: true })
  })
  const { loadDevSecret } = await import('../../server/dev-secret.js')
  const { secret } = loadDevSecret(dataDir)
  const minted = await facewire(['token', '--org', 'dev'], { FACEWIRE_DATA_DIR: dataDir })
  assert.equal(minted.code, 0, minted.stderr)
  const { createAuthenticator } = await import('../../server/auth.js')
  assert.equal(createAuthenticator({ algorithm: 'HS256', secret }).verify(minted.stdout.trim()).org, 'dev')
})

test(
  'facewire enroll enrolls a folder per person, reports rejected photos with their codes, and reuses identities on a second run',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    const dir = mkdtempSync(join(tmpdir(), 'facewire-enroll-'))
    t.after(async () => {
      await started.stop()
      rmSync(dir, { recursive: true, force: true })
    })
    const examples = join(faces ?? '', 'face_recognition-examples')
    mkdirSync(join(dir, 'Kit Harington'))
    mkdirSync(join(dir, 'Rose Leslie'))
    copyFileSync(join(examples, 'kit_harington', '1.jpeg'), join(dir, 'Kit Harington', 'a.jpg'))
    copyFileSync(join(examples, 'kit_harington', '3.jpg'), join(dir, 'Kit Harington', 'b.jpg'))
    copyFileSync(join(examples, 'rose_leslie', '1.jpg'), join(dir, 'Rose Leslie', 'a.jpg'))
    copyFileSync(join(examples, '_multi_face', 'kit_with_rose.jpg'), join(dir, 'Rose Leslie', 'group.jpg'))
    writeFileSync(join(dir, 'Rose Leslie', 'wall.png'), await encode(texturedScene(200, 150), 'png'))
    writeFileSync(join(dir, 'Rose Leslie', 'notes.txt'), 'not a photo')

    const { testToken } = await import('../helpers/app.js')
    const token = testToken('acme', ['enroll'])
    const server = `http://127.0.0.1:${String(started.port)}`
    const first = await facewire(['enroll', dir, '--server', server, '--json'], { FACEWIRE_TOKEN: token })
    assert.equal(first.code, 0, first.stderr)
    const summary = JSON.parse(first.stdout) as EnrollSummary
    assert.deepEqual(summary.identities, { created: 2, reused: 0 })
    assert.equal(summary.photos, 5)
    assert.equal(summary.enrolled, 3)
    assert.deepEqual(
      summary.rejected.map((r) => [r.file, r.code]),
      [
        [join('Rose Leslie', 'group.jpg'), 'ERR_FACE_MULTIPLE'],
        [join('Rose Leslie', 'wall.png'), 'ERR_FACE_NOT_FOUND'],
      ],
    )
    const api = createApiClient({ baseUrl: server, token })
    const identities = await api.allIdentities()
    assert.deepEqual(identities.map((i) => [i.name, i.faceCount]).sort(), [
      ['Kit Harington', 2],
      ['Rose Leslie', 1],
    ])

    const second = await facewire(['enroll', dir, '--server', server, '--json'], { FACEWIRE_TOKEN: token })
    assert.deepEqual((JSON.parse(second.stdout) as EnrollSummary).identities, { created: 0, reused: 2 })
    assert.equal((await api.allIdentities()).length, 2)

    const refused = await facewire(['enroll', dir, '--server', server], { FACEWIRE_TOKEN: 'nope' })
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /ERR_AUTH_INVALID/)
  },
)
