import { isIP } from 'node:net'
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

const unit = z.coerce
  .number({ error: 'must be a number' })
  .min(0, 'must be between 0 and 1')
  .max(1, 'must be between 0 and 1')

/** An AES-256 key as the environment and key files carry it: 32 bytes in base64. */
const embeddingKey = z
  .string()
  .refine((value) => Buffer.from(value, 'base64').length === 32 && /^[A-Za-z0-9+/]+=*$/.test(value), {
    message: 'must be 32 bytes in base64 (openssl rand -base64 32)',
  })

const JWT_ALGORITHMS = ['HS256', 'RS256', 'ES256'] as const
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number]

/** Organization ids: what a token's `org` claim and FACEWIRE_ORG_POLICIES keys must look like. */
export const ORG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/**
 * Share of strangers an organization accepts being matched to someone enrolled (FPIR): each org's
 * threshold follows from it for its gallery's size (server/gallery/calibration.ts, docs/models.md
 * "Open-set policy").
 */
export const DEFAULT_TARGET_FPIR = 0.002

const LIVENESS_MODES = ['off', 'report', 'require'] as const

/** A reverse proxy whose X-Forwarded-For the transport believes: one address or a CIDR range. */
export interface TrustedProxy {
  readonly address: string
  readonly family: 4 | 6
  /** CIDR prefix length; undefined = this one address. */
  readonly prefix: number | undefined
}

/** One FACEWIRE_TRUSTED_PROXIES entry (`10.0.0.5`, `172.16.0.0/12`, `fd00::/8`), or undefined. */
export function parseTrustedProxy(entry: string): TrustedProxy | undefined {
  const [address = '', rawPrefix, ...rest] = entry.trim().split('/')
  const family = isIP(address)
  if (rest.length > 0 || (family !== 4 && family !== 6)) return undefined
  if (rawPrefix === undefined) return Object.freeze({ address, family, prefix: undefined })
  const prefix = /^\d{1,3}$/.test(rawPrefix) ? Number(rawPrefix) : Number.NaN
  if (!(prefix <= (family === 4 ? 32 : 128))) return undefined
  return Object.freeze({ address, family, prefix })
}

/**
 * One FACEWIRE_CORS_ORIGINS entry as a browser sends it in `Origin` (scheme, host and a port other
 * than the scheme's default; no path, no trailing slash), or undefined.
 */
export function parseCorsOrigin(entry: string): string | undefined {
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    return undefined
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
  return url.origin === entry ? entry : undefined
}

/**
 * Liveness score below which a face is not taken as live (docs/models.md, "Liveness"): 1.9% of
 * LFW photos fall below it (funneled photos whose black borders look like a print's edge), none
 * of the clean colour photos.
 */
export const DEFAULT_LIVENESS_THRESHOLD = 0.01

/** Enrollment refuses faces below this quality score (docs/models.md, "Quality"). */
export const DEFAULT_MIN_ENROLL_QUALITY = 0.3

/** A Redis connection URL: `redis://` or `rediss://` (TLS), with a host. */
const redisUrl = z.string().refine(
  (value) => {
    try {
      const url = new URL(value)
      return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== ''
    } catch {
      return false
    }
  },
  // Never echo the value: it may hold the password.
  { message: 'must be a redis:// or rediss:// URL with a host (redis://:password@host:6379/0)' },
)
const MQTT_PROTOCOLS = ['mqtt:', 'mqtts:', 'ws:', 'wss:']

/** Events held per organization while the MQTT broker is away (docs/integrations.md). */
export const DEFAULT_MQTT_QUEUE = 1000

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
  FACEWIRE_JWT_ALGORITHM: z
    .enum(JWT_ALGORITHMS, { error: `must be one of ${JWT_ALGORITHMS.join(', ')}` })
    .default('HS256'),
  FACEWIRE_JWT_PUBLIC_KEY_FILE: z.string().min(1, 'must not be empty').optional(),
  FACEWIRE_EMBEDDING_KEY: embeddingKey.optional(),
  FACEWIRE_EMBEDDING_KEY_PREVIOUS: embeddingKey.optional(),
  FACEWIRE_NEW_EMBEDDING_KEY: embeddingKey.optional(),
  FACEWIRE_HNSW_M: count(2, 100).default(48),
  FACEWIRE_HNSW_EF_CONSTRUCTION: count(2, 2000).default(200),
  FACEWIRE_HNSW_EF: count(1, 5000).default(512),
  FACEWIRE_SNAPSHOT_INTERVAL_MS: positiveMs.default(60_000),
  FACEWIRE_DATABASE_URL: z
    .string()
    .regex(/^postgres(?:ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  FACEWIRE_SYNC_POLL_MS: positiveMs.default(1000),
  FACEWIRE_TARGET_FPIR: z.coerce
    .number({ error: 'must be a number' })
    .gt(0, 'must be above 0')
    .max(0.5, 'must be at most 0.5')
    .default(DEFAULT_TARGET_FPIR),
  FACEWIRE_MATCH_THRESHOLD: unit.optional(),
  FACEWIRE_LIVENESS: z
    .enum(LIVENESS_MODES, { error: `must be one of ${LIVENESS_MODES.join(', ')}` })
    .default('report'),
  FACEWIRE_LIVENESS_THRESHOLD: unit.default(DEFAULT_LIVENESS_THRESHOLD),
  FACEWIRE_MATCH_MARGIN: unit.default(0.02),
  FACEWIRE_TOP_K: count(1, 50).default(5),
  FACEWIRE_ORG_POLICIES: z
    .string()
    .transform((value, ctx) => {
      try {
        return JSON.parse(value) as unknown
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON' })
        return z.NEVER
      }
    })
    .pipe(
      z.record(
        z.string().regex(ORG_PATTERN, 'organization ids must match ' + String(ORG_PATTERN)),
        z.strictObject({
          targetFpir: z.number().gt(0).max(0.5).optional(),
          threshold: unit.optional(),
          margin: unit.optional(),
          liveness: z.enum(LIVENESS_MODES).optional(),
          livenessThreshold: unit.optional(),
        }),
        { error: 'must be a JSON object {"org": {"targetFpir": 0.001, "margin": 0.02}}' },
      ),
    )
    .optional(),
  FACEWIRE_MIN_ENROLL_QUALITY: unit.default(DEFAULT_MIN_ENROLL_QUALITY),
  FACEWIRE_MAX_FACES: count(1, 50).default(10),
  FACEWIRE_API_RATE_LIMIT: count(1, 1_000_000).default(50),
  FACEWIRE_STREAM_MAX_FPS: count(1, 1000).default(15),
  FACEWIRE_ORG_MAX_FPS: count(1, 100_000).default(120),
  FACEWIRE_MAX_FRAME_BYTES: count(1024, 64 * 1024 * 1024).default(2 * 1024 * 1024),
  FACEWIRE_STREAM_MAX_FACES: count(1, 50).default(5),
  FACEWIRE_WS_IDLE_TIMEOUT_S: count(8, 3600).default(60),
  FACEWIRE_WS_MAX_BUFFERED_BYTES: count(1024, 64 * 1024 * 1024).default(256 * 1024),
  FACEWIRE_TRACK_FRAMES: count(1, 50).default(5),
  FACEWIRE_TRACK_SWITCH_FRAMES: count(1, 50).default(2),
  FACEWIRE_EVENT_COOLDOWN_MS: z.coerce
    .number({ error: 'must be a number of milliseconds' })
    .int('must be an integer number of milliseconds')
    .min(0, 'must be at least 0')
    .max(86_400_000, 'must be at most 86400000')
    .default(30_000),
  FACEWIRE_EVENTS_UNKNOWN: z
    .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
    .transform((value) => value === 'true' || value === '1')
    .default(false),
  FACEWIRE_WEBHOOKS_FILE: z.string().min(1, 'must not be empty').optional(),
  // The URL may carry the broker's password: no message here repeats it.
  FACEWIRE_MQTT_URL: z
    .string()
    .refine(
      (value) => {
        try {
          return MQTT_PROTOCOLS.includes(new URL(value).protocol)
        } catch {
          return false
        }
      },
      { message: `must be a broker URL (${MQTT_PROTOCOLS.map((p) => `${p}//`).join(', ')})` },
    )
    .optional(),
  FACEWIRE_MQTT_ORGS: z
    .string()
    .transform((value) => [...new Set(value.split(',').map((org) => org.trim()))].filter((org) => org !== ''))
    .pipe(
      z
        .array(z.string().regex(ORG_PATTERN, 'organization ids must match ' + String(ORG_PATTERN)))
        .min(1, 'must name at least one organization')
        .max(100, 'at most 100 organizations (one broker connection each)'),
    )
    .optional(),
  FACEWIRE_MQTT_PREFIX: z
    .string()
    .regex(
      // One or more topic levels: no wildcard, no empty level, no leading or trailing `/` (an
      // environment variable cannot hold the other forbidden character, NUL).
      /^[^/+#]+(\/[^/+#]+)*$/,
      'must be topic levels separated by "/", without "+", "#" or empty levels',
    )
    .refine((value) => !value.startsWith('$'), 'must not start with "$" (broker topics)')
    .default('facewire'),
  FACEWIRE_MQTT_QUEUE: count(1, 1_000_000).default(DEFAULT_MQTT_QUEUE),
  FACEWIRE_TRUSTED_PROXIES: z
    .string()
    .transform((value, ctx) => {
      const entries = value.split(',').filter((entry) => entry.trim() !== '')
      const parsed = entries.map(parseTrustedProxy)
      const bad = entries.filter((_, i) => parsed[i] === undefined)
      if (bad.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `must be IP addresses or CIDR ranges separated by commas (not ${bad.join(', ')})`,
        })
        return z.NEVER
      }
      return parsed.filter((entry) => entry !== undefined)
    })
    .optional(),
  FACEWIRE_CORS_ORIGINS: z
    .string()
    .transform((value, ctx) => {
      const entries = value
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== '')
      const bad = entries.filter((entry) => parseCorsOrigin(entry) === undefined)
      if (bad.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `must be exact origins (https://app.example.com, http://localhost:3000) separated by commas, not ${bad.join(', ')}`,
        })
        return z.NEVER
      }
      return entries
    })
    .optional(),
  FACEWIRE_REDIS_URL: redisUrl.optional(),
  FACEWIRE_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:._{}-]{1,64}$/, 'must be 1 to 64 characters of A-Z a-z 0-9 : . _ - { }')
    .default('facewire:'),
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
  /**
   * Reverse proxies whose X-Forwarded-For / X-Real-IP give the client address (logs, rate-limit
   * keys); from any other peer those headers are ignored.
   */
  readonly trustedProxies: readonly TrustedProxy[]
  /** Web origins whose pages may call the REST API (CORS); empty: none. */
  readonly corsOrigins: readonly string[]
  /** Pipeline worker threads; default one per core. */
  readonly workers: number
  /** Images allowed to wait for a busy pipeline beyond the ones being processed. */
  readonly pipelineQueue: number
  readonly pipelineTimeoutMs: number
  readonly maxImagePixels: number
  readonly maxImageSide: number
  /** Folder holding manifest.json and the ONNX files; undefined = the models shipped with facewire. */
  readonly modelsDir: string | undefined
  readonly jwtAlgorithm: JwtAlgorithm
  /** PEM file with the public key verifying RS256/ES256 tokens (required for those). */
  readonly jwtPublicKeyFile: string | undefined
  /** 32-byte AES-256-GCM key for embeddings at rest; undefined = stored in clear (warned). */
  readonly embeddingKey: Buffer | undefined
  /** The key before the current one: read, never written, while `facewire rotate-key` runs. */
  readonly embeddingKeyPrevious: Buffer | undefined
  /** The key `facewire rotate-key` re-encrypts under (the server does not use it). */
  readonly newEmbeddingKey: Buffer | undefined
  readonly hnsw: { readonly M: number; readonly efConstruction: number; readonly ef: number }
  /** How often the index snapshot is rewritten when the gallery changed. */
  readonly snapshotIntervalMs: number
  /** Cluster mode: the shared PostgreSQL gallery (undefined: SQLite in dataDir). Holds a password: never log it. */
  readonly databaseUrl: string | undefined
  /** Cluster mode: how often an instance polls the change log besides LISTEN/NOTIFY. */
  readonly syncPollMs: number
  /**
   * Open-set decision policy: the target FPIR each org's threshold is derived from, or a fixed
   * threshold when configured; `orgPolicies` overrides them per organization.
   */
  readonly match: {
    readonly targetFpir: number
    readonly threshold: number | undefined
    readonly margin: number
    readonly topK: number
    /** What is done with the liveness score (`report`: shown; `require`: a match needs it). */
    readonly liveness: { readonly mode: (typeof LIVENESS_MODES)[number]; readonly threshold: number }
  }
  readonly orgPolicies: Readonly<
    Record<
      string,
      {
        targetFpir?: number | undefined
        threshold?: number | undefined
        margin?: number | undefined
        liveness?: (typeof LIVENESS_MODES)[number] | undefined
        livenessThreshold?: number | undefined
      }
    >
  >
  readonly minEnrollQuality: number
  /**
   * Faces analysed per REST image: recognize answers at most this many, and enrollment looks at
   * as many for a face comparable to the one it would enroll. Streams have their own bound
   * (`streams.maxFaces`): a frame's answer is on a latency budget.
   */
  readonly maxFaces: number
  /** REST requests per second per organization. */
  readonly apiRateLimit: number
  readonly streams: {
    /** Frames per second per /ws/detect connection, and per organization across its connections. */
    readonly maxFps: number
    readonly orgMaxFps: number
    /** Largest binary message (header + image). */
    readonly maxFrameBytes: number
    /** Faces analysed per stream frame. */
    readonly maxFaces: number
    readonly idleTimeoutS: number
    /** Results for a connection whose send buffer holds more than this are dropped and counted. */
    readonly maxBufferedBytes: number
    /** Embeddings fused per track, and frames a different decision must hold to replace it. */
    readonly trackFrames: number
    readonly trackSwitchFrames: number
    /** A track's match event is repeated for the same identity only after this long. */
    readonly eventCooldownMs: number
    readonly unknownEvents: boolean
  }
  /**
   * Cluster mode's Redis (docs/scale-out.md): /ws/events fan-out across instances and shared rate
   * limits. Undefined = one instance on its own. The URL may hold a password: never log it.
   */
  readonly redis: { readonly url: string; readonly prefix: string } | undefined
  /** Where events go besides /ws/events (docs/integrations.md). */
  readonly outbound: {
    /** The webhook endpoints file, read and validated when the app is built. */
    readonly webhooksFile: string | undefined
    readonly mqtt:
      | {
          readonly url: string
          /** Topic prefix (`facewire`): `<prefix>/<org>/<camera>/match`. */
          readonly prefix: string
          /** The organizations whose events go to the broker, one connection each. */
          readonly orgs: readonly string[]
          /** Events held per organization while the broker is away. */
          readonly queueSize: number
        }
      | undefined
  }
}

export const CONFIG_VARIABLES = Object.keys(envSchema.shape) as (keyof typeof envSchema.shape)[]

/** What the operator tools working on a data folder (backup, restore, rotate-key) read. */
export interface DataToolConfig {
  readonly dataDir: string
  readonly logLevel: LogLevel
  readonly embeddingKey: Buffer | undefined
  readonly embeddingKeyPrevious: Buffer | undefined
  readonly newEmbeddingKey: Buffer | undefined
}

const dataToolSchema = envSchema.pick({
  FACEWIRE_DATA_DIR: true,
  LOG_LEVEL: true,
  FACEWIRE_EMBEDDING_KEY: true,
  FACEWIRE_EMBEDDING_KEY_PREVIOUS: true,
  FACEWIRE_NEW_EMBEDDING_KEY: true,
})

/**
 * The variables of DataToolConfig only, validated as parseConfig does (so a tool runs from a shell
 * that lacks the server's other settings, FACEWIRE_JWT_SECRET included). LOG_LEVEL defaults to
 * `warn`: the tools print their own report. Throws ERR_CONFIG_INVALID naming every bad variable.
 */
export function parseDataToolConfig(env: Readonly<Record<string, string | undefined>>): DataToolConfig {
  const e = parseSchema(dataToolSchema, {
    LOG_LEVEL: 'warn',
    ...definedOnly(env, Object.keys(dataToolSchema.shape)),
  })
  checkKeyPair(e.FACEWIRE_EMBEDDING_KEY, e.FACEWIRE_EMBEDDING_KEY_PREVIOUS)
  if (env['FACEWIRE_DATABASE_URL'] !== undefined && env['FACEWIRE_DATABASE_URL'] !== '') {
    // The tools work on the SQLite file in the data folder; a cluster's gallery is elsewhere.
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      'invalid configuration: FACEWIRE_DATABASE_URL: backup, restore and rotate-key work on the SQLite store; in cluster mode use pg_dump and pg_restore (docs/scale-out.md)',
      { details: { variables: ['FACEWIRE_DATABASE_URL'] } },
    )
  }
  return Object.freeze({ dataDir: e.FACEWIRE_DATA_DIR, logLevel: e.LOG_LEVEL, ...toKeys(e) })
}

/**
 * A key read from a file (`facewire rotate-key --new-key-file`): 32 bytes in base64 as
 * FACEWIRE_EMBEDDING_KEY, surrounding whitespace ignored. Throws ERR_CONFIG_INVALID naming `source`.
 */
export function parseEmbeddingKeyText(text: string, source: string): Buffer {
  const value = text.trim()
  const parsed = embeddingKey.safeParse(value)
  if (!parsed.success) {
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `invalid configuration: ${source}: ${parsed.error.issues[0]?.message ?? 'not a key'}`,
      { details: { variables: [source] } },
    )
  }
  return Buffer.from(value, 'base64')
}

function toKeys(e: {
  FACEWIRE_EMBEDDING_KEY?: string | undefined
  FACEWIRE_EMBEDDING_KEY_PREVIOUS?: string | undefined
  FACEWIRE_NEW_EMBEDDING_KEY?: string | undefined
}): Pick<DataToolConfig, 'embeddingKey' | 'embeddingKeyPrevious' | 'newEmbeddingKey'> {
  const decode = (value: string | undefined) =>
    value === undefined ? undefined : Buffer.from(value, 'base64')
  return {
    embeddingKey: decode(e.FACEWIRE_EMBEDDING_KEY),
    embeddingKeyPrevious: decode(e.FACEWIRE_EMBEDDING_KEY_PREVIOUS),
    newEmbeddingKey: decode(e.FACEWIRE_NEW_EMBEDDING_KEY),
  }
}

/** The previous key only makes sense beside a current one, and a different one. */
function checkKeyPair(current: string | undefined, previous: string | undefined): void {
  if (previous === undefined) return
  const problem =
    current === undefined
      ? 'needs FACEWIRE_EMBEDDING_KEY (the key new embeddings are written under)'
      : Buffer.from(current, 'base64').equals(Buffer.from(previous, 'base64'))
        ? 'is FACEWIRE_EMBEDDING_KEY itself: set the old key here and the new one in FACEWIRE_EMBEDDING_KEY'
        : undefined
  if (problem === undefined) return
  throw new FacewireError(
    'ERR_CONFIG_INVALID',
    `invalid configuration: FACEWIRE_EMBEDDING_KEY_PREVIOUS: ${problem}`,
    {
      details: { variables: ['FACEWIRE_EMBEDDING_KEY_PREVIOUS'] },
    },
  )
}

/** The named variables of `env` that are set and not empty (empty counts as unset). */
function definedOnly(
  env: Readonly<Record<string, string | undefined>>,
  names: readonly string[],
): Record<string, string> {
  const input: Record<string, string> = {}
  for (const name of names) {
    const value = env[name]
    if (value !== undefined && value !== '') input[name] = value
  }
  return input
}

/** Parses with `schema`, or throws ERR_CONFIG_INVALID naming every offending variable. */
function parseSchema<T extends z.ZodType>(schema: T, input: Record<string, string>): z.infer<T> {
  const parsed = schema.safeParse(input)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)
    throw new FacewireError('ERR_CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, {
      details: { variables: parsed.error.issues.map((issue) => issue.path.join('.')) },
    })
  }
  return parsed.data
}

/**
 * Validates the environment once and returns a frozen config. Throws ERR_CONFIG_INVALID with a
 * message naming every offending variable. Empty strings count as unset.
 */
export function parseConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const e = parseSchema(envSchema, definedOnly(env, CONFIG_VARIABLES))
  if (
    e.NODE_ENV === 'production' &&
    e.FACEWIRE_JWT_ALGORITHM === 'HS256' &&
    e.FACEWIRE_JWT_SECRET === undefined
  ) {
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      'invalid configuration: FACEWIRE_JWT_SECRET: required when NODE_ENV=production (HS256)',
      { details: { variables: ['FACEWIRE_JWT_SECRET'] } },
    )
  }
  if (e.FACEWIRE_JWT_ALGORITHM !== 'HS256' && e.FACEWIRE_JWT_PUBLIC_KEY_FILE === undefined) {
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `invalid configuration: FACEWIRE_JWT_PUBLIC_KEY_FILE: required when FACEWIRE_JWT_ALGORITHM=${e.FACEWIRE_JWT_ALGORITHM}`,
      { details: { variables: ['FACEWIRE_JWT_PUBLIC_KEY_FILE'] } },
    )
  }
  checkKeyPair(e.FACEWIRE_EMBEDDING_KEY, e.FACEWIRE_EMBEDDING_KEY_PREVIOUS)
  if ((e.FACEWIRE_MQTT_URL === undefined) !== (e.FACEWIRE_MQTT_ORGS === undefined)) {
    const missing = e.FACEWIRE_MQTT_URL === undefined ? 'FACEWIRE_MQTT_URL' : 'FACEWIRE_MQTT_ORGS'
    const other = missing === 'FACEWIRE_MQTT_URL' ? 'FACEWIRE_MQTT_ORGS' : 'FACEWIRE_MQTT_URL'
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `invalid configuration: ${missing}: required with ${other} (the broker, and the organizations whose events go to it)`,
      { details: { variables: [missing] } },
    )
  }
  if (e.FACEWIRE_HNSW_EF_CONSTRUCTION < e.FACEWIRE_HNSW_M) {
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      'invalid configuration: FACEWIRE_HNSW_EF_CONSTRUCTION: must be at least FACEWIRE_HNSW_M',
      { details: { variables: ['FACEWIRE_HNSW_EF_CONSTRUCTION'] } },
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
    trustedProxies: Object.freeze(e.FACEWIRE_TRUSTED_PROXIES ?? []),
    corsOrigins: Object.freeze(e.FACEWIRE_CORS_ORIGINS ?? []),
    workers,
    pipelineQueue: e.FACEWIRE_PIPELINE_QUEUE ?? workers * 4,
    pipelineTimeoutMs: e.FACEWIRE_PIPELINE_TIMEOUT_MS,
    maxImagePixels: e.FACEWIRE_MAX_IMAGE_PIXELS,
    maxImageSide: e.FACEWIRE_MAX_IMAGE_SIDE,
    modelsDir: e.FACEWIRE_MODELS_DIR,
    jwtAlgorithm: e.FACEWIRE_JWT_ALGORITHM,
    jwtPublicKeyFile: e.FACEWIRE_JWT_PUBLIC_KEY_FILE,
    ...toKeys(e),
    hnsw: Object.freeze({
      M: e.FACEWIRE_HNSW_M,
      efConstruction: e.FACEWIRE_HNSW_EF_CONSTRUCTION,
      ef: e.FACEWIRE_HNSW_EF,
    }),
    snapshotIntervalMs: e.FACEWIRE_SNAPSHOT_INTERVAL_MS,
    databaseUrl: e.FACEWIRE_DATABASE_URL,
    syncPollMs: e.FACEWIRE_SYNC_POLL_MS,
    match: Object.freeze({
      targetFpir: e.FACEWIRE_TARGET_FPIR,
      threshold: e.FACEWIRE_MATCH_THRESHOLD,
      margin: e.FACEWIRE_MATCH_MARGIN,
      topK: e.FACEWIRE_TOP_K,
      liveness: Object.freeze({ mode: e.FACEWIRE_LIVENESS, threshold: e.FACEWIRE_LIVENESS_THRESHOLD }),
    }),
    orgPolicies: Object.freeze(e.FACEWIRE_ORG_POLICIES ?? {}),
    minEnrollQuality: e.FACEWIRE_MIN_ENROLL_QUALITY,
    maxFaces: e.FACEWIRE_MAX_FACES,
    apiRateLimit: e.FACEWIRE_API_RATE_LIMIT,
    streams: Object.freeze({
      maxFps: e.FACEWIRE_STREAM_MAX_FPS,
      orgMaxFps: e.FACEWIRE_ORG_MAX_FPS,
      maxFrameBytes: e.FACEWIRE_MAX_FRAME_BYTES,
      maxFaces: e.FACEWIRE_STREAM_MAX_FACES,
      idleTimeoutS: e.FACEWIRE_WS_IDLE_TIMEOUT_S,
      maxBufferedBytes: e.FACEWIRE_WS_MAX_BUFFERED_BYTES,
      trackFrames: e.FACEWIRE_TRACK_FRAMES,
      trackSwitchFrames: e.FACEWIRE_TRACK_SWITCH_FRAMES,
      eventCooldownMs: e.FACEWIRE_EVENT_COOLDOWN_MS,
      unknownEvents: e.FACEWIRE_EVENTS_UNKNOWN,
    }),
    redis:
      e.FACEWIRE_REDIS_URL === undefined
        ? undefined
        : Object.freeze({ url: e.FACEWIRE_REDIS_URL, prefix: e.FACEWIRE_REDIS_PREFIX }),
    outbound: Object.freeze({
      webhooksFile: e.FACEWIRE_WEBHOOKS_FILE,
      mqtt:
        e.FACEWIRE_MQTT_URL === undefined || e.FACEWIRE_MQTT_ORGS === undefined
          ? undefined
          : Object.freeze({
              url: e.FACEWIRE_MQTT_URL,
              prefix: e.FACEWIRE_MQTT_PREFIX,
              orgs: Object.freeze(e.FACEWIRE_MQTT_ORGS),
              queueSize: e.FACEWIRE_MQTT_QUEUE,
            }),
    }),
  })
}
