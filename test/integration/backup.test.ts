import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { createApiClient, type ApiClient } from '../../client/api-client.js'
import { mintToken } from '../../server/auth.js'
import { readDevSecret } from '../../server/dev-secret.js'
import type { BackupManifest } from '../../server/gallery/backup-manifest.js'
import { runCli, startMain, stopChild, whenReady, type Child } from '../helpers/child.js'
import { tryEnroll, type Acknowledged } from '../helpers/enroll.js'
import { lfwPeople, skipWithoutFaces } from '../helpers/images.js'
import { tempDataDir } from '../helpers/temp-dir.js'

const noFaces = skipWithoutFaces()

/** A client of `server` for org acme, with a token signed by the development secret it created. */
async function clientOf(server: Child): Promise<ApiClient> {
  const { baseUrl } = await whenReady(server)
  const key = readDevSecret(server.dataDir) ?? assert.fail('the server created its development secret')
  const token = mintToken({ org: 'acme', scopes: ['detect', 'enroll'], sub: 'test', ttlSeconds: 900, key })
  return createApiClient({ baseUrl, token })
}

/** Every file under `dir` as one buffer, for searching secrets in. */
function allBytes(dir: string): Buffer {
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile())
  return Buffer.concat(files.map((entry) => readFileSync(join(entry.parentPath, entry.name))))
}

test('backup, restore and rotate-key print their usage with --help and refuse bad arguments with status 2', async () => {
  for (const command of ['backup', 'restore', 'rotate-key']) {
    const help = await runCli([command, '--help'])
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, new RegExp(`^usage: facewire ${command} `))
    assert.match(help.stdout, /Exit status: 0 /)
    const unknown = await runCli([command, '--no-such-option'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /usage: facewire/)
  }
  assert.equal((await runCli(['backup'])).code, 2, 'backup needs a folder')
  assert.equal((await runCli(['restore', 'a', 'b'])).code, 2, 'restore takes one folder')
  assert.equal((await runCli(['rotate-key', '--batch-rows', '0', '--new-key-file', 'k'])).code, 2)
  const noKey = await runCli(['rotate-key'])
  assert.equal(noKey.code, 2)
  assert.match(noKey.stderr, /--new-key-file FILE or FACEWIRE_NEW_EMBEDDING_KEY/)
  const badConfig = await runCli(['backup', 'x'], { FACEWIRE_EMBEDDING_KEY: 'short' })
  assert.equal(badConfig.code, 78)
  assert.match(badConfig.stderr, /FACEWIRE_EMBEDDING_KEY: must be 32 bytes/)
  const listed = await runCli(['--help'])
  for (const command of ['backup', 'restore', 'rotate-key'])
    assert.match(listed.stdout, new RegExp(`  ${command} `))
})

test(
  'a backup taken during a burst of enrollments restores into a fresh folder whose server holds and recognizes every face acknowledged before it began',
  { skip: noFaces },
  async (t) => {
    const key = randomBytes(32).toString('base64')
    const scratch = tempDataDir('facewire-backup-it-')
    // No FACEWIRE_JWT_SECRET: the servers keep a development secret in their data folders, which
    // the backup must leave out.
    const env = {
      FACEWIRE_EMBEDDING_KEY: key,
      FACEWIRE_SNAPSHOT_INTERVAL_MS: '200',
      FACEWIRE_API_RATE_LIMIT: '1000',
    }
    const first = startMain(env)
    t.after(() => {
      first.child.kill('SIGKILL')
      rmSync(first.dataDir, { recursive: true, force: true })
      rmSync(scratch, { recursive: true, force: true })
    })
    const api = await clientOf(first)
    const people = lfwPeople(40)
    const identities = new Map<string, string>()
    for (const person of people)
      identities.set(person.name, (await api.createIdentity({ name: person.name })).id)

    const acknowledged: Acknowledged[] = []
    let next = 0
    const enroll = async (): Promise<void> => {
      for (let person = people[next++]; person !== undefined; person = people[next++]) {
        const ack = await tryEnroll(api, person, identities.get(person.name) ?? '')
        if (ack !== undefined) acknowledged.push(ack)
      }
    }
    const burst = Promise.all([enroll(), enroll()])
    while (acknowledged.length < 10) await new Promise((resolve) => setTimeout(resolve, 20))

    // The backup starts now, as a separate process, while the two enrollment loops go on.
    const before = [...acknowledged]
    const backupDir = join(scratch, 'backup')
    const backup = await runCli(['backup', backupDir, '--data-dir', first.dataDir, '--json'], env)
    const duringBackup = acknowledged.length - before.length
    await burst
    assert.equal(backup.code, 0, backup.stderr)
    t.diagnostic(
      `acknowledged before the backup ${String(before.length)}, while it ran ${String(duringBackup)}`,
    )
    assert.ok(acknowledged.length > before.length, 'enrollments went on after the backup began')

    const manifest = JSON.parse(backup.stdout) as BackupManifest
    assert.ok(manifest.snapshot !== null, 'the index snapshot was copied with the store')
    assert.ok(manifest.snapshot.seq <= manifest.store.seq)
    assert.ok(manifest.store.faces >= before.length)
    assert.ok(existsSync(join(first.dataDir, 'dev-jwt-secret')))
    const copied = allBytes(backupDir)
    const devSecret = readDevSecret(first.dataDir) ?? ''
    for (const secret of [key, Buffer.from(key, 'base64'), devSecret]) {
      assert.equal(copied.indexOf(secret), -1, 'no secret in the backup')
    }
    assert.ok(!manifest.files.some((file) => file.path.includes('secret')))

    // The running server's folder is in use: a restore refuses it, forced or not.
    const inUse = await runCli(['restore', backupDir, '--data-dir', first.dataDir, '--force'], env)
    assert.equal(inUse.code, 1)
    assert.match(inUse.stderr, /is in use/)
    await stopChild(first)

    // A damaged copy is refused by its sha256, before anything is written.
    const damaged = join(scratch, 'damaged')
    cpSync(backupDir, damaged, { recursive: true })
    const db = readFileSync(join(damaged, 'facewire.db'))
    db[Math.floor(db.length / 2)] = (db[Math.floor(db.length / 2)] ?? 0) ^ 0xff
    writeFileSync(join(damaged, 'facewire.db'), db)
    const target = join(scratch, 'restored')
    const refused = await runCli(['restore', damaged, '--data-dir', target], env)
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /the sha256 of facewire\.db does not match the manifest/)
    assert.equal(existsSync(join(target, 'facewire.db')), false)

    // Another key cannot read it: refused with status 78, nothing written.
    const otherKey = await runCli(['restore', backupDir, '--data-dir', target], {
      FACEWIRE_EMBEDDING_KEY: randomBytes(32).toString('base64'),
    })
    assert.equal(otherKey.code, 78)
    assert.match(otherKey.stderr, /the backup was made with another embedding key/)
    assert.equal(existsSync(join(target, 'facewire.db')), false)

    const restored = await runCli(['restore', backupDir, '--data-dir', target], env)
    assert.equal(restored.code, 0, restored.stderr)
    assert.match(restored.stdout, /index snapshot at seq \d+: the server replays \d+ newer changes/)

    const second = startMain({ ...env, FACEWIRE_DATA_DIR: target })
    t.after(() => second.child.kill('SIGKILL'))
    const again = await clientOf(second)
    assert.ok(
      second.lines.some((line) => line['msg'] === 'gallery.snapshot_loaded'),
      'loaded without a rebuild',
    )
    assert.ok(!second.lines.some((line) => line['msg'] === 'gallery.index_rebuild'))
    for (const ack of before) {
      const faces = await again.listFaces(ack.identityId)
      assert.ok(
        faces.items.some((face) => face.id === ack.faceId),
        `the face of ${ack.name} is stored`,
      )
      const result = await again.recognize(await readFile(ack.file))
      assert.ok(
        result.faces.some((face) => face.decision.identity?.id === ack.identityId),
        `${ack.name} is recognized`,
      )
    }
  },
)
