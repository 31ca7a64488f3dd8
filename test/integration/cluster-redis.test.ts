/**
 * Cluster mode's Redis parts against real Redis, without the rest of the server: the link
 * (server/cluster/redis.ts), the event relay and the shared rate limiters. Each "instance" here is
 * a link of its own (its own two connections), as each facewire process has.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { createEventRelay, EVENTS_CHANNEL, type EventRelay } from '../../server/cluster/event-relay.js'
import { createRedisLink, type RedisLink } from '../../server/cluster/redis.js'
import { createRateLimiter } from '../../server/rate-limit.js'
import { createReadiness, type Readiness } from '../../server/readiness.js'
import { isEventsTopic } from '../../server/streams/events.js'
import { createMemoryLogger } from '../helpers/app.js'
import { privateRedisFor, randomPrefix, SHARED_REDIS_URL, until } from '../helpers/redis.js'

interface Instance {
  link: RedisLink
  readiness: Readiness
  lines: () => Record<string, unknown>[]
}

/** A link as an instance opens it, closed after the test. */
function instance(t: TestContext, url: string, prefix: string, heartbeatMs?: number): Instance {
  const { logger, lines } = createMemoryLogger()
  const readiness = createReadiness()
  const link = createRedisLink({
    url,
    prefix,
    logger,
    readiness,
    // Quick reconnection, so a restarted Redis is found again within a second.
    retry: { baseMs: 20, maxMs: 500 },
    ...(heartbeatMs === undefined ? {} : { heartbeatMs, commandTimeoutMs: 300 }),
  })
  link.connect()
  t.after(() => {
    link.close()
  })
  return { link, readiness, lines }
}

/** A relay whose deliveries are kept per topic, as the watchers of each org would get them. */
function relayOf(link: RedisLink): { relay: EventRelay; watchers: Map<string, string[]> } {
  const watchers = new Map<string, string[]>()
  const { logger } = createMemoryLogger()
  const relay = createEventRelay({
    link,
    deliver: (topic, text) => {
      watchers.set(topic, [...(watchers.get(topic) ?? []), text])
    },
    isTopic: isEventsTopic,
    logger,
  })
  return { relay, watchers }
}

const logged = (lines: () => Record<string, unknown>[], msg: string) =>
  lines().filter((line) => line['msg'] === msg)

test('an event published on one instance reaches the same topic on another once, is not echoed to its origin, and stays within its prefix', async (t) => {
  const prefix = randomPrefix()
  const a = instance(t, SHARED_REDIS_URL, prefix)
  const b = instance(t, SHARED_REDIS_URL, prefix)
  const elsewhere = instance(t, SHARED_REDIS_URL, randomPrefix()) // another deployment, same Redis
  const relays = [relayOf(a.link), relayOf(b.link), relayOf(elsewhere.link)] as const
  const [onA, onB, onElsewhere] = relays
  await until(() => [a, b, elsewhere].every((i) => i.link.isUp()), 'every link is up')
  assert.deepEqual(a.readiness.degraded(), {})

  onA.relay.publish('events/acme', '{"n":1}')
  onA.relay.publish('events/acme', '{"n":2}')
  // Neither a foreign topic nor garbage published on the channel reaches any watcher.
  await b.link.client.publish(
    prefix + EVENTS_CHANNEL,
    JSON.stringify({ origin: 'intruder', topic: 'internal/x', text: '{}' }),
  )
  await b.link.client.publish(prefix + EVENTS_CHANNEL, 'not json')
  await until(() => onB.watchers.get('events/acme')?.length === 2, 'B has both events')
  // A barrier published after B saw both: whatever copy of them Redis would hand anyone comes first.
  onB.relay.publish('events/zeta', 'barrier')
  await until(() => onA.watchers.get('events/zeta') !== undefined, 'A has the barrier')

  assert.deepEqual(onA.watchers.get('events/acme'), ['{"n":1}', '{"n":2}'], 'delivered on A once: no echo')
  assert.deepEqual(onB.watchers.get('events/acme'), ['{"n":1}', '{"n":2}'], 'on B once, in order')
  assert.deepEqual([...onB.watchers.keys()].sort(), ['events/acme', 'events/zeta'], "no other org's topic")
  assert.deepEqual([...onA.watchers.keys()].sort(), ['events/acme', 'events/zeta'])
  assert.equal(onElsewhere.watchers.size, 0, 'another prefix hears nothing')
})

test('a shared limit counts the points of every instance, per key', async (t) => {
  const prefix = randomPrefix()
  const a = instance(t, SHARED_REDIS_URL, prefix)
  const b = instance(t, SHARED_REDIS_URL, prefix)
  await until(() => a.link.isUp() && b.link.isUp(), 'both links are up')
  const onA = createRateLimiter({ points: 3, shared: { store: a.link, name: 'api' } })
  const onB = createRateLimiter({ points: 3, shared: { store: b.link, name: 'api' } })
  const onBOther = createRateLimiter({ points: 3, shared: { store: b.link, name: 'other' } })
  // The window is one second: a round that straddles two windows proves nothing and is run again.
  for (let round = 0; ; round++) {
    const org = `acme-${String(round)}`
    const startedAt = Date.now()
    const onAWaits = await Promise.all([onA.take(org), onA.take(org), onA.take(org)])
    const onBWait = await onB.take(org)
    const otherOrg = await onB.take(`other-${String(round)}`)
    const otherLimiter = await onBOther.take(org)
    if (Date.now() - startedAt > 800 && round < 3) continue
    assert.deepEqual(onAWaits, [0, 0, 0])
    assert.ok(onBWait > 0 && onBWait <= 1000, `B refuses the fourth point (wait ${String(onBWait)} ms)`)
    assert.equal(otherOrg, 0, 'another key has its own points')
    assert.equal(otherLimiter, 0, 'another limiter has its own keys')
    break
  }
  const keys = await a.link.client.keys(`${prefix}rl:api:*`)
  assert.ok(keys.length > 0 && keys.every((key) => key.startsWith(`${prefix}rl:api:`)), keys.join(', '))
})

test('Redis lost, hung and back: the link says so once each way, limits fall back to memory, nothing leaks the password', async (t) => {
  const redis = await privateRedisFor(t)
  const password = redis.password
  const prefix = randomPrefix()
  // Redis is not running yet: the instance starts degraded.
  const a = instance(t, redis.url, prefix, 100)
  await until(() => a.readiness.degraded()['redis']?.startsWith('unreachable') === true, 'degraded')
  assert.equal(a.readiness.degraded()['redis'], 'unreachable: ECONNREFUSED')
  assert.equal(await a.link.publish('anything', 'x'), false, 'nothing is sent or queued while down')
  const limiter = createRateLimiter({ points: 2, shared: { store: a.link, name: 'api' } })
  const whileDown = [await limiter.take('acme'), await limiter.take('acme'), await limiter.take('acme')]
  assert.deepEqual(
    whileDown.map((wait) => wait > 0),
    [false, false, true],
    'the insurance limiter holds',
  )

  await redis.start()
  await until(() => a.link.isUp(), 'the link is up once Redis is')
  assert.deepEqual(a.readiness.degraded(), {})
  const b = instance(t, redis.url, prefix, 100)
  const [onA, onB] = [relayOf(a.link), relayOf(b.link)]
  await until(() => b.link.isUp(), 'B is up')
  onA.relay.publish('events/acme', 'one')
  await until(() => onB.watchers.get('events/acme')?.length === 1, 'the event crossed')

  await redis.kill()
  await until(() => !a.link.isUp() && !b.link.isUp(), 'both links see Redis gone')
  assert.ok(a.readiness.degraded()['redis'] !== undefined)
  onA.relay.publish('events/acme', 'local only')
  assert.deepEqual(onA.watchers.get('events/acme'), ['one', 'local only'], 'local watchers still get it')

  await redis.start()
  await until(() => a.link.isUp() && b.link.isUp(), 'both links are back on their own')
  onA.relay.publish('events/acme', 'two')
  await until(() => onB.watchers.get('events/acme')?.length === 2, 'the relay works again')
  assert.deepEqual(
    onB.watchers.get('events/acme'),
    ['one', 'two'],
    'what was said while down is not replayed',
  )

  // Hung: connections stay open but nothing answers. The heartbeat notices.
  redis.pause()
  await until(() => a.readiness.degraded()['redis']?.startsWith('not answering') === true, 'hung seen')
  assert.ok((await limiter.take('hung')) === 0, 'a limit check does not wait for a hung Redis')
  redis.resume()
  await until(() => a.link.isUp(), 'back after the pause')

  const downs = logged(a.lines, 'redis.down').map((line) => line['reason'])
  const ups = logged(a.lines, 'redis.up')
  assert.equal(downs.length, 3, `start, kill, pause: ${JSON.stringify(downs)}`)
  assert.equal(ups.length, 3)
  assert.equal(ups[0]?.['target'], `127.0.0.1:${String(redis.port)}`)
  assert.ok(!JSON.stringify(a.lines()).includes(password), 'the password is never logged')
  assert.ok(!JSON.stringify(b.lines()).includes(password))
})
