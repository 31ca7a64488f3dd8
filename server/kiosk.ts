/**
 * The kiosk page's static files: `dist/kiosk/`, written at build time by scripts/build-kiosk.mjs
 * with a `files.json` listing each file (URL path, content type, sha256, content-addressed or
 * not). Only the files listed there are served, from memory once read, gzipped when the browser
 * accepts it (compressed off the event loop). Every answer carries a Content-Security-Policy that
 * allows the page's own origin only (plus WebAssembly compilation for the in-browser detector).
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { gzip as gzipCallback } from 'node:zlib'
import { z } from 'zod'
import { FacewireError } from './errors.js'
import type { Logger } from './logger.js'
import { errorReply, type HttpReply, type HttpRequestInfo, type Route } from './transport/index.js'

const gzip = promisify(gzipCallback)

/** `dist/kiosk/` beside the compiled server (`dist/server/kiosk.js`). */
export const DEFAULT_KIOSK_DIR = fileURLToPath(new URL('../kiosk/', import.meta.url))

export const KIOSK_PREFIX = '/kiosk'

/**
 * Own origin only. `wasm-unsafe-eval` lets the page compile onnxruntime-web's WebAssembly (it
 * allows no `eval` of JavaScript); `blob:`/`mediastream:` are the camera and the page's own crops.
 */
export const KIOSK_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "connect-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob: mediastream:",
  "style-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': KIOSK_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'permissions-policy': 'camera=(self), microphone=(), geolocation=()',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
}

const fileSchema = z.object({
  /** The URL path under /kiosk/ (`index.html` is also served at /kiosk itself). */
  path: z.string().regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/),
  type: z.string().min(1),
  bytes: z.number().int().nonnegative(),
  gzipBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Content-addressed name: cached for a year; others are revalidated (ETag) on every load. */
  immutable: z.boolean(),
})
const filesSchema = z.object({ files: z.array(fileSchema) })
export type KioskFile = z.infer<typeof fileSchema>

interface Loaded {
  body: Buffer
  gzipped: Buffer | undefined
}

export interface KioskOptions {
  dir: string
  logger: Logger
}

/** The kiosk's routes: `GET /kiosk` (the page) and `GET /kiosk/*` (its files). */
export function createKioskRoutes(options: KioskOptions): Route[] {
  const { dir, logger } = options
  let files = new Map<string, KioskFile>()
  try {
    const listed = filesSchema.parse(JSON.parse(readFileSync(join(dir, 'files.json'), 'utf8')))
    files = new Map(listed.files.map((file) => [file.path, file]))
    logger.info({ dir, files: files.size }, 'kiosk.ready')
  } catch (error) {
    // The API and the streams do not need the page: serve them, and say why /kiosk is missing.
    logger.warn(
      { dir, err: error },
      'kiosk.missing: dist/kiosk is not built (npm run build); /kiosk answers 404',
    )
  }

  const loaded = new Map<string, Promise<Loaded>>()
  const load = (file: KioskFile): Promise<Loaded> => {
    let entry = loaded.get(file.path)
    if (entry === undefined) {
      entry = (async () => {
        const body = await readFile(join(dir, file.path))
        const compressible = /^(text\/|application\/(javascript|json|wasm)|image\/svg)/.test(file.type)
        return { body, gzipped: compressible ? await gzip(body) : undefined }
      })()
      // A failed read is retried by the next request rather than cached.
      entry.catch(() => loaded.delete(file.path))
      loaded.set(file.path, entry)
    }
    return entry
  }

  const serve = async (path: string, request: HttpRequestInfo): Promise<HttpReply> => {
    const file = files.get(path)
    if (file === undefined) {
      const error = new FacewireError('ERR_NOT_FOUND', 'no such kiosk file')
      return withHeaders(errorReply(error), SECURITY_HEADERS)
    }
    const etag = `"${file.sha256.slice(0, 32)}"`
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      'content-type': file.type,
      'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      etag,
      vary: 'accept-encoding',
    }
    if (request.headers['if-none-match'] === etag) return { status: 304, headers }
    const { body, gzipped } = await load(file)
    if (gzipped !== undefined && /\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) {
      return { status: 200, headers: { ...headers, 'content-encoding': 'gzip' }, body: gzipped }
    }
    return { status: 200, headers, body }
  }

  return [
    { method: 'GET', pattern: KIOSK_PREFIX, handler: (request) => serve('index.html', request) },
    {
      method: 'GET',
      pattern: `${KIOSK_PREFIX}/*`,
      handler: (request) => {
        const path = request.path.slice(KIOSK_PREFIX.length + 1)
        return serve(path === '' ? 'index.html' : path, request)
      },
    },
  ]
}

function withHeaders(reply: HttpReply, headers: Readonly<Record<string, string>>): HttpReply {
  return { ...reply, headers: { ...headers, ...reply.headers } }
}
