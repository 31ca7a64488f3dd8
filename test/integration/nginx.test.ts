/**
 * The repository's nginx.conf in front of two facewire instances, against a real nginx: TLS with
 * a test CA, the kiosk page, streams, the stream timeouts, the body limit at the edge and the
 * internals kept off the public server. CI installs nginx (.ci/run); elsewhere the test is
 * skipped when there is none.
 */
import assert from 'node:assert/strict'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import { openDetectStream, type DetectStream } from '../../client/stream-client.js'
import type { StreamAnswer } from '../../protocol/wire.js'
import { KIOSK_CSP } from '../../server/kiosk.js'
import { TEST_SECRET, testToken } from '../helpers/app.js'
import { startMain, whenReady, type Child } from '../helpers/child.js'
import { httpRequest } from '../helpers/http.js'
import { encode, facesDir, texturedScene } from '../helpers/images.js'
import {
  findNginx,
  freePort,
  makeCertificates,
  NGINX_CONF,
  renderNginxConf,
  startNginx,
  type Certificates,
  type NginxPorts,
  type RunningNginx,
} from '../helpers/nginx.js'
import { tempDataDir } from '../helpers/temp-dir.js'

const nginxBinary = findNginx()
const skip = nginxBinary === undefined && process.env['CI'] === undefined ? 'nginx is not installed' : false

/**
 * Streams send nothing while idle until facewire's ping at about half its idle timeout: at 160 s
 * that is ~80 s of silence, past nginx's default 60 s proxy_read_timeout.
 */
const IDLE_TIMEOUT_S = 160
/** The stream timeouts of the committed file, left out of the control nginx. */
const STREAM_TIMEOUTS = ['proxy_read_timeout 300s;', 'proxy_send_timeout 300s;']

async function frameImage(): Promise<{ image: Uint8Array; hasFace: boolean }> {
  const faces = facesDir()
  if (faces === undefined) return { image: await encode(texturedScene(320, 240), 'jpeg'), hasFace: false }
  return {
    image: await readFile(join(faces, 'face_recognition-examples', 'barack_obama', '1.jpg')),
    hasFace: true,
  }
}

function opened(instance: Child): Record<string, unknown>[] {
  return instance.lines.filter((line) => line['msg'] === 'ws.detect_opened')
}

/**
 * The `ws.detect_opened` lines of each instance after the first `since[i]`, once there are
 * `count` in all: the hello can reach the client before the line crosses the log pipe.
 */
async function openedSince(
  instances: readonly Child[],
  since: readonly number[],
  count: number,
): Promise<Record<string, unknown>[][]> {
  for (let attempt = 0; ; attempt++) {
    const lines = instances.map((instance, i) => opened(instance).slice(since[i]))
    if (lines.flat().length >= count || attempt === 250) return lines
    await sleep(20)
  }
}

describe('facewire behind the repository nginx.conf', { skip }, () => {
  let prefix = ''
  let certificates: Certificates
  let ports: NginxPorts
  let controlPorts: NginxPorts
  const instances: Child[] = []
  let nginx: RunningNginx | undefined
  let control: RunningNginx | undefined
  let base = ''

  before(async () => {
    prefix = tempDataDir('facewire-nginx-')
    certificates = await makeCertificates(join(prefix, 'certs'))
    for (let i = 0; i < 2; i++) {
      instances.push(
        startMain({
          NODE_ENV: 'production',
          FACEWIRE_JWT_SECRET: TEST_SECRET,
          FACEWIRE_TRUSTED_PROXIES: '127.0.0.1',
          FACEWIRE_WS_IDLE_TIMEOUT_S: String(IDLE_TIMEOUT_S),
          LOG_LEVEL: 'debug',
        }),
      )
    }
    const upstreams = (await Promise.all(instances.map((instance) => whenReady(instance)))).map(
      (ready) => ready.port,
    )
    const template = await readFile(NGINX_CONF, 'utf8')
    const start = async (name: string, without: readonly string[]) => {
      const at = join(prefix, name)
      const chosen = { https: await freePort(), http: await freePort(), internal: await freePort() }
      const conf = renderNginxConf(template, { prefix: at, ports: chosen, upstreams, certificates, without })
      return { ports: chosen, nginx: await startNginx(nginxBinary ?? 'nginx', conf, at, chosen) }
    }
    const main = await start('nginx', [])
    ;({ ports, nginx } = main)
    const withoutTimeouts = await start('control', STREAM_TIMEOUTS)
    ;({ ports: controlPorts, nginx: control } = withoutTimeouts)
    base = `https://127.0.0.1:${String(ports.https)}`
  })

  after(async () => {
    await nginx?.stop()
    await control?.stop()
    for (const instance of instances) {
      instance.child.kill('SIGTERM')
      if (instance.child.exitCode === null)
        await new Promise((resolve) => instance.child.once('exit', resolve))
      await rm(instance.dataDir, { recursive: true, force: true })
    }
    await rm(prefix, { recursive: true, force: true })
  })

  test('the kiosk page loads over https with facewire CSP unchanged and HSTS added by nginx', async () => {
    const page = await httpRequest(ports.https, '/kiosk', { ca: certificates.ca })
    assert.equal(page.status, 200)
    assert.match(page.body, /<html/i)
    assert.equal(page.headers['content-security-policy'], KIOSK_CSP)
    assert.match(String(page.headers['strict-transport-security']), /^max-age=\d+/)
    const plain = await httpRequest(ports.http, '/kiosk')
    assert.equal(plain.status, 301)
    assert.equal(plain.headers['location'], 'https://127.0.0.1/kiosk')
  })

  test('streams through nginx get results, spread over both instances, with tokens kept out of the access log', async () => {
    const { image, hasFace } = await frameImage()
    const token = testToken('acme', ['detect'])
    const streams: DetectStream[] = []
    for (let i = 0; i < 2; i++) {
      streams.push(await openDetectStream({ baseUrl: base, token, tokenInQuery: true, ca: certificates.ca }))
    }
    for (const stream of streams) {
      const answer = stream.answerFor(1)
      stream.send({ frameId: 1 }, image)
      const result = await answer
      assert.equal(result.type, 'result')
      if (hasFace && result.type === 'result') assert.ok(result.faces.length >= 1, 'the face is found')
    }
    // least_conn: the second stream went to the instance without one.
    const lines = await openedSince(instances, [0, 0], 2)
    assert.deepEqual(
      lines.map((opens) => opens.length),
      [1, 1],
    )
    for (const stream of streams) {
      stream.close()
      await stream.closed
    }
    let log = ''
    for (let attempt = 0; attempt < 100 && !log.includes('/ws/detect'); attempt++) {
      log = (await nginx?.accessLog()) ?? ''
      await sleep(20)
    }
    assert.match(log, /"GET \/ws\/detect HTTP\/1\.1" 101 /)
    assert.ok(!log.includes(token) && !log.includes('access_token'), 'the query string is not logged')
  })

  test('facewire logs the address nginx saw, not the X-Forwarded-For a client sends', async () => {
    const before = instances.map((instance) => opened(instance).length)
    const socket = new WebSocket(`wss://127.0.0.1:${String(ports.https)}/ws/detect`, {
      ca: certificates.ca,
      headers: {
        authorization: `Bearer ${testToken('acme', ['detect'])}`,
        'x-forwarded-for': '198.51.100.9',
      },
    })
    await new Promise((resolve, reject) => {
      socket.once('message', resolve)
      socket.once('error', reject)
    })
    const logged = (await openedSince(instances, before, 1)).flat()
    socket.close()
    assert.equal(logged.length, 1)
    assert.equal(logged[0]?.['clientIp'], '127.0.0.1')
  })

  test('an idle stream outlives nginx default 60 s read timeout and still answers, where the control nginx without the stream timeouts cuts it', async () => {
    const { image } = await frameImage()
    const token = testToken('acme', ['detect'])
    const open = (port: number) =>
      openDetectStream({ baseUrl: `https://127.0.0.1:${String(port)}`, token, ca: certificates.ca })
    const [kept, cut] = await Promise.all([open(ports.https), open(controlPorts.https)])
    let keptClosed = false
    void kept.closed.then(() => (keptClosed = true))
    const started = Date.now()
    const cutClosed = await Promise.race([cut.closed, sleep(65_000).then(() => undefined)])
    await sleep(Math.max(0, started + 65_000 - Date.now())) // 65 s of silence for the kept stream too
    assert.notEqual(cutClosed, undefined, 'the control nginx closed its idle stream')
    assert.equal(keptClosed, false, 'the stream through nginx.conf is still open')
    const answer: Promise<StreamAnswer> = kept.answerFor(7)
    kept.send({ frameId: 7 }, image)
    assert.equal((await answer).type, 'result')
    kept.close()
    await kept.closed
    const errors = (await control?.errorLog()) ?? ''
    assert.match(errors, /upstream timed out/, 'nginx, not facewire, cut the control stream')
  })

  test('a body over client_max_body_size is refused by nginx with 413 before it reaches facewire', async () => {
    const token = testToken('acme', ['detect', 'enroll'])
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'image/jpeg' }
    const tooLarge = await httpRequest(ports.https, '/api/v1/recognize', {
      ca: certificates.ca,
      method: 'POST',
      headers: { ...headers, 'content-length': String(9 * 1024 * 1024) },
    })
    assert.equal(tooLarge.status, 413)
    assert.equal(tooLarge.headers['server'], 'nginx')
    assert.match(String(tooLarge.headers['content-type']), /^text\/html/)
    assert.match(tooLarge.body, /413 Request Entity Too Large/)
    assert.doesNotMatch(tooLarge.body, /ERR_/)
    assert.match((await nginx?.errorLog()) ?? '', /client intended to send too large body/)
    // Under the limit the body crosses, and facewire answers it (a catalogue error: not an image).
    const small = await httpRequest(ports.https, '/api/v1/recognize', {
      ca: certificates.ca,
      method: 'POST',
      headers,
      body: new Uint8Array(1024 * 1024),
    })
    assert.match(String(small.headers['content-type']), /^application\/json/)
    assert.match(small.body, /"code":"ERR_/)
  })

  test('/metrics, /ready and /health are not served by the public server; the internal listener answers', async () => {
    for (const path of ['/metrics', '/ready', '/health', '/']) {
      const response = await httpRequest(ports.https, path, { ca: certificates.ca })
      assert.equal(response.status, 404, path)
      assert.doesNotMatch(response.body, /facewire_|"status"/, path)
    }
    const internal = await httpRequest(ports.internal, '/nginx-health')
    assert.equal(internal.status, 200)
    assert.equal(internal.body, 'ok\n')
  })
})
