/** The OpenAPI 3.1 document served at /api/v1/openapi.json (docs/api.md is the prose version). */
import { ERRORS } from '../../protocol/errors.js'
import { MAX_METADATA_BYTES, MAX_METADATA_DEPTH } from './metadata.js'

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
const json = (schema: unknown) => ({ 'application/json': { schema } })
const errorResponse = (description: string) => ({ description, content: json(ref('ErrorBody')) })

const imageBody = {
  required: true,
  description: 'The image bytes (JPEG, PNG or WebP), at most FACEWIRE_MAX_BODY_BYTES.',
  content: {
    'image/jpeg': { schema: { type: 'string', format: 'binary' } },
    'image/png': { schema: { type: 'string', format: 'binary' } },
    'image/webp': { schema: { type: 'string', format: 'binary' } },
  },
}

const common = {
  '401': errorResponse('ERR_AUTH_MISSING, ERR_AUTH_INVALID or ERR_AUTH_EXPIRED'),
  '403': errorResponse('ERR_AUTH_SCOPE'),
  '429': errorResponse('ERR_RATE_LIMITED (Retry-After header)'),
}
const METADATA = {
  type: 'object',
  description: `At most ${String(MAX_METADATA_BYTES)} bytes of JSON, nested at most ${String(MAX_METADATA_DEPTH)} levels, no __proto__ key`,
}
const idParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }
const imageErrors = {
  '400': errorResponse('ERR_FRAME_INVALID'),
  '413': errorResponse('ERR_BODY_TOO_LARGE or ERR_FRAME_TOO_MANY_PIXELS'),
  '415': errorResponse('ERR_CONTENT_TYPE or ERR_FRAME_UNSUPPORTED'),
  '503': errorResponse('ERR_PIPELINE_BUSY or ERR_NOT_READY'),
  '504': errorResponse('ERR_PIPELINE_TIMEOUT'),
}

const box = {
  type: 'object',
  required: ['x', 'y', 'width', 'height'],
  properties: {
    x: { type: 'number' },
    y: { type: 'number' },
    width: { type: 'number' },
    height: { type: 'number' },
  },
}
const point = {
  type: 'object',
  required: ['x', 'y'],
  properties: { x: { type: 'number' }, y: { type: 'number' } },
}
const identityRef = {
  type: 'object',
  required: ['id', 'name'],
  properties: { id: { type: 'string', format: 'uuid' }, name: { type: 'string' } },
}

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'facewire REST API',
    version: '1',
    description:
      'Identities, enrollment and recognition. The organization is taken from the bearer token; ' +
      'ids of other organizations answer 404.',
  },
  servers: [{ url: '/api/v1' }],
  security: [{ bearer: [] }],
  paths: {
    '/identities': {
      post: {
        summary: 'Create an identity (scope enroll)',
        requestBody: { required: true, content: json(ref('NewIdentity')) },
        responses: {
          '201': { description: 'Created', content: json(ref('Identity')) },
          '400': errorResponse('ERR_REQUEST_INVALID'),
          '415': errorResponse('ERR_CONTENT_TYPE'),
          ...common,
        },
      },
      get: {
        summary: 'List identities, oldest first (scope enroll)',
        parameters: [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description: 'A page; pass nextCursor to get the next one',
            content: json({
              type: 'object',
              required: ['items'],
              properties: {
                items: { type: 'array', items: ref('Identity') },
                nextCursor: { type: 'string' },
              },
            }),
          },
          '400': errorResponse('ERR_REQUEST_INVALID'),
          ...common,
        },
      },
    },
    '/identities/{id}': {
      parameters: [idParameter],
      get: {
        summary: 'Get an identity (scope enroll)',
        responses: {
          '200': { description: 'The identity', content: json(ref('Identity')) },
          '404': errorResponse('ERR_NOT_FOUND'),
          ...common,
        },
      },
      patch: {
        summary: 'Change name, externalId or metadata (scope enroll)',
        requestBody: { required: true, content: json(ref('IdentityPatch')) },
        responses: {
          '200': { description: 'The updated identity', content: json(ref('Identity')) },
          '400': errorResponse('ERR_REQUEST_INVALID'),
          '404': errorResponse('ERR_NOT_FOUND'),
          ...common,
        },
      },
      delete: {
        summary:
          'Delete an identity and every face of it, from the index at once and from disk (scope enroll)',
        responses: { '204': { description: 'Deleted' }, '404': errorResponse('ERR_NOT_FOUND'), ...common },
      },
    },
    '/identities/{id}/faces': {
      parameters: [idParameter],
      get: {
        summary: "List an identity's faces (scope enroll)",
        responses: {
          '200': {
            description: 'Faces',
            content: json({
              type: 'object',
              required: ['items'],
              properties: { items: { type: 'array', items: ref('Face') } },
            }),
          },
          '404': errorResponse('ERR_NOT_FOUND'),
          ...common,
        },
      },
      post: {
        summary: 'Enroll one face from an image showing exactly one clear face (scope enroll)',
        requestBody: imageBody,
        responses: {
          '201': { description: 'Enrolled', content: json(ref('EnrollResponse')) },
          '200': {
            description:
              'These very bytes (same sha256) were enrolled for this identity before: that face, nothing added',
            content: json(ref('DuplicateEnrollResponse')),
          },
          '404': errorResponse('ERR_NOT_FOUND'),
          '422': errorResponse('ERR_FACE_NOT_FOUND, ERR_FACE_MULTIPLE or ERR_FACE_LOW_QUALITY'),
          ...imageErrors,
          ...common,
        },
      },
    },
    '/faces/{id}': {
      parameters: [idParameter],
      delete: {
        summary: 'Delete one face (scope enroll)',
        responses: { '204': { description: 'Deleted' }, '404': errorResponse('ERR_NOT_FOUND'), ...common },
      },
    },
    '/policy': {
      get: {
        summary: "The organization's open-set decision policy for its current gallery (scope detect)",
        responses: {
          '200': {
            description:
              'The target stranger pass rate (FPIR), the threshold derived from it for the gallery size, and what it rests on',
            content: json({
              type: 'object',
              required: [
                'targetFpir',
                'threshold',
                'margin',
                'topK',
                'basis',
                'identities',
                'galleryPairs',
                'modelId',
              ],
              properties: {
                targetFpir: { type: 'number' },
                threshold: { type: 'number' },
                margin: { type: 'number' },
                topK: { type: 'integer' },
                basis: { type: 'string', enum: ['fixed', 'cohort', 'gallery'] },
                identities: { type: 'integer' },
                galleryPairs: { type: 'integer' },
                cohortThreshold: {
                  type: 'number',
                  description: 'what the models cohort gives for this size',
                },
                galleryThreshold: {
                  type: 'number',
                  description:
                    "what the org's own impostor scores give (from 20 identities); the higher one is used",
                },
                modelId: { type: 'string' },
              },
            }),
          },
          ...common,
        },
      },
    },
    '/audit': {
      get: {
        summary: "The organization's audit log, oldest first (scope admin)",
        parameters: [
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
          {
            name: 'after',
            in: 'query',
            schema: { type: 'integer', minimum: 0 },
            description: 'entries with seq > after',
          },
        ],
        responses: {
          '200': {
            description: 'Who created, changed or deleted which identity or face, and when (ids only)',
            content: json({
              type: 'object',
              required: ['items'],
              properties: {
                items: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['seq', 'at', 'actor', 'action', 'identityId', 'faceId'],
                    properties: {
                      seq: { type: 'integer' },
                      at: { type: 'string', format: 'date-time' },
                      actor: { type: 'string' },
                      action: {
                        type: 'string',
                        enum: [
                          'identity.create',
                          'identity.update',
                          'identity.delete',
                          'face.add',
                          'face.delete',
                        ],
                      },
                      identityId: { type: ['string', 'null'] },
                      faceId: { type: ['string', 'null'] },
                    },
                  },
                },
              },
            }),
          },
          '400': errorResponse('ERR_REQUEST_INVALID'),
          ...common,
        },
      },
    },
    '/verify': {
      post: {
        summary:
          'Whether two photos show one person, or a photo shows an enrolled identity, at the organization threshold (scope detect)',
        requestBody: {
          required: true,
          description:
            'image_a and either image_b or identityId. Each image must show one clear face (as for enrollment); at most FACEWIRE_MAX_BODY_BYTES in all.',
          content: {
            'multipart/form-data': {
              schema: {
                type: 'object',
                required: ['image_a'],
                properties: {
                  image_a: { type: 'string', format: 'binary', description: 'JPEG, PNG or WebP' },
                  image_b: { type: 'string', format: 'binary', description: 'JPEG, PNG or WebP' },
                  identityId: { type: 'string', format: 'uuid' },
                },
              },
            },
          },
        },
        responses: {
          '200': { description: 'The similarity and the decision', content: json(ref('VerifyResponse')) },
          '404': errorResponse('ERR_NOT_FOUND (identityId)'),
          '422': errorResponse(
            'ERR_FACE_NOT_FOUND or ERR_FACE_MULTIPLE (details.field names the image), ERR_IDENTITY_NO_FACES',
          ),
          ...imageErrors,
          '400': errorResponse('ERR_REQUEST_INVALID (the form) or ERR_FRAME_INVALID (details.field)'),
          ...common,
        },
      },
    },
    '/recognize': {
      post: {
        summary:
          "Find every face in an image and decide who it is against the organization's gallery (scope detect)",
        requestBody: imageBody,
        responses: {
          '200': { description: 'Faces with decisions', content: json(ref('RecognizeResponse')) },
          ...imageErrors,
          ...common,
        },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    schemas: {
      ErrorBody: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: { type: 'string', enum: Object.keys(ERRORS) },
              message: { type: 'string' },
              details: { type: 'object' },
            },
          },
        },
      },
      NewIdentity: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 200 },
          externalId: { type: ['string', 'null'], maxLength: 200 },
          metadata: METADATA,
        },
      },
      IdentityPatch: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 200 },
          externalId: { type: ['string', 'null'], maxLength: 200 },
          metadata: METADATA,
        },
      },
      Identity: {
        type: 'object',
        required: ['id', 'name', 'externalId', 'metadata', 'faceCount', 'createdAt', 'updatedAt'],
        properties: {
          id: { type: 'string', format: 'uuid' },
          name: { type: 'string' },
          externalId: { type: ['string', 'null'] },
          metadata: { type: 'object' },
          faceCount: { type: 'integer' },
          createdAt: { type: 'string', format: 'date-time' },
          updatedAt: { type: 'string', format: 'date-time' },
        },
      },
      Face: {
        type: 'object',
        required: ['id', 'identityId', 'quality', 'modelId', 'stale', 'createdAt', 'sourceSha256'],
        properties: {
          id: { type: 'string', format: 'uuid' },
          identityId: { type: 'string', format: 'uuid' },
          quality: { type: 'number' },
          modelId: { type: 'string' },
          stale: { type: 'boolean', description: 'Embedded by another model: not searched; re-enroll' },
          createdAt: { type: 'string', format: 'date-time' },
          sourceSha256: {
            type: ['string', 'null'],
            description:
              'sha256 (hex) of the image bytes the face was enrolled from (never the image); null for older faces',
          },
        },
      },
      FaceDetection: {
        type: 'object',
        required: ['box', 'landmarks', 'quality', 'factors'],
        properties: {
          box,
          landmarks: { type: 'array', items: point },
          quality: { type: 'number' },
          factors: { type: 'object', additionalProperties: { type: 'number' } },
        },
      },
      EnrollResponse: {
        type: 'object',
        required: ['face', 'detection', 'duplicate'],
        properties: { face: ref('Face'), detection: ref('FaceDetection'), duplicate: { const: false } },
      },
      DuplicateEnrollResponse: {
        type: 'object',
        required: ['face', 'duplicate'],
        properties: { face: ref('Face'), duplicate: { const: true } },
      },
      VerifyResponse: {
        type: 'object',
        required: ['similarity', 'decision', 'a'],
        properties: {
          similarity: {
            type: 'number',
            description: "Cosine similarity of the two faces, or of the face with the identity's template",
          },
          decision: {
            type: 'object',
            required: ['status', 'threshold', 'basis', 'targetFpir'],
            properties: {
              status: { type: 'string', enum: ['same', 'different'] },
              threshold: { type: 'number', description: 'same when the similarity reaches it' },
              basis: { type: 'string', enum: ['fixed', 'cohort', 'gallery'] },
              targetFpir: { type: 'number' },
            },
          },
          a: ref('FaceDetection'),
          b: ref('FaceDetection'),
          identity: identityRef,
        },
      },
      FaceResult: {
        type: 'object',
        required: ['box', 'landmarks', 'quality', 'decision', 'candidates'],
        properties: {
          box,
          landmarks: { type: 'array', items: point, minItems: 5, maxItems: 5 },
          quality: { type: 'number', minimum: 0, maximum: 1 },
          decision: {
            type: 'object',
            required: ['status', 'similarity', 'margin', 'threshold'],
            properties: {
              status: { type: 'string', enum: ['match', 'uncertain', 'unknown'] },
              identity: identityRef,
              similarity: { type: 'number' },
              margin: { type: 'number' },
              threshold: {
                type: 'number',
                description:
                  "The org's threshold this decision was taken at (GET /policy says what it rests on)",
              },
            },
          },
          candidates: {
            type: 'array',
            items: {
              type: 'object',
              required: ['identity', 'similarity'],
              properties: { identity: identityRef, similarity: { type: 'number' } },
            },
          },
        },
      },
      RecognizeResponse: {
        type: 'object',
        required: ['width', 'height', 'faces', 'timings'],
        properties: {
          width: { type: 'integer' },
          height: { type: 'integer' },
          faces: { type: 'array', items: ref('FaceResult') },
          timings: { type: 'object', additionalProperties: { type: 'number' } },
        },
      },
    },
  },
} as const
