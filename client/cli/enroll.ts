import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ApiError, createApiClient, imageTypeOf, type ApiClient } from '../api-client.js'
import { createProgress, type Progress } from './progress.js'
import { connectionOptions, tokenFrom } from './connection.js'

const USAGE = `usage: facewire enroll DIR [--server URL] [--token TOKEN] [--concurrency N] [--json]

Enrolls a folder per identity through the REST API: DIR/<name>/*.jpg|png|webp. The folder name is
the identity's name and external id; an identity with that external id is reused, so running the
command again adds photos instead of duplicating people.
  --server URL       default $FACEWIRE_URL or http://127.0.0.1:8080
  --token TOKEN      a token with the enroll scope (default $FACEWIRE_TOKEN; see facewire token)
  --concurrency N    photos in flight (default 2)
  --json             print the summary as one JSON object`

export interface EnrollSummary {
  identities: { created: number; reused: number }
  photos: number
  enrolled: number
  rejected: { file: string; code: string; message: string }[]
  rejectedByCode: Record<string, number>
}

interface Job {
  name: string
  file: string
}

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

/** Enrolls every photo of `dir`; rejections are collected, refusals of the server (auth) thrown. */
export async function enrollDirectory(
  client: ApiClient,
  dir: string,
  options: { concurrency: number; onProgress?: (done: number, total: number) => void },
): Promise<EnrollSummary> {
  const jobs = await listJobs(dir)
  const summary: EnrollSummary = {
    identities: { created: 0, reused: 0 },
    photos: jobs.length,
    enrolled: 0,
    rejected: [],
    rejectedByCode: {},
  }
  const existing = new Map<string, string>()
  for (const identity of await client.allIdentities()) {
    if (identity.externalId !== null) existing.set(identity.externalId, identity.id)
  }
  const ids = new Map<string, string>()
  for (const name of new Set(jobs.map((job) => job.name))) {
    const found = existing.get(name)
    if (found !== undefined) {
      ids.set(name, found)
      summary.identities.reused++
    } else {
      ids.set(name, (await client.createIdentity({ name, externalId: name })).id)
      summary.identities.created++
    }
  }
  let next = 0
  let done = 0
  const worker = async (): Promise<void> => {
    for (let job = jobs[next++]; job !== undefined; job = jobs[next++]) {
      const identityId = ids.get(job.name)
      if (identityId === undefined) continue
      try {
        const bytes = await readFile(join(dir, job.file))
        await client.addFace(identityId, bytes, imageTypeOf(job.file))
        summary.enrolled++
      } catch (error) {
        // A refusal of the whole request (token, scope, rate) is not about this photo: stop.
        if (!(error instanceof ApiError) || error.status === 401 || error.status === 403) throw error
        summary.rejected.push({ file: job.file, code: error.code, message: error.message })
        summary.rejectedByCode[error.code] = (summary.rejectedByCode[error.code] ?? 0) + 1
      }
      done++
      options.onProgress?.(done, jobs.length)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker))
  summary.rejected.sort((a, b) => a.file.localeCompare(b.file))
  return summary
}

export async function runEnroll(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...connectionOptions(env),
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
    process.stderr.write(`facewire enroll: DIR and a token are required\n\n${USAGE}\n`)
    return 2
  }
  const client = createApiClient({ baseUrl: values.server, token })
  let summary: EnrollSummary
  try {
    let bar: Progress | undefined
    summary = await enrollDirectory(client, dir, {
      concurrency,
      onProgress: (done, total) => {
        bar ??= createProgress('enrolling', total)
        bar.tick(done)
      },
    })
    bar?.finish()
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    process.stderr.write(`facewire enroll: ${message}\n`)
    return 1
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(summary) + '\n')
  } else {
    const lines = [
      `identities: ${String(summary.identities.created)} created, ${String(summary.identities.reused)} reused`,
      `photos: ${String(summary.photos)}, enrolled ${String(summary.enrolled)}, rejected ${String(summary.rejected.length)}`,
      ...Object.entries(summary.rejectedByCode).map(([code, count]) => `  ${code}: ${String(count)}`),
      ...summary.rejected.map((rejection) => `  ${rejection.file}: ${rejection.code}`),
    ]
    process.stdout.write(lines.join('\n') + '\n')
  }
  return summary.enrolled === 0 && summary.photos > 0 ? 1 : 0
}
