/**
 * An enrolled person recognized on a stream, for the tests of what a decision sets off (events,
 * webhooks, MQTT): Kit Harington from the shared photos, enrolled from one photo and streamed
 * with another.
 */
import assert from 'node:assert/strict'
import { createApiClient } from '../../client/api-client.js'
import { openDetectStream, type DetectStream } from '../../client/stream-client.js'
import type { OutboundEvent, StreamAnswer } from '../../protocol/wire.js'
import { testToken } from './app.js'
import { examplePhoto, skipWithoutFaces } from './images.js'

/** The photos of face_recognition-examples (re-exported: these tests import it from here). */
export { examplePhoto }

/** The `skip` of a test that needs the shared photos: the reason when they are absent. */
export const noFaces = skipWithoutFaces()

/** Server settings that keep the frame rate limits out of a test's way. */
export const NO_FPS_LIMITS = { FACEWIRE_STREAM_MAX_FPS: '1000', FACEWIRE_ORG_MAX_FPS: '1000' } as const

/** A server on 127.0.0.1: an in-process app (startTestApp) or a child (startMain, whenReady). */
export interface Listening {
  port: number
}

export const baseUrl = (server: Listening): string => `http://127.0.0.1:${String(server.port)}`

/** GET /ready's body: `status` (`ready`, `degraded`) and, when degraded, what is and why. */
export interface ReadyBody {
  status: string
  degraded?: Record<string, string>
}

export async function readyBody(server: Listening): Promise<ReadyBody> {
  return (await (await fetch(`${baseUrl(server)}/ready`)).json()) as ReadyBody
}

/** Enrolls Kit Harington in `org`; resolves with his identity id. */
export async function enrollKit(server: Listening, org: string): Promise<string> {
  const api = createApiClient({ baseUrl: baseUrl(server), token: testToken(org) })
  const kit = await api.createIdentity({ name: 'Kit Harington' })
  await api.addFace(kit.id, await examplePhoto('kit_harington/1.jpeg'))
  return kit.id
}

/** A /ws/detect stream of `org`. */
export function openStream(server: Listening, org: string): Promise<DetectStream> {
  return openDetectStream({ baseUrl: baseUrl(server), token: testToken(org) })
}

/** Sends `frames` frames of `image` one after the other (each answered before the next). */
export async function streamFrames(
  stream: DetectStream,
  image: Uint8Array,
  frames: { first: number; count: number; camera?: string },
): Promise<StreamAnswer[]> {
  const answers: StreamAnswer[] = []
  for (let frameId = frames.first; frameId < frames.first + frames.count; frameId++) {
    const answer = stream.answerFor(frameId)
    stream.send(frames.camera === undefined ? { frameId } : { frameId, camera: frames.camera }, image)
    answers.push(await answer)
  }
  return answers
}

/** The decision status of an answer's first face, if it is a result with one. */
export function firstStatus(answer: StreamAnswer): string | undefined {
  return answer.type === 'result' ? answer.faces[0]?.decision.status : undefined
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/**
 * Asserts that `payload` (a webhook body, an MQTT message) is Kit's match event as
 * docs/integrations.md describes it, with exactly these fields; returns the event.
 */
export function assertKitMatch(
  payload: string,
  expected: { org: string; identityId: string; camera: string | null; session: string },
): OutboundEvent {
  const event = JSON.parse(payload) as OutboundEvent
  assert.ok(event.type === 'match', payload)
  assert.match(event.id, UUID)
  assert.ok(event.similarity > 0 && event.similarity <= 1, payload)
  assert.ok(!Number.isNaN(Date.parse(event.at)), payload)
  assert.ok(event.track.frames >= 1, payload)
  assert.deepEqual(event, {
    id: event.id,
    org: expected.org,
    type: 'match',
    identity: { id: expected.identityId, name: 'Kit Harington' },
    camera: expected.camera,
    similarity: event.similarity,
    track: { session: expected.session, id: event.track.id, source: 'server', frames: event.track.frames },
    at: event.at,
  })
  return event
}
