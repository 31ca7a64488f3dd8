import { pino, type DestinationStream, type Logger } from 'pino'
import type { LogLevel } from './config.js'

export type { Logger } from 'pino'

/**
 * Paths pino censors wherever they appear. Tokens must never reach a log line, whatever the
 * caller passes: headers, query strings and claims objects are all covered.
 */
export const REDACTED_PATHS = [
  'authorization',
  'access_token',
  'token',
  'headers.authorization',
  'req.headers.authorization',
  'query.access_token',
  'req.query.access_token',
  '*.authorization',
  '*.access_token',
  '*.token',
] as const

export function createLogger(options: { level: LogLevel; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'facewire' },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ sync: false }),
  )
}
