/**
 * The admin CLI (facewire identities | faces | audit) as a child process against a real server:
 * every sub-command, JSON parsed back, the table form, and the exit statuses.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { createApiClient } from '../../client/api-client.js'
import type { AuditEntryBody, FaceBody, IdentityBody } from '../../protocol/wire.js'
import { startTestApp, testToken } from '../helpers/app.js'
import { runCli } from '../helpers/child.js'
import { facesDir } from '../helpers/images.js'

const faces = facesDir()
const noFaces = faces === undefined ? 'the shared face photos (../shared/faces) are absent' : false

test(
  'facewire identities and faces list, show, rename and delete through the REST API, as JSON and as a table',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp()
    t.after(() => started.stop())
    const server = `http://127.0.0.1:${String(started.port)}`
    const token = testToken('acme', ['enroll'])
    const api = createApiClient({ baseUrl: server, token })
    const ada = await api.createIdentity({ name: 'Ada', externalId: 'emp-1' })
    const grace = await api.createIdentity({ name: 'Grace' })
    const photo = await readFile(join(faces ?? '', 'face_recognition-examples', 'barack_obama', '1.jpg'))
    const { face } = await api.addFace(ada.id, photo)
    const env = { FACEWIRE_URL: server, FACEWIRE_TOKEN: token }
    const facewire = async (...args: string[]) => {
      const run = await runCli(args, env)
      assert.equal(run.code, 0, `facewire ${args.join(' ')}: ${run.stderr}`)
      return run.stdout
    }

    // Not a terminal: JSON without a flag.
    const listed = JSON.parse(await facewire('identities', 'list')) as IdentityBody[]
    assert.deepEqual(
      listed.map((identity) => [identity.id, identity.name, identity.externalId, identity.faceCount]),
      [
        [ada.id, 'Ada', 'emp-1', 1],
        [grace.id, 'Grace', null, 0],
      ],
    )
    const first = JSON.parse(await facewire('identities', 'list', '--limit', '1', '--json')) as IdentityBody[]
    assert.deepEqual(
      first.map((identity) => identity.id),
      [ada.id],
    )
    const table = (await facewire('identities', 'list', '--table')).trimEnd().split('\n')
    assert.match(table[0] ?? '', /^ID\s+NAME\s+EXTERNAL ID\s+FACES\s+CREATED$/)
    assert.equal(table.length, 3)
    assert.match(table[1] ?? '', new RegExp(`^${ada.id}\\s+Ada\\s+emp-1\\s+1\\s+\\d{4}-`))
    assert.match(table[2] ?? '', new RegExp(`^${grace.id}\\s+Grace\\s+-\\s+0\\s+`))

    const shown = JSON.parse(await facewire('identities', 'show', ada.id)) as IdentityBody & {
      faces: FaceBody[]
    }
    assert.equal(shown.name, 'Ada')
    assert.deepEqual(
      shown.faces.map((f) => f.id),
      [face.id],
    )
    const shownTable = await facewire('identities', 'show', ada.id, '--table')
    assert.match(shownTable, /^name:\s+Ada$/m)
    assert.match(shownTable, new RegExp(`^${face.id}\\s+0\\.\\d+\\s+no\\s+`, 'm'))

    const renamed = JSON.parse(await facewire('identities', 'rename', ada.id, 'Ada Lovelace')) as IdentityBody
    assert.equal(renamed.name, 'Ada Lovelace')
    assert.equal((await api.getIdentity(ada.id)).name, 'Ada Lovelace')

    const faceList = JSON.parse(await facewire('faces', 'list', ada.id)) as FaceBody[]
    assert.deepEqual(
      faceList.map((f) => [f.id, f.identityId, f.stale]),
      [[face.id, ada.id, false]],
    )
    assert.deepEqual(JSON.parse(await facewire('faces', 'delete', face.id)), { deleted: [face.id] })
    assert.deepEqual((await api.listFaces(ada.id)).items, [])
    assert.equal((await api.getIdentity(ada.id)).faceCount, 0)

    assert.match(
      await facewire('identities', 'delete', grace.id, '--table'),
      new RegExp(`^deleted identity ${grace.id}$`, 'm'),
    )
    assert.deepEqual(
      (await api.allIdentities()).map((identity) => identity.id),
      [ada.id],
    )

    // Gone, or never in this organization: exit status 3 with the code on stderr.
    const again = await runCli(['identities', 'delete', grace.id], env)
    assert.equal(again.code, 3)
    assert.match(again.stderr, /ERR_NOT_FOUND/)
    assert.deepEqual(JSON.parse(again.stdout), { deleted: [] })
    const otherOrg = await runCli(['identities', 'show', ada.id], {
      ...env,
      FACEWIRE_TOKEN: testToken('other', ['enroll']),
    })
    assert.equal(otherOrg.code, 3)
    const noFace = await runCli(['faces', 'delete', face.id], env)
    assert.equal(noFace.code, 3)

    // Refused by the server: 1; the command line itself: 2.
    const noScope = await runCli(['identities', 'list'], {
      ...env,
      FACEWIRE_TOKEN: testToken('acme', ['detect']),
    })
    assert.equal(noScope.code, 1)
    assert.match(noScope.stderr, /ERR_AUTH_SCOPE/)
    for (const args of [
      ['identities'],
      ['identities', 'purge'],
      ['identities', 'rename', ada.id],
      ['identities', 'list', '--limit', '0'],
      ['identities', 'list', '--json', '--table'],
      ['faces', 'delete'],
    ]) {
      const usage = await runCli(args, env)
      assert.equal(usage.code, 2, args.join(' '))
      assert.match(usage.stderr, /^usage: facewire /m)
    }
    const unreachable = await runCli(['identities', 'list', '--server', 'http://127.0.0.1:9'], env)
    assert.equal(unreachable.code, 1)
    assert.match(unreachable.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/)
  },
)

test('facewire audit prints the organization log to admins: pages, --after, --all, and a table', async (t) => {
  const started = await startTestApp()
  t.after(() => started.stop())
  const server = `http://127.0.0.1:${String(started.port)}`
  const api = createApiClient({ baseUrl: server, token: testToken('acme', ['enroll']) })
  const person = await api.createIdentity({ name: 'Grace Hopper' })
  await api.updateIdentity(person.id, { name: 'Grace B. Hopper' })
  await api.deleteIdentity(person.id)
  await createApiClient({ baseUrl: server, token: testToken('other', ['enroll']) }).createIdentity({
    name: 'Elsewhere',
  })
  const env = { FACEWIRE_URL: server, FACEWIRE_TOKEN: testToken('acme', ['admin']) }

  const all = await runCli(['audit'], env)
  assert.equal(all.code, 0, all.stderr)
  const entries = JSON.parse(all.stdout) as AuditEntryBody[]
  assert.deepEqual(
    entries.map((entry) => [entry.action, entry.identityId, entry.actor]),
    [
      ['identity.create', person.id, 'test-acme'],
      ['identity.update', person.id, 'test-acme'],
      ['identity.delete', person.id, 'test-acme'],
    ],
    "only the token's organization",
  )
  const [one, two] = entries
  const afterFirst = await runCli(['audit', '--after', String(one?.seq), '--limit', '1'], env)
  assert.deepEqual(
    (JSON.parse(afterFirst.stdout) as AuditEntryBody[]).map((entry) => entry.seq),
    [two?.seq],
  )
  const paged = await runCli(['audit', '--all', '--after', String(one?.seq)], env)
  assert.equal((JSON.parse(paged.stdout) as AuditEntryBody[]).length, 2)

  const table = await runCli(['audit', '--table'], env)
  const lines = table.stdout.trimEnd().split('\n')
  assert.match(lines[0] ?? '', /^SEQ\s+AT\s+ACTOR\s+ACTION\s+IDENTITY\s+FACE$/)
  assert.match(lines[1] ?? '', new RegExp(`identity\\.create\\s+${person.id}\\s+-$`))

  const notAdmin = await runCli(['audit'], { ...env, FACEWIRE_TOKEN: testToken('acme', ['enroll']) })
  assert.equal(notAdmin.code, 1)
  assert.match(notAdmin.stderr, /ERR_AUTH_SCOPE/)
  const both = await runCli(['audit', '--all', '--limit', '5'], env)
  assert.equal(both.code, 2)
})
