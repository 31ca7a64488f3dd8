/**
 * WebSocket routes on uWebSockets.js: authentication at the upgrade (before any socket exists),
 * bounded messages and send buffers, pub/sub topics. Nothing outside the transport sees uWS.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket } from 'uWebSockets.js'
import { FacewireError, toFacewireError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { HttpRequestInfo } from './http.js'
import {
  createMessageBudget,
  parseMessageBudgetLimits,
  type BudgetName,
  type MessageBudget,
  type MessageBudgetLimits,
} from './message-budget.js'

export type WsSendResult = 'sent' | 'buffered' | 'dropped' | 'closed'

/** One open WebSocket, valid until `close` has been called on its route. */
export interface WsConnection<T> {
  readonly context: T
  readonly closed: boolean
  /** Bytes queued in the socket's send buffer (uWS backpressure). */
  readonly bufferedAmount: number
  /** Sends a text message: `buffered` = queued behind backpressure, `dropped` = over the bound. */
  send(text: string): WsSendResult
  /**
   * Closes with the catalogue's close code of `error` (1011 for a code that has none) and its code
   * as the reason.
   */
  close(error: FacewireError): void
  /**
   * Charges an invalid message (one the route answers as an error) to the connection's budget.
   * False when that spent it: the connection is then closed with ERR_POLICY_VIOLATION (1008) and
   * the message must not be answered.
   */
  admitInvalid(): boolean
  subscribe(topic: string): void
}

export interface WsRoute<T> {
  pattern: string
  /**
   * Larger messages close the socket with 1009. uWS reads up to twice this before it cuts the
   * connection itself (1006), so the bound on memory per message stays 2x.
   */
  maxPayloadBytes: number
  /** Seconds without traffic before the socket is closed (pings are sent automatically). */
  idleTimeoutS: number
  /** Send-buffer bound; a send beyond it is dropped (`dropped`). */
  maxBackpressureBytes: number
  /**
   * What one connection may send per second. Every message is charged before the route sees it
   * (O(1), nothing copied yet); one that overdraws closes the connection with
   * ERR_POLICY_VIOLATION (1008), so a flood costs the main thread a bounded amount of work.
   */
  budget: MessageBudgetLimits
  /** Runs before the upgrade; throw a FacewireError to refuse it with its HTTP status. */
  upgrade(request: Omit<HttpRequestInfo, 'body'>): T | Promise<T>
  open(connection: WsConnection<T>): void
  /** `data` is a copy the handler may keep. */
  message(connection: WsConnection<T>, data: Uint8Array, isBinary: boolean): void
  drain?(connection: WsConnection<T>): void
  close(connection: WsConnection<T>, code: number): void
}

/** A route with its context type erased, so routes of different contexts share one list. */
export interface AnyWsRoute {
  readonly pattern: string
  readonly route: WsRoute<unknown>
}

/** Checks the route's bounds once, here, rather than on a connection. */
export function defineWsRoute<T>(route: WsRoute<T>): AnyWsRoute {
  const budget = parseMessageBudgetLimits(route.budget, route.maxPayloadBytes)
  return { pattern: route.pattern, route: { ...route, budget } }
}

interface Slot {
  connection: Connection
}

const policyViolation = new FacewireError('ERR_POLICY_VIOLATION')

class Connection implements WsConnection<unknown> {
  socket: WebSocket<Slot> | undefined
  closed = false
  readonly context: unknown
  private readonly budget: MessageBudget
  private readonly onViolation: (spent: BudgetName) => void
  constructor(context: unknown, budget: MessageBudget, onViolation: (spent: BudgetName) => void) {
    this.context = context
    this.budget = budget
    this.onViolation = onViolation
  }
  /** Charges one message; false when it overdrew the budget and the connection was closed. */
  admit(bytes: number): boolean {
    const spent = this.budget.chargeMessage(bytes, performance.now())
    if (spent === undefined) return true
    this.violate(spent)
    return false
  }
  admitInvalid(): boolean {
    if (this.closed) return false
    if (this.budget.chargeInvalid(performance.now())) return true
    this.violate('invalid')
    return false
  }
  private violate(spent: BudgetName): void {
    this.onViolation(spent)
    this.close(policyViolation)
  }
  get bufferedAmount(): number {
    return this.closed || this.socket === undefined ? 0 : this.socket.getBufferedAmount()
  }
  send(text: string): WsSendResult {
    if (this.closed || this.socket === undefined) return 'closed'
    // uWS: 1 sent, 0 queued behind backpressure, 2 dropped over maxBackpressure.
    const status = this.socket.send(text, false, false)
    return status === 1 ? 'sent' : status === 0 ? 'buffered' : 'dropped'
  }
  close(error: FacewireError): void {
    if (this.closed || this.socket === undefined) return
    this.closed = true
    this.socket.end(error.close ?? 1011, error.code)
  }
  subscribe(topic: string): void {
    if (!this.closed) this.socket?.subscribe(topic)
  }
}

export interface WsRegistry {
  /** Open connections across routes. */
  readonly size: number
  /** Sends to every subscriber of `topic`. */
  publish(topic: string, text: string): void
  /** Closes every open socket with the error's close code (shutdown: ERR_SHUTTING_DOWN, 1001). */
  closeAll(error: FacewireError): void
}

export interface WsHooks {
  logger: Logger
  isAccepting: () => boolean
  copyRequest: (res: HttpResponse, req: HttpRequest, paramCount: number) => Omit<HttpRequestInfo, 'body'>
  refuse: (res: HttpResponse, state: { aborted: boolean }, error: FacewireError) => void
}

export function registerWsRoutes(
  app: TemplatedApp,
  routes: readonly AnyWsRoute[],
  hooks: WsHooks,
): WsRegistry {
  const open = new Set<Connection>()
  for (const { pattern, route } of routes) {
    const paramCount = pattern.split('/').filter((part) => part.startsWith(':')).length
    app.ws<Slot>(pattern, {
      maxPayloadLength: route.maxPayloadBytes * 2,
      idleTimeout: route.idleTimeoutS,
      maxBackpressure: route.maxBackpressureBytes,
      closeOnBackpressureLimit: 0,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const state = { aborted: false }
        res.onAborted(() => {
          state.aborted = true
        })
        if (!hooks.isAccepting()) {
          hooks.refuse(res, state, new FacewireError('ERR_SHUTTING_DOWN'))
          return
        }
        // Everything the upgrade needs is copied now: req dies when this function returns.
        const copied = hooks.copyRequest(res, req, paramCount)
        const key = req.getHeader('sec-websocket-key')
        const protocol = req.getHeader('sec-websocket-protocol')
        const extensions = req.getHeader('sec-websocket-extensions')
        Promise.resolve()
          .then(() => route.upgrade(copied))
          .then(
            (contextValue) => {
              if (state.aborted) return
              state.aborted = true
              const budget = createMessageBudget(route.budget, performance.now())
              const onViolation = (spent: BudgetName): void => {
                // Once per connection (it is closed at once): never a line per message.
                hooks.logger.warn(
                  { route: pattern, budget: spent, limits: route.budget },
                  'ws.policy_violation',
                )
              }
              res.cork(() => {
                res.upgrade<Slot>(
                  { connection: new Connection(contextValue, budget, onViolation) },
                  key,
                  protocol,
                  extensions,
                  context,
                )
              })
            },
            (error: unknown) => {
              const wire = toFacewireError(error)
              if (wire.code === 'ERR_INTERNAL')
                hooks.logger.error(
                  { err: error, path: copied.path, clientIp: copied.clientIp },
                  'ws.upgrade_failed',
                )
              hooks.refuse(res, state, wire)
            },
          )
          .catch((error: unknown) => {
            hooks.logger.error({ err: error }, 'ws.upgrade_failed')
          })
      },
      open: (ws) => {
        const connection = ws.getUserData().connection
        connection.socket = ws
        open.add(connection)
        route.open(connection)
      },
      message: (ws, message, isBinary) => {
        const connection = ws.getUserData().connection
        if (connection.closed) return
        if (message.byteLength > route.maxPayloadBytes) {
          connection.close(new FacewireError('ERR_BODY_TOO_LARGE'))
          return
        }
        // Before any copy or parse: a flood is cut off here at O(1) per message.
        if (!connection.admit(message.byteLength)) return
        // uWS neuters the ArrayBuffer after this callback: copy it.
        route.message(connection, new Uint8Array(message.slice(0)), isBinary)
      },
      drain: (ws) => {
        route.drain?.(ws.getUserData().connection)
      },
      close: (ws, code) => {
        const connection = ws.getUserData().connection
        connection.closed = true
        connection.socket = undefined
        open.delete(connection)
        route.close(connection, code)
      },
    })
  }
  return {
    get size() {
      return open.size
    },
    publish(topic, text) {
      app.publish(topic, text, false, false)
    },
    closeAll(error) {
      for (const connection of [...open]) connection.close(error)
    },
  }
}
