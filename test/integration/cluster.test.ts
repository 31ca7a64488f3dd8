/**
 * Cluster mode with real parts: three facewire servers (separate processes, separate data
 * folders) on one PostgreSQL database (a fresh one per test) and the machine's Redis (a prefix per
 * test). What one instance is told, the others know within the documented bound; an instance
 * killed and restarted catches up; a PostgreSQL restart in the middle of a burst of enrollments
 * loses no face the servers acknowledged; events reach every instance's watchers once and an
 * organization's limit counts every instance.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { test, type TestContext } from 'node:test'
import { ApiError, createApiClient, type ApiClient } from '../../client/api-client.js'
import { mintToken } from '../../server/auth.js'
import { openDetectStream, openEventStream } from '../../client/stream-client.js'
import { freePort, startMain, stopChild, whenReady, type Child } from '../helpers/child.js'
import { lfwPeople, skipWithoutFaces } from '../helpers/images.js'
import {
  ensurePostgresRunning,
  freshDatabase,
  query,
  restartPostgres,
  stopPostgres,
} from '../helpers/postgres.js'
import { randomPrefix, SHARED_REDIS_URL } from '../helpers/redis.js'
import { tempDataDir } from '../helpers/temp-dir.js'

const noFaces = skipWithoutFaces()
const SECRET = 'cluster-test-secret-that-is-long-enough-0123456789'
/** The documented propagation bound (docs/scale-out.md): a poll period plus load, with room. */
const PROPAGATION_BOUND_MS = 5000

interface Instance {
  name: string
  port: number
  dataDir: string
  server: Child
  api: (org?: string) => ApiClient
}

function tokenFor(org: string): string {
  return mintToken({
    org,
    scopes: ['detect', 'enroll', 'admin'],
    sub: 'cluster-test',
    ttlSeconds: 900,
    key: SECRET,
  })
}

/** Starts (or restarts, with the same port and data folder) one instance of the cluster. */
async function start(
  t: TestContext,
  env: Record<string, string>,
  name: string,
  reuse?: { port: number; dataDir: string },
): Promise<Instance> {
  const port = reuse?.port ?? (await freePort())
  const dataDir = reuse?.dataDir ?? tempDataDir()
  const server = startMain({ ...env, PORT: String(port), FACEWIRE_DATA_DIR: dataDir })
  t.after(async () => {
    await stopChild(server)
    if (reuse === undefined) rmSync(dataDir, { recursive: true, force: true })
  })
  const { baseUrl } = await whenReady(server, 120_000)
  return {
    name,
    port,
    dataDir,
    server,
    api: (org = 'acme') => createApiClient({ baseUrl, token: tokenFor(org) }),
  }
}

async function cluster(
  t: TestContext,
  count: number,
): Promise<{ env: Record<string, string>; nodes: Instance[]; url: string }> {
  const url = await freshDatabase(t)
  const env = {
    FACEWIRE_JWT_SECRET: SECRET,
    FACEWIRE_DATABASE_URL: url,
    FACEWIRE_EMBEDDING_KEY: randomBytes(32).toString('base64'),
    FACEWIRE_SYNC_POLL_MS: '500',
    LOG_LEVEL: 'info',
  }
  const nodes: Instance[] = []
  // One at a time: the first migrates; on two cores, parallel model loading only adds contention.
  for (const name of ['A', 'B', 'C'].slice(0, count)) nodes.push(await start(t, env, name))
  return { env, nodes, url }
}

/** The name `api` recognizes in `photo` (undefined: nobody). */
async function recognized(api: ApiClient, photo: Uint8Array): Promise<string | undefined> {
  const { faces } = await api.recognize(photo)
  const decision = faces[0]?.decision
  return decision?.status === 'match' ? decision.identity?.name : undefined
}

/** Polls until `check` holds; the ms it took. */
async function within(boundMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await check()) return Date.now() - started
    if (Date.now() - started > boundMs) throw new Error(`not within ${String(boundMs)} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

test(
  'three instances on one database: enrolled on A is recognized on B, deleted on B is gone on C, and a killed instance catches up',
  { skip: noFaces, timeout: 300_000 },
  async (t) => {
    const { env, nodes } = await cluster(t, 3)
    const [a, b, c] = nodes
    assert.ok(a !== undefined && b !== undefined && c !== undefined)
    const [ada, bob] = lfwPeople(2)
    assert.ok(ada !== undefined && bob !== undefined)
    const adaPhoto = await readFile(ada.file)
    const bobPhoto = await readFile(bob.file)

    const identity = await a.api().createIdentity({ name: ada.name })
    await a.api().addFace(identity.id, adaPhoto)
    assert.equal(await recognized(a.api(), adaPhoto), ada.name, 'the writer reads its own write at once')
    const propagation = await within(
      PROPAGATION_BOUND_MS,
      async () => (await recognized(b.api(), adaPhoto)) === ada.name,
    )
    t.diagnostic(`enroll on A -> recognized on B: ${String(propagation)} ms`)
    assert.equal(
      await recognized(b.api('globex'), adaPhoto),
      undefined,
      "another org's request never finds her",
    )
    assert.equal((await b.api().getIdentity(identity.id)).faceCount, 1, 'B reads the shared store')

    await b.api().deleteIdentity(identity.id)
    await within(PROPAGATION_BOUND_MS, async () => (await recognized(c.api(), adaPhoto)) === undefined)
    await assert.rejects(
      c.api().getIdentity(identity.id),
      (error) => error instanceof ApiError && error.status === 404,
    )
    // Every instance's indexes reflect the same change seq once they have converged (/metrics).
    const seqOf = async (node: Instance): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${String(node.port)}/metrics`)).text()
      return Number(/^facewire_gallery_seq (\d+)$/m.exec(text)?.[1] ?? Number.NaN)
    }
    await within(PROPAGATION_BOUND_MS, async () => {
      const seqs = await Promise.all([a, b, c].map(seqOf))
      return seqs.every((seq) => seq > 0 && seq === seqs[0])
    })

    // C dies without a word; A enrolls meanwhile; C comes back on its data folder and catches up.
    c.server.child.kill('SIGKILL')
    await new Promise((resolve) => c.server.child.once('exit', resolve))
    const bobId = (await a.api().createIdentity({ name: bob.name })).id
    await a.api().addFace(bobId, bobPhoto)
    const back = await start(t, env, 'C again', { port: c.port, dataDir: c.dataDir })
    assert.equal(await recognized(back.api(), bobPhoto), bob.name, 'caught up before it answered /ready')
    assert.equal(await recognized(back.api(), adaPhoto), undefined)
  },
)

test(
  'a PostgreSQL restart during a burst of enrollments loses no acknowledged face; enrollment answers 503 meanwhile and recognition goes on',
  { skip: noFaces, timeout: 300_000 },
  async (t) => {
    t.after(() => ensurePostgresRunning())
    const { nodes, url } = await cluster(t, 2)
    const [a, b] = nodes
    assert.ok(a !== undefined && b !== undefined)
    const people = lfwPeople(24)
    const photos = await Promise.all(people.map((person) => readFile(person.file)))
    const first = people[0]
    assert.ok(first !== undefined)
    const known = await a.api().createIdentity({ name: first.name })
    await a.api().addFace(known.id, photos[0] ?? new Uint8Array())

    const acknowledged: string[] = []
    const outcomes = new Map<string, number>()
    const count = (key: string): void => {
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
    }
    let restarted = false
    const burst = async (node: Instance, offset: number): Promise<void> => {
      for (let i = 1 + offset; i < people.length; i += 2) {
        const person = people[i]
        const photo = photos[i]
        if (person === undefined || photo === undefined) continue
        try {
          const identity = await node.api().createIdentity({ name: person.name })
          const { face } = await node.api().addFace(identity.id, photo)
          acknowledged.push(face.id)
          count('201')
        } catch (error) {
          if (!(error instanceof ApiError)) throw error
          count(`${String(error.status)} ${error.code}`)
          assert.equal(
            error.status,
            503,
            `only ERR_STORE_UNAVAILABLE while the database is away: ${error.message}`,
          )
          assert.equal(error.code, 'ERR_STORE_UNAVAILABLE')
        }
        if (i === 7 && !restarted) {
          restarted = true
          restartPostgres()
        }
      }
    }
    await Promise.all([burst(a, 0), burst(b, 1)])
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`)
    assert.ok(restarted)
    assert.ok(acknowledged.length > 0)

    const stored = new Set((await query<{ id: string }>(url, 'SELECT id FROM faces')).map((row) => row.id))
    const lost = acknowledged.filter((id) => !stored.has(id))
    assert.deepEqual(lost, [], 'every acknowledged face is in the database')

    // The database away for a while: recognition goes on from memory, enrollment is refused with
    // a retryable 503, /ready stays 200 and names the degraded component.
    stopPostgres()
    try {
      assert.equal(await recognized(b.api(), photos[0] ?? new Uint8Array()), first.name)
      await assert.rejects(
        a.api().createIdentity({ name: 'while down' }),
        (error) =>
          error instanceof ApiError && error.status === 503 && error.code === 'ERR_STORE_UNAVAILABLE',
      )
      const degraded = await fetch(`http://127.0.0.1:${String(a.port)}/ready`)
      const body = (await degraded.json()) as { status: string; degraded?: Record<string, string> }
      assert.equal(degraded.status, 200)
      assert.equal(body.status, 'degraded')
      assert.match(body.degraded?.['database'] ?? '', /unreachable/)
    } finally {
      await ensurePostgresRunning()
    }
    // Back on its own: the next write succeeds and the degradation clears.
    await within(30_000, async () => {
      try {
        await a.api().createIdentity({ name: 'after' })
        return true
      } catch {
        return false
      }
    })
    const ready = (await (await fetch(`http://127.0.0.1:${String(a.port)}/ready`)).json()) as {
      status: string
    }
    assert.equal(ready.status, 'ready')
    // Seconds of outage are a few log lines, not one per poll or reconnection attempt.
    for (const node of [a, b]) {
      const count = (msg: string): number => node.server.lines.filter((line) => line['msg'] === msg).length
      assert.ok(
        count('gallery.sync_failed') <= 1,
        `${node.name}: sync_failed ${String(count('gallery.sync_failed'))}`,
      )
      assert.ok(
        count('database.listen_lost') <= 2,
        `${node.name}: listen_lost ${String(count('database.listen_lost'))}`,
      )
      assert.ok(count('database.down') >= 1 && count('database.down') <= 2, `${node.name}: database.down`)
    }
  },
)

test(
  'three instances with Redis: a stream on A gives one event at a watcher on C and none at another org; an org limit counts all three',
  { skip: noFaces, timeout: 300_000 },
  async (t) => {
    const url = await freshDatabase(t)
    const env = {
      FACEWIRE_JWT_SECRET: SECRET,
      FACEWIRE_DATABASE_URL: url,
      FACEWIRE_REDIS_URL: SHARED_REDIS_URL,
      FACEWIRE_REDIS_PREFIX: randomPrefix(),
      FACEWIRE_EVENTS_UNKNOWN: 'true',
      FACEWIRE_API_RATE_LIMIT: '6',
      LOG_LEVEL: 'info',
    }
    const nodes: Instance[] = []
    for (const name of ['A', 'B', 'C']) nodes.push(await start(t, env, name))
    const [a, b, c] = nodes
    assert.ok(a !== undefined && b !== undefined && c !== undefined)
    // Each instance is ready only once it reaches Redis (degraded until then).
    for (const node of nodes) {
      await within(20_000, async () => {
        const body = (await (await fetch(`http://127.0.0.1:${String(node.port)}/ready`)).json()) as {
          status: string
        }
        return body.status === 'ready'
      })
    }
    const [ada, stranger] = lfwPeople(2)
    assert.ok(ada !== undefined && stranger !== undefined)
    const adaPhoto = await readFile(ada.file)
    const identity = await a.api().createIdentity({ name: ada.name })
    await a.api().addFace(identity.id, adaPhoto)

    const watcherC = await openEventStream({
      baseUrl: `http://127.0.0.1:${String(c.port)}`,
      token: tokenFor('acme'),
    })
    const otherOrgC = await openEventStream({
      baseUrl: `http://127.0.0.1:${String(c.port)}`,
      token: tokenFor('globex'),
    })
    t.after(() => {
      watcherC.close()
      otherOrgC.close()
    })
    const streamOn = async (node: Instance, photo: Uint8Array, wanted: string): Promise<void> => {
      const stream = await openDetectStream({
        baseUrl: `http://127.0.0.1:${String(node.port)}`,
        token: tokenFor('acme'),
      })
      try {
        for (let frameId = 1; frameId <= 6; frameId++) {
          const answer = stream.answerFor(frameId)
          stream.send({ frameId, camera: 'door-1' }, photo)
          const result = await answer
          if (result.type === 'result' && result.faces[0]?.decision.status === wanted) return
        }
        assert.fail(`no ${wanted} decision within 6 frames`)
      } finally {
        stream.close()
      }
    }
    await streamOn(a, adaPhoto, 'match')
    // A barrier: A decides a stranger after the match; events of one instance arrive in order, so
    // once C's watcher has the stranger's event it has everything A sent before it.
    await streamOn(a, await readFile(stranger.file), 'unknown')
    await within(10_000, () => Promise.resolve(watcherC.events.some((event) => event.type === 'unknown')))
    const matches = watcherC.events.filter((event) => event.type === 'match')
    assert.equal(matches.length, 1, 'exactly one match event at the watcher on C')
    assert.equal(matches[0]?.type === 'match' ? matches[0].identity.name : undefined, ada.name)
    assert.deepEqual(
      otherOrgC.events.filter((event) => event.type !== 'hello'),
      [],
      "another org's watcher hears nothing",
    )

    // The org's REST limit (6 a second) counts requests on all three instances.
    let refused = false
    for (let round = 0; round < 5 && !refused; round++) {
      const org = `limited-${String(round)}`
      const started = Date.now()
      const spent: boolean[] = await Promise.all(
        [a, b, a, b, a, b].map(async (node) => {
          try {
            await node.api(org).listIdentities({ limit: 1 })
            return true
          } catch {
            return false
          }
        }),
      )
      const more: string = await c
        .api(org)
        .listIdentities({ limit: 1 })
        .then(
          () => 'allowed',
          (error: unknown) =>
            error instanceof ApiError ? `${String(error.status)} ${error.code}` : 'failed',
        )
      // A round that crossed a one-second window boundary proves nothing: try again.
      if (Date.now() - started > 900) continue
      assert.deepEqual(spent, [true, true, true, true, true, true])
      assert.equal(more, '429 ERR_RATE_LIMITED', 'the seventh request, on C, is refused')
      refused = true
    }
    assert.ok(refused, 'a round fitted in one window')
  },
)
