/**
 * The error catalogue, as plain data: every error facewire puts on the wire has a stable code, an
 * HTTP status (REST and pre-upgrade answers) and a WebSocket close code (null: answer the message,
 * keep the stream open). docs/errors.md lists the same codes; a test keeps the two in sync.
 */
export const ERRORS = {
  ERR_CONFIG_INVALID: {
    http: 500,
    close: null,
    message: 'configuration is invalid',
  },
  ERR_TRANSPORT_NATIVE_MISSING: {
    http: 500,
    close: null,
    message: 'the native uWebSockets.js engine did not load',
  },
  ERR_MODEL_INVALID: {
    http: 500,
    close: null,
    message: 'a configured model is missing, unreadable or does not match its manifest',
  },
  ERR_FRAME_INVALID: { http: 400, close: null, message: 'the image could not be decoded' },
  ERR_FRAME_UNSUPPORTED: {
    http: 415,
    close: null,
    message: 'unsupported image format: send JPEG, PNG or WebP',
  },
  ERR_FRAME_TOO_MANY_PIXELS: {
    http: 413,
    close: null,
    message: 'the image has more pixels than the server accepts',
  },
  ERR_PIPELINE_BUSY: { http: 503, close: null, message: 'the pipeline queue is full; retry later' },
  ERR_PIPELINE_TIMEOUT: { http: 504, close: null, message: 'the pipeline did not finish in time' },
  ERR_PIPELINE_WORKER_CRASHED: {
    http: 500,
    close: null,
    message: 'the worker processing this image crashed; it has been replaced',
  },
  ERR_AUTH_MISSING: { http: 401, close: 4401, message: 'a bearer token is required' },
  ERR_AUTH_INVALID: { http: 401, close: 4401, message: 'the token is malformed or its signature is invalid' },
  ERR_AUTH_EXPIRED: { http: 401, close: 4401, message: 'the token has expired' },
  ERR_AUTH_SCOPE: { http: 403, close: 4403, message: 'the token lacks the scope this route needs' },
  ERR_RATE_LIMITED: {
    http: 429,
    close: null,
    message: 'too many requests for this organization; retry later',
  },
  ERR_REQUEST_INVALID: { http: 400, close: null, message: 'the request is invalid' },
  ERR_CONTENT_TYPE: {
    http: 415,
    close: null,
    message: 'unsupported content type for this route',
  },
  ERR_FACE_NOT_FOUND: { http: 422, close: null, message: 'no face was found in the image' },
  ERR_FACE_MULTIPLE: {
    http: 422,
    close: null,
    message: 'the image shows more than one face; enroll one face per image',
  },
  ERR_FACE_LOW_QUALITY: {
    http: 422,
    close: null,
    message: 'the face is too small, blurred, dark or turned to enroll',
  },
  ERR_IDENTITY_NO_FACES: {
    http: 422,
    close: null,
    message: 'the identity has no enrolled face of the current model to compare with',
  },
  ERR_FRAME_HEADER_INVALID: {
    http: 400,
    close: null,
    message: 'the binary frame header is invalid (see docs/protocol.md)',
  },
  ERR_MESSAGE_INVALID: {
    http: 400,
    close: null,
    message: 'this stream accepts binary frames only',
  },
  ERR_POLICY_VIOLATION: {
    http: 429,
    close: 1008,
    message: 'this connection sent more messages, bytes or invalid messages than its budget allows',
  },
  ERR_CORS_REFUSED: {
    http: 403,
    close: null,
    message: 'cross-origin request refused: origin, method or header not allowed',
  },
  ERR_NOT_FOUND: { http: 404, close: null, message: 'no such route or resource' },
  ERR_METHOD_NOT_ALLOWED: { http: 405, close: null, message: 'method not allowed on this route' },
  ERR_BODY_TOO_LARGE: { http: 413, close: 1009, message: 'request body is too large' },
  ERR_NOT_READY: { http: 503, close: 1013, message: 'the server is not ready yet' },
  ERR_SHUTTING_DOWN: { http: 503, close: 1001, message: 'the server is shutting down' },
  ERR_STORE_UNAVAILABLE: {
    http: 503,
    close: null,
    message: 'the gallery database is unreachable; nothing was written, retry later',
  },
  ERR_INTERNAL: { http: 500, close: 1011, message: 'internal error' },
} as const satisfies Record<string, { http: number; close: number | null; message: string }>

export type ErrorCode = keyof typeof ERRORS

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[]

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value)
}

/** What a client sees: never the cause, never a stack. */
export interface WireError {
  code: ErrorCode
  message: string
  details?: Readonly<Record<string, unknown>>
}
