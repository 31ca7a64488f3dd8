/**
 * What one WebSocket connection may cost the main thread: token buckets of messages, bytes and
 * invalid messages, each holding one second's worth and refilling continuously. Charging is O(1)
 * and needs no timer, so the check runs before any per-message work.
 */

/** Per-second allowances of one connection; each bucket also holds this much at most (the burst). */
export interface MessageBudgetLimits {
  /** Messages of any kind. */
  readonly messagesPerS: number
  /** Bytes of messages of any kind; at least the largest message the route accepts. */
  readonly bytesPerS: number
  /** Messages the route answered as invalid (a header it cannot read, a text message...). */
  readonly invalidPerS: number
}

export type BudgetName = 'messages' | 'bytes' | 'invalid'

export interface MessageBudget {
  /** Charges one message of `bytes`: the name of the budget it overdrew, or undefined. */
  chargeMessage(bytes: number, nowMs: number): BudgetName | undefined
  /** Charges one invalid message: false when that overdrew the budget. */
  chargeInvalid(nowMs: number): boolean
}

/** Checks the limits once, when a route is defined, naming the option that is wrong. */
export function parseMessageBudgetLimits(
  limits: MessageBudgetLimits,
  maxPayloadBytes: number,
): MessageBudgetLimits {
  for (const name of ['messagesPerS', 'bytesPerS', 'invalidPerS'] as const) {
    const value = limits[name]
    if (!Number.isFinite(value) || value < 1) {
      throw new RangeError(`budget.${name} must be a finite number of at least 1, got ${String(value)}`)
    }
  }
  if (limits.bytesPerS < maxPayloadBytes) {
    throw new RangeError(
      `budget.bytesPerS (${String(limits.bytesPerS)}) must be at least maxPayloadBytes (${String(maxPayloadBytes)}), or a full-size message could never be admitted`,
    )
  }
  return Object.freeze({ ...limits })
}

class Bucket {
  private level: number
  private lastMs: number
  constructor(
    private readonly perS: number,
    nowMs: number,
  ) {
    this.level = perS
    this.lastMs = nowMs
  }
  /** Takes `amount`; false (and nothing taken) when the bucket does not hold that much. */
  take(amount: number, nowMs: number): boolean {
    const elapsedMs = Math.max(0, nowMs - this.lastMs)
    this.lastMs = nowMs
    this.level = Math.min(this.perS, this.level + (elapsedMs * this.perS) / 1000)
    if (this.level < amount) return false
    this.level -= amount
    return true
  }
}

export function createMessageBudget(limits: MessageBudgetLimits, nowMs: number): MessageBudget {
  const messages = new Bucket(limits.messagesPerS, nowMs)
  const bytes = new Bucket(limits.bytesPerS, nowMs)
  const invalid = new Bucket(limits.invalidPerS, nowMs)
  return {
    chargeMessage(size, now) {
      if (!messages.take(1, now)) return 'messages'
      if (!bytes.take(size, now)) return 'bytes'
      return undefined
    },
    chargeInvalid(now) {
      return invalid.take(1, now)
    },
  }
}
