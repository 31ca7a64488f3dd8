/**
 * Cluster mode over Redis with real servers: two facewire apps in this process, each with its own
 * data folder, sharing one Redis under a prefix of the test's own. Recognition happens on A (the
 * person is enrolled there only); watchers and limits are checked on B. The last test runs an
 * instance against a redis-server of its own and kills and restarts it.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test, type TestContext } from 'node:test'
import { openEventStream, type EventStream } from '../../client/stream-client.js'
import type { MatchEvent, UnknownEvent } from '../../protocol/wire.js'
import { createEventRelay } from '../../server/cluster/event-relay.js'
import { createRedisLink, type RedisLink } from '../../server/cluster/redis.js'
import { createReadiness } from '../../server/readiness.js'
import { isEventsTopic } from '../../server/streams/events.js'
import { createMemoryLogger, startTestApp, testToken, type StartedApp } from '../helpers/app.js'
import { httpRequest } from '../helpers/http.js'
import { encode, texturedScene } from '../helpers/images.js'
import { privateRedisFor, randomPrefix, SHARED_REDIS_URL, until } from '../helpers/redis.js'
import {
  baseUrl,
  enrollKit,
  examplePhoto,
  NO_FPS_LIMITS,
  noFaces,
  openStream,
} from '../helpers/stream-match.js'

/** Fast enough for tests, limits out of the way unless a test sets its own. */
const clusterEnv = (url: string, prefix: string): Record<string, string> => ({
  FACEWIRE_REDIS_URL: url,
  FACEWIRE_REDIS_PREFIX: prefix,
  ...NO_FPS_LIMITS,
})

async function startApp(t: TestContext, env: Record<string, string>): Promise<StartedApp> {
  const started = await startTestApp(env)
  t.after(() => started.stop())
  return started
}

const reachesRedis = (started: StartedApp): boolean => started.app.readiness.degraded()['redis'] === undefined

/** A new stream on `started` shown Kit until he is matched (a new session: a new event); its session id. */
async function streamKit(started: StartedApp, org: string, camera: string): Promise<string> {
  const stream = await openStream(started, org)
  try {
    const frame = await examplePhoto('kit_harington/3.jpg')
    for (let frameId = 1; frameId <= 4; frameId++) {
      const answer = stream.answerFor(frameId)
      stream.send({ frameId, camera }, frame)
      const result = await answer
      if (result.type === 'result' && result.faces[0]?.decision.status === 'match')
        return stream.hello.session
    }
    assert.fail('Kit was not matched within 4 frames')
  } finally {
    stream.close()
  }
}

const matches = (watcher: EventStream): MatchEvent[] =>
  watcher.events.filter((event): event is MatchEvent => event.type === 'match')
const cameras = (watcher: EventStream): (string | null)[] =>
  watcher.events.flatMap((event) => (event.type === 'hello' ? [] : [event.camera]))

/**
 * Another instance as seen from Redis: a link and relay of the test's own with the same prefix,
 * keeping what other instances publish and able to publish itself.
 */
function observer(t: TestContext, url: string, prefix: string) {
  const { logger } = createMemoryLogger()
  const link: RedisLink = createRedisLink({
    url,
    prefix,
    logger,
    readiness: createReadiness(),
    retry: { baseMs: 20, maxMs: 500 },
  })
  const received: { topic: string; event: MatchEvent | UnknownEvent }[] = []
  const relay = createEventRelay({
    link,
    deliver: (topic, text) => {
      const event = JSON.parse(text) as MatchEvent | UnknownEvent
      // A relay delivers what it publishes locally too: the observer's own barriers are not kept.
      if (event.track.session !== 'observer') received.push({ topic, event })
    },
    isTopic: isEventsTopic,
    logger,
  })
  link.connect()
  t.after(() => {
    link.close()
  })
  /** Publishes an unknown event from camera `camera` on `org`'s topic. */
  const barrier = (org: string, camera: string): void => {
    const track = { session: 'observer', id: 1, source: 'server' as const, frames: 1 }
    const event: UnknownEvent = {
      type: 'unknown',
      camera,
      similarity: 0,
      track,
      at: new Date().toISOString(),
    }
    relay.publish(`events/${org}`, JSON.stringify(event))
  }
  return { link, received, barrier }
}

test(
  'a match decided on instance A reaches the watchers of its organization on B once, and no watcher of another organization',
  { skip: noFaces },
  async (t) => {
    const prefix = randomPrefix()
    const a = await startApp(t, clusterEnv(SHARED_REDIS_URL, prefix))
    const b = await startApp(t, clusterEnv(SHARED_REDIS_URL, prefix))
    await until(() => reachesRedis(a) && reachesRedis(b), 'both instances reach Redis')
    const ready = await httpRequest(b.port, '/ready')
    assert.equal(ready.status, 200)
    assert.equal((JSON.parse(ready.body) as { status: string }).status, 'ready')

    const kitId = await enrollKit(a, 'acme')
    const onB = await openEventStream({ baseUrl: baseUrl(b), token: testToken('acme', ['watch']) })
    const outsiderOnB = await openEventStream({
      baseUrl: baseUrl(b),
      token: testToken('other-org', ['watch']),
    })
    const onA = await openEventStream({ baseUrl: baseUrl(a), token: testToken('acme', ['watch']) })
    t.after(() => {
      for (const watcher of [onB, outsiderOnB, onA]) watcher.close()
    })

    const session = await streamKit(a, 'acme', 'front-door')
    await until(() => matches(onB).length > 0, 'the match reaches B')
    // Barriers published after the match arrived: any copy of it, or of anything else, that Redis
    // would hand these watchers is delivered before them.
    const third = observer(t, SHARED_REDIS_URL, prefix)
    await until(() => third.link.isUp(), 'the observer is up')
    third.barrier('acme', 'barrier')
    third.barrier('other-org', 'barrier')
    await until(
      () => [onB, outsiderOnB, onA].every((watcher) => cameras(watcher).includes('barrier')),
      'every watcher has its barrier',
    )

    assert.equal(matches(onB).length, 1, 'exactly one match event on B')
    const event = matches(onB)[0]
    assert.equal(event?.identity.id, kitId)
    assert.equal(event.camera, 'front-door')
    assert.equal(event.track.session, session)
    assert.deepEqual(matches(onA), [event], 'the same single event on A, its own instance')
    assert.deepEqual(cameras(outsiderOnB), ['barrier'], 'another organization hears nothing else')
    const sent = await a.app.metrics.clusterEvents.get()
    assert.equal(sent.values.find((value) => value.labels['direction'] === 'sent')?.value, 1)
  },
)

/** One round of a limit test for `org`: what spends a point, and what tries one more. */
interface LimitRound {
  spend: () => Promise<boolean>
  more: () => Promise<boolean>
  close?: () => void
}

/**
 * Spends a fresh organization's `points` through `spend` and tries one more through `more`. The
 * windows are one second from the first point: a round that took longer than 900 ms may straddle
 * two and proves nothing, so it is run again (with a new organization) up to 5 times.
 */
async function spendThenOneMore(
  points: number,
  prepare: (org: string) => Promise<LimitRound>,
): Promise<{ spent: boolean[]; refused: boolean; org: string }> {
  for (let round = 0; ; round++) {
    const org = `org-${randomBytes(4).toString('hex')}`
    const { spend, more, close } = await prepare(org)
    try {
      const startedAt = Date.now()
      const spent: boolean[] = []
      for (let i = 0; i < points; i++) spent.push(await spend())
      const allowed = await more()
      if (Date.now() - startedAt > 900 && round < 4) continue
      return { spent, refused: !allowed, org }
    } finally {
      close?.()
    }
  }
}

test("an organization's REST and stream rate limits hold across instances: points spent on A are refused on B", async (t) => {
  const prefix = randomPrefix()
  const env = {
    ...clusterEnv(SHARED_REDIS_URL, prefix),
    FACEWIRE_API_RATE_LIMIT: '3',
    FACEWIRE_ORG_MAX_FPS: '2',
  }
  const a = await startApp(t, env)
  const b = await startApp(t, env)
  await until(() => reachesRedis(a) && reachesRedis(b), 'both instances reach Redis')

  const list = (on: StartedApp, org: string) => async () => {
    const response = await httpRequest(on.port, '/api/v1/identities', {
      headers: { authorization: `Bearer ${testToken(org)}` },
    })
    if (response.status === 429) {
      assert.match(response.body, /ERR_RATE_LIMITED/)
      assert.ok(Number(response.headers['retry-after']) >= 1)
    }
    return response.status === 200
  }
  const rest = await spendThenOneMore(3, (org) =>
    Promise.resolve({ spend: list(a, org), more: list(b, org) }),
  )
  assert.deepEqual(rest.spent, [true, true, true])
  assert.ok(rest.refused, 'the fourth request, on B, is refused')
  assert.ok(await list(b, `fresh-${rest.org}`)(), 'another organization is not')

  const image = await encode(texturedScene(96, 64), 'jpeg')
  const frames = await spendThenOneMore(2, async (org) => {
    // Streams open before the clock starts; the per-connection limit (1000/s) is out of the way.
    const onA = await openStream(a, org)
    const onB = await openStream(b, org)
    let frameId = 0
    const frameOn = (stream: typeof onA) => async () => {
      const answer = stream.answerFor(++frameId)
      stream.send({ frameId }, image)
      const got = await answer
      if (got.type === 'throttled') assert.equal(got.scope, 'organization')
      return got.type === 'result'
    }
    return {
      spend: frameOn(onA),
      more: frameOn(onB),
      close: () => {
        onA.close()
        onB.close()
      },
    }
  })
  assert.deepEqual(frames.spent, [true, true])
  assert.ok(frames.refused, "B's stream is throttled for the organization")
})

test(
  'Redis down and back: the instance serves degraded, limits fall back to memory, events stay local, then it reconnects on its own and fan-out resumes',
  { skip: noFaces },
  async (t) => {
    const redis = await privateRedisFor(t)
    const password = redis.password
    const prefix = randomPrefix()
    // Redis is not running: the instance starts anyway.
    const a = await startApp(t, { ...clusterEnv(redis.url, prefix), FACEWIRE_API_RATE_LIMIT: '3' })
    await until(() => a.app.readiness.degraded()['redis']?.startsWith('unreachable') === true, 'degraded')
    const readyBody = async () => {
      const ready = await httpRequest(a.port, '/ready')
      assert.equal(ready.status, 200, 'a degraded instance is still ready')
      return JSON.parse(ready.body) as { status: string; degraded?: Record<string, string> }
    }
    assert.deepEqual(await readyBody(), {
      status: 'degraded',
      components: { transport: true, models: true, gallery: true },
      degraded: { redis: 'unreachable: ECONNREFUSED' },
    })
    const list = (org: string) => async () =>
      (
        await httpRequest(a.port, '/api/v1/identities', {
          headers: { authorization: `Bearer ${testToken(org)}` },
        })
      ).status === 200
    const limited = async () =>
      (await spendThenOneMore(3, (org) => Promise.resolve({ spend: list(org), more: list(org) }))).refused
    assert.ok(await limited(), 'the insurance limiter holds the REST limit')

    await enrollKit(a, 'acme')
    const watcher = await openEventStream({ baseUrl: baseUrl(a), token: testToken('acme', ['watch']) })
    t.after(() => {
      watcher.close()
    })
    await streamKit(a, 'acme', 'before-redis')
    await until(() => cameras(watcher).includes('before-redis'), 'the local watcher has the event')

    // Redis comes up: the instance finds it on its own.
    await redis.start()
    const other = observer(t, redis.url, prefix)
    await until(() => reachesRedis(a) && other.link.isUp(), 'the instance and the observer reach Redis')
    assert.deepEqual((await readyBody()).degraded, undefined)
    await streamKit(a, 'acme', 'redis-up')
    await until(() => other.received.length > 0, 'the event reaches the other instance')
    other.barrier('acme', 'from-elsewhere')
    await until(() => cameras(watcher).includes('from-elsewhere'), 'and events come in')

    // Redis dies: events stay local, limits fall back again.
    await redis.kill()
    await until(() => !reachesRedis(a), 'the instance sees Redis gone')
    assert.ok((await readyBody()).degraded?.['redis'] !== undefined)
    await streamKit(a, 'acme', 'redis-down')
    await until(() => cameras(watcher).includes('redis-down'), 'the local watcher still gets events')
    assert.ok(await limited(), 'the insurance limiter holds the REST limit again')

    // Back again on the same port: reconnected without help, fan-out resumes.
    await redis.start()
    await until(() => reachesRedis(a) && other.link.isUp(), 'both reconnect on their own')
    await streamKit(a, 'acme', 'redis-back')
    await until(() => other.received.some(({ event }) => event.camera === 'redis-back'), 'fan-out resumes')
    await until(() => cameras(watcher).includes('redis-back'), 'and the local watcher has it too')

    assert.deepEqual(
      other.received.map(({ topic, event }) => [topic, event.type, event.camera]),
      [
        ['events/acme', 'match', 'redis-up'],
        ['events/acme', 'match', 'redis-back'],
      ],
      'nothing said while Redis was down is replayed',
    )
    assert.deepEqual(
      cameras(watcher),
      ['before-redis', 'redis-up', 'from-elsewhere', 'redis-down', 'redis-back'],
      'the local watcher got each event once',
    )
    const lines = a.lines()
    assert.equal(
      lines.filter((line) => line['msg'] === 'redis.down').length,
      2,
      'down at start, and once killed',
    )
    assert.equal(lines.filter((line) => line['msg'] === 'redis.up').length, 2)
    assert.ok(!JSON.stringify(lines).includes(password), 'the password is never logged')
  },
)
