/**
 * The data directory, checked before anything is written to it or the server listens: created if
 * missing (mode 0700), and proven to be a folder this process can write in. A problem is one
 * ERR_CONFIG_INVALID naming FACEWIRE_DATA_DIR and what is wrong, never an fs stack trace.
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { FacewireError } from './errors.js'

/** Makes `dir` ready for the store, the index snapshots and the development secret. */
export function prepareDataDir(dir: string): void {
  const path = resolve(dir)
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 })
  } catch (cause) {
    throw invalid(`cannot create ${path}: ${whyNot(cause, path)}`, cause)
  }
  if (!statSync(path).isDirectory()) throw invalid(`${path} is a file, not a folder`)
  // A folder can exist and still refuse writes (its mode, its owner, a read-only mount): try one.
  const probe = join(path, `.write-check-${String(process.pid)}`)
  try {
    writeFileSync(probe, '', { flag: 'wx', mode: 0o600 })
    rmSync(probe)
  } catch (cause) {
    throw invalid(`cannot write in ${path}: ${whyNot(cause, path)}`, cause)
  }
}

function invalid(problem: string, cause?: unknown): FacewireError {
  return new FacewireError('ERR_CONFIG_INVALID', `invalid configuration: FACEWIRE_DATA_DIR: ${problem}`, {
    cause,
    details: { variables: ['FACEWIRE_DATA_DIR'] },
  })
}

function whyNot(cause: unknown, path: string): string {
  const code = (cause as NodeJS.ErrnoException).code ?? ''
  if (code === 'EEXIST') return 'it is a file, not a folder'
  if (code === 'ENOTDIR') return `${fileAbove(path) ?? 'a parent'} is a file, not a folder`
  if (code === 'EACCES' || code === 'EPERM') {
    return `permission denied (${code}) for this user (uid ${String(process.getuid?.() ?? '?')})`
  }
  if (code === 'EROFS') return 'the file system is read-only (EROFS)'
  if (code === 'ENOSPC') return 'no space left on the device (ENOSPC)'
  return cause instanceof Error ? cause.message : String(cause)
}

/** The nearest existing ancestor of `path` when it is not a folder. */
function fileAbove(path: string): string | undefined {
  for (let parent = dirname(path); parent !== dirname(parent); parent = dirname(parent)) {
    try {
      return statSync(parent).isDirectory() ? undefined : parent
    } catch {
      // Missing: look further up.
    }
  }
  return undefined
}
