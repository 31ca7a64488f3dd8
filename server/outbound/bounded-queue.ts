/**
 * A FIFO with a named bound: when full, the oldest item makes room for the newest (for events, the
 * latest decision matters most) and is handed back to be counted.
 */

export interface BoundedQueue<T> {
  readonly capacity: number
  readonly size: number
  /** Appends `item`; when the queue was full, removes and returns the oldest item. */
  push(item: T): T | undefined
  /** Removes and returns the oldest item. */
  shift(): T | undefined
  /** Removes and returns every item, oldest first. */
  drain(): T[]
}

export function createBoundedQueue<T>(capacity: number): BoundedQueue<T> {
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new RangeError(`capacity must be a positive integer (not ${String(capacity)})`)
  }
  // A ring buffer: push and shift in constant time, memory fixed at the bound.
  const slots: (T | undefined)[] = new Array<T | undefined>(capacity)
  let head = 0
  let size = 0
  const shift = (): T | undefined => {
    if (size === 0) return undefined
    const item = slots[head]
    slots[head] = undefined
    head = (head + 1) % capacity
    size--
    return item
  }
  return {
    capacity,
    get size() {
      return size
    },
    push(item) {
      const dropped = size === capacity ? shift() : undefined
      slots[(head + size) % capacity] = item
      size++
      return dropped
    },
    shift,
    drain() {
      const items: T[] = []
      while (size > 0) {
        const item = shift()
        if (item !== undefined) items.push(item)
      }
      return items
    },
  }
}
