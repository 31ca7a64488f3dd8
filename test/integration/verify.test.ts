/**
 * POST /api/v1/verify against the real app and models: two photos of one person, of two people,
 * a photo against an enrolled identity, and every refusal.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { ApiError } from '../../client/api-client.js'
import type { PolicyResponse, VerifyResponse } from '../../protocol/wire.js'
import { apiClientFor, startTestApp, testToken, type StartedApp } from '../helpers/app.js'
import { encode, examplePhoto, facesDir, gif1x1, texturedScene } from '../helpers/images.js'

const faces = facesDir()
const noFaces = faces === undefined ? 'the shared face photos (../shared/faces) are absent' : false

/** The error of a refused call: status, code and details. */
async function refusal(
  promise: Promise<unknown>,
): Promise<{ status: number; code: string; details: Readonly<Record<string, unknown>> | undefined }> {
  try {
    await promise
  } catch (error) {
    if (error instanceof ApiError) return { status: error.status, code: error.code, details: error.details }
    throw error
  }
  assert.fail('expected the request to be refused')
}

/** A raw multipart POST, for forms the client would never build. */
async function postForm(started: StartedApp, form: FormData | string, contentType?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${testToken('acme')}` }
  if (contentType !== undefined) headers['content-type'] = contentType
  const response = await fetch(`http://127.0.0.1:${String(started.port)}/api/v1/verify`, {
    method: 'POST',
    headers,
    body: form,
  })
  return {
    status: response.status,
    body: (await response.json()) as { error: { code: string; details?: { issues?: unknown } } },
  }
}

function assertFace(face: VerifyResponse['a'] | undefined): void {
  assert.ok(face !== undefined)
  assert.equal(face.landmarks.length, 5)
  assert.ok(face.box.width > 50, `box ${JSON.stringify(face.box)}`)
  assert.ok(face.quality > 0 && face.quality <= 1)
  assert.ok('sharpness' in face.factors)
}

test(
  'two photos of one person are the same at the org threshold, of two people different, with both faces',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    t.after(() => started.stop())
    const api = apiClientFor(started, 'acme', ['detect'])
    const policy = (await (
      await fetch(`http://127.0.0.1:${String(started.port)}/api/v1/policy`, {
        headers: { authorization: `Bearer ${testToken('acme', ['detect'])}` },
      })
    ).json()) as PolicyResponse

    const same = await api.verify(
      { image: await examplePhoto('barack_obama/1.jpg') },
      { image: await examplePhoto('barack_obama/2.jpg') },
    )
    assert.equal(same.decision.status, 'same')
    assert.equal(same.decision.threshold, policy.threshold)
    assert.equal(same.decision.basis, policy.basis)
    assert.equal(same.decision.targetFpir, policy.targetFpir)
    assert.ok(same.similarity >= same.decision.threshold, `similarity ${String(same.similarity)}`)
    assertFace(same.a)
    assertFace(same.b)
    assert.equal(same.identity, undefined)

    const different = await api.verify(
      { image: await examplePhoto('barack_obama/1.jpg') },
      { image: await examplePhoto('joe_biden/2.jpg') },
    )
    assert.equal(different.decision.status, 'different')
    assert.ok(
      different.similarity < different.decision.threshold,
      `similarity ${String(different.similarity)}`,
    )
    assert.ok(different.similarity < same.similarity)

    // PNG against JPEG, sent with its own type.
    const png = await api.verify(
      { image: await examplePhoto('alex_lacamoire/3.png'), type: 'image/png' },
      { image: await examplePhoto('alex_lacamoire/1.jpg') },
    )
    assert.equal(png.decision.status, 'same')
  },
)

test(
  "a photo against an enrolled identity is scored by the identity's template; another org's identity is missing",
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    t.after(() => started.stop())
    const api = apiClientFor(started, 'acme')
    const obama = await api.createIdentity({ name: 'Barack Obama' })
    await api.addFace(obama.id, await examplePhoto('barack_obama/1.jpg'))
    await api.addFace(obama.id, await examplePhoto('barack_obama/4.jpg'))

    const match = await api.verify(
      { image: await examplePhoto('barack_obama/3.jpg') },
      { identityId: obama.id },
    )
    assert.equal(match.decision.status, 'same')
    assert.deepEqual(match.identity, { id: obama.id, name: 'Barack Obama' })
    assert.equal(match.b, undefined)
    assertFace(match.a)
    // The score recognition gives the same identity for the same photo.
    const recognized = await api.recognize(await examplePhoto('barack_obama/3.jpg'))
    assert.equal(recognized.faces[0]?.decision.similarity, match.similarity)

    const stranger = await api.verify(
      { image: await examplePhoto('joe_biden/1.jpg') },
      { identityId: obama.id },
    )
    assert.equal(stranger.decision.status, 'different')

    const other = apiClientFor(started, 'other-org', ['detect'])
    assert.deepEqual(
      await refusal(
        other.verify({ image: await examplePhoto('barack_obama/3.jpg') }, { identityId: obama.id }),
      ),
      { status: 404, code: 'ERR_NOT_FOUND', details: undefined },
    )
    for (const id of [randomUUID(), 'not-an-id']) {
      const missing = await refusal(
        api.verify({ image: await examplePhoto('barack_obama/3.jpg') }, { identityId: id }),
      )
      assert.equal(missing.code, 'ERR_NOT_FOUND', id)
    }
    const empty = await api.createIdentity({ name: 'No faces yet' })
    assert.deepEqual(
      await refusal(
        api.verify({ image: await examplePhoto('barack_obama/3.jpg') }, { identityId: empty.id }),
      ),
      { status: 422, code: 'ERR_IDENTITY_NO_FACES', details: undefined },
    )
  },
)

test(
  'verify refuses images without one face, naming the field, and forms that are not image_a with image_b or identityId',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    t.after(() => started.stop())
    const api = apiClientFor(started, 'acme')
    const obama = await examplePhoto('barack_obama/1.jpg')
    const wall = await encode(texturedScene(200, 150), 'png')

    const noFace = await refusal(api.verify({ image: obama }, { image: wall, type: 'image/png' }))
    assert.equal(noFace.status, 422)
    assert.equal(noFace.code, 'ERR_FACE_NOT_FOUND')
    assert.equal(noFace.details?.['field'], 'image_b')
    const several = await refusal(
      api.verify({ image: await examplePhoto('_multi_face/obama_and_biden.jpg') }, { image: obama }),
    )
    assert.equal(several.code, 'ERR_FACE_MULTIPLE')
    assert.equal(several.details?.['field'], 'image_a')
    assert.ok(Array.isArray(several.details?.['faces']))
    const gif = await refusal(api.verify({ image: gif1x1() }, { image: obama }))
    assert.equal(gif.code, 'ERR_FRAME_UNSUPPORTED')
    assert.equal(gif.details?.['field'], 'image_a')

    const file = (bytes: Uint8Array) => new Blob([bytes], { type: 'image/jpeg' })
    const form = (fields: Record<string, Blob | string>) => {
      const data = new FormData()
      for (const [name, value] of Object.entries(fields)) {
        if (typeof value === 'string') data.append(name, value)
        else data.append(name, value, `${name}.jpg`)
      }
      return data
    }
    const invalid: [Record<string, Blob | string>, string][] = [
      [{ image_a: file(obama) }, 'image_b'],
      [{ image_a: file(obama), image_b: file(obama), identityId: randomUUID() }, 'image_b'],
      [{ image_b: file(obama), identityId: randomUUID() }, 'image_a'],
      [{ image_a: file(obama), image_b: file(new Uint8Array(0)) }, 'image_b'],
      [{ image_a: 'not a file', image_b: file(obama) }, 'image_a'],
      [{ image_a: file(obama), identityId: file(obama) }, 'identityId'],
      [{ image_a: file(obama), image_b: file(obama), org: 'other' }, 'org'],
    ]
    for (const [fields, path] of invalid) {
      const answer = await postForm(started, form(fields))
      assert.equal(answer.status, 400, Object.keys(fields).join(','))
      assert.equal(answer.body.error.code, 'ERR_REQUEST_INVALID')
      assert.ok(
        (answer.body.error.details?.issues as { path: string }[]).some((issue) => issue.path === path),
        `${Object.keys(fields).join(',')}: ${JSON.stringify(answer.body.error.details)}`,
      )
    }
    const twice = new FormData()
    twice.append('image_a', file(obama), 'a.jpg')
    twice.append('image_a', file(obama), 'b.jpg')
    twice.append('image_b', file(obama), 'c.jpg')
    assert.equal((await postForm(started, twice)).status, 400)

    const json = await postForm(started, '{}', 'application/json')
    assert.deepEqual([json.status, json.body.error.code], [415, 'ERR_CONTENT_TYPE'])
    const broken = await postForm(started, 'no parts here', 'multipart/form-data; boundary=xyz')
    assert.deepEqual([broken.status, broken.body.error.code], [400, 'ERR_REQUEST_INVALID'])

    const noScope = await refusal(
      apiClientFor(started, 'acme', ['enroll']).verify({ image: obama }, { image: obama }),
    )
    assert.deepEqual([noScope.status, noScope.code], [403, 'ERR_AUTH_SCOPE'])
  },
)
