/**
 * What both gallery stores (SQLite: store.ts, PostgreSQL: pg-store.ts) share: page limits, the
 * opaque identity cursor, the check of a new face, timestamps.
 */
import { FacewireError } from '../errors.js'
import type { Identity, NewFace } from './types.js'

export const MAX_PAGE_LIMIT = 1000

export function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw new FacewireError('ERR_REQUEST_INVALID', `limit must be an integer from 1 to ${MAX_PAGE_LIMIT}`, {
      details: { issues: [{ path: 'limit', message: `must be an integer from 1 to ${MAX_PAGE_LIMIT}` }] },
    })
  }
  return limit
}

export function checkNewFace(face: NewFace): void {
  // The pipeline produces these; a bad one is a bug, and NaN would poison the index.
  if (face.embedding.length === 0 || !face.embedding.every(Number.isFinite)) {
    throw new RangeError('a face embedding must be a non-empty vector of finite numbers')
  }
  if (!Number.isFinite(face.quality)) throw new RangeError('a face quality must be a finite number')
}

/** The opaque cursor after `identity` in (createdAt, id) order. */
export function toCursor(identity: Identity): string {
  return Buffer.from(JSON.stringify([identity.createdAt, identity.id]), 'utf8').toString('base64url')
}

/** Reads a cursor toCursor wrote; ERR_REQUEST_INVALID for anything else. */
export function parseCursor(cursor: string): { createdAt: string; id: string } {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    value = undefined
  }
  const parts = Array.isArray(value) ? (value as unknown[]) : []
  const [createdAt, id] = parts
  if (parts.length !== 2 || typeof createdAt !== 'string' || typeof id !== 'string') {
    throw new FacewireError('ERR_REQUEST_INVALID', 'the cursor is invalid', {
      details: { issues: [{ path: 'cursor', message: 'is not a cursor this server returned' }] },
    })
  }
  return { createdAt, id }
}

export function now(): string {
  return new Date().toISOString()
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
