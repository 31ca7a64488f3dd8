/**
 * Which stream frame runs next: each connection has at most one frame in flight and one waiting
 * (latest frame wins), and connections with a waiting frame take turns for free workers, first
 * come first served, one frame each. Pure bookkeeping: the caller says when a worker is free and
 * when a frame's answer is out, and answers the frames handed back to it.
 */

/** A frame to start now, and its connection. */
export interface Turn<C, F> {
  connection: C
  frame: F
}

export interface FrameSlots<C, F> {
  /**
   * Makes `frame` the connection's waiting frame; a connection that had none and has nothing in
   * flight joins the end of the line. Returns the waiting frame it replaced (to answer `dropped`),
   * which keeps the connection's place in line for the new one.
   */
  offer(connection: C, frame: F): F | undefined
  /**
   * Takes the waiting frame of the connection first in line and marks it in flight; undefined when
   * nobody waits. Call once per free worker.
   */
  next(): Turn<C, F> | undefined
  /** The connection's frame in flight has been answered; if another waits, it joins the line. */
  finished(connection: C): void
  /** Forgets a closed connection; returns its waiting frame, which will never start. */
  remove(connection: C): F | undefined
  /** Connections in line (bounded by the open connections: one place each). */
  readonly waiting: number
}

interface Slot<F> {
  inFlight: boolean
  waiting: F | undefined
}

export function createFrameSlots<C, F>(): FrameSlots<C, F> {
  const slots = new Map<C, Slot<F>>()
  // In line: connections with a waiting frame and none in flight. A Set keeps insertion order and
  // lets a closing connection leave the line in O(1).
  const line = new Set<C>()

  return {
    offer(connection, frame) {
      let slot = slots.get(connection)
      if (slot === undefined) {
        slot = { inFlight: false, waiting: undefined }
        slots.set(connection, slot)
      }
      const replaced = slot.waiting
      slot.waiting = frame
      if (!slot.inFlight) line.add(connection)
      return replaced
    },
    next() {
      for (const connection of line) {
        line.delete(connection)
        const slot = slots.get(connection)
        if (slot?.waiting === undefined) continue
        const frame = slot.waiting
        slot.waiting = undefined
        slot.inFlight = true
        return { connection, frame }
      }
      return undefined
    },
    finished(connection) {
      const slot = slots.get(connection)
      if (slot === undefined) return
      slot.inFlight = false
      if (slot.waiting !== undefined) line.add(connection)
      else slots.delete(connection)
    },
    remove(connection) {
      const slot = slots.get(connection)
      slots.delete(connection)
      line.delete(connection)
      return slot?.waiting
    },
    get waiting() {
      return line.size
    },
  }
}
