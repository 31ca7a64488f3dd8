import { STATUS_CODES } from 'node:http'
import { createServer } from 'node:net'
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js'
import type { TrustedProxy } from '../config.js'
import { FacewireError, toFacewireError, toWireError } from '../errors.js'
import type { Logger } from '../logger.js'
import { createClientAddress, type ClientAddressResolver } from './client-address.js'
import { createCors, isPreflight, type Cors, type CorsOptions } from './cors.js'
import { loadNativeEngine, type EngineInfo } from './native-engine.js'
import { registerWsRoutes, type AnyWsRoute, type WsRegistry } from './ws.js'

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** A request copied out of uWS before any asynchronous step (uWS request objects die at return). */
export interface HttpRequestInfo {
  readonly method: HttpMethod
  readonly path: string
  readonly query: URLSearchParams
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string>>
  readonly params: readonly string[]
  readonly body: Buffer | undefined
  /** The peer, or the forwarded client address when the peer is a trusted proxy (client-address.ts). */
  readonly clientIp: string
}

export interface HttpReply {
  status: number
  headers?: Record<string, string>
  body?: string | Uint8Array
}

export type HttpHandler = (request: HttpRequestInfo) => HttpReply | Promise<HttpReply>

export interface Route {
  method: HttpMethod
  /** uWS pattern, e.g. `/api/v1/identities/:id`. */
  pattern: string
  handler: HttpHandler
}

export interface TransportOptions {
  routes: readonly Route[]
  logger: Logger
  /** Bodies beyond this are answered 413 ERR_BODY_TOO_LARGE without being buffered further. */
  maxBodyBytes: number
  wsRoutes?: readonly AnyWsRoute[]
  /** Peers whose X-Forwarded-For is believed (FACEWIRE_TRUSTED_PROXIES). */
  trustedProxies?: readonly TrustedProxy[]
  /**
   * Cross-origin access to the paths under `pathPrefix` (FACEWIRE_CORS_ORIGINS): preflights there
   * are answered (refused when no origin is listed). Absent: OPTIONS is a method no route takes.
   */
  cors?: CorsOptions
}

export interface Transport {
  readonly engine: EngineInfo
  /** Resolves with the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number>
  /**
   * Stops accepting connections: requests on open connections are answered ERR_SHUTTING_DOWN and
   * open WebSockets are closed with 1001.
   */
  stopAccepting(): void
  readonly ws: WsRegistry
  /** Resolves once no request is in flight. */
  drain(): Promise<void>
  readonly inFlight: number
}

const METHODS_WITH_BODY: ReadonlySet<HttpMethod> = new Set(['POST', 'PUT', 'PATCH'])

export function jsonReply(status: number, value: unknown, headers: Record<string, string> = {}): HttpReply {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) }
}

/**
 * The one way an error becomes an HTTP answer: the catalogue's status, the wire error as the body,
 * and `Retry-After` (whole seconds, rounded up) when the error says how long to wait.
 */
export function errorReply(error: FacewireError, body: Record<string, unknown> = {}): HttpReply {
  const retryAfterMs = error.details?.['retryAfterMs']
  const headers: Record<string, string> =
    typeof retryAfterMs === 'number' && retryAfterMs > 0
      ? { 'retry-after': String(Math.ceil(retryAfterMs / 1000)) }
      : {}
  return jsonReply(error.http, { error: toWireError(error), ...body }, headers)
}

/**
 * uWS listens with SO_REUSEPORT unless told otherwise: a second server on a port already in use
 * would start, share the port (and the data directory) with the first, and the two would diverge.
 */
const LIBUS_LISTEN_EXCLUSIVE_PORT = 1

type ListenWithOptions = (
  host: string,
  port: number,
  options: number,
  callback: (socket: us_listen_socket | false) => void,
) => unknown

/**
 * uWS says only that listening failed; a Node listen on the same address says why (the port is
 * checked again, so a port freed meanwhile gives no reason).
 */
function whyNotListening(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', (error: NodeJS.ErrnoException) => {
      resolve(describeListenError(error, host, port))
    })
    probe.listen({ host, port, exclusive: true }, () => {
      probe.close()
      resolve('the reason is unknown (the address was free when checked again)')
    })
  })
}

function describeListenError(error: NodeJS.ErrnoException, host: string, port: number): string {
  const known: Record<string, string> = {
    EADDRINUSE: `address already in use (EADDRINUSE): another process listens on port ${String(port)} (another facewire?)`,
    EACCES: 'permission denied (EACCES): ports below 1024 need privileges',
    EADDRNOTAVAIL: `address not available (EADDRNOTAVAIL): ${host} is not an address of this machine`,
    ENOTFOUND: `${host} does not resolve (ENOTFOUND)`,
    EAI_AGAIN: `${host} does not resolve (EAI_AGAIN)`,
  }
  const code = error.code ?? ''
  return known[code] ?? (code === '' ? error.message : `${error.message} (${code})`)
}

/** Why a request's declared body cannot be read, or undefined when it can. */
export function checkDeclaredLength(
  headers: {
    contentLength: string | undefined
    firstContentLength: string
    transferEncoding: string | undefined
  },
  maxBodyBytes: number,
): FacewireError | undefined {
  if (headers.transferEncoding !== undefined) {
    return new FacewireError(
      'ERR_REQUEST_INVALID',
      'Transfer-Encoding is not supported on requests: send the body with a Content-Length',
    )
  }
  const declared = headers.contentLength
  if (declared === undefined) return undefined
  // Digits only: no sign, no blanks, no hex, no list. uWS reads the first of repeated headers and
  // the copied headers hold the last: two different values are refused, not guessed between.
  if (!/^[0-9]+$/.test(declared) || declared !== headers.firstContentLength) {
    return new FacewireError('ERR_REQUEST_INVALID', 'Content-Length must be one decimal number of bytes')
  }
  const digits = declared.replace(/^0+(?=.)/, '')
  if (digits.length > 15 || Number(digits) > maxBodyBytes) return new FacewireError('ERR_BODY_TOO_LARGE')
  return undefined
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`
}

function copyRequest(
  res: HttpResponse,
  req: HttpRequest,
  method: HttpMethod,
  paramCount: number,
  clientAddress: ClientAddressResolver,
): Omit<HttpRequestInfo, 'body'> {
  const headers: Record<string, string> = {}
  req.forEach((key, value) => {
    headers[key] = value
  })
  const params: string[] = []
  for (let i = 0; i < paramCount; i++) params.push(decodeURIComponent(req.getParameter(i) ?? ''))
  const peer = Buffer.from(res.getRemoteAddressAsText()).toString('latin1')
  const query = new URLSearchParams(req.getQuery() ?? '')
  return { method, path: req.getUrl(), query, headers, params, clientIp: clientAddress(peer, headers) }
}

/** The only module that talks HTTP to uWebSockets.js. */
export function createTransport(options: TransportOptions): Transport {
  const { uws, engine } = loadNativeEngine()
  const app: TemplatedApp = uws.App()
  const clientAddress = createClientAddress(options.trustedProxies ?? [])
  const cors = options.cors === undefined ? undefined : createCors(options.cors)
  /** CORS headers of every answer to this request, read while the uWS request is alive. */
  const corsHeadersOf = (req: HttpRequest): Record<string, string> => {
    const origin = req.getHeader('origin')
    return cors?.responseHeaders(req.getUrl(), origin === '' ? undefined : origin) ?? {}
  }
  let listenSocket: us_listen_socket | undefined
  let accepting = true
  let inFlight = 0
  let drainWaiters: (() => void)[] = []

  function finished(): void {
    inFlight--
    if (inFlight === 0) {
      const waiters = drainWaiters
      drainWaiters = []
      for (const resolve of waiters) resolve()
    }
  }

  function send(
    res: HttpResponse,
    state: { aborted: boolean; extraHeaders?: Record<string, string> },
    reply: HttpReply,
    closeConnection = !accepting,
  ): void {
    if (state.aborted) return
    state.aborted = true // a response is ended once
    res.cork(() => {
      res.writeStatus(statusLine(reply.status))
      const headers = { ...state.extraHeaders, ...reply.headers }
      for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value)
      res.end(reply.body ?? '', closeConnection)
    })
  }

  function handle(route: Route, paramCount: number) {
    return (res: HttpResponse, req: HttpRequest): void => {
      const state = { aborted: false, extraHeaders: corsHeadersOf(req) }
      // In flight from here until its reply is sent, or until the client goes away while the body
      // is still arriving (no handler will run then). A handler already running stays counted
      // until it finishes, whether or not anyone waits for its reply: shutdown waits for its work.
      let handling = false
      let counted = false
      const settle = (): void => {
        if (!counted) return
        counted = false
        finished()
      }
      res.onAborted(() => {
        state.aborted = true
        if (!handling) settle()
      })
      if (!accepting) {
        send(res, state, errorReply(new FacewireError('ERR_SHUTTING_DOWN')))
        return
      }
      const copied = copyRequest(res, req, route.method, paramCount, clientAddress)
      inFlight++
      counted = true
      const run = (body: Buffer | undefined): void => {
        handling = true
        Promise.resolve()
          .then(() => route.handler({ ...copied, body }))
          .catch((error: unknown) => {
            const wire = toFacewireError(error)
            if (wire.code === 'ERR_INTERNAL') {
              options.logger.error({ err: error, path: copied.path }, 'http.failed')
            }
            return errorReply(wire)
          })
          .then((reply) => {
            send(res, state, reply)
          })
          .finally(settle)
          .catch(() => undefined)
      }
      if (!METHODS_WITH_BODY.has(route.method)) {
        run(undefined)
        return
      }
      const refused = checkDeclaredLength(
        {
          contentLength: copied.headers['content-length'],
          firstContentLength: req.getHeader('content-length'),
          transferEncoding: copied.headers['transfer-encoding'],
        },
        options.maxBodyBytes,
      )
      if (refused !== undefined) {
        // The unread body would be parsed as the next request: close the connection.
        send(res, state, errorReply(refused), true)
        settle()
        return
      }
      const chunks: Buffer[] = []
      let received = 0
      let rejected = false
      res.onData((chunk, isLast) => {
        if (rejected) return
        received += chunk.byteLength
        if (received > options.maxBodyBytes) {
          rejected = true
          send(res, state, errorReply(new FacewireError('ERR_BODY_TOO_LARGE')), true)
          settle()
          return
        }
        // uWS reuses the chunk's memory after this callback returns: copy it.
        chunks.push(Buffer.from(new Uint8Array(chunk)))
        if (isLast) run(Buffer.concat(chunks, received))
      })
    }
  }

  const patterns = new Map<string, number>()
  for (const route of options.routes) {
    const paramCount = route.pattern.split('/').filter((part) => part.startsWith(':')).length
    patterns.set(route.pattern, paramCount)
    const handler = handle(route, paramCount)
    switch (route.method) {
      case 'GET':
        app.get(route.pattern, handler)
        break
      case 'POST':
        app.post(route.pattern, handler)
        break
      case 'PUT':
        app.put(route.pattern, handler)
        break
      case 'PATCH':
        app.patch(route.pattern, handler)
        break
      case 'DELETE':
        app.del(route.pattern, handler)
        break
    }
  }
  const ws = registerWsRoutes(app, options.wsRoutes ?? [], {
    logger: options.logger,
    isAccepting: () => accepting,
    copyRequest: (res, req, paramCount) => copyRequest(res, req, 'GET', paramCount, clientAddress),
    refuse: (res, state, error) => {
      send(res, state, errorReply(error), true)
    },
  })

  // Synchronous answers need no abort tracking: uWS is corked in the handler's own tick.
  const refuse =
    (code: 'ERR_METHOD_NOT_ALLOWED' | 'ERR_NOT_FOUND') => (res: HttpResponse, req: HttpRequest) => {
      send(res, { aborted: false, extraHeaders: corsHeadersOf(req) }, errorReply(new FacewireError(code)))
    }
  // CORS preflights for the API: 204 with what the origin may do, or 403 ERR_CORS_REFUSED without
  // any Access-Control-Allow-* header. A plain OPTIONS request (no Origin or no
  // Access-Control-Request-Method) is answered as any other method the route lacks.
  const preflight = (res: HttpResponse, req: HttpRequest, policy: Cors): void => {
    const headers: Record<string, string> = {}
    req.forEach((key, value) => {
      headers[key] = value
    })
    if (!accepting) {
      send(res, { aborted: false }, errorReply(new FacewireError('ERR_SHUTTING_DOWN')), true)
      return
    }
    if (!isPreflight(headers)) {
      refuse('ERR_METHOD_NOT_ALLOWED')(res, req)
      return
    }
    let reply: HttpReply
    try {
      reply = {
        status: 204,
        headers: policy.preflight(req.getUrl(), {
          origin: headers.origin ?? '',
          method: headers['access-control-request-method'] ?? '',
          headers: headers['access-control-request-headers'],
        }),
      }
    } catch (error) {
      reply = errorReply(toFacewireError(error)) // ERR_CORS_REFUSED
      reply.headers = { ...reply.headers, vary: 'Origin' }
    }
    send(res, { aborted: false }, reply)
  }
  if (cors !== undefined && options.cors !== undefined) {
    const prefix = options.cors.pathPrefix
    for (const pattern of [...patterns.keys(), prefix, `${prefix}/*`]) {
      if (cors.applies(pattern))
        app.options(pattern, (res, req) => {
          preflight(res, req, cors)
        })
    }
  }
  // Known paths with another method: 405. uWS prefers method-specific handlers over `any`.
  for (const pattern of patterns.keys()) app.any(pattern, refuse('ERR_METHOD_NOT_ALLOWED'))
  app.any('/*', refuse('ERR_NOT_FOUND'))

  return {
    engine,
    ws,
    get inFlight() {
      return inFlight
    },
    listen(host, port) {
      return new Promise((resolve, reject) => {
        // The typings lack the (host, port, options, callback) form the native binary takes.
        const listen = app.listen.bind(app) as unknown as ListenWithOptions
        listen(host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, (socket) => {
          if (socket === false) {
            void whyNotListening(host, port).then((reason) => {
              reject(new Error(`could not listen on ${host}:${String(port)}: ${reason}`))
            })
            return
          }
          listenSocket = socket
          resolve(uws.us_socket_local_port(socket))
        })
      })
    },
    stopAccepting() {
      accepting = false
      ws.closeAll(new FacewireError('ERR_SHUTTING_DOWN'))
      if (listenSocket !== undefined) {
        uws.us_listen_socket_close(listenSocket)
        listenSocket = undefined
      }
    },
    drain() {
      if (inFlight === 0) return Promise.resolve()
      return new Promise((resolve) => drainWaiters.push(resolve))
    },
  }
}
