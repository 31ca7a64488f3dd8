import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Principal } from '../../../server/auth.js'
import type { Config } from '../../../server/config.js'
import type { OrgPolicy } from '../../../server/gallery/index.js'
import { suggestFps, toDetectHello } from '../../../server/streams/hello.js'
import { STREAM_PROTOCOL_VERSION } from '../../../protocol/wire.js'

test('the suggested rate shares what the workers sustain among the open streams, one worker per stream at most', () => {
  // 4 workers at 50 ms a frame sustain 80 frames/s.
  assert.equal(suggestFps({ workers: 4, frameMs: 50, streams: 8, maxFps: 100 }), 10, 'shared by 8 streams')
  assert.equal(
    suggestFps({ workers: 4, frameMs: 50, streams: 1, maxFps: 100 }),
    20,
    'one stream uses one worker',
  )
  assert.equal(suggestFps({ workers: 4, frameMs: 50, streams: 1, maxFps: 15 }), 15, 'never above maxFps')
  assert.equal(suggestFps({ workers: 1, frameMs: 5000, streams: 50, maxFps: 15 }), 1, 'never below 1')
  assert.equal(
    suggestFps({ workers: 1, frameMs: 0, streams: 0, maxFps: 5000 }),
    1000,
    'a frame costs 1 ms at least',
  )
})

test('the hello carries the limits, the org policy, the track settings and the token expiry', () => {
  const principal: Principal = { org: 'acme', sub: 'kiosk', scopes: new Set(['detect']), expiresAtMs: 1234 }
  const limits = {
    maxFps: 15,
    orgMaxFps: 60,
    maxFrameBytes: 1024,
    maxFaces: 5,
    idleTimeoutS: 30,
    maxBufferedBytes: 4096,
    trackFrames: 5,
    trackSwitchFrames: 3,
    eventCooldownMs: 1000,
    unknownEvents: false,
  } satisfies Config['streams']
  const policy: OrgPolicy = {
    threshold: 0.4,
    margin: 0.05,
    topK: 3,
    liveness: { mode: 'report', threshold: 0.5 },
    targetFpir: 0.001,
    basis: 'cohort',
    identities: 0,
    galleryPairs: 0,
  }
  assert.deepEqual(
    toDetectHello({ session: 's1', principal, limits, policy, models: ['m'], suggestedFps: 7 }),
    {
      type: 'hello',
      protocol: STREAM_PROTOCOL_VERSION,
      session: 's1',
      org: 'acme',
      limits: { maxFrameBytes: 1024, maxFps: 15, orgMaxFps: 60, maxFaces: 5 },
      suggestedFps: 7,
      models: ['m'],
      thresholds: { match: 0.4, margin: 0.05, targetFpir: 0.001 },
      track: { windowFrames: 5, switchFrames: 3 },
      tokenExpiresAt: 1234,
    },
  )
})
