import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createFrameSlots, type Turn } from '../../../server/streams/frame-slots.js'

const started = (turn: Turn<string, number> | undefined): [string, number] | undefined =>
  turn === undefined ? undefined : [turn.connection, turn.frame]

test('a frame offered when nobody waits starts at the next free worker', () => {
  const slots = createFrameSlots<string, number>()
  assert.equal(slots.next(), undefined, 'nothing to start')
  assert.equal(slots.offer('a', 1), undefined)
  assert.equal(slots.waiting, 1)
  assert.deepEqual(started(slots.next()), ['a', 1])
  assert.equal(slots.waiting, 0, 'a connection with a frame in flight is not in line')
  assert.equal(slots.next(), undefined, 'one frame in flight per connection')
})

test('a burst from one connection leaves only the latest frame waiting, each replaced frame handed back once', () => {
  const slots = createFrameSlots<string, number>()
  slots.offer('a', 1)
  assert.deepEqual(started(slots.next()), ['a', 1])
  const replaced: number[] = []
  for (let frame = 2; frame <= 10; frame++) {
    const older = slots.offer('a', frame)
    if (older !== undefined) replaced.push(older)
  }
  assert.deepEqual(replaced, [2, 3, 4, 5, 6, 7, 8, 9])
  assert.equal(slots.next(), undefined, 'the waiting frame does not start while one is in flight')
  slots.finished('a')
  assert.deepEqual(started(slots.next()), ['a', 10], 'the newest frame runs next')
  slots.finished('a')
  assert.equal(slots.next(), undefined)
  assert.equal(slots.remove('a'), undefined, 'nothing left to hand back')
})

test('connections take turns: a connection sending fast cannot starve another', () => {
  const slots = createFrameSlots<string, number>()
  slots.offer('busy', 1)
  assert.deepEqual(started(slots.next()), ['busy', 1])
  slots.offer('busy', 2)
  slots.offer('quiet', 100)
  slots.offer('busy', 3)
  slots.finished('busy')
  // The freed worker goes to the connection that was already waiting, not back to the busy one.
  assert.deepEqual(started(slots.next()), ['quiet', 100])
  // One worker, now running quiet's frame: busy's newest frame waits in line, ahead of quiet's next.
  slots.offer('quiet', 101)
  slots.finished('quiet')
  assert.deepEqual(started(slots.next()), ['busy', 3])
  slots.finished('busy')
  assert.deepEqual(started(slots.next()), ['quiet', 101])
})

test('a freed worker picks the connection that has waited longest, and a replaced frame keeps its place in line', () => {
  const slots = createFrameSlots<string, number>()
  slots.offer('a', 1)
  slots.offer('b', 2)
  slots.offer('c', 3)
  assert.equal(slots.offer('a', 4), 1, 'replaced, and a stays first')
  assert.equal(slots.waiting, 3)
  assert.deepEqual([slots.next(), slots.next(), slots.next(), slots.next()].map(started), [
    ['a', 4],
    ['b', 2],
    ['c', 3],
    undefined,
  ])
})

test('a closed connection leaves the line and hands back its waiting frame; nothing of it starts after', () => {
  const slots = createFrameSlots<string, number>()
  slots.offer('a', 1)
  slots.offer('b', 2)
  assert.deepEqual(started(slots.next()), ['a', 1])
  slots.offer('a', 3)
  assert.equal(slots.remove('a'), 3)
  slots.finished('a') // its frame in flight comes back after the close
  assert.deepEqual(started(slots.next()), ['b', 2])
  assert.equal(slots.next(), undefined, 'the closed connection never starts again')
  assert.equal(slots.remove('b'), undefined, 'a frame in flight is not handed back: it gets its answer')
  assert.equal(slots.remove('b'), undefined, 'removing twice is harmless')
  assert.equal(slots.waiting, 0)
})

/** A deterministic pseudo-random sequence (mulberry32). */
function random(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

test('under any mix of frames, free workers, answers and closes, every frame is started, replaced or handed back exactly once', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const rand = random(seed)
    const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(rand() * items.length)]
    const slots = createFrameSlots<string, number>()
    const workers = 1 + Math.floor(rand() * 4)
    const fates = new Map<number, string[]>()
    const fate = (frame: number, what: string): void => {
      fates.set(frame, [...(fates.get(frame) ?? []), what])
    }
    const inFlight = new Map<string, number>()
    const open = new Set<string>(['c0', 'c1', 'c2'])
    let nextConnection = 3
    let nextFrame = 1
    const lastStartedOf = new Map<string, number>()

    const startWhatFits = (): void => {
      while (inFlight.size < workers) {
        const turn = slots.next()
        if (turn === undefined) return
        assert.ok(!inFlight.has(turn.connection), 'one frame in flight per connection')
        assert.ok(open.has(turn.connection), 'a closed connection never starts a frame')
        assert.ok(turn.frame > (lastStartedOf.get(turn.connection) ?? 0), 'frames start in order')
        lastStartedOf.set(turn.connection, turn.frame)
        inFlight.set(turn.connection, turn.frame)
        fate(turn.frame, 'started')
      }
    }

    for (let step = 0; step < 2000; step++) {
      const roll = rand()
      if (roll < 0.55) {
        const connection = pick([...open])
        if (connection === undefined) continue
        const frame = nextFrame++
        const replaced = slots.offer(connection, frame)
        if (replaced !== undefined) fate(replaced, 'replaced')
        startWhatFits()
      } else if (roll < 0.9) {
        const connection = pick([...inFlight.keys()])
        if (connection === undefined) continue
        inFlight.delete(connection)
        slots.finished(connection)
        startWhatFits()
      } else if (roll < 0.97) {
        const connection = pick([...open])
        if (connection === undefined) continue
        open.delete(connection)
        const handedBack = slots.remove(connection)
        if (handedBack !== undefined) fate(handedBack, 'handed back')
      } else {
        open.add(`c${String(nextConnection++)}`)
      }
    }
    // Drain: every frame in flight is answered, which starts whatever still waits.
    while (inFlight.size > 0) {
      for (const connection of [...inFlight.keys()]) {
        inFlight.delete(connection)
        slots.finished(connection)
      }
      startWhatFits()
    }
    assert.equal(slots.waiting, 0)
    for (let frame = 1; frame < nextFrame; frame++) {
      assert.equal(fates.get(frame)?.length, 1, `seed ${String(seed)}: frame ${String(frame)} once`)
    }
  }
})
