/**
 * The webhook endpoints file (FACEWIRE_WEBHOOKS_FILE, docs/integrations.md "Webhooks"): JSON
 * validated once at startup. A bad file stops the server with ERR_CONFIG_INVALID naming the
 * variable and the path in the file; the messages never repeat a value, so no secret reaches them.
 */
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { ORG_PATTERN } from '../config.js'
import { FacewireError } from '../errors.js'

export const WEBHOOKS_FILE_VARIABLE = 'FACEWIRE_WEBHOOKS_FILE'

/** What an endpoint gets when its entry does not say (docs/integrations.md lists them). */
export const WEBHOOK_DEFAULTS = Object.freeze({
  events: Object.freeze(['match', 'unknown'] as const),
  timeoutMs: 5000,
  maxAttempts: 6,
  backoffBaseMs: 1000,
  backoffMaxMs: 60_000,
  queueSize: 1000,
})

export const ENDPOINT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

export interface WebhookEndpoint {
  /** Names the endpoint in logs and metrics (the URL may carry a secret of its own: never logged). */
  readonly id: string
  readonly org: string
  readonly url: string
  readonly secret: string
  readonly events: readonly ('match' | 'unknown')[]
  readonly timeoutMs: number
  readonly maxAttempts: number
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
  readonly queueSize: number
}

const integer = (min: number, max: number) =>
  z
    .number({ error: 'must be a number' })
    .int('must be an integer')
    .min(min, `must be between ${String(min)} and ${String(max)}`)
    .max(max, `must be between ${String(min)} and ${String(max)}`)

const url = z.string({ error: 'must be a string' }).superRefine((value, context) => {
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    context.addIssue({ code: 'custom', message: 'must be an http:// or https:// URL' })
    return
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    context.addIssue({ code: 'custom', message: 'must be an http:// or https:// URL' })
  } else if (parsed.username !== '' || parsed.password !== '') {
    context.addIssue({
      code: 'custom',
      message: 'must not carry credentials (receivers check the signature instead)',
    })
  }
})

const endpointSchema = z.strictObject({
  id: z
    .string({ error: 'must be a string' })
    .regex(ENDPOINT_ID_PATTERN, 'must be 1-64 characters of letters, digits, ".", "_" and "-"'),
  org: z
    .string({ error: 'must be a string' })
    .regex(ORG_PATTERN, 'must be an organization id (letters, digits, ".", "_" and "-")'),
  url,
  secret: z
    .string({ error: 'must be a string' })
    .min(32, 'must be at least 32 characters (openssl rand -hex 32)'),
  events: z
    .array(z.enum(['match', 'unknown'], { error: 'must be "match" or "unknown"' }))
    .min(1, 'must name at least one event type')
    .default([...WEBHOOK_DEFAULTS.events]),
  timeoutMs: integer(100, 60_000).default(WEBHOOK_DEFAULTS.timeoutMs),
  maxAttempts: integer(1, 20).default(WEBHOOK_DEFAULTS.maxAttempts),
  backoffBaseMs: integer(1, 3_600_000).default(WEBHOOK_DEFAULTS.backoffBaseMs),
  backoffMaxMs: integer(1, 86_400_000).default(WEBHOOK_DEFAULTS.backoffMaxMs),
  queueSize: integer(1, 100_000).default(WEBHOOK_DEFAULTS.queueSize),
})

const fileSchema = z
  .strictObject({
    endpoints: z.array(endpointSchema, { error: 'must be a list of endpoints' }).max(1000, 'at most 1000'),
  })
  .superRefine((file, context) => {
    const seen = new Set<string>()
    file.endpoints.forEach((endpoint, i) => {
      if (seen.has(endpoint.id)) {
        context.addIssue({
          code: 'custom',
          message: 'is used by another endpoint',
          path: ['endpoints', i, 'id'],
        })
      }
      seen.add(endpoint.id)
    })
  })

function invalid(file: string, problem: string): FacewireError {
  return new FacewireError(
    'ERR_CONFIG_INVALID',
    `invalid configuration: ${WEBHOOKS_FILE_VARIABLE}: ${problem} (in ${file})`,
    { details: { variables: [WEBHOOKS_FILE_VARIABLE] } },
  )
}

/** Validates the parsed JSON of the endpoints file `file` (named in errors). */
export function parseWebhooksFile(json: unknown, file: string): readonly WebhookEndpoint[] {
  const parsed = fileSchema.safeParse(json)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) =>
      issue.path.length === 0 ? issue.message : `${issue.path.join('.')}: ${issue.message}`,
    )
    throw invalid(file, problems.join('; '))
  }
  return Object.freeze(parsed.data.endpoints.map((endpoint) => Object.freeze({ ...endpoint })))
}

/** Reads and validates the endpoints file; throws ERR_CONFIG_INVALID naming what is wrong. */
export function loadWebhooksFile(file: string): readonly WebhookEndpoint[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code ?? 'unreadable'
    throw invalid(file, `cannot read the file (${reason})`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    // Not V8's message: it quotes the text around the error, which may be a secret.
    throw invalid(file, 'is not valid JSON')
  }
  return parseWebhooksFile(json, file)
}
