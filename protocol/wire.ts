/**
 * Every JSON shape on facewire's wire: REST bodies, /ws/detect and /ws/events messages. A leaf: it
 * imports nothing of the project but the other protocol/ files, so the browser kiosk and the CLI
 * share it without pulling server code in. docs/api.md and docs/protocol.md describe the shapes.
 */
import type { WireError } from './errors.js'

export type { WireError } from './errors.js'

/** JSON object stored with an identity; at most a few KiB (the API validates). */
export type Metadata = Record<string, unknown>

export interface IdentityRef {
  id: string
  name: string
}

export interface Candidate {
  identity: IdentityRef
  similarity: number
}

export type DecisionStatus = 'match' | 'uncertain' | 'unknown'

export interface Decision {
  status: DecisionStatus
  /** Present for `match` and `uncertain`: the best identity. */
  identity?: IdentityRef
  /** Similarity of the best identity (0 when the gallery is empty). */
  similarity: number
  /** Best minus second-best identity similarity (the best's similarity when there is no second). */
  margin: number
  /** The threshold this decision was taken at (the org's policy for its gallery size). */
  threshold: number
  /**
   * Why a face that scored as a match is not one: `liveness` when the org requires liveness and
   * the face (or its track) did not pass; the client should prompt (docs/protocol.md).
   */
  reason?: 'liveness'
}

/** What an organization's threshold rests on. */
export type PolicyBasis =
  /** Set by configuration (FACEWIRE_MATCH_THRESHOLD for the org), not derived. */
  | 'fixed'
  /** Impostor scores of the models' calibration cohort (shipped with the models). */
  | 'cohort'
  /** Impostor scores of the org's own gallery (each face against the other identities). */
  | 'gallery'

export interface WireBox {
  x: number
  y: number
  width: number
  height: number
}

export interface WirePoint {
  x: number
  y: number
}

/** The one face object of every recognition answer (REST `recognize`, WebSocket `result`). */
export interface FaceResult {
  /** Pixels of the image as sent (after EXIF orientation). */
  box: WireBox
  /** Left eye, right eye, nose tip, left and right mouth corner. */
  landmarks: WirePoint[]
  /** Quality score in [0, 1] (docs/models.md). */
  quality: number
  decision: Decision
  /** Best identities first, at most `topK`. */
  candidates: Candidate[]
  /**
   * Passive liveness (absent when the org's liveness mode is `off`): the real-face score in
   * [0, 1] (on streams, the mean over the track's last frames) and whether it passes the org's
   * threshold.
   */
  liveness?: { score: number; live: boolean }
  /** Eye openness in [0, 1] (mean of both eyes) and whether the eyes look closed: ask for a blink. */
  eyes?: { open: number; closed: boolean }
}

export interface RecognizeTimings {
  queueMs: number
  decodeMs: number
  detectMs: number
  landmarksMs: number
  alignMs: number
  embedMs: number
  livenessMs: number
  searchMs: number
  totalMs: number
}

/** GET /api/v1/policy: how the organization decides, for its gallery as it is now. */
export interface PolicyResponse {
  /** Share of strangers the org accepts being matched to someone enrolled. */
  targetFpir: number
  /** The similarity a match needs, derived from targetFpir for this gallery size. */
  threshold: number
  margin: number
  topK: number
  basis: PolicyBasis
  /** Identities the threshold was derived for. */
  identities: number
  /** Impostor scores of the org's own gallery computed (none below 20 identities). */
  galleryPairs: number
  /** The threshold each source gives for this size; the higher one is used. */
  cohortThreshold?: number
  galleryThreshold?: number
  /** The embedding layout decisions are made with. */
  modelId: string
}

export interface RecognizeResponse {
  width: number
  height: number
  faces: FaceResult[]
  timings: RecognizeTimings
}

export interface IdentityBody {
  id: string
  name: string
  externalId: string | null
  metadata: Metadata
  faceCount: number
  createdAt: string
  updatedAt: string
}

export interface FaceBody {
  id: string
  identityId: string
  quality: number
  modelId: string
  /** Embedded by a model other than the server's current embedder: not searched; re-enroll. */
  stale: boolean
  createdAt: string
  /**
   * sha256 (hex) of the image bytes the face was enrolled from (the image is never stored); null
   * for faces enrolled before facewire recorded it.
   */
  sourceSha256: string | null
}

/** Where a face was found in an image and how good it is (enrollment, verification). */
export interface FaceDetection {
  box: WireBox
  landmarks: WirePoint[]
  /** Quality score in [0, 1] and its factors (size, sharpness, brightness, contrast, pose). */
  quality: number
  factors: Record<string, number>
}

/** POST /api/v1/identities/{id}/faces, 201: a face was added. */
export interface EnrolledResponse {
  face: FaceBody
  /** Where the enrolled face was found in the image. */
  detection: FaceDetection
  duplicate: false
}

/**
 * POST /api/v1/identities/{id}/faces, 200: the identity already has a face enrolled from these
 * very bytes (same sha256); `face` is that face, nothing was analysed or added.
 */
export interface DuplicateEnrollResponse {
  face: FaceBody
  duplicate: true
}

export type EnrollResponse = EnrolledResponse | DuplicateEnrollResponse

/** POST /api/v1/verify: whether two faces, or a face and an enrolled identity, are one person. */
export interface VerifyResponse {
  /** Cosine similarity in [-1, 1]: of the two faces, or of the face with the identity's template. */
  similarity: number
  decision: {
    /** `same` when the similarity reaches the threshold. */
    status: 'same' | 'different'
    /** The org's threshold for its gallery as it is now (GET /api/v1/policy). */
    threshold: number
    basis: PolicyBasis
    targetFpir: number
  }
  /** The face of `image_a`. */
  a: FaceDetection
  /** The face of `image_b` (two images). */
  b?: FaceDetection
  /** The identity `image_a` was compared with (image and identityId). */
  identity?: IdentityRef
}

/** One row of GET /api/v1/audit: ids only, never names or embeddings. */
export interface AuditEntryBody {
  seq: number
  at: string
  /** The token's `sub`. */
  actor: string
  action: 'identity.create' | 'identity.update' | 'identity.delete' | 'face.add' | 'face.delete'
  identityId: string | null
  faceId: string | null
}

export interface ListResponse<T> {
  items: T[]
  nextCursor?: string
}

/* ---- WebSocket /ws/detect (docs/protocol.md) ---- */

export const STREAM_PROTOCOL_VERSION = 1

export interface StreamHello {
  type: 'hello'
  protocol: number
  session: string
  org: string
  limits: {
    /** Largest binary message (header + image); larger closes the stream with 1009. */
    maxFrameBytes: number
    /** Frames per second this connection may send; more are answered `throttled`. */
    maxFps: number
    /** Frames per second the whole organization may send. */
    orgMaxFps: number
    /** Faces analysed per frame. */
    maxFaces: number
  }
  /** What the server can sustain now for this connection (pool capacity / open streams). */
  suggestedFps: number
  models: string[]
  /** The org's policy when the stream opened (GET /api/v1/policy has the current one). */
  thresholds: { match: number; margin: number; targetFpir: number }
  track: { windowFrames: number; switchFrames: number }
  /** Epoch ms when the token expires and the stream is closed with 4401. */
  tokenExpiresAt: number
}

export interface TrackInfo {
  id: number
  /** `client`: the track id of the frame header; `server`: assigned from box overlap. */
  source: 'client' | 'server'
  /** Embeddings (frames) the decision rests on. */
  frames: number
  /** This frame's fused outcome differs from the track's decision and waits for confirmation. */
  pending?: {
    status: 'match' | 'uncertain' | 'unknown'
    identity?: { id: string; name: string }
    frames: number
  }
}

/** A face of a stream result: the REST face object plus its track; `decision` is the track's. */
export interface StreamFace extends FaceResult {
  track: TrackInfo
}

export interface StreamTimings extends RecognizeTimings {
  /** Waiting for this connection's previous frame (latest-frame-wins slot). */
  waitMs: number
}

export interface StreamResult {
  type: 'result'
  frameId: number
  faces: StreamFace[]
  timings: StreamTimings
}

export interface StreamDropped {
  type: 'dropped'
  frameId: number
  /** `replaced`: a newer frame arrived while this one waited. */
  reason: 'replaced'
}

export interface StreamThrottled {
  type: 'throttled'
  frameId: number
  retryAfterMs: number
  scope: 'connection' | 'organization'
}

export interface StreamError {
  type: 'error'
  /** Absent when the message was too broken to carry a frame id. */
  frameId?: number
  error: WireError
}

export type StreamAnswer = StreamResult | StreamDropped | StreamThrottled | StreamError
export type StreamMessage = StreamHello | StreamAnswer

/* ---- WebSocket /ws/events ---- */

export interface EventsHello {
  type: 'hello'
  protocol: number
  org: string
  /** Whether `unknown` events are sent. */
  unknownEvents: boolean
}

export interface MatchEvent {
  type: 'match'
  identity: { id: string; name: string }
  camera: string | null
  similarity: number
  /** The stream session and its track: one event per track decision. */
  track: { session: string; id: number; source: 'client' | 'server'; frames: number }
  at: string
}

export interface UnknownEvent {
  type: 'unknown'
  camera: string | null
  similarity: number
  track: { session: string; id: number; source: 'client' | 'server'; frames: number }
  at: string
}

export type EventMessage = EventsHello | MatchEvent | UnknownEvent

/* ---- Outbound: webhook bodies and MQTT payloads (docs/integrations.md) ---- */

/**
 * A /ws/events event as it leaves the server: with an id (the same in the webhook delivery and
 * the MQTT message of one decision, and across retries, for receivers to deduplicate) and its
 * organization.
 */
export type OutboundEvent = { id: string; org: string } & (MatchEvent | UnknownEvent)

/** The body of every REST error answer (and of 503 /ready, with its components). */
export interface ErrorBody {
  error: WireError
}
