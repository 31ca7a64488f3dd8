/** `facewire restore DIR`: a backup into a data folder no server is running on. */
import { parseArgs } from 'node:util'
import { restoreBackup } from '../gallery/backup.js'
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

const USAGE = `usage: facewire restore DIR [--data-dir DIR] [--force] [--json]

Restores the backup in DIR (written by facewire backup) into the data folder. Checks the sha256 of
every file before anything is written, refuses a data folder whose database is open (stop the
server first) or that already holds a gallery (unless --force), and checks that the embeddings
decrypt with FACEWIRE_EMBEDDING_KEY (or FACEWIRE_EMBEDDING_KEY_PREVIOUS): run it with the
configuration the server will run with.
  --data-dir DIR   the data folder (default FACEWIRE_DATA_DIR, else ./data)
  --force          replace the gallery the data folder holds (other files are kept)
  --json           print the report as JSON
Exit status: 0 restored, 1 failed (damaged backup, folder in use or not empty), 2 usage,
78 invalid configuration or an embedding key that does not decrypt the backup.`

export function runRestore(args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const parsed = parseOrUsage('restore', USAGE, () =>
    parseArgs({
      args,
      allowPositionals: true,
      options: { ...COMMON_OPTIONS, force: { type: 'boolean', default: false } },
    }),
  )
  if (typeof parsed === 'number') return parsed
  const { values, positionals } = parsed
  if (values.help === true) return printUsage(USAGE)
  const backupDir = oneFolder('restore', USAGE, positionals)
  if (typeof backupDir === 'number') return backupDir
  try {
    const { config, dataDir, logger } = openDataTool(env, values['data-dir'])
    const restored = restoreBackup({
      backupDir,
      dataDir,
      embeddingKey: config.embeddingKey,
      previousEmbeddingKey: config.embeddingKeyPrevious,
      force: values.force,
      logger,
    })
    const { store, snapshot } = restored.manifest
    const replay = snapshot === null ? undefined : store.seq - snapshot.seq
    report(
      values.json,
      {
        backupDir,
        dataDir,
        store,
        snapshot,
        embeddingKeys: restored.embeddingKeys,
        replaced: restored.replaced,
      },
      `restored ${backupDir} into ${dataDir}: ${store.identities} identities, ${store.faces} faces, store change seq ${store.seq}; ` +
        (replay === undefined
          ? 'no index snapshot: the server rebuilds its indexes at startup'
          : `index snapshot at seq ${snapshot?.seq ?? 0}: the server replays ${replay} newer changes at startup`),
    )
    return EXIT.ok
  } catch (error) {
    return failure('restore', error, values.json)
  }
}
