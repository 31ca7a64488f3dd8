/**
 * Bearer tokens (JWT): verification for REST and WebSocket upgrades, and minting for the CLI.
 * The accepted algorithm is fixed by config; the token never reaches a log line.
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto'
import jwt from 'jsonwebtoken'
import { ORG_PATTERN, type JwtAlgorithm } from './config.js'
import { FacewireError } from './errors.js'

export const SCOPES = ['detect', 'watch', 'enroll', 'admin'] as const
export type Scope = (typeof SCOPES)[number]

/** Who is calling: the organization every read and write is scoped to. */
export interface Principal {
  readonly org: string
  readonly sub: string
  readonly scopes: ReadonlySet<Scope>
  /** Epoch milliseconds when the token expires. */
  readonly expiresAtMs: number
}

export interface AuthenticatorOptions {
  algorithm: JwtAlgorithm
  /** HS256 secret. */
  secret?: string | undefined
  /** PEM public key for RS256 / ES256. */
  publicKey?: string | undefined
  /** Epoch milliseconds now (default Date.now); tests pass their own. */
  now?: () => number
}

export interface Authenticator {
  /** Verifies a token and returns its principal; throws ERR_AUTH_INVALID or ERR_AUTH_EXPIRED. */
  verify(token: string): Principal
  /** Finds the token in `Authorization: Bearer` or `access_token` and verifies it (ERR_AUTH_MISSING). */
  authenticate(headers: Readonly<Record<string, string>>, query: URLSearchParams): Principal
}

/**
 * The token from `Authorization: Bearer <t>` or the `access_token` query parameter. A request
 * carrying both is refused rather than one silently preferred (RFC 6750, section 2: one method
 * per request), so what a proxy or a log shows is the token that was checked.
 */
export function tokenFromRequest(
  headers: Readonly<Record<string, string>>,
  query: URLSearchParams,
): string | undefined {
  const header = headers.authorization
  const fromQuery = query.get('access_token')
  const hasHeader = header !== undefined && header !== ''
  const hasQuery = fromQuery !== null && fromQuery !== ''
  if (hasHeader && hasQuery) {
    throw new FacewireError(
      'ERR_AUTH_INVALID',
      'send the token in the Authorization header or the access_token parameter, not both',
    )
  }
  if (hasHeader) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (match?.[1] === undefined)
      throw new FacewireError('ERR_AUTH_INVALID', 'Authorization must be "Bearer <token>"')
    return match[1]
  }
  return hasQuery ? fromQuery : undefined
}

function parseScopes(value: unknown): Set<Scope> {
  if (typeof value !== 'string') throw new FacewireError('ERR_AUTH_INVALID', 'the token has no scope claim')
  const scopes = new Set<Scope>()
  for (const part of value.split(' ')) {
    if ((SCOPES as readonly string[]).includes(part)) scopes.add(part as Scope)
  }
  return scopes
}

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const key = options.algorithm === 'HS256' ? options.secret : options.publicKey
  if (key === undefined || key === '') {
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      options.algorithm === 'HS256'
        ? 'invalid configuration: FACEWIRE_JWT_SECRET: required'
        : `invalid configuration: FACEWIRE_JWT_PUBLIC_KEY_FILE: required for ${options.algorithm}`,
    )
  }
  const now = options.now ?? Date.now
  // A key object made once: given a string, jsonwebtoken tries (and fails) to parse it as a public
  // key on every verification, about 1 ms each, on every request and upgrade.
  const keyObject: KeyObject =
    options.algorithm === 'HS256' ? createSecretKey(Buffer.from(key, 'utf8')) : createPublicKey(key)

  const verify = (token: string): Principal => {
    let payload: string | jwt.JwtPayload
    try {
      // No clock tolerance: a token is refused from the second its `exp` names (REST, upgrades
      // and open streams alike: they close at exp), and accepted from the second of its `nbf`.
      payload = jwt.verify(token, keyObject, {
        algorithms: [options.algorithm],
        clockTimestamp: Math.floor(now() / 1000),
        complete: false,
      })
    } catch (error) {
      if (error instanceof jwt.TokenExpiredError) throw new FacewireError('ERR_AUTH_EXPIRED')
      if (error instanceof jwt.NotBeforeError) {
        // Valid but early (the issuer's clock runs ahead, or it is meant for later): not forged.
        const notBefore = error.date.toISOString()
        throw new FacewireError('ERR_AUTH_INVALID', `the token is not valid before ${notBefore} (nbf)`, {
          details: { notBefore },
        })
      }
      // JsonWebTokenError (bad signature, alg none, malformed): one answer.
      throw new FacewireError('ERR_AUTH_INVALID')
    }
    if (typeof payload === 'string')
      throw new FacewireError('ERR_AUTH_INVALID', 'the token payload is not JSON')
    const org: unknown = payload.org
    if (typeof org !== 'string' || !ORG_PATTERN.test(org)) {
      throw new FacewireError('ERR_AUTH_INVALID', 'the token has no valid org claim')
    }
    if (typeof payload.exp !== 'number') {
      throw new FacewireError('ERR_AUTH_INVALID', 'the token has no exp claim')
    }
    return {
      org,
      sub: typeof payload.sub === 'string' ? payload.sub : 'anonymous',
      scopes: parseScopes(payload.scope),
      expiresAtMs: payload.exp * 1000,
    }
  }

  return {
    verify,
    authenticate(headers, query) {
      const token = tokenFromRequest(headers, query)
      if (token === undefined) throw new FacewireError('ERR_AUTH_MISSING')
      return verify(token)
    },
  }
}

/** Throws ERR_AUTH_SCOPE unless the principal holds `scope` (or `admin`, which holds every scope). */
export function requireScope(principal: Principal, scope: Scope): void {
  if (principal.scopes.has(scope) || principal.scopes.has('admin')) return
  throw new FacewireError('ERR_AUTH_SCOPE', `this route needs the '${scope}' scope`, {
    details: { required: scope },
  })
}

export interface MintOptions {
  org: string
  scopes: readonly Scope[]
  sub?: string
  ttlSeconds: number
  algorithm?: JwtAlgorithm
  /** HS256 secret or PEM private key. */
  key: string
}

/** Signs a token (operators, tests, the CLI's `token` command). */
export function mintToken(options: MintOptions): string {
  if (!ORG_PATTERN.test(options.org)) {
    throw new FacewireError('ERR_REQUEST_INVALID', `org must match ${String(ORG_PATTERN)}`)
  }
  return jwt.sign({ org: options.org, scope: options.scopes.join(' ') }, options.key, {
    algorithm: options.algorithm ?? 'HS256',
    expiresIn: options.ttlSeconds,
    subject: options.sub ?? 'cli',
  })
}
