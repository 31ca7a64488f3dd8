/**
 * One image -> faces with open-set decisions (the step REST `recognize` and streams share), and
 * one image -> one enrolled face (REST enrollment).
 */
import { createHash } from 'node:crypto'
import { FacewireError } from './errors.js'
import type { Actor, Face, Gallery, OrgPolicy } from './gallery/index.js'
import type { AnalyzedFace, FrameAnalysis, Pipeline } from './pipeline/index.js'
import type {
  Decision,
  EnrollResponse,
  FaceBody,
  FaceDetection,
  FaceResult,
  RecognizeResponse,
  WireBox,
  WirePoint,
} from '../protocol/wire.js'
import { round1, toWireTimings } from './wire-timings.js'

/** Scores and similarities on the wire: 4 decimals. */
export const round4 = (value: number): number => Math.round(value * 1e4) / 1e4

export function toWireBox(face: AnalyzedFace): WireBox {
  return {
    x: round1(face.box.x),
    y: round1(face.box.y),
    width: round1(face.box.width),
    height: round1(face.box.height),
  }
}

export function toWireLandmarks(face: AnalyzedFace): WirePoint[] {
  return face.landmarks.map((point) => ({ x: round1(point.x), y: round1(point.y) }))
}

/** Where a face is and how good (enrollment's `detection`, verification's faces). */
export function toFaceDetection(face: AnalyzedFace): FaceDetection {
  return {
    box: toWireBox(face),
    landmarks: toWireLandmarks(face),
    quality: round4(face.quality.score),
    factors: face.quality.factors,
  }
}

/** Whether a liveness score (undefined: not scored) passes the org's threshold. */
function isLive(score: number | undefined, policy: OrgPolicy['liveness']): boolean {
  return score !== undefined && score >= policy.threshold
}

/** Eye-open score below which a face's eyes count as closed (docs/models.md, "Liveness"). */
export const EYES_CLOSED_BELOW = 0.2

/**
 * The one face object of REST and stream answers, from an analyzed face and its decision.
 * `liveness` is the score to show (a track's fused one on streams) and the org's setting; with
 * mode `off` no liveness is shown.
 */
export function toFaceResult(
  face: AnalyzedFace,
  recognition: { decision: FaceResult['decision']; candidates: FaceResult['candidates'] },
  liveness?: { score: number | undefined; policy: OrgPolicy['liveness'] },
): FaceResult {
  const result: FaceResult = {
    box: toWireBox(face),
    landmarks: toWireLandmarks(face),
    quality: round4(face.quality.score),
    decision: recognition.decision,
    candidates: recognition.candidates,
  }
  if (liveness !== undefined && liveness.policy.mode !== 'off' && liveness.score !== undefined) {
    result.liveness = { score: round4(liveness.score), live: isLive(liveness.score, liveness.policy) }
  }
  if (liveness !== undefined && liveness.policy.mode !== 'off' && face.eyesOpen !== undefined) {
    result.eyes = { open: round4(face.eyesOpen), closed: face.eyesOpen < EYES_CLOSED_BELOW }
  }
  return result
}

/**
 * With liveness `require`, a match whose face (or track) is not live, or was not scored, becomes
 * `uncertain` with reason `liveness`: the identity is kept so a kiosk can say "blink" or "move
 * closer" to the right person, but no match event is published.
 */
export function requireLiveness<T extends { decision: Decision }>(
  recognition: T,
  score: number | undefined,
  policy: OrgPolicy['liveness'],
): T {
  if (policy.mode !== 'require' || recognition.decision.status !== 'match') return recognition
  if (isLive(score, policy)) return recognition
  return { ...recognition, decision: { ...recognition.decision, status: 'uncertain', reason: 'liveness' } }
}

/**
 * Whether this frame is scored for liveness: every frame when the org requires it, every other
 * frame when it only reports it (tracks show the mean of their scored frames, and the 7 ms of the
 * liveness net is the largest cost of a kiosk crop after the embedder), never when it is off.
 */
export function livenessTurn(mode: OrgPolicy['liveness']['mode'], frame: number): boolean {
  return mode === 'require' || (mode === 'report' && frame % 2 === 0)
}

/** Searches the organization's gallery for every analyzed face. */
export function decideFaces(
  gallery: Gallery,
  org: string,
  analysis: FrameAnalysis,
): { faces: FaceResult[]; searchMs: number } {
  const started = performance.now()
  const policy = gallery.policyFor(org).liveness
  const faces = analysis.faces.map((face) =>
    toFaceResult(face, requireLiveness(gallery.recognize(org, face.embedding), face.liveness, policy), {
      score: face.liveness,
      policy,
    }),
  )
  return { faces, searchMs: performance.now() - started }
}

export interface RecognizeOptions {
  /** Faces analysed and answered at most (config.maxFaces). */
  maxFaces: number
}

/** Runs the pipeline on `bytes` (transferred: the caller must not reuse them) and decides. */
export async function recognizeImage(
  pipeline: Pipeline,
  gallery: Gallery,
  org: string,
  bytes: Uint8Array,
  options: RecognizeOptions,
): Promise<RecognizeResponse> {
  const started = performance.now()
  const analysis = await pipeline.analyze(bytes, {
    mode: 'all',
    maxFaces: options.maxFaces,
    liveness: gallery.policyFor(org).liveness.mode !== 'off',
  })
  const { faces, searchMs } = decideFaces(gallery, org, analysis)
  return {
    width: analysis.width,
    height: analysis.height,
    faces,
    timings: toWireTimings(analysis, searchMs, performance.now() - started),
  }
}

/** A stored face on the wire. */
export function toFaceBody(face: Face, gallery: Gallery): FaceBody {
  return {
    id: face.id,
    identityId: face.identityId,
    quality: round4(face.quality),
    modelId: face.modelId,
    stale: !gallery.isCurrent(face),
    createdAt: face.createdAt,
    sourceSha256: face.sourceSha256,
  }
}

/** A face less than this share of the largest face's width is someone in the background. */
const BACKGROUND_FACE_WIDTH = 0.6

/** The one face good enough to enroll, or the catalogue error saying why not. */
export function pickEnrollFace(faces: readonly AnalyzedFace[], minQuality: number): AnalyzedFace {
  const bySize = [...faces].sort((a, b) => b.box.width - a.box.width)
  const [main, second] = bySize
  if (main === undefined) throw new FacewireError('ERR_FACE_NOT_FOUND')
  // A much smaller face is someone in the background; a comparable one makes the photo ambiguous.
  if (second !== undefined && second.box.width >= BACKGROUND_FACE_WIDTH * main.box.width) {
    throw new FacewireError('ERR_FACE_MULTIPLE', undefined, {
      details: { faces: bySize.map((face) => toWireBox(face)) },
    })
  }
  if (main.quality.score < minQuality) {
    throw new FacewireError('ERR_FACE_LOW_QUALITY', undefined, {
      details: {
        quality: round4(main.quality.score),
        minQuality,
        factors: main.quality.factors,
      },
    })
  }
  return main
}

export interface EnrollOptions {
  /** Faces analysed to find a face comparable to the main one (config.maxFaces). */
  maxFaces: number
  /** Faces of a lower quality score are refused (config.minEnrollQuality). */
  minQuality: number
}

/**
 * Runs the pipeline on `bytes` (transferred: the caller must not reuse them), picks the one face
 * to enroll (pickEnrollFace: ERR_FACE_NOT_FOUND, ERR_FACE_MULTIPLE, ERR_FACE_LOW_QUALITY) and adds
 * it to the identity through the gallery, with the sha256 of `bytes`. When the identity already
 * has a current face (not stale) from the same bytes, answers that face as a duplicate instead, without a pipeline
 * run (checked again after the analysis, for an upload of the same bytes that finished
 * meanwhile). undefined when the identity does not exist in the org: checked before spending a
 * pipeline run, and again (atomically) when the face is added, in case the identity was deleted
 * while the image was analysed.
 */
export async function enrollFace(
  pipeline: Pipeline,
  gallery: Gallery,
  target: { org: string; identityId: string; actor: Actor },
  bytes: Uint8Array,
  options: EnrollOptions,
): Promise<EnrollResponse | undefined> {
  const { org, identityId, actor } = target
  if ((await gallery.getIdentity(org, identityId)) === undefined) return undefined
  // Before the pipeline takes the bytes over (a transfer empties this view).
  const sourceSha256 = createHash('sha256').update(bytes).digest('hex')
  const duplicate = async (): Promise<EnrollResponse | undefined> => {
    const existing = await gallery.findFaceBySource(org, identityId, sourceSha256)
    // A stale face (another model) is no reason to refuse: re-enrolling its photo is the fix.
    if (existing === undefined || !gallery.isCurrent(existing)) return undefined
    return { face: toFaceBody(existing, gallery), duplicate: true }
  }
  const before = await duplicate()
  if (before !== undefined) return before
  const analysis = await pipeline.analyze(bytes, { mode: 'all', maxFaces: options.maxFaces })
  const face = pickEnrollFace(analysis.faces, options.minQuality)
  const meanwhile = await duplicate()
  if (meanwhile !== undefined) return meanwhile
  const stored = await gallery.addFace(
    org,
    identityId,
    { embedding: face.embedding, quality: face.quality.score, sourceSha256 },
    actor,
  )
  if (stored === undefined) return undefined
  return { face: toFaceBody(stored, gallery), detection: toFaceDetection(face), duplicate: false }
}
