/** `facewire rotate-key`: every embedding re-encrypted under a new key, the server serving. */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { parseEmbeddingKeyText } from '../config.js'
import {
  DEFAULT_ROTATION_BATCH_ROWS,
  DEFAULT_ROTATION_PAUSE_MS,
  rotateEmbeddingKey,
} from '../gallery/key-rotation.js'
import {
  COMMON_OPTIONS,
  EXIT,
  failure,
  openDataTool,
  parseOrUsage,
  printUsage,
  report,
  usageError,
} from './data-tool.js'

const USAGE = `usage: facewire rotate-key --new-key-file FILE [--data-dir DIR] [--batch-rows N] [--pause-ms N] [--json]

Re-encrypts every face embedding of the data folder under the new key (the file holds it as
FACEWIRE_EMBEDDING_KEY does: 32 bytes in base64; or set FACEWIRE_NEW_EMBEDDING_KEY), reading the
faces with FACEWIRE_EMBEDDING_KEY and FACEWIRE_EMBEDDING_KEY_PREVIOUS. A server may keep serving
if it was restarted first with the new key as FACEWIRE_EMBEDDING_KEY and the old one as
FACEWIRE_EMBEDDING_KEY_PREVIOUS (it refuses otherwise). Rows move in small transactions; an
interrupted run is resumed by running it again. Steps: docs/operations.md, "Key rotation".
  --data-dir DIR     the data folder (default FACEWIRE_DATA_DIR, else ./data)
  --batch-rows N     faces per transaction (default ${DEFAULT_ROTATION_BATCH_ROWS})
  --pause-ms N       pause between transactions, for the server's writes (default ${DEFAULT_ROTATION_PAUSE_MS})
  --json             print the report as JSON
Progress goes to stderr. Exit status: 0 every face is under the new key, 1 failed, 2 usage,
78 invalid configuration or a face that none of the keys decrypts.`

export async function runRotateKey(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseOrUsage('rotate-key', USAGE, () =>
    parseArgs({
      args,
      options: {
        ...COMMON_OPTIONS,
        'new-key-file': { type: 'string' },
        'batch-rows': { type: 'string', default: String(DEFAULT_ROTATION_BATCH_ROWS) },
        'pause-ms': { type: 'string', default: String(DEFAULT_ROTATION_PAUSE_MS) },
      },
    }),
  )
  if (typeof parsed === 'number') return parsed
  const { values } = parsed
  if (values.help === true) return printUsage(USAGE)
  const batchRows = parseCount(values['batch-rows'], 1)
  const pauseMs = parseCount(values['pause-ms'], 0)
  if (batchRows === undefined)
    return usageError('rotate-key', '--batch-rows: must be an integer from 1', USAGE)
  if (pauseMs === undefined) return usageError('rotate-key', '--pause-ms: must be an integer from 0', USAGE)
  try {
    const { config, dataDir, logger } = openDataTool(env, values['data-dir'])
    const file = values['new-key-file']
    if (file === undefined && config.newEmbeddingKey === undefined) {
      return usageError(
        'rotate-key',
        'name the new key: --new-key-file FILE or FACEWIRE_NEW_EMBEDDING_KEY',
        USAGE,
      )
    }
    const newKey =
      file === undefined
        ? config.newEmbeddingKey
        : parseEmbeddingKeyText(readKeyFile(file), `--new-key-file ${file}`)
    if (newKey === undefined) throw new Error('no new key')
    const oldKeys = [config.embeddingKey, config.embeddingKeyPrevious].filter((key) => key !== undefined)
    const rotated = await rotateEmbeddingKey({
      dataDir,
      newKey,
      oldKeys,
      batchRows,
      pauseMs,
      logger,
      onProgress: ({ reencrypted, total }) => {
        process.stderr.write(`rotate-key: re-encrypted ${reencrypted} of ${total} faces\n`)
      },
    })
    const faces = rotated.embeddingKeys.reduce((sum, entry) => sum + entry.faces, 0)
    report(
      values.json,
      { dataDir, ...rotated },
      rotated.complete
        ? `re-encrypted ${rotated.reencrypted} faces: all ${faces} faces of ${dataDir} are under key ${rotated.keyId}. ` +
            'Once every server runs with it as FACEWIRE_EMBEDDING_KEY, remove FACEWIRE_EMBEDDING_KEY_PREVIOUS.'
        : `re-encrypted ${rotated.reencrypted} faces, but faces under other keys remain (${JSON.stringify(rotated.embeddingKeys)}): run rotate-key again`,
    )
    return rotated.complete ? EXIT.ok : EXIT.failure
  } catch (error) {
    return failure('rotate-key', error, values.json)
  }
}

function parseCount(value: string, min: number): number | undefined {
  if (!/^\d+$/.test(value)) return undefined
  const number = Number(value)
  return Number.isSafeInteger(number) && number >= min ? number : undefined
}

function readKeyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    throw new Error(
      `--new-key-file: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        cause: error,
      },
    )
  }
}
