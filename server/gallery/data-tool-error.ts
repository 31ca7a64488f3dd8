/**
 * Failures of the operator tools that work on a data folder (`facewire backup`, `restore`,
 * `rotate-key`): a stable code that tests and scripts switch on, and a message for the operator.
 * Never on the wire (the wire catalogue is protocol/errors.ts); the CLI exits 1 with the message.
 */
export const DATA_TOOL_ERRORS = [
  /** There is no gallery database in the data folder. */
  'ERR_NO_GALLERY',
  /** The backup folder to write into already holds files. */
  'ERR_BACKUP_TARGET_NOT_EMPTY',
  /** No manifest, or one that does not parse, verify its checksum, or list what a backup holds. */
  'ERR_BACKUP_INVALID',
  /** A file the manifest lists is missing or its size or sha256 differs. */
  'ERR_BACKUP_DAMAGED',
  /** Another process (a running server) has the data folder's database open. */
  'ERR_DATA_DIR_IN_USE',
  /** The data folder to restore into already holds a gallery (and --force was not given). */
  'ERR_DATA_DIR_NOT_EMPTY',
  /** A server is running on the data folder without the new key as its current key. */
  'ERR_ROTATION_SERVER_KEY',
] as const

export type DataToolErrorCode = (typeof DATA_TOOL_ERRORS)[number]

export class DataToolError extends Error {
  readonly code: DataToolErrorCode

  constructor(code: DataToolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? {} : { cause: options.cause })
    this.name = 'DataToolError'
    this.code = code
  }
}
