/**
 * The deployment files agree with each other and with the server's defaults: the numbers one of
 * them assumes about another (body size, stream timeouts, stop grace, ports, the proxy's address).
 * What they do at run time is tested by test/integration/nginx.test.ts and
 * production-layout.test.ts; this catches drift in a few milliseconds.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { Script } from 'node:vm'
import { parseConfig } from '../../server/config.js'

const root = new URL('../../../', import.meta.url)
const read = (name: string) => readFile(new URL(name, root), 'utf8')
const defaults = parseConfig({})

/** The one capture of `pattern` in `text`, or a failure naming what was looked for. */
function one(text: string, pattern: RegExp, what: string): string {
  const matches = [...text.matchAll(new RegExp(pattern.source, pattern.flags.replace('g', '') + 'g'))]
  assert.equal(matches.length, 1, `exactly one ${what}`)
  return matches[0]?.[1] ?? ''
}

/** nginx sizes (`8m`, `512k`, bytes) and times (`300s`, `5m`, seconds). */
const NGINX_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 * 1024, s: 1 }
function nginxNumber(value: string): number {
  const match = /^(\d+)([kms]?)$/.exec(value)
  assert.ok(match !== null, `an nginx number: ${value}`)
  return Number(match[1]) * (NGINX_UNITS[match[2] ?? ''] ?? Number.NaN)
}

test('nginx refuses exactly the bodies facewire refuses, and outwaits an idle stream', async () => {
  const conf = await read('nginx.conf')
  assert.equal(
    nginxNumber(one(conf, /client_max_body_size (\S+);/, 'client_max_body_size')),
    defaults.maxBodyBytes,
  )
  const streams = one(conf, /location \/ws\/ \{([^}]*)\}/, 'location /ws/')
  for (const directive of ['proxy_read_timeout', 'proxy_send_timeout']) {
    const seconds = nginxNumber(one(streams, new RegExp(`${directive} (\\S+);`), directive))
    assert.ok(seconds > defaults.streams.idleTimeoutS, `${directive} outlasts FACEWIRE_WS_IDLE_TIMEOUT_S`)
  }
})

test('the image, compose and nginx agree on the port, the proxy address, the workers and the stop grace', async () => {
  const [dockerfile, compose, conf] = await Promise.all([
    read('Dockerfile'),
    read('docker-compose.yml'),
    read('nginx.conf'),
  ])
  const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'))
  const env = Object.fromEntries(
    one(runtime, /^ENV (.+)$/m, 'runtime ENV')
      .split(/\s+/)
      .map((pair) => pair.split('=') as [string, string]),
  )
  assert.equal(env['NODE_ENV'], 'production')
  assert.equal(env['ORT_DISABLE_TELEMETRY'], '1')
  assert.match(one(runtime, /^USER (.+)$/m, 'USER'), /^[1-9]\d*:\d+$/, 'a numeric user that is not root')
  assert.equal(one(runtime, /^STOPSIGNAL (.+)$/m, 'STOPSIGNAL'), 'SIGTERM')

  const port = one(compose, /^\s+PORT: '(\d+)'$/m, 'PORT in compose')
  assert.equal(port, env['PORT'])
  assert.equal(one(conf, /server facewire:(\d+) /, 'upstream server'), port)

  const proxy = one(compose, /FACEWIRE_TRUSTED_PROXIES: (\S+)/, 'FACEWIRE_TRUSTED_PROXIES')
  assert.equal(one(compose, /ipv4_address: (\S+)/, "nginx's address"), proxy)
  assert.deepEqual(
    parseConfig({ FACEWIRE_TRUSTED_PROXIES: proxy }).trustedProxies.map((entry) => entry.address),
    [proxy],
  )
  const subnet = one(compose, /subnet: (\S+)/, 'subnet')
  assert.ok(proxy.startsWith(subnet.replace(/0\/24$/, '')), "nginx's address is in the subnet")

  const workers = one(compose, /FACEWIRE_WORKERS: '(\d+)'/, 'FACEWIRE_WORKERS')
  const facewire = compose.slice(compose.indexOf('  facewire:'), compose.indexOf('  nginx:'))
  assert.equal(one(facewire, /cpus: '(\d+)'/, 'the CPU limit'), workers, 'one worker per CPU of the limit')

  const graceS = Number(one(compose, /stop_grace_period: (\d+)s/, 'stop_grace_period'))
  assert.ok(
    graceS * 1000 > defaults.shutdownTimeoutMs + 1000,
    'the grace outlasts the shutdown bound and its hard exit',
  )
})

test('the health checks are exec-form commands whose scripts parse', async () => {
  const [dockerfile, compose] = await Promise.all([read('Dockerfile'), read('docker-compose.yml')])
  const image = JSON.parse(one(dockerfile, /^HEALTHCHECK .*CMD (\[.*\])$/m, 'HEALTHCHECK')) as string[]
  assert.deepEqual(image.slice(0, 2), ['node', '-e'])
  assert.doesNotThrow(() => new Script(image[2] ?? ''), "the image's health check script")
  assert.match(image[2] ?? '', /\/health\b/)
  // A YAML plain scalar would turn `a ? b : c` into a mapping: the script must be quoted.
  const script = one(compose, /^\s+- (".*fetch.*")$/m, "compose's health check script")
  assert.doesNotThrow(() => new Script(JSON.parse(script) as string), "compose's health check script")
  assert.match(script, /\/ready\b/)
})
