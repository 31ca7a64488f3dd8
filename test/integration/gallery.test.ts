import assert from 'node:assert/strict'
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import sharp from 'sharp'
import { createApiClient, type ApiClient } from '../../client/api-client.js'
import type { FaceResult } from '../../protocol/wire.js'
import { startTestApp, tempDataDir, testToken, TEST_SECRET, type StartedApp } from '../helpers/app.js'
import { startMain } from '../helpers/child.js'
import { tryEnroll, type Acknowledged } from '../helpers/enroll.js'
import { facesDir, lfwPeople } from '../helpers/images.js'

const faces = facesDir()
const noFaces = faces === undefined ? 'the shared face photos (../shared/faces) are absent' : false

function clientFor(port: number, org: string): ApiClient {
  return createApiClient({ baseUrl: `http://127.0.0.1:${String(port)}`, token: testToken(org) })
}

/** AT&T/ORL photos are 92x112 binary PGM (P5), which the server refuses: convert to PNG here. */
async function orlPng(person: number, photo: number): Promise<Buffer> {
  const bytes = readFileSync(join(faces ?? '', 'att_faces', `s${String(person)}`, `${String(photo)}.pgm`))
  const header = /^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(bytes.subarray(0, 64).toString('latin1'))
  assert.ok(header !== null, 'a P5 PGM header')
  const width = Number(header[1])
  const height = Number(header[2])
  const pixels = bytes.subarray(header[0].length, header[0].length + width * height)
  // The crops end at the chin and the hairline; detectors expect some context around a face.
  const pad = Math.round(width * 0.5)
  return sharp(pixels, { raw: { width, height, channels: 1 } })
    .extend({ top: pad, bottom: pad, left: pad, right: pad, background: { r: 128, g: 128, b: 128 } })
    .png()
    .toBuffer()
}

function decisionsOf(results: FaceResult[][]): string[] {
  return results.map((frame) =>
    JSON.stringify(
      frame.map((face) => ({
        status: face.decision.status,
        id: face.decision.identity?.id,
        candidates: face.candidates.map((c) => c.identity.id),
        similarity: face.decision.similarity,
      })),
    ),
  )
}

test(
  'a corrupt index snapshot is detected and rebuilt from the store, with the same results as before',
  { skip: noFaces },
  async (t) => {
    const dataDir = tempDataDir()
    t.after(() => {
      rmSync(dataDir, { recursive: true, force: true })
    })
    const people = lfwPeople(8)
    const recognizeAll = async (started: StartedApp): Promise<string[]> => {
      const api = clientFor(started.port, 'acme')
      const results: FaceResult[][] = []
      for (const person of people) results.push((await api.recognize(await readFile(person.file))).faces)
      return decisionsOf(results)
    }

    let started = await startTestApp({ FACEWIRE_DATA_DIR: dataDir })
    const api = clientFor(started.port, 'acme')
    for (const person of people.slice(0, 6)) {
      const identity = await api.createIdentity({ name: person.name })
      await api.addFace(identity.id, await readFile(person.file))
    }
    const before = await recognizeAll(started)
    assert.ok(before.filter((line) => line.includes('"match"')).length >= 5, 'the enrolled people match')
    await started.stop({ keepData: true }) // writes the snapshot

    started = await startTestApp({ FACEWIRE_DATA_DIR: dataDir })
    assert.equal(started.app.gallery().loadedFrom, 'snapshot')
    assert.deepEqual(await recognizeAll(started), before, 'the snapshot gives the same results')
    await started.stop({ keepData: true })

    const indexDir = join(dataDir, 'index')
    const file = readdirSync(indexDir).find((name) => name.endsWith('.hnsw'))
    assert.ok(file !== undefined, 'an index file was written')
    const bytes = readFileSync(join(indexDir, file))
    for (let i = 100; i < bytes.length; i += 97) bytes[i] = (bytes[i] ?? 0) ^ 0x5a
    writeFileSync(join(indexDir, file), bytes)

    started = await startTestApp({ FACEWIRE_DATA_DIR: dataDir })
    t.after(() => started.stop({ keepData: true }))
    assert.equal(started.app.gallery().loadedFrom, 'rebuild')
    assert.ok(
      started.lines().some((line) => line['msg'] === 'gallery.index_rebuild'),
      'the rebuild is logged',
    )
    assert.deepEqual(await recognizeAll(started), before, 'the rebuilt index gives the same results')
  },
)

test(
  'a server killed with SIGKILL during a burst of enrollments restarts with every acknowledged face present and searchable',
  { skip: noFaces },
  async (t) => {
    const env = {
      FACEWIRE_JWT_SECRET: TEST_SECRET,
      FACEWIRE_SNAPSHOT_INTERVAL_MS: '300',
      FACEWIRE_API_RATE_LIMIT: '1000',
      LOG_LEVEL: 'info',
    }
    const first = startMain(env)
    const dataDir = first.dataDir
    t.after(() => {
      first.child.kill('SIGKILL')
      rmSync(dataDir, { recursive: true, force: true })
    })
    const port = Number((await first.waitFor(/^server\.listening$/))['port'])
    await first.waitFor(/^pipeline\.ready$/)
    const api = clientFor(port, 'acme')
    const people = lfwPeople(40)
    const ids = new Map<string, string>()
    for (const person of people) ids.set(person.name, (await api.createIdentity({ name: person.name })).id)

    const acknowledged: Acknowledged[] = []
    let next = 0
    let killed = false
    const worker = async (): Promise<void> => {
      for (let person = people[next++]; person !== undefined && !killed; person = people[next++]) {
        // Refused (no face) or cut off by the kill: not acknowledged, nothing is promised.
        const ack = await tryEnroll(api, person, ids.get(person.name) ?? '')
        if (ack !== undefined) acknowledged.push(ack)
        if (acknowledged.length >= 12 && !killed) {
          killed = true
          first.child.kill('SIGKILL')
        }
      }
    }
    await Promise.all([worker(), worker(), worker()])
    assert.ok(killed, 'the server was killed mid-burst')
    if (first.child.exitCode === null && first.child.signalCode === null) await once(first.child, 'exit')
    assert.equal(first.child.signalCode, 'SIGKILL')

    const second = startMain({ ...env, FACEWIRE_DATA_DIR: dataDir })
    t.after(() => second.child.kill('SIGKILL'))
    const port2 = Number((await second.waitFor(/^server\.listening$/))['port'])
    await second.waitFor(/^pipeline\.ready$/)
    const restarted = clientFor(port2, 'acme')
    assert.ok(acknowledged.length >= 12)
    for (const ack of acknowledged) {
      const stored = await restarted.listFaces(ack.identityId)
      assert.ok(
        stored.items.some((face) => face.id === ack.faceId),
        `acknowledged face of ${ack.name} is stored`,
      )
      const result = await restarted.recognize(await readFile(ack.file))
      assert.ok(
        result.faces.some((face) => face.decision.identity?.id === ack.identityId),
        `acknowledged face of ${ack.name} is searchable`,
      )
    }
  },
)

test(
  'AT&T/ORL: one enrolled photo per person identifies the other nine, and people never enrolled come back unknown',
  { skip: noFaces },
  async (t) => {
    const started = await startTestApp({
      FACEWIRE_WORKERS: '2',
      FACEWIRE_MIN_ENROLL_QUALITY: '0',
      // 30 enrollments and 370 recognitions as fast as the pipeline answers: above the default 50/s.
      FACEWIRE_API_RATE_LIMIT: '10000',
    })
    t.after(() => started.stop())
    const api = clientFor(started.port, 'orl')
    const identityOf = new Map<string, number>()
    let enrollFailures = 0
    for (let person = 1; person <= 30; person++) {
      const identity = await api.createIdentity({ name: `s${String(person)}` })
      identityOf.set(identity.id, person)
      try {
        await api.addFace(identity.id, await orlPng(person, 1))
      } catch {
        enrollFailures++
      }
    }
    const recognize = async (person: number, photo: number): Promise<FaceResult | undefined> =>
      (await api.recognize(await orlPng(person, photo))).faces.sort((a, b) => b.box.width - a.box.width)[0]

    let rank1 = 0
    let matchedCorrect = 0
    let matchedWrong = 0
    let noFace = 0
    for (let person = 1; person <= 30; person++) {
      for (let photo = 2; photo <= 10; photo++) {
        const face = await recognize(person, photo)
        if (face === undefined) {
          noFace++
          continue
        }
        const top = face.candidates[0]
        if (top !== undefined && identityOf.get(top.identity.id) === person) rank1++
        if (face.decision.status === 'match') {
          if (identityOf.get(face.decision.identity?.id ?? '') === person) matchedCorrect++
          else matchedWrong++
        }
      }
    }
    let strangerMatches = 0
    let strangerUnknown = 0
    const strangerBest: number[] = []
    for (let person = 31; person <= 40; person++) {
      for (let photo = 1; photo <= 10; photo++) {
        const face = await recognize(person, photo)
        strangerBest.push(face?.candidates[0]?.similarity ?? 0)
        if (face?.decision.status === 'match') strangerMatches++
        if (face === undefined || face.decision.status === 'unknown') strangerUnknown++
      }
    }
    const report = {
      enrolled: 30 - enrollFailures,
      probes: 270,
      rank1: rank1 / 270,
      matchedCorrect,
      matchedWrong,
      noFace,
      strangerProbes: 100,
      strangerMatches,
      strangerUnknown,
      strangerBestSimilarity: strangerBest.sort((a, b) => b - a).slice(0, 10),
    }
    t.diagnostic(`ORL ${JSON.stringify(report)}`)
    assert.equal(enrollFailures, 0, 'every first photo enrolls')
    assert.ok(report.rank1 >= 0.95, `rank-1 ${String(report.rank1)}`)
    // Measured 1 of 100 at the default policy (target FPIR 0.2%: the threshold for 30 identities
    // from the LFW cohort and this gallery's own impostor scores, the higher); 0 with face-api's
    // landmark net, 9 with the last default models and fixed threshold. The bar is at most 1
    // (docs/models.md, "Open-set policy").
    assert.ok(strangerMatches <= 1, `strangers matched: ${String(strangerMatches)}`)
    assert.ok(strangerUnknown >= 95, `strangers unknown: ${String(strangerUnknown)}`)
    assert.equal(matchedWrong, 0, 'no probe is matched to the wrong person')
    assert.ok(matchedCorrect >= 250, `right matches: ${String(matchedCorrect)}`)
  },
)
