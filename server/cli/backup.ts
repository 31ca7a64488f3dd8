/** `facewire backup DIR`: a consistent copy of a data folder, taken while the server serves. */
import { parseArgs } from 'node:util'
import { createBackup } from '../gallery/backup.js'
import {
  COMMON_OPTIONS,
  EXIT,
  failure,
  oneFolder,
  openDataTool,
  parseOrUsage,
  printUsage,
  report,
} from './data-tool.js'
import { facewireVersion } from './version.js'

const USAGE = `usage: facewire backup DIR [--data-dir DIR] [--json]

Copies the gallery of the data folder into DIR (new, or empty) while a server keeps serving from
it: the store through SQLite's online backup API, as of one commit, and the index snapshot it was
taken with, so a server started on the restored copy loads without a rebuild. DIR gets
facewire-backup.json (created at, store change seq, every file's sha256). No secret is copied:
not FACEWIRE_EMBEDDING_KEY (keep it with the backup: the embeddings are copied encrypted), not
the development JWT secret.
  --data-dir DIR   the data folder (default FACEWIRE_DATA_DIR, else ./data)
  --json           print the manifest as JSON
Exit status: 0 written, 1 failed, 2 usage, 78 invalid configuration.`

export async function runBackup(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseOrUsage('backup', USAGE, () =>
    parseArgs({ args, allowPositionals: true, options: COMMON_OPTIONS }),
  )
  if (typeof parsed === 'number') return parsed
  const { values, positionals } = parsed
  if (values.help === true) return printUsage(USAGE)
  const backupDir = oneFolder('backup', USAGE, positionals)
  if (typeof backupDir === 'number') return backupDir
  try {
    const { dataDir, logger } = openDataTool(env, values['data-dir'])
    const manifest = await createBackup({
      dataDir,
      backupDir,
      createdBy: `facewire ${facewireVersion()}`,
      logger,
    })
    const { store, snapshot } = manifest
    report(
      values.json,
      { backupDir, ...manifest },
      `backup of ${dataDir} written to ${backupDir}: ${store.identities} identities, ${store.faces} faces, ` +
        `store change seq ${store.seq}, ` +
        (snapshot === null
          ? 'no index snapshot (a restored server rebuilds its indexes)'
          : `index snapshot at seq ${snapshot.seq}`),
    )
    return EXIT.ok
  } catch (error) {
    return failure('backup', error, values.json)
  }
}
