/**
 * Open-set thresholds that know the gallery's size. A stranger facing a gallery of N identities
 * gets N chances: if one comparison with someone else scores above t with probability S(t), the
 * stranger's best score does with probability 1 - (1 - S(t))^N (the FPIR). So for a target FPIR
 * the threshold is the impostor score whose survival is s = 1 - (1 - FPIR)^(1/N).
 *
 * S is estimated from impostor scores (faces against other people's templates): empirically where
 * there are enough scores above the wanted level, and beyond that by an exponential tail (peaks
 * over a threshold, generalised Pareto with shape 0) through the deep end of the empirical tail.
 * Impostor cosines have tails lighter than exponential, so the extrapolation errs toward a higher
 * threshold: fewer strangers through, not more.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../logger.js'
import { cosine } from '../pipeline/embedding-layout.js'

/** models/cohort.json: impostor models per embedding layout id, measured on a public cohort. */
export interface CohortFile {
  version: 1
  /** Per layout: how many impostor scores were measured, and the highest TAIL_KEEP of them. */
  cohorts: { modelId: string; source: string; pairs: number; top: number[] }[]
}

/**
 * The cohort impostor model for `modelId` from `<modelsDir>/cohort.json`; undefined (with a
 * warning) when the file or an entry for this layout is missing, and thresholds of small
 * galleries then fall back to FACEWIRE_MATCH_THRESHOLD.
 */
export async function loadCohort(
  modelsDir: string,
  modelId: string,
  logger: Pick<Logger, 'warn'>,
): Promise<ImpostorModel | undefined> {
  let file: CohortFile
  try {
    file = JSON.parse(await readFile(join(modelsDir, 'cohort.json'), 'utf8')) as CohortFile
  } catch {
    logger.warn({ modelsDir }, 'gallery.no_cohort: small galleries use FACEWIRE_MATCH_THRESHOLD')
    return undefined
  }
  const entry = file.cohorts.find((c) => c.modelId === modelId)
  if (entry === undefined) {
    logger.warn({ modelId }, 'gallery.no_cohort: cohort.json has no entry for these models')
    return undefined
  }
  return modelFromTop(entry.pairs, entry.top)
}

/** An impostor score distribution, reduced to what thresholds need. */
export interface ImpostorModel {
  /** Impostor scores it was estimated from. */
  pairs: number
  /** The highest scores, descending (at most TAIL_KEEP of them). */
  top: number[]
  /** Exponential tail beyond the empirical part: S(t) = tailRate * exp(-(t - tailStart) / tailScale). */
  tailStart: number
  tailRate: number
  tailScale: number
}

/** Highest scores kept for the empirical part and fitted by the exponential tail. */
export const TAIL_KEEP = 2000
/** Fewest scores above a level for it to be read off empirically; rarer levels are extrapolated. */
export const MIN_EMPIRICAL_EXCEEDANCES = 25
/** Fewest scores in the fitted tail. */
const MIN_TAIL = 10

/**
 * Builds the model from impostor scores (any order). The tail is fitted to the highest 1% of the
 * scores, at least MIN_TAIL and at most TAIL_KEEP of them. Throws a RangeError with fewer than
 * MIN_TAIL scores.
 */
export function fitImpostorModel(scores: ArrayLike<number>): ImpostorModel {
  return modelFromTop(scores.length, topScores(scores, TAIL_KEEP))
}

/** The model from the number of impostor scores and their highest ones (descending). */
export function modelFromTop(pairs: number, top: readonly number[]): ImpostorModel {
  if (pairs < MIN_TAIL || top.length < MIN_TAIL) {
    throw new RangeError(`need at least ${MIN_TAIL} impostor scores, got ${pairs}`)
  }
  const tailCount = Math.min(top.length, Math.max(MIN_TAIL, Math.floor(pairs * 0.01)))
  // The exponential goes through two points of the empirical survival curve: the start of the
  // tail (tailCount scores above it) and the deepest level still read off empirically (at most
  // MIN_EMPIRICAL_EXCEEDANCES scores above it). Its slope is that of the tail's deep end, not of
  // its few highest scores, so a couple of look-alike or mislabelled pairs at the very top do
  // not move it; and since impostor tails steepen further out, extrapolating with it errs high.
  const deep = Math.max(3, Math.min(MIN_EMPIRICAL_EXCEEDANCES, Math.floor(tailCount / 2)))
  const start = top[tailCount - 1] ?? 0
  const anchor = top[deep - 1] ?? start
  const tailScale = Math.max((anchor - start) / Math.log(tailCount / deep), 1e-4)
  return { pairs, top: [...top], tailStart: anchor, tailRate: deep / pairs, tailScale }
}

/** The per-comparison false-accept rate that gives `fpir` over a gallery of `identities`. */
export function perComparisonRate(fpir: number, identities: number): number {
  if (!(fpir > 0 && fpir < 1)) throw new RangeError(`fpir must be in (0, 1), got ${fpir}`)
  const n = Math.max(1, identities)
  // 1 - (1 - fpir)^(1/n), computed without cancellation for small fpir.
  return -Math.expm1(Math.log1p(-fpir) / n)
}

/** The score above which a share `rate` of impostor comparisons fall. */
export function impostorQuantile(model: ImpostorModel, rate: number): number {
  const exceedances = rate * model.pairs
  if (exceedances >= MIN_EMPIRICAL_EXCEEDANCES && exceedances < model.top.length) {
    // Empirical: the score with `exceedances` impostors above it (linear between neighbours).
    const k = Math.floor(exceedances)
    const hi = model.top[k - 1] ?? model.top[0] ?? 0
    const lo = model.top[k] ?? hi
    return hi - (exceedances - k) * (hi - lo)
  }
  if (exceedances >= model.top.length) {
    // Beyond the kept scores (a rate too common to matter for a door): the lowest kept score.
    return model.top.at(-1) ?? model.tailStart
  }
  return model.tailStart + model.tailScale * Math.log(model.tailRate / rate)
}

/** The threshold that lets about `fpir` of strangers through a gallery of `identities`. */
export function thresholdFor(model: ImpostorModel, fpir: number, identities: number): number {
  return impostorQuantile(model, perComparisonRate(fpir, identities))
}

/** The `count` highest values of `scores`, descending. */
function topScores(scores: ArrayLike<number>, count: number): number[] {
  const all = Float64Array.from(scores).sort()
  const top: number[] = []
  for (let i = all.length - 1; i >= 0 && top.length < count; i--) top.push(all[i] ?? 0)
  return top
}

/**
 * Impostor scores of a gallery: every face against the templates of the other identities (at
 * most `maxPairs`, sampled with a fixed seed so a calibration is repeatable).
 */
export function galleryImpostorScores(
  faces: readonly { identity: number; embedding: Float32Array }[],
  templates: readonly Float32Array[],
  maxPairs: number,
): Float32Array {
  const identities = templates.length
  const total = faces.length * Math.max(0, identities - 1)
  if (total <= maxPairs) {
    const out = new Float32Array(total)
    let k = 0
    for (const face of faces) {
      for (let j = 0; j < identities; j++) {
        if (j === face.identity) continue
        out[k++] = cosine(face.embedding, templates[j] as Float32Array)
      }
    }
    return out
  }
  const out = new Float32Array(maxPairs)
  let seed = 0x9e3779b9
  const random = (): number => {
    // xorshift32: repeatable, good enough to spread samples.
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) / 4294967296
  }
  for (let k = 0; k < maxPairs; k++) {
    const face = faces[Math.floor(random() * faces.length)] as (typeof faces)[number]
    let j = Math.floor(random() * (identities - 1))
    if (j >= face.identity) j++
    out[k] = cosine(face.embedding, templates[j] as Float32Array)
  }
  return out
}
