/**
 * The bounds of an identity's `metadata` (docs/api.md): a JSON object of at most
 * MAX_METADATA_BYTES, nested at most MAX_METADATA_DEPTH levels, without `__proto__` keys.
 * Checked with an explicit stack, never by recursion: a body nested thousands of levels deep is
 * refused as a bad request instead of overflowing the stack (which JSON.stringify would).
 */

export const MAX_METADATA_BYTES = 4096
/** Objects and arrays nested in one another, the metadata object itself included. */
export const MAX_METADATA_DEPTH = 32

export interface MetadataProblem {
  /** Relative to the metadata object. */
  path: (string | number)[]
  message: string
}

interface Pending {
  value: object
  path: (string | number)[]
  depth: number
}

/**
 * The first problem of a parsed JSON metadata value, or undefined when it is within bounds. Only
 * objects are checked (anything else is the schema's business). The depth and `__proto__` walk
 * comes first, so the size is measured only on a value JSON.stringify can handle.
 */
export function findMetadataProblem(value: unknown): MetadataProblem | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const stack: Pending[] = [{ value, path: [], depth: 1 }]
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    if (next.depth > MAX_METADATA_DEPTH) {
      return { path: next.path, message: `must be nested at most ${String(MAX_METADATA_DEPTH)} levels deep` }
    }
    const entries: [string | number, unknown][] = Array.isArray(next.value)
      ? next.value.map((child: unknown, index) => [index, child])
      : Object.entries(next.value)
    for (const [key, child] of entries) {
      // JSON.parse makes `__proto__` an own key; any object built from it (zod's record, a spread)
      // would turn it into a prototype and lose it silently. Refused rather than dropped.
      if (key === '__proto__')
        return { path: [...next.path, key], message: 'the key __proto__ is not allowed' }
      if (child !== null && typeof child === 'object') {
        stack.push({ value: child, path: [...next.path, key], depth: next.depth + 1 })
      }
    }
  }
  if (Buffer.byteLength(JSON.stringify(value)) > MAX_METADATA_BYTES) {
    return { path: [], message: `must be at most ${String(MAX_METADATA_BYTES)} bytes of JSON` }
  }
  return undefined
}
