/**
 * REST under /api/v1. The organization always comes from the token; an id of another
 * organization is answered exactly like a missing one (404), so ids leak nothing.
 */
import { z } from 'zod'
import { requireScope, type Authenticator, type Principal, type Scope } from '../auth.js'
import { FacewireError } from '../errors.js'
import { createRateLimiter, rateLimited, type SharedLimitStore } from '../rate-limit.js'
import type { Gallery, Identity } from '../gallery/index.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { Pipeline } from '../pipeline/index.js'
import type { AuditEntryBody, IdentityBody, ListResponse, PolicyResponse } from '../../protocol/wire.js'
import { enrollFace, recognizeImage, round4, toFaceBody } from '../recognize.js'
import {
  jsonReply,
  type HttpMethod,
  type HttpReply,
  type HttpRequestInfo,
  type Route,
} from '../transport/index.js'
import { verifyFaces, type VerifyTarget } from '../verify.js'
import { findMetadataProblem } from './metadata.js'
import { parseMultipart } from './multipart.js'
import { OPENAPI_DOCUMENT } from './openapi.js'

export interface ApiOptions {
  auth: Authenticator
  /** The loaded gallery; throws ERR_NOT_READY while it loads. */
  gallery: () => Gallery
  pipeline: Pipeline
  logger: Logger
  /** Counts the decisions answered. */
  metrics: Pick<Metrics, 'countDecisions'>
  /** Requests per second per organization. */
  rateLimit: number
  /** Cluster mode: the rate limit is counted here, across instances. */
  limitStore: SharedLimitStore | undefined
  minEnrollQuality: number
  /** Faces analysed per image (recognize, and enrollment's search for a comparable face). */
  maxFaces: number
}

export const API_PREFIX = '/api/v1'

const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream'])
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

const name = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters')
const externalId = z.string().trim().min(1).max(200, 'must be at most 200 characters').nullable()
// Bounds first, on the parsed JSON as it came (zod's record would already have dropped a
// `__proto__` key), then the shape.
const metadata = z
  .unknown()
  .superRefine((value, context) => {
    const problem = findMetadataProblem(value)
    if (problem !== undefined)
      context.addIssue({ code: 'custom', message: problem.message, path: problem.path })
  })
  .pipe(z.record(z.string(), z.unknown()))

const createIdentitySchema = z.strictObject({
  name,
  externalId: externalId.optional(),
  metadata: metadata.optional(),
})
const patchIdentitySchema = z
  .strictObject({ name: name.optional(), externalId: externalId.optional(), metadata: metadata.optional() })
  .refine((value) => Object.keys(value).length > 0, {
    message: 'give at least one field to change',
    // Not when the body was refused already (an unknown field is not "no field").
    when: (payload) => payload.issues.length === 0,
  })
const formFile = z
  .instanceof(Uint8Array, { error: 'must be a file' })
  .refine((bytes) => bytes.byteLength > 0, 'the file is empty')
const verifySchema = z
  .strictObject({
    image_a: formFile,
    image_b: formFile.optional(),
    identityId: z.string({ error: 'must be text' }).optional(),
  })
  .refine((form) => (form.image_b === undefined) !== (form.identityId === undefined), {
    message: 'give either image_b or identityId',
    path: ['image_b'],
    when: (payload) => payload.issues.length === 0,
  })
/**
 * A query parameter holding a non-negative integer written in plain decimal digits: `1e3`, `0x10`,
 * ` 5`, `5.0` and the empty string are refused (Number() would take them all).
 */
function queryInteger(min: number, max: number) {
  return z
    .string()
    .regex(/^[0-9]{1,16}$/, 'must be an integer in decimal digits')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
}

const auditQuerySchema = z.strictObject({
  limit: queryInteger(1, 1000).default(100),
  after: queryInteger(0, Number.MAX_SAFE_INTEGER).optional(),
})
const listQuerySchema = z.strictObject({
  limit: queryInteger(1, 1000).default(50),
  cursor: z.string().min(1).max(512).optional(),
})

/** Bounds on what an ERR_REQUEST_INVALID answer echoes of the request. */
const MAX_REPORTED_ISSUES = 20
const MAX_PATH_SEGMENT_CHARS = 64

interface ReportedIssue {
  path: string
  message: string
}

function toPath(segments: readonly PropertyKey[]): string {
  return segments
    .map((segment) => {
      const text = typeof segment === 'symbol' ? (segment.description ?? '') : String(segment)
      return text.length > MAX_PATH_SEGMENT_CHARS ? `${text.slice(0, MAX_PATH_SEGMENT_CHARS)}…` : text
    })
    .join('.')
}

/**
 * One issue per offending field, named by its dotted path: an unknown key is reported at its own
 * path (zod reports it at the enclosing object's, with the key names aside).
 */
function invalid(issues: readonly z.core.$ZodIssue[]): FacewireError {
  const reported: ReportedIssue[] = []
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        reported.push({ path: toPath([...issue.path, key]), message: 'unknown field' })
    } else {
      reported.push({ path: toPath(issue.path), message: issue.message })
    }
  }
  const details: Record<string, unknown> = { issues: reported.slice(0, MAX_REPORTED_ISSUES) }
  if (reported.length > MAX_REPORTED_ISSUES) details.issuesOmitted = reported.length - MAX_REPORTED_ISSUES
  return new FacewireError('ERR_REQUEST_INVALID', undefined, { details })
}

function parseJson<T>(request: HttpRequestInfo, schema: z.ZodType<T>): T {
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/json') {
    throw new FacewireError('ERR_CONTENT_TYPE', 'send the body as application/json')
  }
  let value: unknown
  try {
    value = JSON.parse((request.body ?? Buffer.alloc(0)).toString('utf8'))
  } catch {
    throw new FacewireError('ERR_REQUEST_INVALID', 'the body is not valid JSON')
  }
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw invalid(parsed.error.issues)
  return parsed.data
}

function imageBody(request: HttpRequestInfo): Buffer {
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  if (!IMAGE_TYPES.has(type)) {
    throw new FacewireError('ERR_CONTENT_TYPE', 'send the image as image/jpeg, image/png or image/webp')
  }
  if (request.body === undefined || request.body.byteLength === 0) {
    throw new FacewireError('ERR_FRAME_INVALID', 'the request body is empty')
  }
  return request.body
}

function idParam(request: HttpRequestInfo, index = 0): string {
  const id = request.params[index] ?? ''
  // A malformed id cannot exist: the same answer as a missing one.
  if (!UUID.test(id)) throw new FacewireError('ERR_NOT_FOUND', 'no such resource')
  return id
}

function notFound(what: string): FacewireError {
  return new FacewireError('ERR_NOT_FOUND', `no such ${what}`)
}

export function toIdentityBody(identity: Identity): IdentityBody {
  return {
    id: identity.id,
    name: identity.name,
    externalId: identity.externalId,
    metadata: identity.metadata,
    faceCount: identity.faceCount,
    createdAt: identity.createdAt,
    updatedAt: identity.updatedAt,
  }
}

export function createApiRoutes(options: ApiOptions): Route[] {
  const { auth, pipeline, logger } = options
  const limiter = createRateLimiter({
    points: options.rateLimit,
    shared: { store: options.limitStore, name: 'api' },
  })

  type Handler = (
    request: HttpRequestInfo,
    principal: Principal,
    gallery: Gallery,
  ) => HttpReply | Promise<HttpReply>

  const route = (method: HttpMethod, path: string, scope: Scope, handler: Handler): Route => ({
    method,
    pattern: API_PREFIX + path,
    handler: async (request) => {
      const principal = auth.authenticate(request.headers, request.query)
      requireScope(principal, scope)
      const gallery = options.gallery()
      const retryAfterMs = await limiter.take(principal.org)
      if (retryAfterMs > 0) throw rateLimited(retryAfterMs)
      return handler(request, principal, gallery)
    },
  })
  const actor = (principal: Principal) => ({ sub: principal.sub })

  return [
    {
      method: 'GET',
      pattern: `${API_PREFIX}/openapi.json`,
      handler: () => jsonReply(200, OPENAPI_DOCUMENT),
    },
    route('POST', '/identities', 'enroll', async (request, principal, gallery) => {
      const input = parseJson(request, createIdentitySchema)
      const identity = await gallery.createIdentity(principal.org, input, actor(principal))
      logger.info({ org: principal.org, identityId: identity.id }, 'gallery.identity_created')
      return jsonReply(201, toIdentityBody(identity), { location: `${API_PREFIX}/identities/${identity.id}` })
    }),
    route('GET', '/identities', 'enroll', async (request, principal, gallery) => {
      const query = Object.fromEntries(request.query)
      delete query.access_token
      const parsed = listQuerySchema.safeParse(query)
      if (!parsed.success) throw invalid(parsed.error.issues)
      let page
      try {
        page = await gallery.listIdentities(principal.org, parsed.data)
      } catch (error) {
        if (error instanceof FacewireError) throw error
        throw new FacewireError('ERR_REQUEST_INVALID', 'the cursor is invalid', { cause: error })
      }
      const body: ListResponse<IdentityBody> = { items: page.items.map(toIdentityBody) }
      if (page.nextCursor !== undefined) body.nextCursor = page.nextCursor
      return jsonReply(200, body)
    }),
    route('GET', '/identities/:id', 'enroll', async (request, principal, gallery) => {
      const identity = await gallery.getIdentity(principal.org, idParam(request))
      if (identity === undefined) throw notFound('identity')
      return jsonReply(200, toIdentityBody(identity))
    }),
    route('PATCH', '/identities/:id', 'enroll', async (request, principal, gallery) => {
      const id = idParam(request)
      const patch = parseJson(request, patchIdentitySchema)
      const identity = await gallery.updateIdentity(principal.org, id, patch, actor(principal))
      if (identity === undefined) throw notFound('identity')
      return jsonReply(200, toIdentityBody(identity))
    }),
    route('DELETE', '/identities/:id', 'enroll', async (request, principal, gallery) => {
      const removed = await gallery.deleteIdentity(principal.org, idParam(request), actor(principal))
      if (removed === undefined) throw notFound('identity')
      logger.info(
        { org: principal.org, identityId: removed.identity.id, faces: removed.faces.length },
        'gallery.identity_deleted',
      )
      return { status: 204 }
    }),
    route('GET', '/identities/:id/faces', 'enroll', async (request, principal, gallery) => {
      const id = idParam(request)
      const faces = await gallery.listFaces(principal.org, id)
      if (faces === undefined) throw notFound('identity')
      return jsonReply(200, { items: faces.map((face) => toFaceBody(face, gallery)) })
    }),
    route('POST', '/identities/:id/faces', 'enroll', async (request, principal, gallery) => {
      const identityId = idParam(request)
      const bytes = imageBody(request)
      const body = await enrollFace(
        pipeline,
        gallery,
        { org: principal.org, identityId, actor: actor(principal) },
        bytes,
        { maxFaces: options.maxFaces, minQuality: options.minEnrollQuality },
      )
      if (body === undefined) throw notFound('identity')
      if (body.duplicate) {
        // The same bytes again: the face they made, and nothing added.
        logger.info({ org: principal.org, identityId, faceId: body.face.id }, 'gallery.enroll_duplicate')
        return jsonReply(200, body)
      }
      logger.info({ org: principal.org, identityId, faceId: body.face.id }, 'gallery.enrolled')
      return jsonReply(201, body, { location: `${API_PREFIX}/faces/${body.face.id}` })
    }),
    route('DELETE', '/faces/:id', 'enroll', async (request, principal, gallery) => {
      const face = await gallery.deleteFace(principal.org, idParam(request), actor(principal))
      if (face === undefined) throw notFound('face')
      logger.info({ org: principal.org, faceId: face.id }, 'gallery.face_deleted')
      return { status: 204 }
    }),
    route('GET', '/policy', 'detect', (_request, principal, gallery) => {
      const policy = gallery.policyFor(principal.org)
      const body: PolicyResponse = {
        targetFpir: policy.targetFpir,
        threshold: round4(policy.threshold),
        margin: policy.margin,
        topK: policy.topK,
        basis: policy.basis,
        identities: policy.identities,
        galleryPairs: policy.galleryPairs,
        ...(policy.cohortThreshold === undefined ? {} : { cohortThreshold: round4(policy.cohortThreshold) }),
        ...(policy.galleryThreshold === undefined
          ? {}
          : { galleryThreshold: round4(policy.galleryThreshold) }),
        modelId: gallery.modelId,
      }
      return jsonReply(200, body)
    }),
    route('GET', '/audit', 'admin', async (request, principal, gallery) => {
      const query = Object.fromEntries(request.query)
      delete query.access_token
      const parsed = auditQuerySchema.safeParse(query)
      if (!parsed.success) throw invalid(parsed.error.issues)
      const entries = await gallery.audit(principal.org, {
        limit: parsed.data.limit,
        afterSeq: parsed.data.after,
      })
      const items = entries.map(({ seq, at, actor: who, action, identityId, faceId }): AuditEntryBody => ({
        seq,
        at,
        actor: who,
        action,
        identityId,
        faceId,
      }))
      return jsonReply(200, { items })
    }),
    route('POST', '/verify', 'detect', async (request, principal, gallery) => {
      const parsed = verifySchema.safeParse(await parseMultipart(request))
      if (!parsed.success) throw invalid(parsed.error.issues)
      const form = parsed.data
      let target: VerifyTarget
      if (form.image_b !== undefined) {
        target = { image: form.image_b }
      } else {
        const identityId = form.identityId ?? ''
        // A malformed id cannot exist: the same answer as a missing one.
        if (!UUID.test(identityId)) throw notFound('identity')
        target = { identityId }
      }
      const response = await verifyFaces(pipeline, gallery, principal.org, form.image_a, target, {
        maxFaces: options.maxFaces,
      })
      return jsonReply(200, response)
    }),
    route('POST', '/recognize', 'detect', async (request, principal, gallery) => {
      const bytes = imageBody(request)
      const response = await recognizeImage(pipeline, gallery, principal.org, bytes, {
        maxFaces: options.maxFaces,
      })
      options.metrics.countDecisions('rest', principal.org, response.faces)
      return jsonReply(200, response)
    }),
  ]
}
