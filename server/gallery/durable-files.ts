/**
 * File helpers for what the gallery writes beside its database (index snapshots, backups): fsync,
 * durable writes, and sha256 computed from disk in bounded chunks.
 */
import { createHash } from 'node:crypto'
import { closeSync, fsyncSync, openSync, readSync, writeFileSync } from 'node:fs'

const HASH_CHUNK_BYTES = 1 << 20

/** fsyncs a file or a folder (a folder: so the names created in it survive a crash). */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** sha256 (hex) and length of a file, read in 1 MiB chunks. */
export function sha256File(path: string): { sha256: string; bytes: number } {
  const hash = createHash('sha256')
  const buffer = Buffer.allocUnsafe(HASH_CHUNK_BYTES)
  const fd = openSync(path, 'r')
  let bytes = 0
  try {
    for (;;) {
      const read = readSync(fd, buffer, 0, buffer.length, null)
      if (read === 0) break
      hash.update(buffer.subarray(0, read))
      bytes += read
    }
  } finally {
    closeSync(fd)
  }
  return { sha256: hash.digest('hex'), bytes }
}

/** Writes `text` to `path` (created or truncated) and fsyncs it before returning. */
export function writeFileDurably(path: string, text: string | Uint8Array): void {
  const fd = openSync(path, 'w')
  try {
    writeFileSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
