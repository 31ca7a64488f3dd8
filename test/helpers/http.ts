import { request } from 'node:http'
import { connect } from 'node:net'
import { request as httpsRequest } from 'node:https'

export interface TestResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/**
 * One request on its own connection (`agent: false` sends `Connection: close`), so a test's
 * server can close without idle keep-alive sockets holding the process open. With `ca`, HTTPS
 * trusting that CA only. A `content-length` header without a body sends the headers alone (what a
 * proxy answers from them).
 */
export function httpRequest(
  port: number,
  path: string,
  options: {
    method?: string
    headers?: Record<string, string>
    body?: Uint8Array | string
    ca?: string
  } = {},
): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const target = {
      host: '127.0.0.1',
      port,
      path,
      method: options.method ?? 'GET',
      headers: options.headers,
      agent: false as const,
    }
    const req = (options.ca === undefined ? request : httpsRequest)(
      options.ca === undefined ? target : { ...target, ca: options.ca },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    if (options.body === undefined && options.headers?.['content-length'] !== undefined) req.flushHeaders()
    else req.end(options.body)
  })
}

/**
 * Writes `text` as is on a new connection and resolves with everything the server sent once it
 * closes the connection: for requests no HTTP client would send (malformed headers, bodies cut
 * short). Only for exchanges the server ends itself.
 */
export function rawExchange(port: number, text: string | Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET') reject(error)
    })
    socket.on('close', () => {
      resolve(Buffer.concat(chunks).toString('latin1'))
    })
    socket.write(text)
  })
}
