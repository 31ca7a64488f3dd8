import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { FacewireError } from '../../../server/errors.js'
import { createPool, type PoolOptions } from '../../../server/pipeline/pool.js'
import { createMemoryLogger } from '../../helpers/app.js'
import { codeOf } from '../../helpers/errors.js'

const workerUrl = new URL('../../fixtures/scripted-worker.js', import.meta.url)

interface Result {
  bytes: number
  threadId: number
  buffer: Float32Array
}

function scriptedPool(overrides: Partial<PoolOptions> = {}) {
  const { logger, lines } = createMemoryLogger()
  const pool = createPool<{ delayMs?: number }, Result>({
    workerUrl,
    workerData: {},
    size: 2,
    maxQueue: 2,
    taskTimeoutMs: 2000,
    logger,
    ...overrides,
  })
  return { pool, lines }
}

function frame(script: number, length = 16): Uint8Array {
  const bytes = new Uint8Array(length)
  bytes[0] = script
  return bytes
}

test('every worker loads before the pool is ready, and tasks are answered with their results', async (t) => {
  const { pool } = scriptedPool()
  t.after(() => pool.close())
  const info = await pool.ready
  assert.deepEqual(info.models, ['scripted'])
  assert.equal(pool.stats().ready, 2)
  const { result } = await pool.run(frame(0, 1234), {})
  assert.equal(result.bytes, 1234)
  assert.ok(result.buffer instanceof Float32Array, 'typed arrays come back as typed arrays')
  assert.equal(result.buffer[0], 1234)
})

test('a buffer the caller owns whole is transferred to the worker, not copied', async (t) => {
  const { pool } = scriptedPool()
  t.after(() => pool.close())
  await pool.ready
  const bytes = frame(0, 64)
  const running = pool.run(bytes, {})
  assert.equal(bytes.byteLength, 0, 'the transferred buffer is detached in the caller')
  assert.equal((await running).result.bytes, 64)
})

test('a view into a larger buffer is copied, leaving the caller its bytes', async (t) => {
  const { pool } = scriptedPool()
  t.after(() => pool.close())
  await pool.ready
  const backing = new Uint8Array(100)
  const view = backing.subarray(10, 30)
  const { result } = await pool.run(view, {})
  assert.equal(result.bytes, 20)
  assert.equal(backing.byteLength, 100)
})

test("a small Buffer from Node's shared pool is copied, never detaching the pool", async (t) => {
  const { pool } = scriptedPool()
  t.after(() => pool.close())
  await pool.ready
  const pooled = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  assert.ok(pooled.buffer.byteLength > pooled.byteLength, 'the fixture is a view into the shared pool')
  const { result } = await pool.run(pooled, {})
  assert.equal(result.bytes, 10, 'the worker got exactly the view, not the whole pool slab')
  assert.equal(pooled.byteLength, 10)
  assert.equal(Buffer.from('still usable').toString(), 'still usable')
})

test('tasks past the queue bound are refused with ERR_PIPELINE_BUSY, and the rest are answered', async (t) => {
  const { pool } = scriptedPool({ size: 1, maxQueue: 2 })
  t.after(() => pool.close())
  await pool.ready
  const running = [1, 2, 3].map(() => pool.run(frame(5), { delayMs: 50 }))
  assert.equal(await codeOf(pool.run(frame(0), {})), 'ERR_PIPELINE_BUSY')
  assert.equal(pool.stats().queued, 2)
  const answered = await Promise.all(running)
  assert.equal(answered.length, 3)
  assert.ok(answered.every((answer) => answer.result.bytes === 16))
  assert.ok((answered[2]?.queueMs ?? 0) > 0, 'the last task waited in the queue')
})

/** Resolves the next time the pool says a worker is free. */
function nextCapacity(pool: { onCapacity(listener: () => void): () => void }): Promise<void> {
  return new Promise((resolve) => {
    const off = pool.onCapacity(() => {
      off()
      resolve()
    })
  })
}

test('capacity counts the free workers, and the pool says when a finished task frees one', async (t) => {
  const { pool } = scriptedPool({ size: 2, maxQueue: 2 })
  t.after(() => pool.close())
  await pool.ready
  assert.equal(pool.capacity(), 2)
  const first = pool.run(frame(5), { delayMs: 50 })
  assert.equal(pool.capacity(), 1)
  const second = pool.run(frame(5), { delayMs: 50 })
  assert.equal(pool.capacity(), 0, 'both workers busy')
  assert.equal(pool.stats().queued, 0, 'tasks within capacity start at once')
  const freed = nextCapacity(pool)
  await freed
  assert.ok(pool.capacity() >= 1, 'capacity is there when the listener hears of it')
  await Promise.all([first, second])
  assert.equal(pool.capacity(), 2)
})

test('a worker freed while tasks are queued serves the queue first, and the listener hears only when one stays free', async (t) => {
  const { pool } = scriptedPool({ size: 1, maxQueue: 1 })
  t.after(() => pool.close())
  await pool.ready
  const signals: { capacity: number; queued: number; answered: number }[] = []
  let answered = 0
  pool.onCapacity(() => signals.push({ capacity: pool.capacity(), queued: pool.stats().queued, answered }))
  const running = pool.run(frame(5), { delayMs: 30 }).then(() => answered++)
  const queued = pool.run(frame(5), { delayMs: 30 }).then(() => answered++)
  assert.equal(pool.capacity(), 0, 'a queued task claims the next free worker')
  await Promise.all([running, queued])
  assert.equal(signals.length, 1, 'one signal: when the queued task finished, not when it took the worker')
  assert.deepEqual(signals[0], { capacity: 1, queued: 0, answered: 1 })
})

test('a replaced worker announces its capacity once it has loaded, and an unsubscribed listener hears nothing', async (t) => {
  const { pool } = scriptedPool({ size: 1 })
  t.after(() => pool.close())
  await pool.ready
  let unsubscribedCalls = 0
  const off = pool.onCapacity(() => unsubscribedCalls++)
  off()
  const crashed = pool.run(frame(2), {})
  const replacementReady = nextCapacity(pool)
  assert.equal(await codeOf(crashed), 'ERR_PIPELINE_WORKER_CRASHED')
  await replacementReady
  assert.equal(pool.stats().replaced, 1)
  assert.equal(pool.capacity(), 1)
  assert.equal(unsubscribedCalls, 0)
})

test('a capacity listener that throws is logged and the pool keeps serving', async (t) => {
  const { pool, lines } = scriptedPool({ size: 1 })
  t.after(() => pool.close())
  await pool.ready
  pool.onCapacity(() => {
    throw new Error('listener bug')
  })
  const heard = nextCapacity(pool)
  await pool.run(frame(0), {})
  await heard
  assert.ok(lines().some((line) => line['msg'] === 'pipeline.capacity_listener_failed'))
  assert.equal((await pool.run(frame(0), {})).result.bytes, 16)
})

test('a worker that crashes is replaced and its task answered ERR_PIPELINE_WORKER_CRASHED', async (t) => {
  const { pool, lines } = scriptedPool({ size: 1 })
  t.after(() => pool.close())
  await pool.ready
  assert.equal(await codeOf(pool.run(frame(2), {})), 'ERR_PIPELINE_WORKER_CRASHED')
  const { result } = await pool.run(frame(0), {})
  assert.equal(result.bytes, 16, 'the replacement serves the next task')
  assert.equal(pool.stats().replaced, 1)
  assert.ok(lines().some((line) => line['msg'] === 'pipeline.worker_crashed'))
})

test('a task that runs past its timeout is answered ERR_PIPELINE_TIMEOUT and the worker replaced', async (t) => {
  const { pool } = scriptedPool({ size: 1, taskTimeoutMs: 100 })
  t.after(() => pool.close())
  const first = await pool.ready
  assert.ok(first)
  const hung = pool.run(frame(1), {})
  assert.equal(await codeOf(hung), 'ERR_PIPELINE_TIMEOUT')
  const { result } = await pool.run(frame(0), {})
  assert.equal(result.bytes, 16)
  assert.equal(pool.stats().replaced, 1)
})

test('catalogue errors from a worker keep their code; unknown errors become ERR_INTERNAL', async (t) => {
  const { pool } = scriptedPool()
  t.after(() => pool.close())
  await pool.ready
  assert.equal(await codeOf(pool.run(frame(3), {})), 'ERR_FRAME_UNSUPPORTED')
  assert.equal(await codeOf(pool.run(frame(4), {})), 'ERR_INTERNAL')
  assert.equal((await pool.run(frame(0), {})).result.bytes, 16, 'the pool keeps serving')
  assert.equal(pool.stats().replaced, 0, 'an error is not a crash')
})

test('both workers take tasks at once', async (t) => {
  const { pool } = scriptedPool({ size: 2 })
  t.after(() => pool.close())
  await pool.ready
  const answers = await Promise.all([
    pool.run(frame(5), { delayMs: 100 }),
    pool.run(frame(5), { delayMs: 100 }),
  ])
  assert.notEqual(answers[0].result.threadId, answers[1].result.threadId)
})

test('a worker that cannot load its models rejects readiness with its code', async (t) => {
  const { pool } = scriptedPool({ size: 1, workerData: { failInit: true } })
  t.after(() => pool.close())
  await assert.rejects(
    pool.ready,
    (error: unknown) => error instanceof FacewireError && error.code === 'ERR_MODEL_INVALID',
  )
})

test('closing refuses queued tasks with ERR_SHUTTING_DOWN and finishes running ones', async () => {
  const { pool } = scriptedPool({ size: 1, maxQueue: 4 })
  await pool.ready
  const running = pool.run(frame(5), { delayMs: 50 })
  const queued = pool.run(frame(0), {})
  const closed = pool.close()
  assert.equal(await codeOf(queued), 'ERR_SHUTTING_DOWN')
  assert.equal((await running).result.bytes, 16)
  await closed
  assert.equal(pool.capacity(), 0, 'a closed pool has no capacity')
  assert.equal(await codeOf(pool.run(frame(0), {})), 'ERR_SHUTTING_DOWN')
})

test('close lets workers that are still loading finish, then asks every worker to release its resources before it exits', async () => {
  const closedDir = mkdtempSync(join(tmpdir(), 'facewire-pool-'))
  try {
    const { pool } = scriptedPool({ workerData: { initDelayMs: 300, closedDir } })
    // Closed while both workers are still loading: no thread is terminated mid-load.
    await pool.close()
    const closed = readdirSync(closedDir).filter((name) => name.startsWith('closed-'))
    assert.equal(closed.length, 2, 'both workers released their resources')

    const { pool: ready } = scriptedPool({ workerData: { closedDir } })
    await ready.ready
    assert.equal(await ready.run(frame(0), {}).then((r) => r.result.bytes), 16)
    await ready.close()
    assert.equal(readdirSync(closedDir).length, 4)
  } finally {
    rmSync(closedDir, { recursive: true, force: true })
  }
})
