/**
 * Outside production, a missing FACEWIRE_JWT_SECRET is replaced by a random secret kept in the
 * data directory (mode 0600), so `facewire token` run beside the server mints tokens it accepts,
 * and they survive a restart. Production refuses to start without a configured secret.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const DEV_SECRET_FILE = 'dev-jwt-secret'

/** Reads the development secret of `dataDir`, or undefined when there is none. */
export function readDevSecret(dataDir: string): string | undefined {
  try {
    const secret = readFileSync(join(dataDir, DEV_SECRET_FILE), 'utf8').trim()
    return secret.length >= 32 ? secret : undefined
  } catch {
    return undefined
  }
}

/** Reads the development secret of `dataDir`, creating it on first use. */
export function loadDevSecret(dataDir: string): { secret: string; created: boolean } {
  const existing = readDevSecret(dataDir)
  if (existing !== undefined) return { secret: existing, created: false }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const secret = randomBytes(48).toString('base64')
  writeFileSync(join(dataDir, DEV_SECRET_FILE), secret + '\n', { mode: 0o600 })
  return { secret, created: true }
}
