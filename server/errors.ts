import { ERRORS, type ErrorCode, type WireError } from '../protocol/errors.js'

/** The one error class. `message` is safe to show a client; `cause` is for logs only. */
export class FacewireError extends Error {
  readonly code: ErrorCode
  readonly http: number
  readonly close: number | null
  readonly details: Readonly<Record<string, unknown>> | undefined

  constructor(
    code: ErrorCode,
    message?: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message ?? ERRORS[code].message, options?.cause === undefined ? {} : { cause: options.cause })
    this.name = 'FacewireError'
    this.code = code
    this.http = ERRORS[code].http
    this.close = ERRORS[code].close
    this.details = options?.details === undefined ? undefined : Object.freeze({ ...options.details })
  }
}

/** Any thrown value as a catalogue error; unknown errors become ERR_INTERNAL with the cause kept. */
export function toFacewireError(value: unknown): FacewireError {
  if (value instanceof FacewireError) return value
  return new FacewireError('ERR_INTERNAL', undefined, { cause: value })
}

export function toWireError(error: FacewireError): WireError {
  return error.details === undefined
    ? { code: error.code, message: error.message }
    : { code: error.code, message: error.message, details: error.details }
}
