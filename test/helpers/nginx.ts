/**
 * A real nginx for tests: the repository's nginx.conf with only its deployment-specific lines
 * rewritten (user, pid and log files, listen addresses, certificates, upstream servers, temp
 * paths), run in the foreground as the current user under a temporary prefix; certificates made
 * with openssl at test time.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { userInfo } from 'node:os'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The committed production example. */
export const NGINX_CONF = fileURLToPath(new URL('../../../nginx.conf', import.meta.url))

/** The nginx binary on PATH or in the usual sbin folders, or undefined. */
export function findNginx(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin']
  return dirs.map((dir) => join(dir, 'nginx')).find((path) => path.startsWith('/') && existsSync(path))
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('no port'))
        else resolve(address.port)
      })
    })
  })
}

export interface Certificates {
  /** PEM of the test CA, for clients. */
  ca: string
  certFile: string
  keyFile: string
}

/** A throwaway CA and a server certificate it signed for `localhost` and 127.0.0.1 (P-256). */
export async function makeCertificates(dir: string): Promise<Certificates> {
  await mkdir(dir, { recursive: true })
  const at = (name: string) => join(dir, name)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  await run('openssl', [
    ...['req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '2'],
    ...['-subj', '/CN=facewire test CA', '-addext', 'basicConstraints=critical,CA:TRUE'],
    ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  ])
  await run('openssl', [
    ...['req', ...ec, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=localhost'],
  ])
  await writeFile(
    at('server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  )
  await run('openssl', [
    ...['x509', '-req', '-in', at('server.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key')],
    ...['-CAcreateserial', '-out', at('server.pem'), '-days', '2', '-extfile', at('server.ext')],
  ])
  return { ca: await readFile(at('ca.pem'), 'utf8'), certFile: at('server.pem'), keyFile: at('server.key') }
}

export interface NginxPorts {
  https: number
  http: number
  internal: number
}

export interface RenderOptions {
  /** Temporary prefix: pid, logs and temp files go here. */
  prefix: string
  ports: NginxPorts
  /** facewire instances on 127.0.0.1. */
  upstreams: readonly number[]
  certificates: Certificates
  /** Lines of the committed file to leave out (each must be there), e.g. for a control run. */
  without?: readonly string[]
}

function replaceEach(text: string, from: string, to: string): string {
  const parts = text.split(from)
  if (parts.length < 2) {
    throw new Error(`nginx.conf no longer contains "${from}": update test/helpers/nginx.ts with it`)
  }
  return parts.join(to)
}

/** The committed nginx.conf rewritten for a test run; throws when a line it rewrites is gone. */
export function renderNginxConf(template: string, options: RenderOptions): string {
  const { prefix, ports, certificates } = options
  const root = process.getuid?.() === 0
  let text = template
  for (const line of options.without ?? []) text = replaceEach(text, line, `# (left out by the test) ${line}`)
  const rewrites: [string, string][] = [
    // As root the workers would switch to the image's `nginx` user: stay the current user.
    ['user nginx;', root ? `user ${userInfo().username};` : '# user: the current one'],
    ['pid /var/run/nginx.pid;', `pid ${prefix}/nginx.pid;`],
    ['error_log /var/log/nginx/error.log warn;', `error_log ${prefix}/error.log info;`],
    ['access_log /var/log/nginx/access.log facewire;', `access_log ${prefix}/access.log facewire;`],
    [
      'server facewire:8080 resolve max_fails=3 fail_timeout=10s;',
      options.upstreams
        .map((port) => `server 127.0.0.1:${String(port)} max_fails=3 fail_timeout=10s;`)
        .join('\n        '),
    ],
    ['listen 80;', `listen 127.0.0.1:${String(ports.http)};`],
    ['listen 443 ssl;', `listen 127.0.0.1:${String(ports.https)} ssl;`],
    ['listen 8081;', `listen 127.0.0.1:${String(ports.internal)};`],
    ['ssl_certificate /etc/nginx/certs/fullchain.pem;', `ssl_certificate ${certificates.certFile};`],
    ['ssl_certificate_key /etc/nginx/certs/privkey.pem;', `ssl_certificate_key ${certificates.keyFile};`],
    [
      'http {',
      'http {\n' +
        ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
          .map((kind) => `    ${kind}_temp_path ${prefix}/temp/${kind};`)
          .join('\n'),
    ],
  ]
  for (const [from, to] of rewrites) text = replaceEach(text, from, to)
  return text
}

export interface RunningNginx {
  readonly child: ChildProcess
  readonly errorLog: () => Promise<string>
  readonly accessLog: () => Promise<string>
  stop(): Promise<void>
}

function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  return (async () => {
    for (let attempt = 0; attempt < 200; attempt++) {
      if (child.exitCode !== null) throw new Error(`nginx exited (${String(child.exitCode)}):\n${output()}`)
      const open = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1')
        socket.once('connect', () => {
          socket.destroy()
          resolve(true)
        })
        socket.once('error', () => {
          resolve(false)
        })
      })
      if (open) return
      await sleep(25)
    }
    throw new Error(`nginx did not listen on ${String(port)}:\n${output()}`)
  })()
}

/** Checks `conf` with `nginx -t`, then runs nginx in the foreground until stop(). */
export async function startNginx(
  binary: string,
  conf: string,
  prefix: string,
  ports: NginxPorts,
): Promise<RunningNginx> {
  await mkdir(join(prefix, 'temp'), { recursive: true })
  const confFile = join(prefix, 'nginx.conf')
  await writeFile(confFile, conf)
  // -e: the error log before the configuration is read (the compiled-in one may not be writable).
  const base = ['-p', `${prefix}/`, '-e', join(prefix, 'error.log'), '-c', confFile]
  try {
    await run(binary, ['-t', ...base])
  } catch (error) {
    const failed = error as { stderr?: string }
    throw new Error(`nginx -t refused the rendered nginx.conf:\n${failed.stderr ?? String(error)}\n${conf}`)
  }
  const child = spawn(binary, [...base, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  const read = (name: string) => () => readFile(join(prefix, name), 'utf8').catch(() => '')
  const running: RunningNginx = {
    child,
    errorLog: read('error.log'),
    accessLog: read('access.log'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM') // fast shutdown: open WebSockets would hold a graceful one
      await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))])
      await exited
    },
  }
  try {
    await Promise.all(
      [ports.https, ports.http, ports.internal].map((port) => waitForPort(port, child, () => output)),
    )
  } catch (error) {
    await running.stop()
    throw error
  }
  return running
}
