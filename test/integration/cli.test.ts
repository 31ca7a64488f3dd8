import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { test } from 'node:test'
import { createApiClient } from '../../client/api-client.js'
import type { EnrollSummary } from '../../client/cli/enroll.js'
import { startTestApp, testToken, TEST_SECRET } from '../helpers/app.js'
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

/** A folder per person under a fresh directory: { folder: { file: source path or bytes } }. */
function peopleDir(
  t: { after: (fn: () => void) => void },
  people: Record<string, Record<string, string | Uint8Array>>,
): string {
  const dir = mkdtempSync(join(tmpdir(), 'facewire-enroll-'))
  t.after(() => {
    rmSync(dir, { recursive: true, force: true })
  })
  for (const [folder, files] of Object.entries(people)) {
    mkdirSync(join(dir, folder))
    for (const [name, source] of Object.entries(files)) {
      if (typeof source === 'string') copyFileSync(source, join(dir, folder, name))
      else writeFileSync(join(dir, folder, name), source)
    }
  }
  return dir
}

const example = (path: string): string => join(faces ?? '', 'face_recognition-examples', path)

test(
  'facewire enroll enrolls a folder per person, reports rejected photos with their codes and exit status 1, and a second run skips what is enrolled',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    t.after(() => started.stop())
    const dir = peopleDir(t, {
      'Kit Harington': { 'a.jpg': example('kit_harington/1.jpeg'), 'b.jpg': example('kit_harington/3.jpg') },
      'Rose Leslie': {
        'a.jpg': example('rose_leslie/1.jpg'),
        'group.jpg': example('_multi_face/kit_with_rose.jpg'),
        'wall.png': await encode(texturedScene(200, 150), 'png'),
        'notes.txt': Buffer.from('not a photo'),
      },
    })
    const token = testToken('acme', ['enroll'])
    const server = `http://127.0.0.1:${String(started.port)}`
    const enroll = async (...extra: string[]) => {
      const run = await facewire(['enroll', dir, '--server', server, ...extra], { FACEWIRE_TOKEN: token })
      return {
        ...run,
        summary: extra.includes('--json') ? (JSON.parse(run.stdout) as EnrollSummary) : undefined,
      }
    }
    const first = await enroll('--json')
    assert.equal(first.code, 1, 'a photo was rejected')
    assert.match(first.stderr, /2 of 5 photo\(s\) rejected/)
    assert.deepEqual(first.summary?.identities, { created: 2, reused: 0, renamed: 0 })
    assert.equal(first.summary?.photos, 5)
    assert.equal(first.summary?.enrolled, 3)
    assert.equal(first.summary?.skipped, 0)
    assert.deepEqual(
      first.summary?.rejected.map((r) => [r.file, r.code]),
      [
        [join('Rose Leslie', 'group.jpg'), 'ERR_FACE_MULTIPLE'],
        [join('Rose Leslie', 'wall.png'), 'ERR_FACE_NOT_FOUND'],
      ],
    )
    const api = createApiClient({ baseUrl: server, token })
    const counts = async () =>
      (await api.allIdentities()).map((identity) => [identity.name, identity.faceCount]).sort()
    assert.deepEqual(await counts(), [
      ['Kit Harington', 2],
      ['Rose Leslie', 1],
    ])

    // The same folder again: the same faces, the enrolled photos skipped, the rejected ones tried again.
    const second = await enroll()
    assert.equal(second.code, 1)
    assert.match(second.stdout, /^identities: 0 created, 2 reused, 0 renamed$/m)
    assert.match(second.stdout, /^photos: 5, enrolled 0, skipped 3 \(already enrolled\), rejected 2$/m)
    assert.match(second.stdout, /^ {2}Rose Leslie\/wall\.png: ERR_FACE_NOT_FOUND$/m)
    assert.deepEqual(await counts(), [
      ['Kit Harington', 2],
      ['Rose Leslie', 1],
    ])

    const refused = await facewire(['enroll', dir, '--server', server], { FACEWIRE_TOKEN: 'nope' })
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /ERR_AUTH_INVALID/)
  },
)

test(
  'facewire enroll run twice on one folder leaves the same face count, skips a file it has under another name, and exits 0',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    t.after(() => started.stop())
    const obama = example('barack_obama/1.jpg')
    const dir = peopleDir(t, {
      obama: { '1.jpg': obama, 'copy of 1.jpg': obama, '2.jpg': example('barack_obama/2.jpg') },
      biden: { '1.jpg': example('joe_biden/1.jpg') },
    })
    const token = testToken('acme', ['enroll'])
    const server = `http://127.0.0.1:${String(started.port)}`
    const api = createApiClient({ baseUrl: server, token })
    const faceCount = async () =>
      (await api.allIdentities()).reduce((sum, identity) => sum + identity.faceCount, 0)

    const first = await facewire(['enroll', dir, '--server', server, '--json'], { FACEWIRE_TOKEN: token })
    assert.equal(first.code, 0, first.stderr)
    const summary = JSON.parse(first.stdout) as EnrollSummary
    assert.deepEqual([summary.enrolled, summary.skipped, summary.rejected.length], [3, 1, 0])
    assert.equal(await faceCount(), 3)
    const [obamaIdentity] = (await api.allIdentities()).filter((identity) => identity.externalId === 'obama')
    assert.ok(obamaIdentity !== undefined)
    const hashes = (await api.listFaces(obamaIdentity.id)).items.map((face) => face.sourceSha256)
    assert.ok(hashes.includes(createHash('sha256').update(readFileSync(obama)).digest('hex')))

    const second = await facewire(['enroll', dir, '--server', server], { FACEWIRE_TOKEN: token })
    assert.equal(second.code, 0, second.stderr)
    assert.match(second.stdout, /^photos: 4, enrolled 0, skipped 4 \(already enrolled\), rejected 0$/m)
    assert.equal(await faceCount(), 3, 'the same face count')
    // Skipped by the CLI itself: no photo was sent again (the server would have answered 200).
    const metrics = await (await fetch(`${server}/metrics`)).text()
    const posts = [
      ...metrics.matchAll(
        /^facewire_http_requests_total\{route="\/api\/v1\/identities\/:id\/faces",method="POST",status="(\d+)"\} (\d+)$/gm,
      ),
    ]
    assert.deepEqual(
      posts.map((match) => [match[1], match[2]]),
      [['201', '3']],
    )
  },
)

test(
  'facewire enroll leaves no identity for a folder whose only photo shows no face, and exits 1',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    t.after(() => started.stop())
    const dir = peopleDir(t, {
      'Kit Harington': { '1.jpg': example('kit_harington/1.jpeg') },
      Nobody: { 'wall.png': await encode(texturedScene(200, 150), 'png') },
    })
    const token = testToken('acme', ['enroll'])
    const server = `http://127.0.0.1:${String(started.port)}`
    const run = await facewire(['enroll', dir, '--server', server, '--json'], { FACEWIRE_TOKEN: token })
    assert.equal(run.code, 1)
    const summary = JSON.parse(run.stdout) as EnrollSummary
    assert.deepEqual(summary.notCreated, ['Nobody'])
    assert.deepEqual(summary.identities, { created: 1, reused: 0, renamed: 0 })
    assert.deepEqual(summary.rejectedByCode, { ERR_FACE_NOT_FOUND: 1 })
    const api = createApiClient({ baseUrl: server, token })
    assert.deepEqual(
      (await api.allIdentities()).map((identity) => identity.externalId),
      ['Kit Harington'],
    )
    const text = await facewire(['enroll', dir, '--server', server], { FACEWIRE_TOKEN: token })
    assert.match(text.stdout, /^not created \(no photo accepted\): Nobody$/m)
    assert.equal((await api.allIdentities()).length, 1)
  },
)

test(
  'facewire enroll --name-map names identities, renames them on a later run, and refuses a map that is not one',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    t.after(() => started.stop())
    const dir = peopleDir(t, { 'emp-44': { '1.jpg': example('barack_obama/1.jpg') } })
    const mapFile = join(dir, '..', `${basename(dir)}-names.json`)
    t.after(() => {
      rmSync(mapFile, { force: true })
    })
    const token = testToken('acme', ['enroll'])
    const server = `http://127.0.0.1:${String(started.port)}`
    const api = createApiClient({ baseUrl: server, token })
    const enroll = () =>
      facewire(['enroll', dir, '--server', server, '--name-map', mapFile], { FACEWIRE_TOKEN: token })

    writeFileSync(mapFile, JSON.stringify({ 'emp-44': 'Barack Obama', 'emp-45': 'Nobody here' }))
    assert.equal((await enroll()).code, 0)
    assert.deepEqual(
      (await api.allIdentities()).map((identity) => [identity.name, identity.externalId, identity.faceCount]),
      [['Barack Obama', 'emp-44', 1]],
    )
    writeFileSync(mapFile, JSON.stringify({ 'emp-44': 'President Obama' }))
    const again = await enroll()
    assert.equal(again.code, 0)
    assert.match(again.stdout, /1 reused, 1 renamed/)
    assert.deepEqual(
      (await api.allIdentities()).map((identity) => [identity.name, identity.faceCount]),
      [['President Obama', 1]],
    )
    for (const bad of ['["emp-44"]', '{"emp-44": 7}', 'not json']) {
      writeFileSync(mapFile, bad)
      const refused = await enroll()
      assert.equal(refused.code, 2, bad)
      assert.match(refused.stderr, /--name-map/)
    }
  },
)
