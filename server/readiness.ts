/**
 * Readiness is the conjunction of named components (transport, models, stores, ...). Each part
 * of the server registers itself as not ready and marks itself ready once loaded; /ready answers
 * 200 only when every registered component is ready.
 */
export interface Readiness {
  register(component: string): void
  markReady(component: string): void
  markNotReady(component: string): void
  isReady(): boolean
  snapshot(): Record<string, boolean>
}

export function createReadiness(): Readiness {
  const components = new Map<string, boolean>()
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
    isReady() {
      for (const ready of components.values()) if (!ready) return false
      return components.size > 0
    },
    snapshot() {
      return Object.fromEntries(components)
    },
  }
}
