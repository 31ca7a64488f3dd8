/**
 * The open-set identification protocol of `facewire eval openset`: who is enrolled (from which
 * photos), who probes, who is a stranger; and its metrics (TPIR at a given FPIR), computed from
 * each probe's top-1 identity and score.
 */

/** One person of an LFW-style folder: `<name>/<photo>`, photos sorted by name. */
export interface Person {
  name: string
  photos: string[]
}

export interface OpenSetProtocol {
  /** Enrolled people and the photos they are enrolled from. */
  enrolled: { name: string; photos: string[] }[]
  /** One photo of each enrolled person that was not used to enroll. */
  probes: { name: string; photo: string }[]
  /** One photo of each person who is never enrolled. */
  strangers: { name: string; photo: string }[]
}

export interface ProtocolOptions {
  /** People to enroll (spread evenly over the alphabet), or `all` who have enough photos. */
  enrolled: number | 'all'
  /** Photos per enrolled person (their first ones); a person needs one more to probe. */
  enrollPhotos: number
  /**
   * Who the strangers are: people with one photo (`single`, LFW's usual 1,930 at View 1), or
   * also the people with enough photos who were not picked for enrollment (`rest`).
   */
  strangers: 'single' | 'rest'
}

/**
 * Builds the protocol: people with at least `enrollPhotos + 1` photos can be enrolled; `enrolled`
 * of them are picked at even steps through the sorted names (so every part of the alphabet is
 * represented), enrolled from their first photos and probed with the next one.
 */
export function buildProtocol(people: readonly Person[], options: ProtocolOptions): OpenSetProtocol {
  if (!Number.isSafeInteger(options.enrollPhotos) || options.enrollPhotos < 1) {
    throw new RangeError('enrollPhotos must be a positive integer')
  }
  const sorted = [...people].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const eligible = sorted.filter((p) => p.photos.length > options.enrollPhotos)
  const count = options.enrolled === 'all' ? eligible.length : options.enrolled
  if (!Number.isSafeInteger(count) || count < 1 || count > eligible.length) {
    throw new RangeError(
      `cannot enroll ${String(options.enrolled)}: ${eligible.length} people have enough photos`,
    )
  }
  const picked = new Set<number>()
  for (let i = 0; i < count; i++) picked.add(Math.floor((i * eligible.length) / count))
  const enrolled: OpenSetProtocol['enrolled'] = []
  const probes: OpenSetProtocol['probes'] = []
  const strangers: OpenSetProtocol['strangers'] = []
  eligible.forEach((person, i) => {
    const photos = [...person.photos].sort()
    if (picked.has(i)) {
      enrolled.push({ name: person.name, photos: photos.slice(0, options.enrollPhotos) })
      probes.push({ name: person.name, photo: photos[options.enrollPhotos] ?? '' })
    } else if (options.strangers === 'rest') {
      strangers.push({ name: person.name, photo: photos[0] ?? '' })
    }
  })
  for (const person of sorted) {
    const first = [...person.photos].sort()[0]
    if (person.photos.length === 1 && first !== undefined) strangers.push({ name: person.name, photo: first })
  }
  return { enrolled, probes, strangers }
}

/** A probe's answer from the gallery: the best identity and its score (none: no face found). */
export interface TopOne {
  /** The person the probe shows; undefined for strangers. */
  truth?: string
  best?: { name: string; score: number }
}

export interface OperatingPoint {
  fpir: number
  /** Strangers whose top-1 reaches the threshold, at most fpir of them. */
  threshold: number
  /** Enrolled probes identified as themselves at or above the threshold. */
  tpir: number
  /** False when there are too few strangers to resolve this FPIR (fewer than 1 / fpir). */
  measurable: boolean
}

/**
 * TPIR at a given FPIR: the threshold is the lowest score that lets at most `fpir` of the
 * strangers through (a stranger with no face found never passes), and TPIR is the share of
 * enrolled probes whose top-1 is themselves at or above it (no face found: a miss).
 */
export function tpirAtFpir(
  probes: readonly TopOne[],
  strangers: readonly TopOne[],
  fpir: number,
): OperatingPoint {
  const scores = strangers
    .map((s) => s.best?.score)
    .filter((s): s is number => s !== undefined)
    .sort((a, b) => b - a)
  const allowed = Math.floor(fpir * strangers.length + 1e-9)
  // The threshold sits just above the (allowed+1)-th highest stranger score.
  const blocking = scores[allowed]
  const threshold = blocking === undefined ? -Infinity : nextUp(blocking)
  const hits = probes.filter(
    (p) => p.best !== undefined && p.best.name === p.truth && p.best.score >= threshold,
  ).length
  return {
    fpir,
    threshold,
    tpir: hits / Math.max(1, probes.length),
    measurable: strangers.length * fpir >= 1,
  }
}

/** Rank-1 identification rate (closed set): probes whose best identity is themselves. */
export function rankOneRate(probes: readonly TopOne[]): number {
  return (
    probes.filter((p) => p.best !== undefined && p.best.name === p.truth).length / Math.max(1, probes.length)
  )
}

function nextUp(value: number): number {
  // The smallest float64 above `value`: scores equal to a blocking stranger's are refused too.
  if (value === 0) return Number.MIN_VALUE
  const buffer = new Float64Array([value])
  const bits = new BigInt64Array(buffer.buffer)
  bits[0] = (bits[0] ?? 0n) + (value > 0 ? 1n : -1n)
  return buffer[0] ?? value
}
