/**
 * CORS for the REST API: which headers a response under the API prefix carries for a browser on
 * another origin, and the answer to a preflight. An explicit allow-list of exact origins
 * (FACEWIRE_CORS_ORIGINS), echoed one at a time: never `*`, and never credentials (facewire
 * authenticates with bearer tokens, not cookies, so a browser need not send any).
 */
import { FacewireError } from '../errors.js'

/** How long a browser may cache a preflight answer (Chromium caps it at 7200 s). */
export const CORS_MAX_AGE_S = 600

/** The methods the REST API routes. */
export const CORS_METHODS: readonly string[] = ['GET', 'POST', 'PATCH', 'DELETE']

/** Request headers a page may send; the CORS-safelisted ones are allowed whatever their value. */
export const CORS_REQUEST_HEADERS: readonly string[] = ['Authorization', 'Content-Type']
const SAFELISTED_HEADERS: readonly string[] = ['accept', 'accept-language', 'content-language']

/** Response headers a page may read beyond the safelisted ones. */
export const CORS_EXPOSED_HEADERS: readonly string[] = ['Retry-After', 'Location']

export interface CorsOptions {
  /** Exact origins (`https://app.example.com`, `http://localhost:3000`); empty: CORS off. */
  origins: readonly string[]
  /** Paths this applies to: the REST API (`/api/v1`). */
  pathPrefix: string
}

export interface Cors {
  /** Whether `path` is under the prefix (the API). */
  applies(path: string): boolean
  /**
   * Headers for an actual (non-preflight) response: the allowed origin echoed with what a page may
   * read, and `Vary: Origin` on every API response once CORS is configured (so a cache never
   * serves one origin's answer to another). Empty outside the API.
   */
  responseHeaders(path: string, origin: string | undefined): Record<string, string>
  /**
   * The answer to a preflight (OPTIONS with Origin and Access-Control-Request-Method): the headers
   * of a 204, or ERR_CORS_REFUSED naming what is not allowed (an origin not in the list, a method
   * the API does not route, a header other than Authorization and Content-Type).
   */
  preflight(
    path: string,
    request: { origin: string; method: string; headers: string | undefined },
  ): Record<string, string>
}

/** Whether an OPTIONS request is a CORS preflight (the rest are plain OPTIONS requests). */
export function isPreflight(headers: Readonly<Record<string, string>>): boolean {
  return headers.origin !== undefined && headers['access-control-request-method'] !== undefined
}

export function createCors(options: CorsOptions): Cors {
  const origins = new Set(options.origins)
  const methods = new Set(CORS_METHODS)
  const allowedHeaders = new Set([
    ...CORS_REQUEST_HEADERS.map((name) => name.toLowerCase()),
    ...SAFELISTED_HEADERS,
  ])
  const applies = (path: string): boolean =>
    path === options.pathPrefix || path.startsWith(options.pathPrefix + '/')
  const refuse = (reason: 'origin' | 'method' | 'headers', message: string): FacewireError =>
    new FacewireError('ERR_CORS_REFUSED', message, { details: { reason } })

  return {
    applies,
    responseHeaders(path, origin) {
      if (origins.size === 0 || !applies(path)) return {}
      if (origin === undefined || !origins.has(origin)) return { vary: 'Origin' }
      return {
        'access-control-allow-origin': origin,
        'access-control-expose-headers': CORS_EXPOSED_HEADERS.join(', '),
        vary: 'Origin',
      }
    },
    preflight(path, request) {
      if (!applies(path) || !origins.has(request.origin)) {
        // The origin is not echoed: it is the caller's own input, and says nothing new to it.
        throw refuse('origin', 'this origin is not in FACEWIRE_CORS_ORIGINS')
      }
      if (!methods.has(request.method)) {
        throw refuse('method', `the API does not take ${request.method} requests from a browser`)
      }
      const asked = (request.headers ?? '')
        .split(',')
        .map((name) => name.trim().toLowerCase())
        .filter((name) => name !== '')
      const refused = asked.filter((name) => !allowedHeaders.has(name))
      if (refused.length > 0) {
        throw refuse(
          'headers',
          `request headers other than ${CORS_REQUEST_HEADERS.join(' and ')} are not allowed`,
        )
      }
      return {
        'access-control-allow-origin': request.origin,
        'access-control-allow-methods': CORS_METHODS.join(', '),
        'access-control-allow-headers': CORS_REQUEST_HEADERS.join(', '),
        'access-control-max-age': String(CORS_MAX_AGE_S),
        vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
      }
    },
  }
}
