/**
 * What a replay sends: a directory of images (in name order, or in the order and at the times of
 * its frames.jsonl) or an MJPEG file, read into memory before the first frame goes out.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { MAX_CAMERA_LABEL_BYTES } from '../../protocol/frame.js'
import { imageTypeOf } from '../api-client.js'
import { MalformedMjpeg, splitMjpeg } from './mjpeg.js'

/** The largest SOURCE read into memory (frames are preloaded so reading never disturbs the pace). */
const MAX_SOURCE_BYTES = 1024 * 1024 * 1024
export const MANIFEST = 'frames.jsonl'

/** A SOURCE that cannot be replayed: exit status 2. */
export class SourceError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SourceError'
  }
}

export interface SourceFrame {
  image: Uint8Array
  /** Path relative to the directory; absent for MJPEG frames. */
  file?: string
  /** Recorded time, ms from the start (frames.jsonl only). */
  t?: number
  trackId?: number
  camera?: string
}

export interface ReplaySource {
  kind: 'directory' | 'frames.jsonl' | 'mjpeg'
  frames: SourceFrame[]
}

export interface ManifestLine {
  file: string
  t: number
  track?: number
  camera?: string
}

const isUint32 = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff

/** Returns `label` when it fits a frame header's camera field; throws SourceError naming `where`. */
export function checkCamera(label: string, where: string): string {
  const bytes = Buffer.byteLength(label, 'utf8')
  if (bytes === 0 || bytes > MAX_CAMERA_LABEL_BYTES) {
    throw new SourceError(`${where}: camera must be 1-${String(MAX_CAMERA_LABEL_BYTES)} bytes of UTF-8`)
  }
  return label
}

/** Parses frames.jsonl; throws SourceError naming the line. */
export function parseManifest(text: string): ManifestLine[] {
  const lines: ManifestLine[] = []
  let previousT = 0
  for (const [i, raw] of text.split('\n').entries()) {
    if (raw.trim() === '') continue
    const where = `${MANIFEST} line ${String(i + 1)}`
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch {
      throw new SourceError(`${where}: not JSON`)
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new SourceError(`${where}: expected an object {"file", "t", "track"?, "camera"?}`)
    }
    const { file, t, track, camera } = value as Record<string, unknown>
    if (typeof file !== 'string' || file === '') throw new SourceError(`${where}: file must be a file name`)
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) {
      throw new SourceError(`${where}: t must be ms from the start (a number >= 0)`)
    }
    if (t < previousT)
      throw new SourceError(`${where}: t goes back in time (${String(t)} after ${String(previousT)})`)
    previousT = t
    const line: ManifestLine = { file, t }
    if (track !== undefined) {
      if (!isUint32(track)) throw new SourceError(`${where}: track must be a uint32`)
      line.track = track
    }
    if (camera !== undefined) {
      if (typeof camera !== 'string') throw new SourceError(`${where}: camera must be a string`)
      line.camera = checkCamera(camera, where)
    }
    lines.push(line)
  }
  if (lines.length === 0) throw new SourceError(`${MANIFEST} lists no frames`)
  return lines
}

async function readBounded(path: string, budget: { left: number }): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (error) {
    throw new SourceError(`cannot read ${path}: ${(error as Error).message}`)
  }
  budget.left -= bytes.length
  if (budget.left < 0) throw new SourceError(`SOURCE is over ${String(MAX_SOURCE_BYTES)} bytes`)
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
}

async function loadMjpeg(path: string, budget: { left: number }): Promise<ReplaySource> {
  let split: ReturnType<typeof splitMjpeg>
  try {
    split = splitMjpeg(await readBounded(path, budget))
  } catch (error) {
    if (error instanceof MalformedMjpeg) throw new SourceError(error.message)
    throw error
  }
  const { frames, truncatedTail } = split
  if (frames.length === 0)
    throw new SourceError(`${path} holds no JPEG (an MJPEG file is JPEGs one after another)`)
  if (truncatedTail)
    process.stderr.write(`facewire replay: the last frame of ${path} is cut short; left out\n`)
  return { kind: 'mjpeg', frames: frames.map((image) => ({ image })) }
}

/** Reads SOURCE into memory: a directory of images (with an optional frames.jsonl) or an MJPEG file. */
export async function loadSource(path: string): Promise<ReplaySource> {
  let isDirectory: boolean
  try {
    isDirectory = (await stat(path)).isDirectory()
  } catch (error) {
    throw new SourceError(`cannot read ${path}: ${(error as Error).message}`)
  }
  const budget = { left: MAX_SOURCE_BYTES }
  if (!isDirectory) return loadMjpeg(path, budget)
  let manifest: string | undefined
  try {
    manifest = await readFile(join(path, MANIFEST), 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SourceError(`cannot read ${join(path, MANIFEST)}: ${(error as Error).message}`)
    }
  }
  if (manifest !== undefined) {
    const frames: SourceFrame[] = []
    for (const line of parseManifest(manifest)) {
      const frame: SourceFrame = {
        image: await readBounded(join(path, line.file), budget),
        file: line.file,
        t: line.t,
      }
      if (line.track !== undefined) frame.trackId = line.track
      if (line.camera !== undefined) frame.camera = line.camera
      frames.push(frame)
    }
    return { kind: 'frames.jsonl', frames }
  }
  const files = (await readdir(path, { withFileTypes: true }))
    .filter((entry) => entry.isFile() && !entry.name.startsWith('.') && imageTypeOf(entry.name) !== undefined)
    .map((entry) => entry.name)
    .sort()
  if (files.length === 0) throw new SourceError(`${path} holds no .jpg, .jpeg, .png or .webp file`)
  const frames: SourceFrame[] = []
  for (const file of files) frames.push({ image: await readBounded(join(path, file), budget), file })
  return { kind: 'directory', frames }
}
