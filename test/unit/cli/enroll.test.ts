import assert from 'node:assert/strict'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ApiError, type ApiClient } from '../../../client/api-client.js'
import { enrollDirectory } from '../../../client/cli/enroll.js'
import type { EnrollResponse, IdentityBody } from '../../../protocol/wire.js'
import { tempDataDir } from '../../helpers/temp-dir.js'

/** A folder per person with one photo each (the fake server never looks at the bytes). */
function people(t: { after: (fn: () => void) => void }, ...folders: string[]): string {
  const dir = tempDataDir('facewire-enroll-unit-')
  t.after(() => {
    rmSync(dir, { recursive: true, force: true })
  })
  for (const folder of folders) {
    mkdirSync(join(dir, folder))
    writeFileSync(join(dir, folder, '1.jpg'), folder)
  }
  return dir
}

/** A server with no identity yet whose addFace answers from `answers` per folder, in turn. */
function fakeServer(answers: Record<string, (ApiError | 'ok')[]>): { client: ApiClient; calls: string[] } {
  const calls: string[] = []
  const client = {
    allIdentities: () => Promise.resolve([]),
    createIdentity: (input: { name: string }) =>
      Promise.resolve({ id: input.name, name: input.name } as IdentityBody),
    deleteIdentity: () => Promise.resolve(),
    addFace: (identityId: string) => {
      calls.push(identityId)
      const answer = answers[identityId]?.shift() ?? 'ok'
      if (answer === 'ok') return Promise.resolve({ duplicate: false } as EnrollResponse)
      return Promise.reject(answer)
    },
  } as unknown as ApiClient
  return { client, calls }
}

const rateLimited = () =>
  new ApiError(429, { code: 'ERR_RATE_LIMITED', message: 'slow down', details: { retryAfterMs: 1 } })

test('a photo answered 429 is sent again after the pause the server names, up to 3 retries, then rejected', async (t) => {
  const dir = people(t, 'patient', 'unlucky')
  const { client, calls } = fakeServer({
    patient: [rateLimited(), rateLimited(), rateLimited()],
    unlucky: [rateLimited(), rateLimited(), rateLimited(), rateLimited()],
  })
  const summary = await enrollDirectory(client, dir, { concurrency: 1 })
  assert.equal(calls.filter((id) => id === 'patient').length, 4, 'three retries, then enrolled')
  assert.equal(calls.filter((id) => id === 'unlucky').length, 4, 'no fourth retry')
  assert.equal(summary.enrolled, 1)
  assert.deepEqual(
    summary.rejected.map((rejection) => [rejection.file, rejection.code]),
    [[join('unlucky', '1.jpg'), 'ERR_RATE_LIMITED']],
  )
  assert.deepEqual(summary.notCreated, ['unlucky'])
})

test('a refusal about the photo is not retried', async (t) => {
  const dir = people(t, 'nobody')
  const { client, calls } = fakeServer({
    nobody: [new ApiError(422, { code: 'ERR_FACE_NOT_FOUND', message: 'no face' })],
  })
  const summary = await enrollDirectory(client, dir, { concurrency: 1 })
  assert.deepEqual(calls, ['nobody'])
  assert.deepEqual(summary.rejectedByCode, { ERR_FACE_NOT_FOUND: 1 })
})
