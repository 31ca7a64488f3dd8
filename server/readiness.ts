/**
 * Readiness is the conjunction of named components (transport, models, stores, ...). Each part
 * of the server registers itself as not ready and marks itself ready once loaded; /ready answers
 * 200 only when every registered component is ready.
 *
 * A ready component can also be degraded (cluster mode: the database or Redis unreachable): the
 * server still serves what it can (recognition from the in-memory indexes, local events), so a
 * degraded component keeps /ready at 200 and is named, with why, in the answer's `degraded` map.
 */
export interface Readiness {
  register(component: string): void
  markReady(component: string): void
  markNotReady(component: string): void
  /** Marks a component degraded with a short reason, or healthy again with undefined. */
  setDegraded(component: string, reason: string | undefined): void
  isReady(): boolean
  snapshot(): Record<string, boolean>
  /** Degraded components and why (empty when none is). */
  degraded(): Record<string, string>
}

export function createReadiness(): Readiness {
  const components = new Map<string, boolean>()
  const degraded = new Map<string, string>()
  return {
    register(component) {
      if (!components.has(component)) components.set(component, false)
    },
    markReady(component) {
      components.set(component, true)
    },
    markNotReady(component) {
      components.set(component, false)
    },
    setDegraded(component, reason) {
      if (reason === undefined) degraded.delete(component)
      else degraded.set(component, reason)
    },
    isReady() {
      for (const ready of components.values()) if (!ready) return false
      return components.size > 0
    },
    snapshot() {
      return Object.fromEntries(components)
    },
    degraded() {
      return Object.fromEntries(degraded)
    },
  }
}
