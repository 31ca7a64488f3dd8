/**
 * facewire enroll: a folder per person through the REST API, safe to run again. Photos already
 * enrolled for their identity (the same bytes: the server keeps each face's sha256) are skipped,
 * an identity is only left behind when at least one of its photos was accepted, and the exit
 * status says whether every photo made it.
 */
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ApiError, createApiClient, imageTypeOf, type ApiClient } from '../api-client.js'
import { createProgress, type Progress } from './progress.js'
import { connectionOptions, failureMessage, tokenFrom } from './connection.js'

const USAGE = `usage: facewire enroll DIR [--server URL] [--token TOKEN] [--name-map FILE] [--concurrency N] [--json]

Enrolls a folder per identity through the REST API: DIR/<folder>/*.jpg|jpeg|png|webp. The folder
name is the identity's external id (and its name, unless --name-map gives one); an identity with
that external id is reused, so running the command again adds only new photos: a photo whose
bytes are already enrolled for its identity is skipped (the server keeps each face's sha256,
never the image). An identity none of whose photos is accepted is not kept.
  --server URL       default $FACEWIRE_URL or http://127.0.0.1:8080
  --token TOKEN      a token with the enroll scope (default $FACEWIRE_TOKEN; see facewire token)
  --name-map FILE    display names: a JSON object {"<folder>": "<name>", ...}; folders it does not
                     name keep the folder name; a reused identity is renamed to its mapped name
  --concurrency N    photos in flight (default 2)
  --json             print the summary as one JSON object
Exit status: 0 every photo enrolled or skipped; 1 a photo was rejected (listed with its error
code), or the server refused the token or could not be reached; 2 usage errors or an unreadable
--name-map.`

export interface EnrollSummary {
  identities: { created: number; reused: number; renamed: number }
  /** Folders none of whose photos was accepted: no identity is left for them. */
  notCreated: string[]
  photos: number
  enrolled: number
  /** Photos whose bytes were already enrolled for their identity: not sent again. */
  skipped: number
  rejected: { file: string; code: string; message: string }[]
  rejectedByCode: Record<string, number>
}

interface Job {
  name: string
  file: string
}

/** Answers worth a retry after a pause (the request was not about the photo). */
const RETRIED = new Set(['ERR_RATE_LIMITED', 'ERR_PIPELINE_BUSY'])
const MAX_RETRIES = 3

async function listJobs(dir: string): Promise<Job[]> {
  const jobs: Job[] = []
  const people = (await readdir(dir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort()
  for (const name of people) {
    const files = (await readdir(join(dir, name), { withFileTypes: true }))
      .filter((entry) => entry.isFile() && imageTypeOf(entry.name) !== undefined)
      .map((entry) => entry.name)
      .sort()
    for (const file of files) jobs.push({ name, file: join(name, file) })
  }
  return jobs
}

/** A --name-map file: a JSON object of folder -> display name (1-200 characters each). */
export function parseNameMap(text: string): Map<string, string> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new Error('the name map is not JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('the name map must be a JSON object {"<folder>": "<name>"}')
  }
  const names = new Map<string, string>()
  for (const [folder, name] of Object.entries(value)) {
    if (typeof name !== 'string' || name.trim() === '' || name.trim().length > 200) {
      throw new Error(`the name map's entry for "${folder}" must be a name of 1 to 200 characters`)
    }
    names.set(folder, name.trim())
  }
  return names
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Enrolls every photo of `dir` not already enrolled; rejections are collected, refusals of the
 * server (token, scope) and network failures thrown.
 */
export async function enrollDirectory(
  client: ApiClient,
  dir: string,
  options: {
    concurrency: number
    names?: ReadonlyMap<string, string>
    onProgress?: (done: number, total: number) => void
  },
): Promise<EnrollSummary> {
  const jobs = await listJobs(dir)
  const summary: EnrollSummary = {
    identities: { created: 0, reused: 0, renamed: 0 },
    notCreated: [],
    photos: jobs.length,
    enrolled: 0,
    skipped: 0,
    rejected: [],
    rejectedByCode: {},
  }
  const displayName = (folder: string): string => options.names?.get(folder) ?? folder
  const existing = new Map<string, { id: string; name: string }>()
  // Oldest first: the newest identity with an external id wins.
  for (const identity of await client.allIdentities()) {
    if (identity.externalId !== null) existing.set(identity.externalId, identity)
  }
  const folders = [...new Set(jobs.map((job) => job.name))]
  /**
   * Whether a photo is enrolled, by `folder/sha256`: those enrolled before this run (true at once)
   * and those sent in it (the attempt), so the same bytes twice are sent once.
   */
  const enrolled = new Map<string, Promise<boolean>>()
  const ids = new Map<string, Promise<string>>()
  for (const folder of folders) {
    const found = existing.get(folder)
    if (found === undefined) continue
    summary.identities.reused++
    const { items } = await client.listFaces(found.id)
    for (const face of items) {
      // A stale face (another model) does not count: enrolling its photo again is what it needs.
      if (!face.stale && face.sourceSha256 !== null) {
        enrolled.set(`${folder}/${face.sourceSha256}`, Promise.resolve(true))
      }
    }
    const mapped = options.names?.get(folder)
    if (mapped !== undefined && mapped !== found.name) {
      await client.updateIdentity(found.id, { name: mapped })
      summary.identities.renamed++
    }
    ids.set(folder, Promise.resolve(found.id))
  }
  const created = new Set<string>()
  /** The identity of `folder`, created on its first photo (once, whichever worker asks first). */
  const identityOf = (folder: string): Promise<string> => {
    let id = ids.get(folder)
    if (id === undefined) {
      id = client.createIdentity({ name: displayName(folder), externalId: folder }).then((identity) => {
        created.add(folder)
        return identity.id
      })
      ids.set(folder, id)
    }
    return id
  }
  const accepted = new Map<string, number>()

  const addFace = async (identityId: string, bytes: Uint8Array, file: string) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await client.addFace(identityId, bytes, imageTypeOf(file))
      } catch (error) {
        if (!(error instanceof ApiError) || !RETRIED.has(error.code) || attempt >= MAX_RETRIES) throw error
        const retryAfterMs = error.details?.['retryAfterMs']
        await pause(typeof retryAfterMs === 'number' ? retryAfterMs : 500 * (attempt + 1))
      }
    }
  }

  const send = async (job: Job, bytes: Uint8Array): Promise<boolean> => {
    try {
      const answer = await addFace(await identityOf(job.name), bytes, job.file)
      // The server knew these bytes already (another run enrolled them meanwhile).
      if (answer.duplicate) summary.skipped++
      else summary.enrolled++
      accepted.set(job.name, (accepted.get(job.name) ?? 0) + 1)
      return true
    } catch (error) {
      // A refusal of the whole request (token, scope) is not about this photo: stop.
      if (!(error instanceof ApiError) || error.status === 401 || error.status === 403) throw error
      summary.rejected.push({ file: job.file, code: error.code, message: error.message })
      summary.rejectedByCode[error.code] = (summary.rejectedByCode[error.code] ?? 0) + 1
      return false
    }
  }

  let next = 0
  let done = 0
  const worker = async (): Promise<void> => {
    for (let job = jobs[next++]; job !== undefined; job = jobs[next++]) {
      const bytes = await readFile(join(dir, job.file))
      const key = `${job.name}/${sha256(bytes)}`
      const earlier = enrolled.get(key)
      if (earlier !== undefined && (await earlier)) {
        // Enrolled before, or the same bytes under another file name of this folder.
        summary.skipped++
      } else {
        const attempt = send(job, bytes)
        enrolled.set(key, attempt)
        await attempt
      }
      done++
      options.onProgress?.(done, jobs.length)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker))

  // An identity made in this run for photos that were all refused: removed, as if never made.
  let removed = 0
  for (const folder of folders) {
    if (existing.has(folder) || (accepted.get(folder) ?? 0) > 0) continue
    summary.notCreated.push(folder)
    if (created.has(folder)) {
      await client.deleteIdentity(await identityOf(folder))
      removed++
    }
  }
  summary.identities.created = created.size - removed
  summary.rejected.sort((a, b) => a.file.localeCompare(b.file))
  return summary
}

export function summaryText(summary: EnrollSummary): string {
  const { identities } = summary
  const lines = [
    `identities: ${String(identities.created)} created, ${String(identities.reused)} reused, ${String(identities.renamed)} renamed`,
    `photos: ${String(summary.photos)}, enrolled ${String(summary.enrolled)}, skipped ${String(summary.skipped)} (already enrolled), rejected ${String(summary.rejected.length)}`,
    ...Object.entries(summary.rejectedByCode).map(([code, count]) => `  ${code}: ${String(count)}`),
    ...summary.rejected.map((rejection) => `  ${rejection.file}: ${rejection.code}`),
  ]
  if (summary.notCreated.length > 0) {
    lines.push(`not created (no photo accepted): ${summary.notCreated.join(', ')}`)
  }
  return lines.join('\n')
}

export async function runEnroll(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const usageError = (message: string): number => {
    process.stderr.write(`facewire enroll: ${message}\n\n${USAGE}\n`)
    return 2
  }
  let parsed
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...connectionOptions(env),
        'name-map': { type: 'string' },
        concurrency: { type: 'string', default: '2' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (error) {
    process.stderr.write(`facewire enroll: ${(error as Error).message}\n\n${USAGE}\n`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help === true) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  const dir = positionals[0]
  const token = tokenFrom(values, env)
  const concurrency = Number(values.concurrency)
  if (dir === undefined || token === undefined || !Number.isInteger(concurrency) || concurrency < 1) {
    return usageError('DIR and a token are required')
  }
  let names: Map<string, string> | undefined
  if (values['name-map'] !== undefined) {
    try {
      names = parseNameMap(await readFile(values['name-map'], 'utf8'))
    } catch (error) {
      return usageError(`--name-map ${values['name-map']}: ${(error as Error).message}`)
    }
  }
  const client = createApiClient({ baseUrl: values.server, token })
  let summary: EnrollSummary
  try {
    let bar: Progress | undefined
    summary = await enrollDirectory(client, dir, {
      concurrency,
      ...(names === undefined ? {} : { names }),
      onProgress: (done, total) => {
        bar ??= createProgress('enrolling', total)
        bar.tick(done)
      },
    })
    bar?.finish()
  } catch (error) {
    process.stderr.write(`facewire enroll: ${failureMessage(error, values.server)}\n`)
    return 1
  }
  process.stdout.write((values.json ? JSON.stringify(summary) : summaryText(summary)) + '\n')
  if (summary.rejected.length > 0) {
    process.stderr.write(
      `facewire enroll: ${String(summary.rejected.length)} of ${String(summary.photos)} photo(s) rejected\n`,
    )
    return 1
  }
  return 0
}
