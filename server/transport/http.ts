import { STATUS_CODES } from 'node:http'
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js'
import type { TrustedProxy } from '../config.js'
import { FacewireError, toFacewireError, toWireError } from '../errors.js'
import type { Logger } from '../logger.js'
import { createClientAddress, type ClientAddressResolver } from './client-address.js'
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
    state: { aborted: boolean },
    reply: HttpReply,
    closeConnection = !accepting,
  ): void {
    if (state.aborted) return
    state.aborted = true // a response is ended once
    res.cork(() => {
      res.writeStatus(statusLine(reply.status))
      for (const [name, value] of Object.entries(reply.headers ?? {})) res.writeHeader(name, value)
      res.end(reply.body ?? '', closeConnection)
    })
  }

  function handle(route: Route, paramCount: number) {
    return (res: HttpResponse, req: HttpRequest): void => {
      const state = { aborted: false }
      res.onAborted(() => {
        state.aborted = true
      })
      if (!accepting) {
        send(res, state, errorReply(new FacewireError('ERR_SHUTTING_DOWN')))
        return
      }
      const copied = copyRequest(res, req, route.method, paramCount, clientAddress)
      inFlight++
      const run = (body: Buffer | undefined): void => {
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
          .finally(finished)
          .catch(() => undefined)
      }
      if (!METHODS_WITH_BODY.has(route.method)) {
        run(undefined)
        return
      }
      const declared = Number(copied.headers['content-length'] ?? '0')
      if (declared > options.maxBodyBytes) {
        // The unread body would be parsed as the next request: close the connection.
        send(res, state, errorReply(new FacewireError('ERR_BODY_TOO_LARGE')), true)
        finished()
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
          finished()
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
  const refuse = (code: 'ERR_METHOD_NOT_ALLOWED' | 'ERR_NOT_FOUND') => (res: HttpResponse) => {
    send(res, { aborted: false }, errorReply(new FacewireError(code)))
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
        app.listen(host, port, (socket) => {
          if (socket === false) {
            reject(new Error(`could not listen on ${host}:${port}`))
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
