/**
 * Outbound events (docs/integrations.md): the EventHub's sink that gives each event an id and its
 * organization, and hands it to the webhooks and the MQTT broker configured. The sink runs on the
 * frame path: it only enqueues, and nothing it calls can throw into the frame's answer.
 */
import { randomUUID } from 'node:crypto'
import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { Readiness } from '../readiness.js'
import type { EventSink } from '../streams/events.js'
import type { OutboundEvent } from '../../protocol/wire.js'
import { createMqttPublisher, type MqttPublisher } from './mqtt.js'
import { createWebhookDispatcher, type WebhookDispatcher } from './webhooks.js'
import { loadWebhooksFile } from './webhooks-file.js'

export interface Outbound {
  /** For the EventHub; undefined when nothing is configured. */
  readonly sink: EventSink | undefined
  /** Drains for up to `graceMs`, then stops; what is left is dropped and counted. */
  close(graceMs: number): Promise<void>
}

export interface OutboundOptions {
  config: Pick<Config, 'outbound'>
  logger: Logger
  metrics: Metrics
  readiness: Readiness
}

/**
 * Reads the webhooks file (ERR_CONFIG_INVALID when it is bad) and connects to the MQTT broker
 * (in the background: a broker that is down delays nothing).
 */
export function createOutbound(options: OutboundOptions): Outbound {
  const { outbound } = options.config
  const { logger, metrics, readiness } = options
  let webhooks: WebhookDispatcher | undefined
  if (outbound.webhooksFile !== undefined) {
    const endpoints = loadWebhooksFile(outbound.webhooksFile)
    webhooks = createWebhookDispatcher({ endpoints, logger, metrics })
    logger.info(
      { file: outbound.webhooksFile, endpoints: endpoints.map(({ id, org }) => ({ id, org })) },
      'webhooks.configured',
    )
  }
  let mqtt: MqttPublisher | undefined
  if (outbound.mqtt !== undefined) {
    mqtt = createMqttPublisher({ ...outbound.mqtt, logger, metrics, readiness })
  }
  const targets = [webhooks, mqtt].filter((target) => target !== undefined)
  const sink: EventSink | undefined =
    targets.length === 0
      ? undefined
      : (org, event) => {
          try {
            const outboundEvent: OutboundEvent = { id: randomUUID(), org, ...event }
            for (const target of targets) target.send(outboundEvent)
          } catch (error) {
            logger.error({ err: error, org }, 'outbound.failed')
          }
        }
  return {
    sink,
    async close(graceMs) {
      await Promise.all(targets.map((target) => target.close(graceMs)))
    },
  }
}
