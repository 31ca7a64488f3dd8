import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import { createApiClient, type ApiClient } from '../../client/api-client.js'
import { FacewireError } from '../../server/errors.js'
import { embeddingKeyId, parseEmbeddingKey } from '../../server/gallery/embedding-crypto.js'
import type { RotationReport } from '../../server/gallery/key-rotation.js'
import { openStore } from '../../server/gallery/store.js'
import { createMemoryLogger, testToken, TEST_SECRET } from '../helpers/app.js'
import { runCli, spawnCli, startMain, stopChild, whenReady, type Child } from '../helpers/child.js'
import { tryEnroll, type Acknowledged } from '../helpers/enroll.js'
import { lfwPeople, skipWithoutFaces } from '../helpers/images.js'
import { tempDataDir } from '../helpers/temp-dir.js'

const noFaces = skipWithoutFaces()

async function serve(env: Record<string, string>): Promise<{ server: Child; api: ApiClient }> {
  const server = startMain({ FACEWIRE_JWT_SECRET: TEST_SECRET, FACEWIRE_API_RATE_LIMIT: '1000', ...env })
  const { baseUrl } = await whenReady(server)
  return { server, api: createApiClient({ baseUrl, token: testToken('acme') }) }
}

async function enroll(api: ApiClient, people: { name: string; file: string }[]): Promise<Acknowledged[]> {
  const enrolled: Acknowledged[] = []
  for (const person of people) {
    const identity = await api.createIdentity({ name: person.name })
    const ack = await tryEnroll(api, person, identity.id)
    if (ack !== undefined) enrolled.push(ack)
  }
  return enrolled
}

async function recognizes(api: ApiClient, person: Acknowledged): Promise<boolean> {
  const result = await api.recognize(await readFile(person.file))
  return result.faces.some((face) => face.decision.identity?.id === person.identityId)
}

function keyIdOf(base64: string): string {
  return embeddingKeyId(parseEmbeddingKey(Buffer.from(base64, 'base64')) ?? assert.fail('a key'))
}

/** Faces per key id, read without any key. */
function keyUsage(dataDir: string): Map<string | null, number> {
  const db = new Database(join(dataDir, 'facewire.db'), { readonly: true })
  try {
    const rows = db
      .prepare<[], { key_id: string | null; faces: number }>(
        'SELECT key_id, count(*) AS faces FROM faces GROUP BY key_id',
      )
      .all()
    return new Map(rows.map((row) => [row.key_id, row.faces]))
  } finally {
    db.close()
  }
}

test(
  'a key rotation killed with SIGKILL halfway resumes when run again, the server serving throughout, and ends with every face readable under the new key only',
  { skip: noFaces },
  async (t) => {
    const oldKey = randomBytes(32).toString('base64')
    const newKey = randomBytes(32).toString('base64')
    const dataDir = tempDataDir('facewire-rotate-it-')
    const keyFile = join(dataDir, '..', `${String(process.pid)}-new.key`)
    writeFileSync(keyFile, newKey + '\n', { mode: 0o600 })
    const servers: Child[] = []
    t.after(() => {
      for (const server of servers) server.child.kill('SIGKILL')
      rmSync(dataDir, { recursive: true, force: true })
      rmSync(keyFile, { force: true })
    })

    // Faces enrolled under the old key, then the server stopped.
    const first = await serve({ FACEWIRE_DATA_DIR: dataDir, FACEWIRE_EMBEDDING_KEY: oldKey })
    servers.push(first.server)
    const enrolled = await enroll(first.api, lfwPeople(10))
    assert.ok(enrolled.length >= 8, `enrolled ${String(enrolled.length)}`)
    await stopChild(first.server)
    const { logger } = createMemoryLogger()
    const readBefore = openStore({ dataDir, embeddingKey: Buffer.from(oldKey, 'base64'), logger })
    const embeddings = new Map([...readBefore.embeddings()].map((face) => [face.faceId, face.embedding]))
    readBefore.close()

    // Restart point 1: the new key current, the old one previous. New faces go under the new key.
    const rotating = {
      FACEWIRE_DATA_DIR: dataDir,
      FACEWIRE_EMBEDDING_KEY: newKey,
      FACEWIRE_EMBEDDING_KEY_PREVIOUS: oldKey,
    }
    const second = await serve(rotating)
    servers.push(second.server)
    const keys = second.server.lines.find((line) => String(line['msg']).startsWith('gallery.keys'))
    assert.equal(keys?.['pending'], enrolled.length)
    const total = enrolled.length
    const late = await enroll(second.api, lfwPeople(12).slice(10))
    assert.ok(late.length > 0, 'faces enrolled under the new key before the rotation')
    enrolled.push(...late)

    // A key the running server does not write under is refused before anything changes.
    const otherFile = `${keyFile}.other`
    writeFileSync(otherFile, randomBytes(32).toString('base64'), { mode: 0o600 })
    t.after(() => {
      rmSync(otherFile, { force: true })
    })
    const refused = await runCli(['rotate-key', '--new-key-file', otherFile], rotating)
    assert.equal(refused.code, 1)
    assert.match(
      refused.stderr,
      /a server is running on .* and writes under key [0-9a-f]{16}, not under the new key/,
    )

    // The rotation, killed with SIGKILL after three of its one-face transactions.
    const killed = spawnCli(
      ['rotate-key', '--new-key-file', keyFile, '--batch-rows', '1', '--pause-ms', '500'],
      rotating,
    )
    await killed.waitForStderr(new RegExp(`re-encrypted 3 of ${String(total)} faces`))
    killed.child.kill('SIGKILL')
    const { signal } = await killed.exited
    assert.equal(signal, 'SIGKILL')
    const halfway = keyUsage(dataDir)
    assert.equal(
      halfway.get(keyIdOf(oldKey)),
      total - 3,
      'the faces not yet moved are whole under the old key',
    )
    assert.equal(
      halfway.get(keyIdOf(newKey)),
      3 + late.length,
      'three moved, and the faces enrolled under the new key',
    )
    assert.ok(await recognizes(second.api, enrolled[5] ?? assert.fail()), 'the server serves mid-rotation')

    // Run again: it takes what is left, the server still serving.
    const resumed = await runCli(['rotate-key', '--new-key-file', keyFile, '--json'], rotating)
    assert.equal(resumed.code, 0, resumed.stderr)
    const report = JSON.parse(resumed.stdout) as RotationReport
    assert.equal(report.reencrypted, total - 3)
    assert.equal(report.serverRunning, true)
    assert.equal(report.complete, true)
    assert.deepEqual(report.embeddingKeys, [{ keyId: keyIdOf(newKey), faces: enrolled.length }])
    for (const person of enrolled) assert.ok(await recognizes(second.api, person), `${person.name} during`)
    await stopChild(second.server)

    // The old key alone opens none of the faces; the new key alone opens all, unchanged.
    const oldOnly = openStore({ dataDir, embeddingKey: Buffer.from(oldKey, 'base64'), logger })
    for (const ref of oldOnly.faceRefs()) {
      assert.throws(
        () => oldOnly.embeddingByLabel(ref.label),
        (error: unknown) => error instanceof FacewireError && error.code === 'ERR_CONFIG_INVALID',
      )
    }
    oldOnly.close()
    const newOnly = openStore({ dataDir, embeddingKey: Buffer.from(newKey, 'base64'), logger })
    const after = [...newOnly.embeddings()]
    newOnly.close()
    assert.equal(after.length, enrolled.length)
    for (const face of after) {
      if (embeddings.has(face.faceId)) assert.deepEqual(face.embedding, embeddings.get(face.faceId))
    }

    // Restart point 2: the new key alone. The server starts and recognizes everyone.
    const third = await serve({ FACEWIRE_DATA_DIR: dataDir, FACEWIRE_EMBEDDING_KEY: newKey })
    servers.push(third.server)
    for (const person of enrolled) assert.ok(await recognizes(third.api, person), `${person.name} after`)
  },
)
