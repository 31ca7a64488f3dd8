import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A fresh data directory under the OS temp dir. */
export function tempDataDir(prefix = 'facewire-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}
