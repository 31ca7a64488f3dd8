/**
 * What `facewire backup`, `restore` and `rotate-key` share: the configuration they read, their
 * logger, and how a failure becomes a message and an exit status.
 */
import { pino } from 'pino'
import { parseDataToolConfig, type DataToolConfig } from '../config.js'
import { FacewireError } from '../errors.js'
import { DataToolError } from '../gallery/data-tool-error.js'
import { createLogger, type Logger } from '../logger.js'

/** Exit statuses (docs/operations.md, "Backup and restore"). */
export const EXIT = { ok: 0, failure: 1, usage: 2, config: 78 } as const

export interface DataTool {
  config: DataToolConfig
  /** --data-dir, else FACEWIRE_DATA_DIR, else ./data. */
  dataDir: string
  /** JSON lines on stderr at LOG_LEVEL (default warn): the report itself goes to stdout. */
  logger: Logger
}

/** The configuration (throws ERR_CONFIG_INVALID) and a logger for a tool run. */
export function openDataTool(env: NodeJS.ProcessEnv, dataDirFlag: string | undefined): DataTool {
  const config = parseDataToolConfig(env)
  const logger = createLogger({
    level: config.logLevel,
    destination: pino.destination({ fd: 2, sync: true }),
  })
  return { config, dataDir: dataDirFlag ?? config.dataDir, logger }
}

/** The options every data tool takes (`as const`, so parseArgs types the values). */
export const COMMON_OPTIONS = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h' },
} as const

/** `parse()` (a parseArgs call), or the usage status after printing what it refused. */
export function parseOrUsage<T>(command: string, usage: string, parse: () => T): T | number {
  try {
    return parse()
  } catch (error) {
    return usageError(command, (error as Error).message, usage)
  }
}

/** Prints the usage to stdout (for --help) and returns status 0. */
export function printUsage(usage: string): number {
  process.stdout.write(usage + '\n')
  return EXIT.ok
}

/** The one folder argument, or the usage status after printing the problem. */
export function oneFolder(command: string, usage: string, positionals: readonly string[]): string | number {
  const [folder, ...extra] = positionals
  if (folder === undefined || extra.length > 0) return usageError(command, 'name one backup folder', usage)
  return folder
}

/** Prints a usage error and returns its status. */
export function usageError(command: string, message: string, usage: string): number {
  process.stderr.write(`facewire ${command}: ${message}\n\n${usage}\n`)
  return EXIT.usage
}

/**
 * Prints a failure and returns its status: 78 for a configuration that is invalid or does not fit
 * the data (an embedding key that does not decrypt it), 1 for anything else. With `json`, stdout
 * also gets `{ "error": { "code", "message" } }`.
 */
export function failure(command: string, error: unknown, json: boolean): number {
  const message = error instanceof Error ? error.message : String(error)
  const code = error instanceof FacewireError || error instanceof DataToolError ? error.code : 'ERR_INTERNAL'
  process.stderr.write(`facewire ${command}: ${message}\n`)
  if (json) process.stdout.write(JSON.stringify({ error: { code, message } }) + '\n')
  return code === 'ERR_CONFIG_INVALID' ? EXIT.config : EXIT.failure
}

/** Prints the report: JSON with --json, else the text. */
export function report(json: boolean, value: object, text: string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text + '\n')
}
