import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { mintToken, SCOPES, type Scope } from '../auth.js'
import { readDevSecret } from '../dev-secret.js'

const USAGE = `usage: facewire token --org ORG [--scope "detect enroll"] [--ttl 1h] [--sub NAME]
                      [--algorithm HS256|RS256|ES256 --private-key FILE]

Mints a bearer token for the server configured in this environment and prints it.
  --org ORG          organization id (letters, digits, '.', '_', '-')
  --scope SCOPES     space-separated: ${SCOPES.join(', ')} (default "detect")
  --ttl DURATION     lifetime: 30s, 15m, 1h, 7d (default 1h)
  --sub NAME         subject recorded in the audit log (default "cli")
HS256 signs with FACEWIRE_JWT_SECRET, or outside production with the development secret the
server keeps in FACEWIRE_DATA_DIR (default ./data). RS256/ES256 sign with --private-key.`

/** Parses 30s / 15m / 1h / 7d (or a bare number of seconds) into seconds. */
export function parseTtl(value: string): number {
  const match = /^(\d+)\s*([smhd]?)$/.exec(value.trim())
  if (match === null) throw new Error(`--ttl: expected e.g. 30s, 15m, 1h or 7d, got '${value}'`)
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd']
  const seconds = Number(match[1]) * unit
  if (seconds <= 0 || seconds > 366 * 86400) throw new Error('--ttl: must be between 1 second and 366 days')
  return seconds
}

export function parseScopes(value: string): Scope[] {
  const scopes = value.split(/[\s,]+/).filter((part) => part !== '')
  for (const scope of scopes) {
    if (!(SCOPES as readonly string[]).includes(scope)) {
      throw new Error(`--scope: unknown scope '${scope}' (known: ${SCOPES.join(', ')})`)
    }
  }
  if (scopes.length === 0) throw new Error('--scope: name at least one scope')
  return scopes as Scope[]
}

export function runToken(args: string[], env: NodeJS.ProcessEnv = process.env): number {
  let values
  try {
    values = parseArgs({
      args,
      options: {
        org: { type: 'string' },
        scope: { type: 'string', default: 'detect' },
        ttl: { type: 'string', default: '1h' },
        sub: { type: 'string', default: 'cli' },
        algorithm: { type: 'string', default: env.FACEWIRE_JWT_ALGORITHM ?? 'HS256' },
        'private-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values
  } catch (error) {
    process.stderr.write(`facewire token: ${(error as Error).message}\n\n${USAGE}\n`)
    return 2
  }
  if (values.help === true) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  try {
    if (values.org === undefined) throw new Error('--org is required')
    const algorithm = values.algorithm
    if (algorithm !== 'HS256' && algorithm !== 'RS256' && algorithm !== 'ES256') {
      throw new Error('--algorithm: must be HS256, RS256 or ES256')
    }
    let key: string | undefined
    if (algorithm === 'HS256') {
      key =
        env.FACEWIRE_JWT_SECRET !== undefined && env.FACEWIRE_JWT_SECRET !== ''
          ? env.FACEWIRE_JWT_SECRET
          : env.NODE_ENV === 'production'
            ? undefined
            : readDevSecret(env.FACEWIRE_DATA_DIR ?? './data')
      if (key === undefined) {
        throw new Error(
          'no secret: set FACEWIRE_JWT_SECRET (or start the development server once so it creates FACEWIRE_DATA_DIR/dev-jwt-secret)',
        )
      }
    } else {
      if (values['private-key'] === undefined) throw new Error(`--private-key is required for ${algorithm}`)
      key = readFileSync(values['private-key'], 'utf8')
    }
    const token = mintToken({
      org: values.org,
      scopes: parseScopes(values.scope),
      sub: values.sub,
      ttlSeconds: parseTtl(values.ttl),
      algorithm,
      key,
    })
    process.stdout.write(token + '\n')
    return 0
  } catch (error) {
    process.stderr.write(`facewire token: ${(error as Error).message}\n`)
    return 2
  }
}
