/**
 * The kiosk's /ws/detect stream: connects with the token in `access_token` (a browser cannot set
 * headers on a WebSocket), reconnects with capped, jittered exponential backoff, and tells a
 * refused token from an unreachable server. A browser cannot read the HTTP status of a refused
 * upgrade, so when a socket fails before its hello the kiosk asks a REST route the same token may
 * call (GET /api/v1/policy, scope `detect`, like the stream): 401/403 means the token, no answer
 * means the network.
 */
import type { StreamAnswer, StreamHello, StreamMessage } from '../../protocol/wire.js'
import type { Backoff } from './backoff.js'
import type { ConnectionState } from './stats.js'

/** Close codes that mean the token: expired while open (4401) or lacking the scope (4403). */
const AUTH_CLOSE_CODES = new Set([4401, 4403])
/** Above this many buffered bytes the kiosk skips frames rather than queue them in the browser. */
export const MAX_BUFFERED_BYTES = 1 << 20
/** The probe's time limit: a server that does not answer in this long is unreachable. */
export const PROBE_TIMEOUT_MS = 5000

export type ProbeOutcome = 'auth' | 'down' | 'up'

export interface StreamHandlers {
  state: (state: ConnectionState) => void
  hello: (hello: StreamHello) => void
  answer: (answer: StreamAnswer) => void
  /** The server refused the token (expired, revoked, invalid, lacking `detect`). Final. */
  rejected: () => void
  /** A connection attempt failed; the next one starts at `retryAtMs` (performance.now()). */
  unreachable: (retryAtMs: number) => void
}

export interface StreamConnection {
  start: () => void
  /** Sends one binary frame; false when the socket is not open or its buffer is full. */
  send: (frame: Uint8Array) => boolean
  stop: () => void
}

export interface StreamOptions {
  origin: string
  token: string
  backoff: Backoff
  handlers: StreamHandlers
}

/** Asks GET /api/v1/policy with the token: `auth` for 401/403, `down` for no answer or 5xx. */
export async function probe(origin: string, token: string): Promise<ProbeOutcome> {
  try {
    const response = await fetch(new URL('/api/v1/policy', origin), {
      headers: { authorization: `Bearer ${token}` },
      cache: 'no-store',
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    })
    if (response.status === 401 || response.status === 403) return 'auth'
    return response.status >= 500 ? 'down' : 'up'
  } catch {
    return 'down'
  }
}

export function streamUrl(origin: string, token: string): string {
  const url = new URL('/ws/detect', origin)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  url.searchParams.set('access_token', token)
  return url.toString()
}

export function createStreamConnection(options: StreamOptions): StreamConnection {
  const { handlers, backoff } = options
  let socket: WebSocket | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false

  const retry = (delayMs: number, announce: boolean): void => {
    if (announce) handlers.unreachable(performance.now() + delayMs)
    timer = setTimeout(connect, delayMs)
  }

  const failed = async (helloSeen: boolean): Promise<void> => {
    // A stream that was open reconnects at once (a restart, a dropped Wi-Fi); a failed attempt
    // asks the probe whether it is the token before showing the countdown.
    if (helloSeen) {
      retry(backoff.next(), false)
      return
    }
    const outcome = await probe(options.origin, options.token)
    if (stopped) return
    if (outcome === 'auth') {
      handlers.rejected()
      return
    }
    retry(backoff.next(), true)
  }

  function connect(): void {
    if (stopped) return
    handlers.state('connecting')
    const ws = new WebSocket(streamUrl(options.origin, options.token))
    ws.binaryType = 'arraybuffer'
    socket = ws
    let helloSeen = false
    ws.addEventListener('message', (event: MessageEvent<unknown>) => {
      if (typeof event.data !== 'string') return
      let message: StreamMessage
      try {
        message = JSON.parse(event.data) as StreamMessage
      } catch {
        return
      }
      if (message.type === 'hello') {
        helloSeen = true
        backoff.reset()
        handlers.state('open')
        handlers.hello(message)
      } else {
        handlers.answer(message)
      }
    })
    ws.addEventListener('close', (event) => {
      if (socket === ws) socket = undefined
      if (stopped) return
      handlers.state('closed')
      if (AUTH_CLOSE_CODES.has(event.code)) {
        handlers.rejected()
        return
      }
      void failed(helloSeen)
    })
  }

  return {
    start() {
      stopped = false
      connect()
    },
    send(frame) {
      if (socket?.readyState !== WebSocket.OPEN || socket.bufferedAmount > MAX_BUFFERED_BYTES) return false
      socket.send(frame)
      return true
    },
    stop() {
      stopped = true
      clearTimeout(timer)
      socket?.close(1000)
      socket = undefined
      handlers.state('closed')
    },
  }
}
