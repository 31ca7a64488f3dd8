import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MAX_TIMER_MS, scheduleExpiry, type ExpiryClock } from '../../../server/streams/token-expiry.js'

const DAY_MS = 86_400_000

/** A clock whose time moves only when `advance` runs the timers that come due. */
function manualClock(start = 0) {
  let time = start
  let next = 1
  const timers = new Map<number, { at: number; callback: () => void; ms: number }>()
  const delays: number[] = []
  const clock: ExpiryClock = {
    now: () => time,
    setTimeout(callback, ms) {
      delays.push(ms)
      const id = next++
      timers.set(id, { at: time + ms, callback, ms })
      return { id, unref: () => undefined } as { unref(): undefined }
    },
    clearTimeout(handle) {
      timers.delete((handle as unknown as { id: number }).id)
    },
  }
  const advance = (ms: number): void => {
    const until = time + ms
    for (;;) {
      const due = [...timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0]
      if (due === undefined) break
      timers.delete(due[0])
      time = due[1].at
      due[1].callback()
    }
    time = until
  }
  return { clock, advance, delays, pending: () => timers.size }
}

test('a token valid for 30 days closes the stream at 30 days, not at the 24.8-day timer limit', () => {
  const { clock, advance, delays } = manualClock()
  let expired = 0
  scheduleExpiry(30 * DAY_MS, () => expired++, clock)
  assert.ok(
    delays.every((ms) => ms <= MAX_TIMER_MS),
    'no timer beyond what Node can hold',
  )
  advance(MAX_TIMER_MS)
  assert.equal(expired, 0, 'still valid after 24.8 days')
  advance(30 * DAY_MS - MAX_TIMER_MS - 1)
  assert.equal(expired, 0, 'still valid 1 ms before expiry')
  advance(1)
  assert.equal(expired, 1)
  advance(100 * DAY_MS)
  assert.equal(expired, 1, 'once')
})

test('an expiry already past fires at once, and a cancelled schedule never fires', () => {
  const past = manualClock(1000)
  let expired = 0
  scheduleExpiry(500, () => expired++, past.clock)
  past.advance(0)
  assert.equal(expired, 1)

  const cancelled = manualClock()
  const timer = scheduleExpiry(40 * DAY_MS, () => expired++, cancelled.clock)
  cancelled.advance(MAX_TIMER_MS)
  timer.cancel()
  assert.equal(cancelled.pending(), 0)
  cancelled.advance(100 * DAY_MS)
  assert.equal(expired, 1)
})

test("with Node's own timers, a token valid for 30 days neither closes at once nor overflows a timer", async (t) => {
  const warnings: string[] = []
  const onWarning = (warning: Error): void => {
    warnings.push(warning.name)
  }
  process.on('warning', onWarning)
  let expired = 0
  const timer = scheduleExpiry(Date.now() + 30 * DAY_MS, () => expired++)
  t.after(() => {
    timer.cancel()
    process.off('warning', onWarning)
  })
  // An overflowing delay would have fired after 1 ms; this timer comes due well after it.
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(expired, 0)
  assert.ok(!warnings.includes('TimeoutOverflowWarning'), 'no timer beyond what Node can hold')
})
