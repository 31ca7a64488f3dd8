/** The REST calls of enrollment (docs/api.md), with the kiosk's token. */
import type { ErrorBody, IdentityBody, EnrollResponse, WireError } from '../../protocol/wire.js'

export type ApiResult<T> = { ok: true; value: T } | { ok: false; error: WireError }

export interface KioskApi {
  createIdentity: (name: string) => Promise<ApiResult<IdentityBody>>
  addFace: (identityId: string, jpeg: Uint8Array) => Promise<ApiResult<EnrollResponse>>
  deleteIdentity: (identityId: string) => Promise<ApiResult<null>>
}

export function createApi(origin: string, token: string): KioskApi {
  const call = async <T>(
    method: string,
    path: string,
    body?: BodyInit,
    type?: string,
  ): Promise<ApiResult<T>> => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` }
    if (type !== undefined) headers['content-type'] = type
    let response: Response
    try {
      response = await fetch(new URL(`/api/v1${path}`, origin), {
        method,
        headers,
        ...(body ? { body } : {}),
      })
    } catch {
      return { ok: false, error: { code: 'ERR_INTERNAL', message: 'the server could not be reached' } }
    }
    if (response.status === 204) return { ok: true, value: null as T }
    const json = (await response.json().catch(() => undefined)) as unknown
    if (response.ok) return { ok: true, value: json as T }
    const error = (json as Partial<ErrorBody> | undefined)?.error
    return {
      ok: false,
      error: error ?? { code: 'ERR_INTERNAL', message: `the server answered ${response.status}` },
    }
  }
  return {
    createIdentity: (name) =>
      call<IdentityBody>('POST', '/identities', JSON.stringify({ name }), 'application/json'),
    addFace: (identityId, jpeg) =>
      call<EnrollResponse>(
        'POST',
        `/identities/${encodeURIComponent(identityId)}/faces`,
        // A copy on its own ArrayBuffer: what a fetch body accepts.
        jpeg.slice(),
        'image/jpeg',
      ),
    deleteIdentity: (identityId) => call<null>('DELETE', `/identities/${encodeURIComponent(identityId)}`),
  }
}
