/**
 * facewire identities | faces | audit: the gallery's administration through the REST API, for an
 * operator at a terminal (tables) or a script (JSON). The arguments, the calls and the exit
 * status; what is printed is in output.ts.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { AuditEntryBody, FaceBody, IdentityBody } from '../../protocol/wire.js'
import { ApiError, createApiClient, type ApiClient } from '../api-client.js'
import { connectionOptions, failureMessage, tokenFrom } from './connection.js'
import { formatRecord, formatTable, outputMode, type Column, type OutputMode } from './output.js'

const COMMON = `  --server URL   default $FACEWIRE_URL or http://127.0.0.1:8080
  --token TOKEN  default $FACEWIRE_TOKEN (see facewire token)
  --json         print JSON (the default when stdout is not a terminal)
  --table        print a table (the default on a terminal)
Exit status: 0 done; 1 the server refused the request or could not be reached (its error code on
stderr); 2 usage errors; 3 no such identity or face in the token's organization.`

const IDENTITIES_USAGE = `usage: facewire identities list [--limit N]
       facewire identities show ID
       facewire identities rename ID NAME
       facewire identities delete ID [ID...]
       (each with [--server URL] [--token TOKEN] [--json | --table])

The token's organization's identities (a token with the enroll scope). list prints every identity
(or the first N, oldest first); show prints one with its faces; rename changes its name (decisions
use the new name at once); delete removes identities with all their faces, at once and for good.
JSON: list an array of identities, show the identity with "faces", rename the identity,
delete {"deleted": [ids]}.
${COMMON}`

const FACES_USAGE = `usage: facewire faces list IDENTITY_ID
       facewire faces delete FACE_ID [FACE_ID...]
       (each with [--server URL] [--token TOKEN] [--json | --table])

An identity's enrolled faces (a token with the enroll scope): list prints them in enrollment order
(JSON: an array of faces); delete removes faces (JSON: {"deleted": [ids]}).
${COMMON}`

const AUDIT_USAGE = `usage: facewire audit [--after SEQ] [--limit N | --all] [--server URL] [--token TOKEN] [--json | --table]

The organization's audit log, oldest first: who created, changed or deleted which identity or face
(ids only). A token with the admin scope.
  --after SEQ    entries after this sequence number (default 0: from the start)
  --limit N      at most N entries (1-1000, default 100)
  --all          every entry after SEQ, in pages of 1000
JSON: an array of entries {seq, at, actor, action, identityId, faceId}.
${COMMON}`

/** A mistake in the command line: usage and exit status 2. */
class UsageError extends Error {}

interface Context {
  client: ApiClient
  mode: OutputMode
  print: (text: string) => void
}

type Values = Record<string, string | boolean | undefined>
type Action = (positionals: readonly string[], values: Values, context: Context) => Promise<void>

const identityColumns: Column<IdentityBody>[] = [
  { header: 'id', value: (identity) => identity.id },
  { header: 'name', value: (identity) => identity.name },
  { header: 'external id', value: (identity) => identity.externalId },
  { header: 'faces', value: (identity) => identity.faceCount },
  { header: 'created', value: (identity) => identity.createdAt },
]

const faceColumns: Column<FaceBody>[] = [
  { header: 'id', value: (face) => face.id },
  { header: 'quality', value: (face) => face.quality },
  { header: 'stale', value: (face) => (face.stale ? 'yes' : 'no') },
  { header: 'model', value: (face) => face.modelId },
  { header: 'created', value: (face) => face.createdAt },
  // The photo's sha256, as `sha256sum` prints it: its first 12 digits tell photos apart.
  { header: 'photo sha256', value: (face) => face.sourceSha256?.slice(0, 12) ?? null },
]

const auditColumns: Column<AuditEntryBody>[] = [
  { header: 'seq', value: (entry) => entry.seq },
  { header: 'at', value: (entry) => entry.at },
  { header: 'actor', value: (entry) => entry.actor },
  { header: 'action', value: (entry) => entry.action },
  { header: 'identity', value: (entry) => entry.identityId },
  { header: 'face', value: (entry) => entry.faceId },
]

function identityRecord(identity: IdentityBody): string {
  return formatRecord([
    ['id', identity.id],
    ['name', identity.name],
    ['external id', identity.externalId],
    ['faces', identity.faceCount],
    ['metadata', JSON.stringify(identity.metadata)],
    ['created', identity.createdAt],
    ['updated', identity.updatedAt],
  ])
}

function integer(value: string | boolean | undefined, name: string, min: number, max: number): number {
  const n = Number(value)
  if (typeof value !== 'string' || !/^[0-9]+$/.test(value) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${String(min)} to ${String(max)}`)
  }
  return n
}

function exactly(positionals: readonly string[], names: readonly string[]): string[] {
  if (positionals.length !== names.length) {
    throw new UsageError(`expected ${names.join(' ')}`)
  }
  return [...positionals]
}

function atLeastOne(positionals: readonly string[], name: string): readonly string[] {
  if (positionals.length === 0) throw new UsageError(`expected ${name} [${name}...]`)
  return positionals
}

/** Deletes each id in turn (stopping at the first failure, after printing what was deleted). */
async function deleteAll(
  ids: readonly string[],
  remove: (id: string) => Promise<void>,
  what: string,
  context: Context,
): Promise<void> {
  const deleted: string[] = []
  try {
    for (const id of ids) {
      await remove(id)
      deleted.push(id)
    }
  } finally {
    if (context.mode === 'json') context.print(JSON.stringify({ deleted }))
    else for (const id of deleted) context.print(`deleted ${what} ${id}`)
  }
}

const IDENTITY_ACTIONS: Record<string, Action> = {
  async list(positionals, values, { client, mode, print }) {
    exactly(positionals, [])
    const limit = values.limit === undefined ? undefined : integer(values.limit, 'limit', 1, 1_000_000)
    const identities = await client.allIdentities(limit)
    print(mode === 'json' ? JSON.stringify(identities) : formatTable(identityColumns, identities))
  },
  async show(positionals, _values, { client, mode, print }) {
    const [id = ''] = exactly(positionals, ['ID'])
    const identity = await client.getIdentity(id)
    const { items: faces } = await client.listFaces(id)
    if (mode === 'json') {
      print(JSON.stringify({ ...identity, faces }))
      return
    }
    print(identityRecord(identity))
    print(faces.length === 0 ? '\nno faces' : `\n${formatTable(faceColumns, faces)}`)
  },
  async rename(positionals, _values, { client, mode, print }) {
    const [id = '', name = ''] = exactly(positionals, ['ID', 'NAME'])
    if (name.trim() === '') throw new UsageError('NAME must not be empty')
    const identity = await client.updateIdentity(id, { name })
    print(mode === 'json' ? JSON.stringify(identity) : identityRecord(identity))
  },
  async delete(positionals, _values, context) {
    const ids = atLeastOne(positionals, 'ID')
    await deleteAll(ids, (id) => context.client.deleteIdentity(id), 'identity', context)
  },
}

const FACE_ACTIONS: Record<string, Action> = {
  async list(positionals, _values, { client, mode, print }) {
    const [identityId = ''] = exactly(positionals, ['IDENTITY_ID'])
    const { items } = await client.listFaces(identityId)
    print(mode === 'json' ? JSON.stringify(items) : formatTable(faceColumns, items))
  },
  async delete(positionals, _values, context) {
    const ids = atLeastOne(positionals, 'FACE_ID')
    await deleteAll(ids, (id) => context.client.deleteFace(id), 'face', context)
  },
}

const AUDIT_PAGE = 1000

const AUDIT_ACTIONS: Record<string, Action> = {
  async ''(positionals, values, { client, mode, print }) {
    exactly(positionals, [])
    let after = values.after === undefined ? 0 : integer(values.after, 'after', 0, Number.MAX_SAFE_INTEGER)
    if (values.all === true && values.limit !== undefined)
      throw new UsageError('--limit and --all exclude each other')
    const entries: AuditEntryBody[] = []
    if (values.all === true) {
      for (;;) {
        const { items } = await client.audit({ limit: AUDIT_PAGE, after })
        entries.push(...items)
        const last = items.at(-1)
        if (last === undefined || items.length < AUDIT_PAGE) break
        after = last.seq
      }
    } else {
      const limit = values.limit === undefined ? 100 : integer(values.limit, 'limit', 1, AUDIT_PAGE)
      entries.push(...(await client.audit({ limit, after })).items)
    }
    print(mode === 'json' ? JSON.stringify(entries) : formatTable(auditColumns, entries))
  },
}

/** What a failure prints and its exit status. */
function failure(error: unknown, server: string): { message: string; code: number } {
  const notFound = error instanceof ApiError && error.code === 'ERR_NOT_FOUND'
  return { message: failureMessage(error, server), code: notFound ? 3 : 1 }
}

async function runAdmin(
  command: string,
  usage: string,
  actions: Record<string, Action>,
  extraOptions: NonNullable<ParseArgsConfig['options']>,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const usageError = (message: string): number => {
    process.stderr.write(`facewire ${command}: ${message}\n\n${usage}\n`)
    return 2
  }
  let values: Values
  let positionals: string[]
  try {
    const parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...connectionOptions(env),
        json: { type: 'boolean', default: false },
        table: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
        ...extraOptions,
      },
    })
    values = parsed.values
    positionals = parsed.positionals
  } catch (error) {
    return usageError((error as Error).message)
  }
  if (values.help === true) {
    process.stdout.write(usage + '\n')
    return 0
  }
  // `facewire audit` has no sub-command: its action is the empty name.
  const name = '' in actions ? '' : (positionals.shift() ?? '')
  const action = actions[name]
  if (action === undefined) {
    return usageError(name === '' ? 'a sub-command is required' : `unknown sub-command '${name}'`)
  }
  if (values.json === true && values.table === true)
    return usageError('--json and --table exclude each other')
  const token = tokenFrom({ token: typeof values.token === 'string' ? values.token : undefined }, env)
  if (token === undefined) return usageError('a token is required (--token or $FACEWIRE_TOKEN)')
  const server = String(values.server)
  const context: Context = {
    client: createApiClient({ baseUrl: server, token }),
    mode: outputMode(values, process.stdout.isTTY),
    print: (text) => process.stdout.write(text + '\n'),
  }
  try {
    await action(positionals, values, context)
    return 0
  } catch (error) {
    if (error instanceof UsageError) return usageError(error.message)
    const { message, code } = failure(error, server)
    process.stderr.write(`facewire ${command}: ${message}\n`)
    return code
  }
}

export function runIdentities(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runAdmin('identities', IDENTITIES_USAGE, IDENTITY_ACTIONS, { limit: { type: 'string' } }, args, env)
}

export function runFaces(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runAdmin('faces', FACES_USAGE, FACE_ACTIONS, {}, args, env)
}

export function runAudit(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runAdmin(
    'audit',
    AUDIT_USAGE,
    AUDIT_ACTIONS,
    { after: { type: 'string' }, limit: { type: 'string' }, all: { type: 'boolean' } },
    args,
    env,
  )
}
