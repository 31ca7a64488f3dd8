/**
 * Fuzzing of the identities routes' JSON bodies and queries on the real app in this process:
 * random, nested and broken JSON is always answered with a catalogue 4xx error or success, never
 * a 500. Seeded; see test/helpers/fuzz.ts for longer runs (FACEWIRE_FUZZ_ITERATIONS) and
 * reproducing a failure.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ERRORS, isErrorCode } from '../../protocol/errors.js'
import { startTestApp, testToken } from '../helpers/app.js'
import {
  fuzz,
  fuzzIterations,
  integer,
  mutate,
  pick,
  randomBytes,
  randomText,
  type Random,
} from '../helpers/fuzz.js'
import { httpRequest } from '../helpers/http.js'

const KEYS = ['name', 'externalId', 'metadata', 'org', '__proto__', 'constructor', 'toString', '', 'a', 'a.b']

/** JSON text of a value: mostly shallow, sometimes wide, sometimes thousands of levels deep. */
function randomJson(random: Random, depth = 0, budget = { left: 16_384 }): string {
  const roll = random()
  if (depth === 0 && roll < 0.15) {
    // Built as text: JSON.stringify itself would overflow the stack on it.
    let open = ''
    let close = ''
    for (let level = integer(random, 30, 6000); level > 0; level--) {
      const array = random() < 0.5
      open += array ? '[' : `{${JSON.stringify(pick(random, KEYS))}:`
      close = (array ? ']' : '}') + close
    }
    return open + randomJson(random, 99, budget) + close
  }
  if (depth > 4 || roll < 0.5 || budget.left <= 0) {
    const value = pick(random, [
      'null',
      'true',
      '0',
      '-0',
      '1e308',
      '-1.5e-7',
      '123456789012345678901234567890',
      String(integer(random, -1000, 1000)),
      JSON.stringify(randomText(random, 20)),
      JSON.stringify('x'.repeat(integer(random, 0, 5000))),
    ])
    // Bounded, so a body stays in the tens of KiB (the body limit has its own tests).
    budget.left -= value.length
    return value
  }
  const size = integer(random, 0, random() < 0.1 ? 200 : 5)
  const items: string[] = []
  for (let i = 0; i < size; i++) {
    const value = randomJson(random, depth + 1, budget)
    if (roll < 0.7) items.push(value)
    else
      items.push(`${JSON.stringify(random() < 0.5 ? pick(random, KEYS) : randomText(random, 10))}:${value}`)
  }
  return roll < 0.7 ? `[${items.join(',')}]` : `{${items.join(',')}}`
}

/** A body shaped like an identity more often than chance, with random values and extra keys. */
function randomBody(random: Random): string {
  const roll = random()
  if (roll < 0.15) {
    // Broken JSON: a valid body cut or edited, or noise.
    const text = `{"name":${JSON.stringify(randomText(random, 8))},"metadata":${randomJson(random, 1)}}`
    const bytes = random() < 0.7 ? mutate(random, new TextEncoder().encode(text), 4) : randomBytes(random, 40)
    return new TextDecoder().decode(bytes)
  }
  if (roll < 0.3) return randomJson(random)
  const fields: string[] = []
  const text = () => JSON.stringify(randomText(random, 30))
  if (random() < 0.8) fields.push(`"name":${random() < 0.7 ? text() : randomJson(random, 1)}`)
  if (random() < 0.4) {
    fields.push(`"externalId":${random() < 0.6 ? pick(random, ['null', text()]) : randomJson(random, 1)}`)
  }
  if (random() < 0.6) fields.push(`"metadata":${randomJson(random, random() < 0.5 ? 0 : 1)}`)
  if (random() < 0.15) fields.push(`${JSON.stringify(pick(random, KEYS))}:${randomJson(random, 1)}`)
  return `{${fields.join(',')}}`
}

function percentEncode(text: string): string {
  return [...new TextEncoder().encode(text)].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('')
}

function randomQuery(random: Random): string {
  const parts: string[] = []
  for (let i = integer(random, 0, 3); i > 0; i--) {
    const key = pick(random, ['limit', 'cursor', 'after', 'x', 'access_token'])
    const value = pick(random, [
      '1',
      '1000',
      '1001',
      '0',
      '-1',
      '1e3',
      '0x10',
      ' 5',
      '5.0',
      '',
      '%',
      randomText(random, 12),
    ])
    // Raw, broken percent escapes now and then; otherwise every byte escaped (a lone surrogate too).
    parts.push(`${key}=${random() < 0.1 ? pick(random, ['%', '%zz', '%ff%fe']) : percentEncode(value)}`)
  }
  return parts.length === 0 ? '' : `?${parts.join('&')}`
}

test('random, nested and broken JSON to the identities routes is a catalogue 4xx or a success, never a 500', async (t) => {
  const started = await startTestApp({ FACEWIRE_API_RATE_LIMIT: '1000000' })
  t.after(() => started.stop())
  const token = testToken('fuzz', ['enroll'])
  const created = await httpRequest(started.port, '/api/v1/identities', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: '{"name":"target"}',
  })
  assert.equal(created.status, 201, created.body)
  const id = (JSON.parse(created.body) as { id: string }).id
  const statuses = new Map<number, number>()

  await fuzz(fuzzIterations(400), async (random) => {
    const route = pick(random, ['create', 'create', 'patch', 'patch-missing', 'list'])
    const path =
      route === 'list'
        ? `/api/v1/identities${randomQuery(random)}`
        : route === 'create'
          ? '/api/v1/identities'
          : `/api/v1/identities/${route === 'patch' ? id : '00000000-0000-4000-8000-000000000000'}`
    const method = route === 'list' ? 'GET' : route === 'create' ? 'POST' : 'PATCH'
    const type =
      random() < 0.95
        ? 'application/json'
        : pick(random, ['text/plain', 'application/json; charset=utf-8', ''])
    const body = method === 'GET' ? undefined : randomBody(random)
    const answer = await httpRequest(started.port, path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': type },
      ...(body === undefined ? {} : { body }),
    })
    const context = `${method} ${path} ${type} ${String(body?.slice(0, 200))}: ${String(answer.status)} ${answer.body.slice(0, 300)}`
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
    assert.ok(answer.status < 500, context)
    if (answer.status >= 400) {
      const { error } = JSON.parse(answer.body) as { error: { code: unknown } }
      assert.ok(isErrorCode(error.code), context)
      assert.equal(ERRORS[error.code].http, answer.status, context)
    } else {
      assert.ok([200, 201].includes(answer.status), context)
      const parsed = JSON.parse(answer.body) as { metadata?: unknown; items?: unknown[] }
      if (route === 'list') assert.ok(Array.isArray(parsed.items), context)
      else assert.ok(typeof parsed.metadata === 'object' && parsed.metadata !== null, context)
    }
  })
  // The generator reaches success and refusal on both sides, or the test proves little.
  for (const status of [200, 201, 400, 404]) {
    assert.ok((statuses.get(status) ?? 0) > 0, `${String(status)} in ${JSON.stringify([...statuses])}`)
  }
  const failed = started.lines().filter((line) => line.msg === 'http.failed')
  assert.deepEqual(failed, [], 'nothing was logged as an internal failure')
})
