/** What every CLI command that talks to a server shares: where it is, and the token to use. */

/** `parseArgs` options `--server URL` (default $FACEWIRE_URL or the local default) and `--token`. */
export function connectionOptions(env: NodeJS.ProcessEnv) {
  return {
    server: { type: 'string', default: env['FACEWIRE_URL'] ?? 'http://127.0.0.1:8080' },
    token: { type: 'string' },
  } as const
}

/** `--token`, else $FACEWIRE_TOKEN; undefined when neither gives a non-empty token. */
export function tokenFrom(
  values: { token?: string | undefined },
  env: NodeJS.ProcessEnv,
): string | undefined {
  const token = values.token ?? env['FACEWIRE_TOKEN']
  return token === undefined || token === '' ? undefined : token
}

/**
 * What a failed call prints: the server's error, or why it could not be reached (fetch says only
 * "fetch failed"; its cause says why: refused, unknown host).
 */
export function failureMessage(error: unknown, server: string): string {
  if (error instanceof TypeError && error.cause instanceof Error) {
    return `cannot reach ${server}: ${error.cause.message}`
  }
  return error instanceof Error ? error.message : String(error)
}
