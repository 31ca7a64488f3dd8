import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import jwt from 'jsonwebtoken'
import { ApiError, createApiClient, type ApiClient } from '../../client/api-client.js'
import { startTestApp, testToken, TEST_SECRET, type StartedApp } from '../helpers/app.js'
import { encode, facesDir, gif1x1, texturedScene } from '../helpers/images.js'
import { httpRequest } from '../helpers/http.js'
import type { PolicyResponse } from '../../protocol/wire.js'

const faces = facesDir()
const noFaces = faces === undefined ? 'the shared face photos (../shared/faces) are absent' : false

function photo(path: string): Promise<Buffer> {
  return readFile(join(faces ?? '', 'face_recognition-examples', path))
}

function clientFor(started: StartedApp, org: string, scopes?: Parameters<typeof testToken>[1]): ApiClient {
  return createApiClient({
    baseUrl: `http://127.0.0.1:${String(started.port)}`,
    token: testToken(org, scopes),
  })
}

async function errorOf(promise: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await promise
  } catch (error) {
    if (error instanceof ApiError) return { status: error.status, code: error.code }
    throw error
  }
  assert.fail('expected the request to fail')
}

function bodyCode(response: { body: string }): string {
  return (JSON.parse(response.body) as { error: { code: string } }).error.code
}

test(
  'enroll, recognize and delete: a match for the enrolled person, unknown for a stranger and after deletion',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    t.after(() => started.stop())
    const api = clientFor(started, 'acme')

    const obama = await api.createIdentity({
      name: 'Barack Obama',
      externalId: 'emp-44',
      metadata: { team: 'exec' },
    })
    assert.equal(obama.faceCount, 0)
    const enrolled = await api.addFace(obama.id, await photo('barack_obama/1.jpg'))
    assert.ok(!enrolled.duplicate)
    assert.equal(enrolled.face.identityId, obama.id)
    assert.equal(enrolled.face.stale, false)
    assert.ok(enrolled.detection.quality > 0.5, `quality ${String(enrolled.detection.quality)}`)
    assert.equal((await api.getIdentity(obama.id)).faceCount, 1)

    const same = await api.recognize(await photo('barack_obama/2.jpg'))
    assert.equal(same.faces.length, 1)
    const face = same.faces[0]
    assert.ok(face !== undefined)
    assert.equal(face.decision.status, 'match')
    assert.deepEqual(face.decision.identity, { id: obama.id, name: 'Barack Obama' })
    assert.equal(face.landmarks.length, 5)
    assert.ok(face.box.width > 50 && face.box.x >= 0)
    assert.equal(face.candidates[0]?.identity.id, obama.id)

    const stranger = await api.recognize(await photo('joe_biden/2.jpg'))
    assert.equal(stranger.faces[0]?.decision.status, 'unknown')
    assert.equal(stranger.faces[0]?.decision.identity, undefined)

    // Renaming shows up in decisions at once.
    await api.updateIdentity(obama.id, { name: 'President Obama' })
    const renamed = await api.recognize(await photo('barack_obama/3.jpg'))
    const obamaFace = renamed.faces.find((f) => f.decision.status === 'match')
    assert.equal(obamaFace?.decision.identity?.name, 'President Obama')

    await api.deleteIdentity(obama.id)
    assert.equal((await errorOf(api.getIdentity(obama.id))).status, 404)
    const after = await api.recognize(await photo('barack_obama/2.jpg'))
    assert.equal(
      after.faces[0]?.decision.status,
      'unknown',
      'a deleted identity is gone from the index at once',
    )
    assert.deepEqual(after.faces[0]?.candidates, [])
  },
)

test(
  'another organization cannot list, read, change, enroll into, delete or recognize against org A',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    t.after(() => started.stop())
    const a = clientFor(started, 'org-a')
    const b = clientFor(started, 'org-b')
    const identity = await a.createIdentity({ name: 'Barack Obama' })
    const { face } = await a.addFace(identity.id, await photo('barack_obama/1.jpg'))

    assert.deepEqual((await b.listIdentities()).items, [])
    assert.deepEqual(await errorOf(b.getIdentity(identity.id)), { status: 404, code: 'ERR_NOT_FOUND' })
    assert.deepEqual(await errorOf(b.updateIdentity(identity.id, { name: 'x' })), {
      status: 404,
      code: 'ERR_NOT_FOUND',
    })
    assert.deepEqual(await errorOf(b.listFaces(identity.id)), { status: 404, code: 'ERR_NOT_FOUND' })
    assert.deepEqual(await errorOf(b.addFace(identity.id, await photo('joe_biden/2.jpg'))), {
      status: 404,
      code: 'ERR_NOT_FOUND',
    })
    assert.deepEqual(await errorOf(b.deleteFace(face.id)), { status: 404, code: 'ERR_NOT_FOUND' })
    assert.deepEqual(await errorOf(b.deleteIdentity(identity.id)), { status: 404, code: 'ERR_NOT_FOUND' })
    const seenByB = await b.recognize(await photo('barack_obama/2.jpg'))
    assert.equal(seenByB.faces[0]?.decision.status, 'unknown')
    assert.deepEqual(seenByB.faces[0]?.candidates, [], "org B's search never sees org A's faces")

    // Org A still has everything.
    assert.equal((await a.getIdentity(identity.id)).faceCount, 1)
    const seenByA = await a.recognize(await photo('barack_obama/2.jpg'))
    assert.equal(seenByA.faces[0]?.decision.status, 'match')
  },
)

test('tokens: missing, malformed, bad signature, expired, alg none and wrong scope are refused with their codes', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const get = (headers: Record<string, string>, path = '/api/v1/identities') =>
    httpRequest(started.port, path, { headers })

  const missing = await get({})
  assert.equal(missing.status, 401)
  assert.equal(bodyCode(missing), 'ERR_AUTH_MISSING')
  const malformed = await get({ authorization: 'Bearer not.a.jwt' })
  assert.equal(malformed.status, 401)
  assert.equal(bodyCode(malformed), 'ERR_AUTH_INVALID')
  const notBearer = await get({ authorization: 'Basic dXNlcjpwYXNz' })
  assert.equal(bodyCode(notBearer), 'ERR_AUTH_INVALID')
  const forged = jwt.sign({ org: 'acme', scope: 'enroll' }, 'another-secret-that-is-long-enough-000000', {
    expiresIn: 60,
  })
  assert.equal(bodyCode(await get({ authorization: `Bearer ${forged}` })), 'ERR_AUTH_INVALID')
  const expired = jwt.sign(
    { org: 'acme', scope: 'enroll', exp: Math.floor(Date.now() / 1000) - 60 },
    TEST_SECRET,
  )
  const expiredAnswer = await get({ authorization: `Bearer ${expired}` })
  assert.equal(expiredAnswer.status, 401)
  assert.equal(bodyCode(expiredAnswer), 'ERR_AUTH_EXPIRED')
  // Expired a second ago: accepted until exp + 5 s before.
  const justExpired = jwt.sign(
    { org: 'acme', scope: 'enroll', exp: Math.floor(Date.now() / 1000) - 1 },
    TEST_SECRET,
  )
  const justExpiredAnswer = await get({ authorization: `Bearer ${justExpired}` })
  assert.equal(justExpiredAnswer.status, 401)
  assert.equal(bodyCode(justExpiredAnswer), 'ERR_AUTH_EXPIRED')
  // Valid in five minutes: not forged, but not valid yet, and the answer says so.
  const early = jwt.sign({ org: 'acme', scope: 'enroll' }, TEST_SECRET, { expiresIn: 600, notBefore: 300 })
  const earlyAnswer = await get({ authorization: `Bearer ${early}` })
  assert.equal(earlyAnswer.status, 401)
  const earlyError = (
    JSON.parse(earlyAnswer.body) as {
      error: { code: string; message: string; details: { notBefore: string } }
    }
  ).error
  assert.equal(earlyError.code, 'ERR_AUTH_INVALID')
  assert.match(earlyError.message, /^the token is not valid before .* \(nbf\)$/)
  assert.ok(Date.parse(earlyError.details.notBefore) > Date.now())
  const unsigned = jwt.sign({ org: 'acme', scope: 'enroll admin' }, '', { algorithm: 'none', expiresIn: 60 })
  assert.equal(bodyCode(await get({ authorization: `Bearer ${unsigned}` })), 'ERR_AUTH_INVALID')
  const noOrg = jwt.sign({ scope: 'enroll' }, TEST_SECRET, { expiresIn: 60 })
  assert.equal(bodyCode(await get({ authorization: `Bearer ${noOrg}` })), 'ERR_AUTH_INVALID')

  const detectOnly = await get({ authorization: `Bearer ${testToken('acme', ['detect'])}` })
  assert.equal(detectOnly.status, 403)
  assert.equal(bodyCode(detectOnly), 'ERR_AUTH_SCOPE')
  // The query parameter works as well (browsers).
  const viaQuery = await get({}, `/api/v1/identities?access_token=${testToken('acme', ['enroll'])}`)
  assert.equal(viaQuery.status, 200)
  // Both places at once: refused, whichever of the two is valid.
  const both = await get(
    { authorization: `Bearer ${testToken('acme', ['enroll'])}` },
    `/api/v1/identities?access_token=${testToken('acme', ['enroll'])}`,
  )
  assert.equal(both.status, 401)
  assert.equal(bodyCode(both), 'ERR_AUTH_INVALID')

  const logged = JSON.stringify(started.lines())
  assert.ok(!logged.includes(forged) && !logged.includes(expired), 'tokens never reach the log')
})

test('bad requests get their codes and the server keeps serving', { skip: noFaces }, async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const token = testToken('acme')
  const post = (path: string, type: string, body: Uint8Array | string) =>
    httpRequest(started.port, path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': type },
      body,
    })

  const notJson = await post('/api/v1/identities', 'application/json', '{"name":')
  assert.equal(notJson.status, 400)
  assert.equal(bodyCode(notJson), 'ERR_REQUEST_INVALID')
  const unknownField = await post('/api/v1/identities', 'application/json', '{"name":"x","org":"other"}')
  assert.equal(bodyCode(unknownField), 'ERR_REQUEST_INVALID')
  const emptyName = await post('/api/v1/identities', 'application/json', '{"name":"  "}')
  const issues = (JSON.parse(emptyName.body) as { error: { details: { issues: { path: string }[] } } }).error
    .details.issues
  assert.equal(issues[0]?.path, 'name')
  const wrongType = await post('/api/v1/identities', 'text/plain', '{"name":"x"}')
  assert.equal(wrongType.status, 415)
  assert.equal(bodyCode(wrongType), 'ERR_CONTENT_TYPE')

  const api = clientFor(started, 'acme')
  const person = await api.createIdentity({ name: 'Someone' })
  const facesPath = `/api/v1/identities/${person.id}/faces`
  const gif = await post(facesPath, 'image/jpeg', gif1x1())
  assert.equal(gif.status, 415)
  assert.equal(bodyCode(gif), 'ERR_FRAME_UNSUPPORTED')
  const truncated = (await photo('barack_obama/1.jpg')).subarray(0, 2000)
  assert.equal(bodyCode(await post(facesPath, 'image/jpeg', truncated)), 'ERR_FRAME_INVALID')
  const scene = await encode(texturedScene(320, 240), 'png')
  const none = await post(facesPath, 'image/png', scene)
  assert.equal(none.status, 422)
  assert.equal(bodyCode(none), 'ERR_FACE_NOT_FOUND')
  const two = await post(facesPath, 'image/jpeg', await photo('_multi_face/obama_and_biden.jpg'))
  assert.equal(two.status, 422)
  assert.equal(bodyCode(two), 'ERR_FACE_MULTIPLE')
  assert.equal(
    (
      await httpRequest(started.port, '/api/v1/identities/not-a-uuid', {
        headers: { authorization: `Bearer ${token}` },
      })
    ).status,
    404,
  )

  // Nothing above was stored, and the server still enrolls.
  assert.equal((await api.getIdentity(person.id)).faceCount, 0)
  await api.addFace(person.id, await photo('kit_harington/1.jpeg'))
  assert.equal((await api.getIdentity(person.id)).faceCount, 1)
})

test(
  'a face below the configured quality is refused with ERR_FACE_LOW_QUALITY and its factors',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp({ FACEWIRE_MIN_ENROLL_QUALITY: '0.999' })
    t.after(() => started.stop())
    const api = clientFor(started, 'acme')
    const person = await api.createIdentity({ name: 'Kit' })
    try {
      await api.addFace(person.id, await photo('kit_harington/2.jpeg'))
      assert.fail('expected ERR_FACE_LOW_QUALITY')
    } catch (error) {
      assert.ok(error instanceof ApiError)
      assert.equal(error.code, 'ERR_FACE_LOW_QUALITY')
      assert.equal(error.details?.['minQuality'], 0.999)
      assert.equal(typeof error.details?.['quality'], 'number')
      assert.equal(typeof (error.details?.['factors'] as Record<string, number>)['sharpness'], 'number')
    }
  },
)

test('identities are listed page by page, each exactly once, in creation order', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const api = clientFor(started, 'acme', ['enroll'])
  const created: string[] = []
  for (let i = 0; i < 7; i++) created.push((await api.createIdentity({ name: `person ${String(i)}` })).id)
  const first = await api.listIdentities({ limit: 3 })
  assert.equal(first.items.length, 3)
  assert.ok(first.nextCursor !== undefined)
  const all = await api.allIdentities()
  assert.deepEqual(
    all.map((identity) => identity.id),
    created,
  )
  const bad = await httpRequest(started.port, '/api/v1/identities?cursor=%%%garbage', {
    headers: { authorization: `Bearer ${testToken('acme', ['enroll'])}` },
  })
  assert.equal(bad.status, 400)
  assert.equal(bodyCode(bad), 'ERR_REQUEST_INVALID')
})

test('an organization over its request rate gets 429 ERR_RATE_LIMITED with Retry-After; others are not affected', async (t) => {
  const started = await startTestApp({ FACEWIRE_API_RATE_LIMIT: '3' })
  t.after(() => started.stop())
  const get = (org: string) =>
    httpRequest(started.port, '/api/v1/identities', {
      headers: { authorization: `Bearer ${testToken(org, ['enroll'])}` },
    })
  const answers = await Promise.all([get('busy'), get('busy'), get('busy'), get('busy'), get('busy')])
  const limited = answers.filter((answer) => answer.status === 429)
  assert.ok(limited.length >= 2, `statuses ${answers.map((a) => a.status).join(',')}`)
  assert.equal(bodyCode(limited[0] ?? { body: '' }), 'ERR_RATE_LIMITED')
  assert.ok(Number(limited[0]?.headers['retry-after']) >= 1)
  assert.equal((await get('quiet')).status, 200)
})

test('the OpenAPI document is served and names every route and error code', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const response = await httpRequest(started.port, '/api/v1/openapi.json')
  assert.equal(response.status, 200)
  const doc = JSON.parse(response.body) as { openapi: string; paths: Record<string, Record<string, unknown>> }
  assert.match(doc.openapi, /^3\./)
  assert.deepEqual(Object.keys(doc.paths).sort(), [
    '/audit',
    '/faces/{id}',
    '/identities',
    '/identities/{id}',
    '/identities/{id}/faces',
    '/policy',
    '/recognize',
    '/verify',
  ])
  assert.ok('post' in (doc.paths['/identities/{id}/faces'] ?? {}))
  assert.match(response.body, /ERR_FACE_LOW_QUALITY/)
})

test('the audit log records who did what to which ids, for admins of the same organization only', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const api = clientFor(started, 'acme', ['enroll'])
  const person = await api.createIdentity({ name: 'Grace Hopper' })
  await api.updateIdentity(person.id, { name: 'Grace B. Hopper' })
  await api.deleteIdentity(person.id)
  const read = (org: string, scopes: Parameters<typeof testToken>[1]) =>
    httpRequest(started.port, '/api/v1/audit', {
      headers: { authorization: `Bearer ${testToken(org, scopes)}` },
    })

  assert.equal((await read('acme', ['enroll'])).status, 403)
  const log = await read('acme', ['admin'])
  assert.equal(log.status, 200)
  const items = (JSON.parse(log.body) as { items: { action: string; actor: string; identityId: string }[] })
    .items
  assert.deepEqual(
    items.map((entry) => entry.action),
    ['identity.create', 'identity.update', 'identity.delete'],
  )
  assert.ok(items.every((entry) => entry.identityId === person.id && entry.actor === 'test-acme'))
  assert.ok(!log.body.includes('Grace'), 'the audit log keeps ids, not names')
  const other = JSON.parse((await read('other', ['admin'])).body) as { items: unknown[] }
  assert.deepEqual(other.items, [])
})

test(
  'the policy says the threshold for the gallery size, and liveness is reported, required or off per organization',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp({
      FACEWIRE_TARGET_FPIR: '0.002',
      FACEWIRE_ORG_POLICIES: JSON.stringify({
        strict: { liveness: 'require', livenessThreshold: 0.99999 },
        quiet: { liveness: 'off' },
      }),
    })
    t.after(() => started.stop())
    const policyOf = async (org: string): Promise<PolicyResponse> => {
      const response = await httpRequest(started.port, '/api/v1/policy', {
        headers: { authorization: `Bearer ${testToken(org)}` },
      })
      assert.equal(response.status, 200, response.body)
      return JSON.parse(response.body) as PolicyResponse
    }
    const empty = await policyOf('acme')
    assert.equal(empty.targetFpir, 0.002)
    assert.equal(empty.basis, 'cohort', 'an empty gallery rests on the models cohort')
    assert.equal(empty.identities, 0)
    assert.ok(empty.threshold > 0.3 && empty.threshold < 0.9, String(empty.threshold))
    assert.equal(empty.modelId, started.app.gallery().modelId)

    for (const org of ['acme', 'strict', 'quiet']) {
      const api = clientFor(started, org)
      const obama = await api.createIdentity({ name: 'Barack Obama' })
      await api.addFace(obama.id, await photo('barack_obama/1.jpg'))
      const after = await policyOf(org)
      assert.equal(after.identities, 1)
      assert.ok(after.threshold >= empty.threshold, 'one more identity never lowers the threshold')
      const [face] = (await api.recognize(await photo('barack_obama/2.jpg'))).faces
      assert.ok(face !== undefined)
      assert.equal(face.decision.threshold, after.threshold, 'the decision says its threshold')
      if (org === 'acme') {
        assert.equal(face.decision.status, 'match')
        assert.ok(face.liveness !== undefined && face.liveness.live, 'a real photo is reported live')
        assert.ok(face.eyes !== undefined && !face.eyes.closed)
      } else if (org === 'strict') {
        assert.equal(face.decision.status, 'uncertain', 'not live enough for this org: no match')
        assert.equal(face.decision.reason, 'liveness')
        assert.equal(face.decision.identity?.name, 'Barack Obama', 'the kiosk can still prompt the person')
        assert.equal(face.liveness?.live, false)
      } else {
        assert.equal(face.decision.status, 'match')
        assert.equal(face.liveness, undefined, 'liveness off: not computed, not shown')
        assert.equal(face.eyes, undefined)
      }
    }
  },
)

test('JSON bodies and queries that break a rule get 400 ERR_REQUEST_INVALID naming each offending path', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const token = testToken('acme', ['enroll', 'admin'])
  const send = (method: string, path: string, body?: string) =>
    httpRequest(started.port, path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body }),
    })
  const issuesOf = (response: { status: number; body: string }) => {
    assert.equal(response.status, 400, response.body)
    const error = (
      JSON.parse(response.body) as {
        error: { code: string; details: { issues: { path: string; message: string }[] } }
      }
    ).error
    assert.equal(error.code, 'ERR_REQUEST_INVALID')
    return error.details.issues
  }
  const a32 = Array.from({ length: 32 }, () => 'a').join('.')

  // Metadata nested 5000 levels deep overflowed the stack of the size check: 500 ERR_INTERNAL.
  const deepObject = `{"name":"x","metadata":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`
  assert.deepEqual(issuesOf(await send('POST', '/api/v1/identities', deepObject)), [
    { path: `metadata.${a32}`, message: 'must be nested at most 32 levels deep' },
  ])
  const deepArray = `{"name":"x","metadata":{"a":${'['.repeat(3000)}${']'.repeat(3000)}}}`
  assert.equal(issuesOf(await send('POST', '/api/v1/identities', deepArray))[0]?.path.split('.').length, 33)
  // 32 levels, the metadata object included, are accepted and come back as sent.
  const deepest = JSON.parse(`${'{"a":'.repeat(31)}{}${'}'.repeat(31)}`) as Record<string, unknown>
  const created = await send('POST', '/api/v1/identities', JSON.stringify({ name: 'x', metadata: deepest }))
  assert.equal(created.status, 201, created.body)
  assert.deepEqual((JSON.parse(created.body) as { metadata: unknown }).metadata, deepest)

  // An unknown field was refused with an empty path.
  assert.deepEqual(issuesOf(await send('POST', '/api/v1/identities', '{"name":"x","org":"other"}')), [
    { path: 'org', message: 'unknown field' },
  ])
  const id = (JSON.parse(created.body) as { id: string }).id
  assert.deepEqual(issuesOf(await send('PATCH', `/api/v1/identities/${id}`, '{"nam":"y","extra":1}')), [
    { path: 'nam', message: 'unknown field' },
    { path: 'extra', message: 'unknown field' },
  ])
  // A `__proto__` key in metadata was dropped silently.
  assert.deepEqual(
    issuesOf(
      await send('POST', '/api/v1/identities', '{"name":"x","metadata":{"k":{"__proto__":{"admin":true}}}}'),
    ),
    [{ path: 'metadata.k.__proto__', message: 'the key __proto__ is not allowed' }],
  )
  const large = JSON.stringify({ name: 'x', metadata: { text: 'x'.repeat(5000) } })
  assert.equal(issuesOf(await send('POST', '/api/v1/identities', large))[0]?.path, 'metadata')

  // `limit=1e3` was read as 1000.
  for (const query of ['limit=1e3', 'limit=0x10', 'limit=%2010', 'limit=5.0', 'limit=', 'limit=1001']) {
    assert.deepEqual(
      issuesOf(await send('GET', `/api/v1/identities?${query}`)).map((issue) => issue.path),
      ['limit'],
      query,
    )
  }
  assert.deepEqual(
    issuesOf(await send('GET', '/api/v1/audit?after=1e2')).map((issue) => issue.path),
    ['after'],
  )
  assert.deepEqual(
    issuesOf(await send('GET', '/api/v1/identities?limt=5')).map((issue) => issue.path),
    ['limt'],
  )
  assert.equal((await send('GET', '/api/v1/identities?limit=1000')).status, 200)
})

test('an image body is read as the format its bytes show, whatever image type labels it', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const recognize = (type: string, body: Uint8Array | string) =>
    httpRequest(started.port, '/api/v1/recognize', {
      method: 'POST',
      headers: { authorization: `Bearer ${testToken('acme', ['detect'])}`, 'content-type': type },
      body,
    })
  const png = await encode(texturedScene(64, 48), 'png')
  for (const type of ['image/jpeg', 'image/webp', 'application/octet-stream']) {
    const answer = await recognize(type, png)
    assert.equal(answer.status, 200, `PNG bytes as ${type}: ${answer.body}`)
    assert.equal((JSON.parse(answer.body) as { width: number }).width, 64)
  }
  const text = await recognize('image/jpeg', 'not an image at all, just text')
  assert.equal(text.status, 415)
  assert.equal(bodyCode(text), 'ERR_FRAME_UNSUPPORTED')
  const gif = await recognize('image/png', gif1x1())
  assert.equal(bodyCode(gif), 'ERR_FRAME_UNSUPPORTED')
  const wrongType = await recognize('text/plain', png)
  assert.equal(wrongType.status, 415)
  assert.equal(bodyCode(wrongType), 'ERR_CONTENT_TYPE')
})
