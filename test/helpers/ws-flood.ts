/**
 * A WebSocket client that does what no library lets a client do: writes tiny invalid binary
 * messages as fast as the socket takes them, never reading an answer. Raw TCP with a hand-made
 * upgrade, for the abuse test and the soak benchmark.
 */
import { connect, type Socket } from 'node:net'

export interface FloodOptions {
  port: number
  path: string
  token: string
  /** Stop (and write nothing more) once this many messages are written, across reconnects. */
  maxMessages: number
  /** Stop at this `performance.now()`. */
  untilMs: number
  /** Open a new connection when the server closes one (default true). */
  reconnect?: boolean
}

export interface FloodTally {
  /** Messages written to sockets. */
  messages: number
  connections: number
  /** Close codes the server sent, in order (from its close frames). */
  closeCodes: number[]
  /** Upgrades the server refused (any status but 101). */
  refused: number
}

/** A masked binary frame with one payload byte: a frame header can never be that short. */
const TINY_INVALID = Buffer.from([0x82, 0x81, 0x12, 0x34, 0x56, 0x78, 0x00 ^ 0x12])
const MESSAGES_PER_WRITE = 8192
const CHUNK = Buffer.concat(Array.from({ length: MESSAGES_PER_WRITE }, () => TINY_INVALID))

/** The close code in the first close frame (opcode 8) of server bytes after the upgrade, if any. */
function closeCode(bytes: Buffer): number | undefined {
  let offset = 0
  while (offset + 2 <= bytes.length) {
    const opcode = (bytes[offset] ?? 0) & 0x0f
    let length = (bytes[offset + 1] ?? 0) & 0x7f
    let start = offset + 2
    if (length === 126) {
      length = bytes.readUInt16BE(start)
      start += 2
    } else if (length === 127) return undefined // answers are never that long
    if (opcode === 8) return length >= 2 && start + 2 <= bytes.length ? bytes.readUInt16BE(start) : 1005
    offset = start + length
  }
  return undefined
}

function floodOnce(options: FloodOptions, tally: FloodTally): Promise<void> {
  return new Promise((resolve) => {
    const socket: Socket = connect(options.port, '127.0.0.1')
    socket.setNoDelay(true)
    tally.connections++
    let upgraded = false
    let received: Buffer = Buffer.alloc(0)
    let recorded = false
    const pump = (): void => {
      while (
        !socket.destroyed &&
        tally.messages < options.maxMessages &&
        performance.now() < options.untilMs
      ) {
        tally.messages += MESSAGES_PER_WRITE
        if (!socket.write(CHUNK)) {
          socket.once('drain', pump)
          return
        }
      }
      socket.destroy()
    }
    socket.on('data', (chunk: Buffer) => {
      if (!upgraded) {
        const text = chunk.toString('latin1')
        const end = text.indexOf('\r\n\r\n')
        if (!text.startsWith('HTTP/1.1 101')) {
          tally.refused++
          socket.destroy()
          return
        }
        upgraded = true
        received = chunk.subarray(end + 4)
        setImmediate(pump)
      } else received = Buffer.concat([received, chunk]).subarray(-65536)
      const code = recorded ? undefined : closeCode(received)
      if (code !== undefined) {
        recorded = true
        tally.closeCodes.push(code)
        socket.destroy() // as a client does once the server said goodbye
      }
    })
    socket.on('error', () => undefined)
    socket.on('close', () => {
      resolve()
    })
    socket.write(
      `GET ${options.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${options.token}\r\n` +
        'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Key: ZmFjZXdpcmUtZmxvb2Qtaw==\r\n\r\n',
    )
  })
}

/** Floods until `untilMs` or `maxMessages`, reconnecting when the server closes the connection. */
export async function flood(options: FloodOptions): Promise<FloodTally> {
  const tally: FloodTally = { messages: 0, connections: 0, closeCodes: [], refused: 0 }
  do {
    await floodOnce(options, tally)
  } while (
    options.reconnect !== false &&
    tally.messages < options.maxMessages &&
    performance.now() < options.untilMs
  )
  return tally
}
