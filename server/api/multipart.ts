/**
 * multipart/form-data request bodies (POST /verify), read by the runtime's own parser (undici's
 * `Response.formData()`, no dependency) from a body the transport has already bounded by
 * FACEWIRE_MAX_BODY_BYTES. Fields come back as a plain object for zod to validate: a file as its
 * bytes, text as a string, a name given more than once as an array of them.
 */
import { FacewireError } from '../errors.js'
import type { HttpRequestInfo } from '../transport/index.js'

/** Parts read at most; more is refused before any is copied (the API's forms have two or three). */
export const MAX_FORM_PARTS = 16

export type FormValue = Uint8Array | string
export type FormFields = Record<string, FormValue | FormValue[]>

export async function parseMultipart(request: HttpRequestInfo): Promise<FormFields> {
  const contentType = request.headers['content-type'] ?? ''
  if (contentType.split(';')[0]?.trim().toLowerCase() !== 'multipart/form-data') {
    throw new FacewireError('ERR_CONTENT_TYPE', 'send the images as multipart/form-data')
  }
  let form: FormData
  try {
    // Deprecated for servers because it holds the whole body in memory, which ours already is:
    // the transport buffered it within FACEWIRE_MAX_BODY_BYTES before this handler ran.
    const body = new Response(request.body ?? new Uint8Array(0), { headers: { 'content-type': contentType } })
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    form = await body.formData()
  } catch (cause) {
    throw new FacewireError('ERR_REQUEST_INVALID', 'the body is not valid multipart/form-data', { cause })
  }
  const entries = [...form.entries()]
  if (entries.length > MAX_FORM_PARTS) {
    throw new FacewireError('ERR_REQUEST_INVALID', `at most ${String(MAX_FORM_PARTS)} form fields`)
  }
  const fields: FormFields = Object.create(null) as FormFields
  for (const [name, value] of entries) {
    // A fresh buffer per file: the pipeline takes it over (transfer) rather than copying it.
    const read: FormValue = typeof value === 'string' ? value : new Uint8Array(await value.arrayBuffer())
    const seen = fields[name]
    if (seen === undefined) fields[name] = read
    else fields[name] = Array.isArray(seen) ? [...seen, read] : [seen, read]
  }
  return fields
}
