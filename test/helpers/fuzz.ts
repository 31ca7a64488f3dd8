/**
 * Seeded fuzzing inside the normal test run. Every case draws from its own generator, made from
 * the run's seed and the case's index, so a failure names both and the same seed replays it:
 *
 *   FACEWIRE_FUZZ_SEED=<seed> node --test dist/test/unit/protocol/frame-fuzz.test.js
 *
 * The default run is a few seconds per target. FACEWIRE_FUZZ_ITERATIONS sets the number of cases
 * of every target instead (docs/operations.md, "Fuzzing", has the long run), and FACEWIRE_FUZZ_SEED
 * another seed (default 1).
 */
import { seededRandom } from './random.js'

export type Random = () => number

/** The cases to run: FACEWIRE_FUZZ_ITERATIONS when set, else the target's default. */
export function fuzzIterations(defaultCount: number): number {
  return positiveInteger(process.env.FACEWIRE_FUZZ_ITERATIONS) ?? defaultCount
}

export function fuzzSeed(): number {
  return positiveInteger(process.env.FACEWIRE_FUZZ_SEED) ?? 1
}

function positiveInteger(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]{1,15}$/.test(value)) return undefined
  const number = Number(value)
  return number > 0 ? number : undefined
}

function caseRandom(seed: number, index: number): Random {
  return seededRandom(Math.imul(seed, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b))
}

function failure(seed: number, index: number, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error)
  return new Error(
    `fuzz case ${String(index)} of seed ${String(seed)} (FACEWIRE_FUZZ_SEED=${String(seed)}): ${message}`,
    {
      cause: error,
    },
  )
}

/** Runs `count` cases, each with its own generator; a failure names its seed and case. */
export async function fuzz(
  count: number,
  check: (random: Random, index: number) => void | Promise<void>,
): Promise<void> {
  const seed = fuzzSeed()
  for (let index = 0; index < count; index++) {
    try {
      await check(caseRandom(seed, index), index)
    } catch (error) {
      throw failure(seed, index, error)
    }
  }
}

/** An integer in [min, max]. */
export function integer(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1))
}

export function pick<T>(random: Random, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)]
  if (item === undefined) throw new Error('pick: no items')
  return item
}

export function randomBytes(random: Random, length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256)
  return out
}

// Characters that break naive code: multi-byte, astral, lone surrogates, a BOM, NUL, controls.
const AWKWARD = [
  'a',
  'Z',
  '0',
  ' ',
  '.',
  '"',
  '\\',
  '\0',
  '\n',
  'é',
  '€',
  '😀',
  '\ud800',
  '\udfff',
  '\ufeff',
  '\u202e',
]

/** A short string of awkward and plain characters. */
export function randomText(random: Random, maxLength: number): string {
  let text = ''
  const length = integer(random, 0, maxLength)
  for (let i = 0; i < length; i++) {
    text += random() < 0.5 ? pick(random, AWKWARD) : String.fromCharCode(integer(random, 0x20, 0x7e))
  }
  return text
}

/** A copy of `bytes` with 1-`maxEdits` random edits (flips, overwrites, cuts, insertions) in its first `window` bytes. */
export function mutate(
  random: Random,
  bytes: Uint8Array,
  maxEdits: number,
  window = bytes.length,
): Uint8Array {
  let out = Uint8Array.from(bytes)
  const edits = integer(random, 1, maxEdits)
  for (let edit = 0; edit < edits; edit++) {
    const at = integer(random, 0, Math.max(0, Math.min(window, out.length) - 1))
    switch (integer(random, 0, 4)) {
      case 0:
        if (out.length > 0) out[at] = (out[at] ?? 0) ^ (1 << integer(random, 0, 7))
        break
      case 1:
        if (out.length > 0) out[at] = pick(random, [0x00, 0xff, 0x7f, 0x80, integer(random, 0, 255)])
        break
      case 2:
        out = out.slice(0, integer(random, 0, out.length))
        break
      case 3: {
        const inserted = randomBytes(random, integer(random, 1, 8))
        out = Uint8Array.from([...out.subarray(0, at), ...inserted, ...out.subarray(at)])
        break
      }
      default: {
        const cut = integer(random, 1, 8)
        out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + cut)])
      }
    }
  }
  return out
}
