import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { FacewireError } from '../errors.js'

const tensorSpec = z.object({
  name: z.string().min(1),
  dtype: z.enum(['float32', 'int32', 'int64', 'bool']),
  shape: z.array(z.union([z.number().int(), z.string()])),
})

const preprocessing = z.object({
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  channels: z.enum(['RGB', 'BGR', 'GRAY']),
  layout: z.enum(['NHWC', 'NCHW']),
  dtype: z.literal('float32'),
  scale: z.number(),
  offset: z.number(),
})

const entry = z.looseObject({
  id: z.string().min(1),
  file: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a hex sha256'),
  inputs: z.array(tensorSpec).min(1),
  outputs: z.array(tensorSpec).min(1),
  preprocessing,
  /**
   * 68-point landmark models: how the crop frames the face and which points make the five
   * (analyze.ts); `faceapi` when absent.
   */
  landmarkFraming: z.enum(['faceapi', 'faceplugin']).optional(),
  /**
   * Embedders: the framing the model was trained with, on dlib's 68-point mean face (which spans
   * the unit square): `padding` around it (dlib's face chip), or a `side` x `side` square centred
   * at `center`.
   */
  alignment: z
    .strictObject({
      /** `arcface`: five points onto the ArcFace template at the input size (insightface norm_crop). */
      template: z.literal('arcface').optional(),
      padding: z.number().min(0).max(2).optional(),
      side: z.number().positive().max(8).optional(),
      center: z.tuple([z.number().min(-2).max(3), z.number().min(-2).max(3)]).optional(),
    })
    .refine((a) => (a.side === undefined) === (a.center === undefined), {
      message: 'side and center go together',
    })
    .refine((a) => a.padding === undefined || a.side === undefined, {
      message: 'padding or side + center, not both',
    })
    .refine((a) => a.template === undefined || (a.padding === undefined && a.side === undefined), {
      message: 'a template framing takes no padding, side or center',
    })
    .optional(),
})

const manifestSchema = z.looseObject({
  version: z.literal(1),
  /** Model ids per pipeline role. */
  pipeline: z.object({
    detector: z.string(),
    /** The detector at a smaller input, for small frames of streams (kiosk crops). */
    smallDetector: z.string().optional(),
    fallbackDetector: z.string().optional(),
    landmarks: z.string(),
    embedder: z.string(),
    /**
     * A second embedder whose similarity is fused with the first's: the pipeline's embedding is
     * both, concatenated, each L2-normalised and scaled so that the cosine of two embeddings is
     * (1 - weight) * cos(first) + weight * cos(second). Indexes search on the first part.
     */
    secondaryEmbedder: z.strictObject({ model: z.string(), weight: z.number().gt(0).lt(1) }).optional(),
    /** Passive liveness on a context crop (class 0 of its softmax = real), asked for per frame. */
    liveness: z.string().optional(),
    /** Eye state on a crop per eye (class 1 of its softmax = open). */
    eyes: z.string().optional(),
  }),
  models: z.array(entry).min(1),
})

export type ManifestModel = z.infer<typeof entry>
export type ModelAlignment = NonNullable<ManifestModel['alignment']>
export type ModelManifest = z.infer<typeof manifestSchema>

/** Reads and validates `<dir>/manifest.json`; ERR_MODEL_INVALID names what is wrong. */
export async function loadManifest(dir: string): Promise<ModelManifest> {
  let raw: unknown
  try {
    raw = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'))
  } catch (cause) {
    throw new FacewireError('ERR_MODEL_INVALID', `cannot read ${join(dir, 'manifest.json')}`, { cause })
  }
  const parsed = manifestSchema.safeParse(raw)
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
      .join('; ')
    throw new FacewireError('ERR_MODEL_INVALID', `invalid models manifest: ${problems}`)
  }
  return parsed.data
}

export function findModel(manifest: ModelManifest, id: string): ManifestModel {
  const model = manifest.models.find((candidate) => candidate.id === id)
  if (model === undefined) {
    throw new FacewireError('ERR_MODEL_INVALID', `models manifest has no model '${id}'`, {
      details: { model: id },
    })
  }
  return model
}

/** Reads a model file and refuses it unless its sha256 is the manifest's. */
export async function readVerifiedModel(dir: string, model: ManifestModel): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    bytes = await readFile(join(dir, model.file))
  } catch (cause) {
    throw new FacewireError('ERR_MODEL_INVALID', `cannot read model file ${model.file}`, {
      cause,
      details: { model: model.id },
    })
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  if (sha256 !== model.sha256) {
    throw new FacewireError(
      'ERR_MODEL_INVALID',
      `model file ${model.file} does not match its manifest sha256`,
      {
        details: { model: model.id, expected: model.sha256, actual: sha256 },
      },
    )
  }
  return bytes
}
