/** A small typed client of the REST API (CLI, tests, scripts). Uses the global fetch. */
import type {
  AuditEntryBody,
  EnrollResponse,
  FaceBody,
  IdentityBody,
  ListResponse,
  RecognizeResponse,
  VerifyResponse,
  WireError,
} from '../protocol/wire.js'

/**
 * A non-2xx answer: the HTTP status and the server's catalogue error, or `ERR_HTTP` when the body
 * was not facewire's (a proxy's error page, for example).
 */
export class ApiError extends Error {
  readonly status: number
  readonly code: WireError['code'] | 'ERR_HTTP'
  readonly details: Readonly<Record<string, unknown>> | undefined
  constructor(status: number, error: WireError | { code: 'ERR_HTTP'; message: string; details?: undefined }) {
    super(`${error.code}: ${error.message}`)
    this.name = 'ApiError'
    this.status = status
    this.code = error.code
    this.details = error.details
  }
}

export type ImageType = 'image/jpeg' | 'image/png' | 'image/webp'

/** Content type from a file name; undefined for anything the server would not accept. */
export function imageTypeOf(file: string): ImageType | undefined {
  const lower = file.toLowerCase()
  if (lower.endsWith('.jpg') || lower.endsWith('.jpeg')) return 'image/jpeg'
  if (lower.endsWith('.png')) return 'image/png'
  if (lower.endsWith('.webp')) return 'image/webp'
  return undefined
}

export interface ApiClient {
  createIdentity(input: {
    name: string
    externalId?: string | null
    metadata?: Record<string, unknown>
  }): Promise<IdentityBody>
  listIdentities(options?: { limit?: number; cursor?: string }): Promise<ListResponse<IdentityBody>>
  /** Every identity, oldest first, page after page (the first `max` only, when given). */
  allIdentities(max?: number): Promise<IdentityBody[]>
  getIdentity(id: string): Promise<IdentityBody>
  updateIdentity(
    id: string,
    patch: { name?: string; externalId?: string | null; metadata?: Record<string, unknown> },
  ): Promise<IdentityBody>
  deleteIdentity(id: string): Promise<void>
  listFaces(identityId: string): Promise<{ items: FaceBody[] }>
  addFace(identityId: string, image: Uint8Array, type?: ImageType): Promise<EnrollResponse>
  deleteFace(faceId: string): Promise<void>
  recognize(image: Uint8Array, type?: ImageType): Promise<RecognizeResponse>
  /** Whether the face of `a` is the face of `b`, or the identity `b.identityId` (scope detect). */
  verify(
    a: { image: Uint8Array; type?: ImageType },
    b: { image: Uint8Array; type?: ImageType } | { identityId: string },
  ): Promise<VerifyResponse>
  /** The audit log, oldest first, entries with seq > `after` (scope admin). */
  audit(options?: { limit?: number; after?: number }): Promise<{ items: AuditEntryBody[] }>
}

export function createApiClient(options: { baseUrl: string; token: string }): ApiClient {
  const base = options.baseUrl.replace(/\/+$/, '') + '/api/v1'
  const call = async <T>(
    method: string,
    path: string,
    body?: { type: string; data: Uint8Array | string } | { type: 'multipart'; data: FormData },
  ) => {
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}` }
    // fetch writes a multipart body's content type itself, with the boundary it chose.
    if (body !== undefined && body.type !== 'multipart') headers['content-type'] = body.type
    const response = await fetch(base + path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: body.data }),
    })
    if (response.status === 204) return undefined as T
    const text = await response.text()
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new ApiError(response.status, { code: 'ERR_HTTP', message: `HTTP ${String(response.status)}` })
    }
    if (!response.ok) {
      const error = (parsed as { error?: WireError }).error
      throw new ApiError(
        response.status,
        error ?? { code: 'ERR_HTTP', message: `HTTP ${String(response.status)}` },
      )
    }
    return parsed as T
  }
  const json = (value: unknown) => ({ type: 'application/json', data: JSON.stringify(value) })
  const client: ApiClient = {
    createIdentity: (input) => call('POST', '/identities', json(input)),
    listIdentities: (query = {}) => {
      const params = new URLSearchParams()
      if (query.limit !== undefined) params.set('limit', String(query.limit))
      if (query.cursor !== undefined) params.set('cursor', query.cursor)
      const qs = params.toString()
      return call('GET', `/identities${qs === '' ? '' : '?' + qs}`)
    },
    async allIdentities(max = Infinity) {
      const all: IdentityBody[] = []
      let cursor: string | undefined
      do {
        const page = await client.listIdentities({
          limit: Math.min(1000, max - all.length),
          ...(cursor === undefined ? {} : { cursor }),
        })
        all.push(...page.items)
        cursor = page.nextCursor
      } while (cursor !== undefined && all.length < max)
      return all
    },
    getIdentity: (id) => call('GET', `/identities/${encodeURIComponent(id)}`),
    updateIdentity: (id, patch) => call('PATCH', `/identities/${encodeURIComponent(id)}`, json(patch)),
    deleteIdentity: (id) => call('DELETE', `/identities/${encodeURIComponent(id)}`),
    listFaces: (id) => call('GET', `/identities/${encodeURIComponent(id)}/faces`),
    addFace: (id, image, type = 'image/jpeg') =>
      call('POST', `/identities/${encodeURIComponent(id)}/faces`, { type, data: image }),
    deleteFace: (id) => call('DELETE', `/faces/${encodeURIComponent(id)}`),
    recognize: (image, type = 'image/jpeg') => call('POST', '/recognize', { type, data: image }),
    verify: (a, b) => {
      const form = new FormData()
      const file = (part: { image: Uint8Array; type?: ImageType }) =>
        new Blob([part.image], { type: part.type ?? 'image/jpeg' })
      form.set('image_a', file(a), 'a')
      if ('identityId' in b) form.set('identityId', b.identityId)
      else form.set('image_b', file(b), 'b')
      return call('POST', '/verify', { type: 'multipart', data: form })
    },
    audit: (query = {}) => {
      const params = new URLSearchParams()
      if (query.limit !== undefined) params.set('limit', String(query.limit))
      if (query.after !== undefined) params.set('after', String(query.after))
      const qs = params.toString()
      return call('GET', `/audit${qs === '' ? '' : '?' + qs}`)
    },
  }
  return client
}
