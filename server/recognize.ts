/** One image -> faces with open-set decisions: the step REST `recognize` and streams share. */
import type { Gallery } from './gallery/index.js'
import type { AnalyzedFace, FrameAnalysis, Pipeline } from './pipeline/index.js'
import type { FaceResult, RecognizeResponse, WireBox, WirePoint } from './protocol.js'

const round1 = (value: number): number => Math.round(value * 10) / 10
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

/** The one face object of REST and stream answers, from an analyzed face and its decision. */
export function toFaceResult(
  face: AnalyzedFace,
  recognition: { decision: FaceResult['decision']; candidates: FaceResult['candidates'] },
): FaceResult {
  return {
    box: toWireBox(face),
    landmarks: toWireLandmarks(face),
    quality: round4(face.quality.score),
    decision: recognition.decision,
    candidates: recognition.candidates,
  }
}

/** Searches the organization's gallery for every analyzed face. */
export function decideFaces(
  gallery: Gallery,
  org: string,
  analysis: FrameAnalysis,
): { faces: FaceResult[]; searchMs: number } {
  const started = performance.now()
  const faces = analysis.faces.map((face) => toFaceResult(face, gallery.recognize(org, face.embedding)))
  return { faces, searchMs: performance.now() - started }
}

export interface RecognizeOptions {
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
  const analysis = await pipeline.analyze(bytes, { mode: 'all', maxFaces: options.maxFaces })
  const { faces, searchMs } = decideFaces(gallery, org, analysis)
  const t = analysis.timings
  return {
    width: analysis.width,
    height: analysis.height,
    faces,
    timings: {
      queueMs: round1(analysis.queueMs),
      decodeMs: round1(t.decodeMs),
      detectMs: round1(t.detectMs),
      landmarksMs: round1(t.landmarksMs),
      alignMs: round1(t.alignMs),
      embedMs: round1(t.embedMs),
      searchMs: round1(searchMs),
      totalMs: round1(performance.now() - started),
    },
  }
}
