/**
 * The open-set decision: from a face's nearest gallery faces to `match`, `uncertain` or `unknown`.
 */
import type { DecisionPolicy, Neighbour } from './types.js'
import type { Candidate, Decision, IdentityRef } from '../../protocol/wire.js'

/** Decimals kept in similarities and margins; comparisons use the rounded values callers see. */
export const SCORE_DECIMALS = 4

/** Fewest neighbours fetched per search, however small topK is. */
export const MIN_SEARCH_DEPTH = 20

/** Neighbours fetched per wanted identity: room for identities enrolled with several faces. */
export const FACES_PER_IDENTITY = 5

/**
 * Neighbours by the first embedding part that a fused gallery re-ranks by the whole embedding:
 * room for the best fused identity to sit lower in the first part's order.
 */
export const RERANK_DEPTH = 32

const SCALE = 10 ** SCORE_DECIMALS

function roundScore(value: number): number {
  return Math.round(value * SCALE) / SCALE
}

/**
 * How many neighbours to fetch from the index so that `topK` distinct identities are usually
 * found when identities have several faces each.
 */
export function searchDepth(topK: number): number {
  return Math.max(topK * FACES_PER_IDENTITY, MIN_SEARCH_DEPTH)
}

/**
 * Groups neighbours by identity (an identity scores its best face), ranks identities and decides.
 * `match`: best >= threshold and best - second >= margin (with no second identity the margin is
 * the best similarity); `uncertain`: best >= threshold with a shorter lead; `unknown` otherwise,
 * without an identity. Labels `identityOf` does not know (faces deleted meanwhile) are skipped.
 * Similarities and margins are rounded to SCORE_DECIMALS before comparing, so a face shown at the
 * threshold is on the accepting side. Candidates (the top `policy.topK` identities) are returned
 * for every status; whether a client sees them for `unknown` is the caller's choice.
 */
export function decide(
  neighbours: readonly Neighbour[],
  identityOf: (label: number) => IdentityRef | undefined,
  policy: DecisionPolicy,
): { decision: Decision; candidates: Candidate[] } {
  const best = new Map<string, Candidate>()
  for (const { label, similarity } of neighbours) {
    const identity = identityOf(label)
    if (identity === undefined) continue
    const seen = best.get(identity.id)
    if (seen === undefined || similarity > seen.similarity) best.set(identity.id, { identity, similarity })
  }
  const ranked = [...best.values()]
    .map((c) => ({
      identity: { id: c.identity.id, name: c.identity.name },
      similarity: roundScore(c.similarity),
    }))
    .sort((a, b) => b.similarity - a.similarity || (a.identity.id < b.identity.id ? -1 : 1))
  const first = ranked[0]
  if (first === undefined) {
    return {
      decision: { status: 'unknown', similarity: 0, margin: 0, threshold: policy.threshold },
      candidates: [],
    }
  }
  const second = ranked[1]
  const similarity = first.similarity
  const margin = second === undefined ? similarity : roundScore(similarity - second.similarity)
  const candidates = ranked.slice(0, Math.max(0, policy.topK))
  const threshold = roundScore(policy.threshold)
  if (similarity < threshold)
    return { decision: { status: 'unknown', similarity, margin, threshold }, candidates }
  const status = margin >= policy.margin ? 'match' : 'uncertain'
  return { decision: { status, identity: first.identity, similarity, margin, threshold }, candidates }
}
