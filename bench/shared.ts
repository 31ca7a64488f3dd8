/**
 * What bench:ws and bench:soak share: the server as a child process, its /metrics, and frames as
 * the kiosk sends them, cut from LFW photos (the largest face the server finds, about twice its
 * box, at most 320 px a side, JPEG quality 80).
 */
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { cpus } from 'node:os'
import sharp from 'sharp'
import type { ApiClient } from '../client/api-client.js'
import { mainPath, startMain, whenReady, type Child } from '../test/helpers/child.js'

export interface BenchServer {
  main: Child
  baseUrl: string
  /** The pool's size, from `pipeline.ready`. */
  workers: number
}

/**
 * The compiled server on `env` (LOG_LEVEL info), ready (models loaded, /ready 200); its error
 * lines are copied to stderr.
 */
export async function startBenchServer(env: Record<string, string | undefined>): Promise<BenchServer> {
  const main = startMain(
    { LOG_LEVEL: 'info', ...env },
    {
      onLine: (line) => {
        if (typeof line['level'] === 'number' && line['level'] >= 50)
          process.stderr.write(`server: ${JSON.stringify(line)}\n`)
      },
    },
  )
  try {
    const ready = await whenReady(main)
    return { main, baseUrl: ready.baseUrl, workers: ready.workers ?? cpus().length }
  } catch (error) {
    main.child.kill('SIGKILL')
    throw error
  }
}

/** SIGTERM, and the exit awaited. */
export async function stopBenchServer(server: BenchServer): Promise<void> {
  const { child } = server.main
  if (child.exitCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
}

/** Kiosk crops: this many times the face box, at most this many pixels a side. */
const CROP_SCALE = 2
const CROP_MAX_SIDE = 320
const JPEG_QUALITY = 80

/** What a kiosk sends: the largest face found by the server, with context, as a small JPEG. */
export async function kioskCrop(api: ApiClient, photo: Buffer): Promise<Uint8Array | undefined> {
  const found = await api.recognize(photo)
  const face = found.faces[0]
  if (face === undefined) return undefined
  const side = Math.min(
    Math.round(CROP_SCALE * Math.max(face.box.width, face.box.height)),
    found.width,
    found.height,
  )
  const cx = face.box.x + face.box.width / 2
  const cy = face.box.y + face.box.height / 2
  const left = Math.round(Math.min(Math.max(0, cx - side / 2), found.width - side))
  const top = Math.round(Math.min(Math.max(0, cy - side / 2), found.height - side))
  const bytes = await sharp(photo)
    .extract({ left, top, width: side, height: side })
    .resize({ width: CROP_MAX_SIDE, height: CROP_MAX_SIDE, fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: JPEG_QUALITY })
    .toBuffer()
  return new Uint8Array(bytes)
}

/** The sum of a Prometheus text exposition's samples of `name`, over all label sets. */
export function metricValue(text: string, name: string): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (rest[0] !== ' ' && rest[0] !== '{') continue
    sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

/** Exits with a message unless the shared LFW photos and the compiled server are there. */
export function requireBenchInputs(bench: string, lfwDir: string): void {
  if (!existsSync(lfwDir)) {
    process.stderr.write(
      `${bench} needs the shared LFW photos at ${lfwDir} (set --faces or FACEWIRE_FACES to the folder holding lfw-view1/); they are never copied into this repository.\n`,
    )
    process.exit(1)
  }
  if (!existsSync(mainPath)) {
    process.stderr.write(`${bench} runs the compiled server: ${mainPath} is missing; run tsc -b first.\n`)
    process.exit(1)
  }
}
