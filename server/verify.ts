/**
 * 1:1 verification: are two photos one person, or is a photo this enrolled identity? Each image
 * goes through the pipeline and must show one face (the rule enrollment applies), and the
 * similarity is decided at the organization's current threshold.
 */
import { FacewireError } from './errors.js'
import type { Gallery } from './gallery/index.js'
import { cosine } from './pipeline/embedding-layout.js'
import type { AnalyzedFace, Pipeline } from './pipeline/index.js'
import { pickEnrollFace, round4, toFaceDetection } from './recognize.js'
import type { VerifyResponse } from '../protocol/wire.js'

/** What the face of one image is compared with. */
export type VerifyTarget = { image: Uint8Array } | { identityId: string }

export interface VerifyOptions {
  /** Faces analysed per image to find a face comparable to the main one (config.maxFaces). */
  maxFaces: number
}

/**
 * The one face of `bytes` (transferred: the caller gives them up). Errors about the image or its
 * faces (ERR_FRAME_*, ERR_FACE_NOT_FOUND, ERR_FACE_MULTIPLE) say which field they are about in
 * `details.field`.
 */
async function oneFace(
  pipeline: Pipeline,
  bytes: Uint8Array,
  field: 'image_a' | 'image_b',
  options: VerifyOptions,
): Promise<AnalyzedFace> {
  try {
    const analysis = await pipeline.analyze(bytes, { mode: 'all', maxFaces: options.maxFaces })
    // No quality floor: a poor face gives a less reliable similarity, shown by its quality.
    return pickEnrollFace(analysis.faces, 0)
  } catch (error) {
    if (error instanceof FacewireError && /^ERR_(FRAME|FACE)_/.test(error.code)) {
      throw new FacewireError(error.code, error.message, {
        cause: error,
        details: { ...error.details, field },
      })
    }
    throw error
  }
}

/**
 * Verifies the face of `image` against a second image or an identity of `org`: ERR_NOT_FOUND for
 * an identity not in the org (checked before any pipeline run), ERR_IDENTITY_NO_FACES for one
 * without a face of the current model.
 */
export async function verifyFaces(
  pipeline: Pipeline,
  gallery: Gallery,
  org: string,
  image: Uint8Array,
  target: VerifyTarget,
  options: VerifyOptions,
): Promise<VerifyResponse> {
  let a: AnalyzedFace
  let b: AnalyzedFace | undefined
  let similarity: number
  let identity: VerifyResponse['identity']
  if ('identityId' in target) {
    const found = await gallery.getIdentity(org, target.identityId)
    if (found === undefined) throw new FacewireError('ERR_NOT_FOUND', 'no such identity')
    a = await oneFace(pipeline, image, 'image_a', options)
    const score = gallery.similarityToIdentity(org, found.id, a.embedding)
    if (score === undefined) throw new FacewireError('ERR_IDENTITY_NO_FACES')
    similarity = score
    identity = { id: found.id, name: found.name }
  } else {
    ;[a, b] = await Promise.all([
      oneFace(pipeline, image, 'image_a', options),
      oneFace(pipeline, target.image, 'image_b', options),
    ])
    // Pipeline embeddings have norm 1 (each part scaled by its weight): the dot product is the score.
    similarity = cosine(a.embedding, b.embedding)
  }
  const policy = gallery.policyFor(org)
  return {
    similarity: round4(similarity),
    decision: {
      status: similarity >= policy.threshold ? 'same' : 'different',
      threshold: round4(policy.threshold),
      basis: policy.basis,
      targetFpir: policy.targetFpir,
    },
    a: toFaceDetection(a),
    ...(b === undefined ? {} : { b: toFaceDetection(b) }),
    ...(identity === undefined ? {} : { identity }),
  }
}
