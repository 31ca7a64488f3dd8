/**
 * Match events for /ws/events: one per track decision, repeated only when the identity changes
 * or after a cooldown. Published on the organization's topic, so only its watchers receive it,
 * and handed to the outbound sinks (webhooks, MQTT: server/outbound) on the instance that decided.
 */
import type { MatchEvent, UnknownEvent } from '../../protocol/wire.js'
import { ORG_PATTERN } from '../config.js'
import type { TrackDecision, TrackRef } from './tracks.js'

/** The pub/sub topic of an organization's events (org ids are `[A-Za-z0-9._-]`). */
export function eventsTopic(org: string): string {
  return `events/${org}`
}

/** Whether `topic` is an organization's events topic (for events relayed from other instances). */
export function isEventsTopic(topic: string): boolean {
  return topic.startsWith('events/') && ORG_PATTERN.test(topic.slice('events/'.length))
}
/**
 * Receives every event the hub publishes, once, on the instance whose stream decided it (never
 * from the publish step, which may relay events between instances). Called on the frame path: it
 * must return at once and never throw.
 */
export type EventSink = (org: string, event: MatchEvent | UnknownEvent) => void

export interface EventHubOptions {
  publish: (topic: string, text: string) => void
  /** Outbound deliveries (server/outbound), after the publish. */
  sinks?: readonly EventSink[]
  cooldownMs: number
  unknownEvents: boolean
}

export interface TrackDecisionContext {
  session: string
  org: string
  camera: string | null
  track: TrackRef
  decided: TrackDecision
  nowMs: number
}

export interface EventHub {
  /** Publishes what this track decision warrants; returns the event sent, if any. */
  trackDecided(context: TrackDecisionContext): MatchEvent | UnknownEvent | undefined
  /** Forgets a closed stream's tracks. */
  forget(session: string): void
}

interface Sent {
  key: string
  atMs: number
}

const MAX_TRACKS_PER_SESSION = 256

export function createEventHub(options: EventHubOptions): EventHub {
  const sessions = new Map<string, Map<string, Sent>>()

  const remember = (session: string, track: string, sent: Sent): void => {
    let tracks = sessions.get(session)
    if (tracks === undefined) {
      tracks = new Map()
      sessions.set(session, tracks)
    }
    tracks.delete(track)
    tracks.set(track, sent)
    // Bounded: the oldest entries go first (Map keeps insertion order).
    while (tracks.size > MAX_TRACKS_PER_SESSION) {
      const oldest = tracks.keys().next().value
      if (oldest === undefined) break
      tracks.delete(oldest)
    }
  }

  return {
    trackDecided({ session, org, camera, track, decided, nowMs }) {
      const { decision } = decided
      const wantsEvent =
        decision.status === 'match' || (decision.status === 'unknown' && options.unknownEvents)
      if (!wantsEvent || decided.frames === 0) return undefined
      const key = decision.status === 'match' ? `match:${decision.identity?.id ?? ''}` : 'unknown'
      const trackKey = `${track.source}:${String(track.id)}`
      const previous = sessions.get(session)?.get(trackKey)
      if (previous?.key === key && nowMs - previous.atMs < options.cooldownMs) return undefined
      remember(session, trackKey, { key, atMs: nowMs })
      const trackInfo = { session, id: track.id, source: track.source, frames: decided.frames }
      const at = new Date(nowMs).toISOString()
      let event: MatchEvent | UnknownEvent
      if (decision.status === 'match' && decision.identity !== undefined) {
        event = {
          type: 'match',
          identity: decision.identity,
          camera,
          similarity: decision.similarity,
          track: trackInfo,
          at,
        }
      } else {
        event = { type: 'unknown', camera, similarity: decision.similarity, track: trackInfo, at }
      }
      options.publish(eventsTopic(org), JSON.stringify(event))
      for (const sink of options.sinks ?? []) sink(org, event)
      return event
    },
    forget(session) {
      sessions.delete(session)
    },
  }
}
