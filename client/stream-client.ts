/** A typed client of /ws/detect and /ws/events (CLI replay, tests, benchmarks), on `ws`. */
import WebSocket from 'ws'
import type { EventMessage, EventsHello, StreamAnswer, StreamHello, StreamMessage } from '../protocol/wire.js'
import { encodeFrame, type FrameHeader } from '../protocol/frame.js'

export interface Closed {
  code: number
  reason: string
}

/** The server refused the upgrade (HTTP status and the catalogue code of its JSON body). */
export class UpgradeRefused extends Error {
  readonly status: number
  readonly code: string
  constructor(status: number, code: string) {
    super(`upgrade refused: ${String(status)} ${code}`)
    this.name = 'UpgradeRefused'
    this.status = status
    this.code = code
  }
}

function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8')
  return Buffer.from(data as ArrayBuffer).toString('utf8')
}

function wsUrl(baseUrl: string, path: string, token: string, viaQuery: boolean): string {
  const url = new URL(path, baseUrl.replace(/^http/, 'ws'))
  if (viaQuery) url.searchParams.set('access_token', token)
  return url.toString()
}

interface Connected {
  socket: WebSocket
  /** Parsed messages in arrival order; `onMessage` replaces the buffering once set. */
  next: () => Promise<unknown>
  onMessage: (listener: (message: unknown) => void) => void
}

/**
 * Opens the socket with a message listener attached from the start: the server's hello may
 * arrive in the same TCP segment as the upgrade answer, before any later listener would be.
 */
function connect(url: string, token: string, viaQuery: boolean, ca?: string): Promise<Connected> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, {
      ...(viaQuery ? {} : { headers: { authorization: `Bearer ${token}` } }),
      ...(ca === undefined ? {} : { ca }),
    })
    const buffered: unknown[] = []
    const takers: ((message: unknown) => void)[] = []
    let listener: ((message: unknown) => void) | undefined
    socket.on('message', (data: WebSocket.RawData) => {
      const message: unknown = JSON.parse(rawText(data))
      const taker = takers.shift()
      if (taker !== undefined) taker(message)
      else if (listener !== undefined) listener(message)
      else buffered.push(message)
    })
    socket.once('open', () => {
      resolve({
        socket,
        next: () =>
          new Promise((resolveNext, rejectNext) => {
            if (buffered.length > 0) {
              resolveNext(buffered.shift())
              return
            }
            takers.push(resolveNext)
            socket.once('close', (code: number) => {
              rejectNext(new Error(`closed before the first message (${String(code)})`))
            })
          }),
        onMessage: (fn) => {
          listener = fn
          for (const message of buffered.splice(0)) fn(message)
        },
      })
    })
    socket.once('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')))
      response.on('end', () => {
        let code = `HTTP_${String(response.statusCode)}`
        try {
          code = (JSON.parse(body) as { error: { code: string } }).error.code
        } catch {
          // not a facewire error body
        }
        reject(new UpgradeRefused(response.statusCode ?? 0, code))
      })
    })
    socket.once('error', reject)
  })
}

export interface DetectStream {
  readonly hello: StreamHello
  readonly socket: WebSocket
  /** Sends one frame; returns the encoded size. */
  send(header: FrameHeader, image: Uint8Array): number
  /** Called for every answer (result, dropped, throttled, error). */
  onAnswer(listener: (answer: StreamAnswer) => void): void
  /** Resolves with the next answer for `frameId`. */
  answerFor(frameId: number): Promise<StreamAnswer>
  readonly closed: Promise<Closed>
  close(): void
}

function closedPromise(socket: WebSocket): Promise<Closed> {
  return new Promise((resolve) => {
    socket.once('close', (code: number, reason: Buffer) => {
      resolve({ code, reason: reason.toString('utf8') })
    })
  })
}

export async function openDetectStream(options: {
  baseUrl: string
  token: string
  /** Pass the token as `access_token` (as browsers must) instead of a header. */
  tokenInQuery?: boolean
  /** PEM certificate(s) of a private CA that signed an `https:` server's certificate. */
  ca?: string
}): Promise<DetectStream> {
  const { socket, next, onMessage } = await connect(
    wsUrl(options.baseUrl, '/ws/detect', options.token, options.tokenInQuery === true),
    options.token,
    options.tokenInQuery === true,
    options.ca,
  )
  const closed = closedPromise(socket)
  const hello = (await next()) as StreamHello
  const listeners: ((answer: StreamAnswer) => void)[] = []
  const waiters = new Map<number, ((answer: StreamAnswer) => void)[]>()
  onMessage((raw) => {
    const message = raw as StreamMessage
    if (message.type === 'hello') return
    for (const listener of listeners) listener(message)
    const frameId = 'frameId' in message ? message.frameId : undefined
    if (frameId === undefined) return
    const waiting = waiters.get(frameId)
    const first = waiting?.shift()
    if (waiting?.length === 0) waiters.delete(frameId)
    first?.(message)
  })
  return {
    hello,
    socket,
    closed,
    send(header, image) {
      const bytes = encodeFrame(header, image)
      socket.send(bytes, { binary: true })
      return bytes.length
    },
    onAnswer(listener) {
      listeners.push(listener)
    },
    answerFor(frameId) {
      return new Promise((resolve) => {
        const list = waiters.get(frameId) ?? []
        list.push(resolve)
        waiters.set(frameId, list)
      })
    },
    close() {
      socket.close(1000)
    },
  }
}

export interface EventStream {
  readonly hello: EventsHello
  readonly socket: WebSocket
  readonly events: EventMessage[]
  onEvent(listener: (event: EventMessage) => void): void
  readonly closed: Promise<Closed>
  close(): void
}

export async function openEventStream(options: { baseUrl: string; token: string }): Promise<EventStream> {
  const { socket, next, onMessage } = await connect(
    wsUrl(options.baseUrl, '/ws/events', options.token, false),
    options.token,
    false,
  )
  const closed = closedPromise(socket)
  const hello = (await next()) as EventsHello
  const events: EventMessage[] = []
  const listeners: ((event: EventMessage) => void)[] = []
  onMessage((raw) => {
    const event = raw as EventMessage
    events.push(event)
    for (const listener of listeners) listener(event)
  })
  return {
    hello,
    socket,
    events,
    closed,
    onEvent(listener) {
      listeners.push(listener)
    },
    close() {
      socket.close(1000)
    },
  }
}
