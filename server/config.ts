import { availableParallelism } from 'node:os'
import { z } from 'zod'
import { FacewireError } from './errors.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const port = z.coerce
  .number({ error: 'must be a number' })
  .int('must be an integer')
  .min(0, 'must be between 0 and 65535')
  .max(65535, 'must be between 0 and 65535')

const count = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be an integer')
    .min(min, `must be between ${min} and ${max}`)
    .max(max, `must be between ${min} and ${max}`)

const positiveMs = z.coerce
  .number({ error: 'must be a number of milliseconds' })
  .int('must be an integer number of milliseconds')
  .min(1, 'must be at least 1 ms')
  .max(600_000, 'must be at most 600000 ms')

/** Environment variables, as documented in docs/configuration.md and .env.example. */
const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1, 'must not be empty').default('127.0.0.1'),
  PORT: port.default(8080),
  FACEWIRE_DATA_DIR: z.string().min(1, 'must not be empty').default('./data'),
  FACEWIRE_JWT_SECRET: z
    .string()
    .min(32, 'must be at least 32 characters (use `openssl rand -base64 48`)')
    .optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  FACEWIRE_SHUTDOWN_TIMEOUT_MS: positiveMs.default(10_000),
  FACEWIRE_MAX_BODY_BYTES: z.coerce
    .number({ error: 'must be a number of bytes' })
    .int('must be an integer')
    .min(1024, 'must be at least 1024')
    .max(64 * 1024 * 1024, 'must be at most 67108864')
    .default(8 * 1024 * 1024),
  FACEWIRE_WORKERS: count(1, 256).optional(),
  FACEWIRE_PIPELINE_QUEUE: count(0, 100_000).optional(),
  FACEWIRE_PIPELINE_TIMEOUT_MS: positiveMs.default(10_000),
  FACEWIRE_MAX_IMAGE_PIXELS: count(1, 1_000_000_000).default(40_000_000),
  FACEWIRE_MAX_IMAGE_SIDE: count(1, 100_000).default(10_000),
  FACEWIRE_MODELS_DIR: z.string().min(1, 'must not be empty').optional(),
})

export type LogLevel = (typeof LOG_LEVELS)[number]

export interface Config {
  readonly env: 'development' | 'production' | 'test'
  readonly host: string
  readonly port: number
  readonly dataDir: string
  /** Undefined only outside production; main.ts then generates a dev secret with a warning. */
  readonly jwtSecret: string | undefined
  readonly logLevel: LogLevel
  readonly shutdownTimeoutMs: number
  readonly maxBodyBytes: number
  /** Pipeline worker threads; default one per core. */
  readonly workers: number
  /** Images allowed to wait for a busy pipeline beyond the ones being processed. */
  readonly pipelineQueue: number
  readonly pipelineTimeoutMs: number
  readonly maxImagePixels: number
  readonly maxImageSide: number
  /** Folder holding manifest.json and the ONNX files; undefined = the models shipped with facewire. */
  readonly modelsDir: string | undefined
}

export const CONFIG_VARIABLES = Object.keys(envSchema.shape) as (keyof typeof envSchema.shape)[]

/**
 * Validates the environment once and returns a frozen config. Throws ERR_CONFIG_INVALID with a
 * message naming every offending variable. Empty strings count as unset.
 */
export function parseConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const input: Record<string, string> = {}
  for (const name of CONFIG_VARIABLES) {
    const value = env[name]
    if (value !== undefined && value !== '') input[name] = value
  }
  const parsed = envSchema.safeParse(input)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)
    throw new FacewireError('ERR_CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, {
      details: { variables: parsed.error.issues.map((issue) => issue.path.join('.')) },
    })
  }
  const e = parsed.data
  if (e.NODE_ENV === 'production' && e.FACEWIRE_JWT_SECRET === undefined) {
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      'invalid configuration: FACEWIRE_JWT_SECRET: required when NODE_ENV=production',
      { details: { variables: ['FACEWIRE_JWT_SECRET'] } },
    )
  }
  const workers = e.FACEWIRE_WORKERS ?? availableParallelism()
  return Object.freeze({
    env: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    dataDir: e.FACEWIRE_DATA_DIR,
    jwtSecret: e.FACEWIRE_JWT_SECRET,
    logLevel: e.LOG_LEVEL,
    shutdownTimeoutMs: e.FACEWIRE_SHUTDOWN_TIMEOUT_MS,
    maxBodyBytes: e.FACEWIRE_MAX_BODY_BYTES,
    workers,
    pipelineQueue: e.FACEWIRE_PIPELINE_QUEUE ?? workers * 4,
    pipelineTimeoutMs: e.FACEWIRE_PIPELINE_TIMEOUT_MS,
    maxImagePixels: e.FACEWIRE_MAX_IMAGE_PIXELS,
    maxImageSide: e.FACEWIRE_MAX_IMAGE_SIDE,
    modelsDir: e.FACEWIRE_MODELS_DIR,
  })
}
