/** Enrollment through the REST API, for tests that later demand the acknowledged faces back. */
import { readFile } from 'node:fs/promises'
import type { ApiClient } from '../../client/api-client.js'

/** A face the server acknowledged. */
export interface Acknowledged {
  name: string
  file: string
  identityId: string
  faceId: string
}

/**
 * Enrolls the photo of `person` for `identityId`: the acknowledged face, or undefined when the
 * server refused it (no usable face) or the request failed (a server killed meanwhile), in which
 * case nothing was promised.
 */
export async function tryEnroll(
  api: ApiClient,
  person: { name: string; file: string },
  identityId: string,
): Promise<Acknowledged | undefined> {
  try {
    const { face } = await api.addFace(identityId, await readFile(person.file))
    return { ...person, identityId, faceId: face.id }
  } catch {
    return undefined
  }
}
