/**
 * A test's own subscriber on the machine's Mosquitto (mqtt://127.0.0.1:1883), with a topic prefix
 * no other test or run shares, and the messages it got, awaited by predicate (no sleeping).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { delimiter, join } from 'node:path'
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt'

export const TEST_BROKER = process.env['FACEWIRE_TEST_MQTT_URL'] ?? 'mqtt://127.0.0.1:1883'

export interface ReceivedMessage {
  topic: string
  payload: string
  /** Whether the broker delivered it as a retained message (sent before the subscription). */
  retain: boolean
}

export interface Subscriber {
  client: MqttClient
  messages: ReceivedMessage[]
  /** The first message (received already, or to come) matching `predicate`. */
  when(predicate: (message: ReceivedMessage) => boolean): Promise<ReceivedMessage>
  close(): Promise<void>
}

/** A topic prefix of its own for one test: `facewire-test-<random>`. */
export function testPrefix(): string {
  return `facewire-test-${randomBytes(5).toString('hex')}`
}

/**
 * Subscribes to `filter` (QoS 1) and collects what arrives; `options` for another broker or a
 * persistent session (`clean: false` with a `clientId`, and `reconnectPeriod`).
 */
export async function subscribe(
  filter: string,
  options: { url?: string } & IClientOptions = {},
): Promise<Subscriber> {
  const { url = TEST_BROKER, ...clientOptions } = options
  const client = await connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...clientOptions })
  const messages: ReceivedMessage[] = []
  const waiters: {
    predicate: (message: ReceivedMessage) => boolean
    resolve: (m: ReceivedMessage) => void
  }[] = []
  client.on('message', (topic, payload, packet) => {
    const message = { topic, payload: payload.toString('utf8'), retain: packet.retain }
    messages.push(message)
    for (const waiter of [...waiters]) {
      if (!waiter.predicate(message)) continue
      waiters.splice(waiters.indexOf(waiter), 1)
      waiter.resolve(message)
    }
  })
  await client.subscribeAsync(filter, { qos: 1 })
  return {
    client,
    messages,
    when(predicate) {
      const seen = messages.find(predicate)
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise((resolve) => waiters.push({ predicate, resolve }))
    },
    async close() {
      await client.endAsync()
    },
  }
}

/** Removes retained messages (an empty retained payload), so the shared broker keeps nothing of a test. */
export async function clearRetained(topics: readonly string[]): Promise<void> {
  const client = await connectAsync(TEST_BROKER, { reconnectPeriod: 0, connectTimeout: 5000 })
  for (const topic of topics) await client.publishAsync(topic, '', { qos: 1, retain: true })
  await client.endAsync()
}

/** The mosquitto binary on PATH or in the usual sbin folders, or undefined. */
export function findMosquitto(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin']
  return dirs.map((dir) => join(dir, 'mosquitto')).find((path) => path.startsWith('/') && existsSync(path))
}

/**
 * A broker of the test's own on 127.0.0.1:`port` (the shared one cannot be stopped), with its
 * sessions saved in `dir` across restarts; resolves once it accepts connections.
 */
export async function startPrivateBroker(binary: string, port: number, dir: string): Promise<ChildProcess> {
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(
    conf,
    [
      `listener ${String(port)} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'log_dest none',
    ].join('\n') + '\n',
  )
  const broker = spawn(binary, ['-c', conf], { stdio: 'ignore' })
  // Ready when a client can connect: try until one does (the broker binds within milliseconds).
  for (let attempt = 0; ; attempt++) {
    try {
      const probe = await connectAsync(`mqtt://127.0.0.1:${String(port)}`, {
        reconnectPeriod: 0,
        connectTimeout: 1000,
      })
      await probe.endAsync()
      return broker
    } catch (error) {
      if (attempt >= 100 || broker.exitCode !== null) throw error
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

/** SIGTERM (mosquitto saves its sessions), then the exit. */
export async function stopBroker(broker: ChildProcess): Promise<void> {
  if (broker.exitCode !== null || broker.signalCode !== null) return
  broker.kill('SIGTERM')
  await once(broker, 'exit')
}
