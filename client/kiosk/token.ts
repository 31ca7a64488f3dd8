/**
 * What the kiosk can know about its token without the server: the JWT payload's `exp` and
 * `scope`, read but never verified (the server verifies; this only picks the screen to show and
 * whether to offer enrollment). Pure: no DOM, no Node.
 */

export interface TokenClaims {
  /** Expiry, epoch ms; undefined when the token has no numeric `exp` (the server refuses it). */
  expiresAtMs: number | undefined
  scopes: readonly string[]
  org: string | undefined
}

const BASE64URL = /^[A-Za-z0-9_-]*$/

function decodeBase64Url(text: string): string | undefined {
  if (!BASE64URL.test(text)) return undefined
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4)
  try {
    const binary = atob(padded)
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0))
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
}

/** The claims of a compact JWT, or undefined when it is not one (three parts, a JSON payload). */
export function readTokenClaims(token: string): TokenClaims | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  const json = decodeBase64Url(parts[1] ?? '')
  if (json === undefined) return undefined
  let payload: unknown
  try {
    payload = JSON.parse(json)
  } catch {
    return undefined
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined
  const { exp, scope, org } = payload as Record<string, unknown>
  return {
    expiresAtMs: typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined,
    scopes: typeof scope === 'string' ? scope.split(' ').filter((s) => s !== '') : [],
    org: typeof org === 'string' ? org : undefined,
  }
}

/** Whether the token is past its `exp` (a token without one counts as expired: it is refused). */
export function isExpired(claims: TokenClaims, nowMs: number): boolean {
  return claims.expiresAtMs === undefined || claims.expiresAtMs <= nowMs
}

/** Whether the token carries a scope; `admin` implies every scope (docs/api.md). */
export function hasScope(claims: TokenClaims, scope: string): boolean {
  return claims.scopes.includes(scope) || claims.scopes.includes('admin')
}

/** Milliseconds until the token expires (negative once it has), for scheduling the expiry screen. */
export function msUntilExpiry(claims: TokenClaims, nowMs: number): number {
  return (claims.expiresAtMs ?? nowMs) - nowMs
}
