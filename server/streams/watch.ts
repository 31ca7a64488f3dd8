/** /ws/events: an organization's watchers receive its match (and optionally unknown) events. */
import { requireScope, type Authenticator, type Principal } from '../auth.js'
import { FacewireError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { STREAM_PROTOCOL_VERSION, type EventsHello } from '../../protocol/wire.js'
import { defineWsRoute, type AnyWsRoute } from '../transport/index.js'
import { eventsTopic } from './events.js'
import { scheduleExpiry, type ExpiryTimer } from './token-expiry.js'

export interface WatchRouteOptions {
  auth: Authenticator
  logger: Logger
  metrics: Metrics
  idleTimeoutS: number
  maxBufferedBytes: number
  unknownEvents: boolean
}

interface Watcher {
  principal: Principal
  expiry: ExpiryTimer | undefined
}

export function createWatchRoute(options: WatchRouteOptions): AnyWsRoute {
  return defineWsRoute<Watcher>({
    pattern: '/ws/events',
    maxPayloadBytes: 4096,
    idleTimeoutS: options.idleTimeoutS,
    // A watcher that does not read is skipped by publish until it catches up (uWS maxBackpressure).
    maxBackpressureBytes: options.maxBufferedBytes,
    // Watchers only listen: a few messages a second is already more than any client sends.
    budget: { messagesPerS: 10, bytesPerS: 4 * 4096, invalidPerS: 10 },
    upgrade(request) {
      const principal = options.auth.authenticate(request.headers, request.query)
      requireScope(principal, 'watch')
      return { principal, expiry: undefined }
    },
    open(connection) {
      options.metrics.wsConnections.inc({ route: 'events' })
      const watcher = connection.context
      watcher.expiry = scheduleExpiry(watcher.principal.expiresAtMs, () => {
        connection.close(new FacewireError('ERR_AUTH_EXPIRED'))
      })
      connection.subscribe(eventsTopic(watcher.principal.org))
      const hello: EventsHello = {
        type: 'hello',
        protocol: STREAM_PROTOCOL_VERSION,
        org: watcher.principal.org,
        unknownEvents: options.unknownEvents,
      }
      connection.send(JSON.stringify(hello))
    },
    message() {
      // Watchers only listen; anything they send is ignored.
    },
    close(connection, code) {
      options.metrics.wsConnections.dec({ route: 'events' })
      options.metrics.wsCloses.inc({ route: 'events', code: String(code) })
      connection.context.expiry?.cancel()
    },
  })
}
