import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { FacewireError } from '../../../server/errors.js'
import {
  createIndexSet,
  INITIAL_CAPACITY,
  loadSnapshot,
  MANIFEST_FILE,
  type IndexParams,
  type IndexSet,
} from '../../../server/gallery/hnsw-index.js'
import { cosine } from '../../../server/pipeline/embedding-layout.js'
import { seededRandom } from '../../helpers/random.js'

const DIM = 16
const PARAMS: IndexParams = { dim: DIM, M: 16, efConstruction: 100, ef: 50 }

function unitVectors(count: number, dim: number, seed: number): Float32Array[] {
  const next = seededRandom(seed)
  return Array.from({ length: count }, () => {
    const v = new Float32Array(dim)
    let norm = 0
    for (let i = 0; i < dim; i++) {
      // Sum of uniforms: close enough to Gaussian for direction sampling in a test.
      const x = next() + next() + next() - 1.5
      v[i] = x
      norm += x * x
    }
    return v.map((x) => x / Math.sqrt(norm))
  })
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'facewire-hnsw-'))
  t.after(() => {
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

function filledSet(): { set: IndexSet; vectors: Float32Array[] } {
  const set = createIndexSet(PARAMS)
  const vectors = unitVectors(300, DIM, 7)
  vectors.forEach((v, i) => {
    set.forOrg(i % 2 === 0 ? 'org-a' : '../weird org/ä').add(i, v)
  })
  set.forOrg('org-a').remove(10)
  set.forOrg('empty')
  return { set, vectors }
}

function savedSnapshot(t: TestContext): { dir: string; set: IndexSet; vectors: Float32Array[] } {
  const dir = tempDir(t)
  const { set, vectors } = filledSet()
  set.saveSnapshot(dir, 42)
  return { dir, set, vectors }
}

function indexFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith('.hnsw'))
}

function configError(params: IndexParams): FacewireError {
  try {
    createIndexSet(params)
  } catch (error) {
    assert.ok(error instanceof FacewireError)
    return error
  }
  assert.fail('expected ERR_CONFIG_INVALID')
}

test('search finds each vector of a small set as its own nearest neighbour, with cosine similarity', () => {
  const index = createIndexSet(PARAMS).forOrg('org')
  const vectors = unitVectors(100, DIM, 1)
  vectors.forEach((v, label) => {
    index.add(label, v)
  })
  assert.equal(index.size, 100)
  vectors.forEach((v, label) => {
    const [first] = index.search(v, 1)
    assert.equal(first?.label, label)
    assert.ok(Math.abs((first?.similarity ?? 0) - 1) < 1e-5)
  })
  const query = vectors[0] ?? new Float32Array(DIM)
  const found = index.search(query, 10)
  assert.equal(found.length, 10)
  for (const { label, similarity } of found) {
    assert.ok(
      Math.abs(similarity - cosine(query, vectors[label] ?? query)) < 1e-5,
      'similarity is the cosine',
    )
  }
  for (let i = 1; i < found.length; i++) {
    assert.ok((found[i - 1]?.similarity ?? 0) >= (found[i]?.similarity ?? 0), 'best first')
  }
})

test('similarity is the cosine even for vectors that are not unit length', () => {
  const index = createIndexSet({ ...PARAMS, dim: 2 }).forOrg('org')
  index.add(1, new Float32Array([3, 0]))
  index.add(2, new Float32Array([0, 5]))
  const found = index.search(new Float32Array([0.6, 0.8]), 2)
  assert.deepEqual(
    found.map((n) => [n.label, Math.round(n.similarity * 1e4) / 1e4]),
    [
      [2, 0.8],
      [1, 0.6],
    ],
  )
})

test('a removed label leaves search results at once; removing it again or an absent label is false', () => {
  const index = createIndexSet(PARAMS).forOrg('org')
  const vectors = unitVectors(20, DIM, 2)
  vectors.forEach((v, label) => {
    index.add(label, v)
  })
  assert.equal(index.remove(5), true)
  assert.equal(index.has(5), false)
  assert.equal(index.size, 19)
  assert.ok(!index.search(vectors[5] ?? new Float32Array(DIM), 20).some((n) => n.label === 5))
  assert.equal(index.search(vectors[5] ?? new Float32Array(DIM), 20).length, 19)
  assert.equal(index.remove(5), false)
  assert.equal(index.remove(999), false)
})

test('re-adding a deleted label revives it with the new vector; adding a live label replaces its vector', () => {
  const index = createIndexSet(PARAMS).forOrg('org')
  const [a, b, c, d] = unitVectors(4, DIM, 3) as [Float32Array, Float32Array, Float32Array, Float32Array]
  index.add(1, a)
  index.add(2, b)
  index.remove(1)
  index.add(1, c)
  assert.equal(index.has(1), true)
  assert.equal(index.size, 2)
  assert.equal(index.search(c, 1)[0]?.label, 1)
  assert.ok((index.search(c, 1)[0]?.similarity ?? 0) > 0.9999)
  index.add(2, d)
  assert.equal(index.size, 2, 'replacing does not add')
  assert.ok((index.search(d, 1)[0]?.similarity ?? 0) > 0.9999)
  assert.ok(!index.search(b, 2).some((n) => n.similarity > 0.9999), 'the old vector is gone')
})

test('new labels reuse the slots of deleted ones and stay searchable', () => {
  const index = createIndexSet(PARAMS).forOrg('org')
  const vectors = unitVectors(400, DIM, 4)
  for (let label = 0; label < 200; label++) index.add(label, vectors[label] ?? new Float32Array(DIM))
  for (let label = 0; label < 150; label++) index.remove(label)
  for (let label = 200; label < 400; label++) index.add(label, vectors[label] ?? new Float32Array(DIM))
  assert.equal(index.size, 250)
  for (let label = 150; label < 400; label++) {
    assert.equal(index.search(vectors[label] ?? new Float32Array(DIM), 1)[0]?.label, label)
  }
  // A label whose slot went to another label can still come back.
  index.add(3, vectors[3] ?? new Float32Array(DIM))
  assert.equal(index.search(vectors[3] ?? new Float32Array(DIM), 1)[0]?.label, 3)
  assert.equal(index.size, 251)
})

test('capacity grows past the initial size', () => {
  const index = createIndexSet(PARAMS).forOrg('org')
  const count = INITIAL_CAPACITY * 2 + 100
  const vectors = unitVectors(count, DIM, 5)
  vectors.forEach((v, label) => {
    index.add(label, v)
  })
  assert.equal(index.size, count)
  for (const label of [0, INITIAL_CAPACITY, count - 1]) {
    assert.equal(index.search(vectors[label] ?? new Float32Array(DIM), 1)[0]?.label, label)
  }
})

test('k larger than the index is clamped, k = 0 and an empty index give no neighbours', () => {
  const set = createIndexSet(PARAMS)
  const empty = set.forOrg('empty')
  const [v] = unitVectors(1, DIM, 6) as [Float32Array]
  assert.deepEqual(empty.search(v, 5), [])
  const index = set.forOrg('org')
  index.add(1, v)
  index.add(2, unitVectors(1, DIM, 7)[0] ?? v)
  assert.equal(index.search(v, 5000).length, 2)
  assert.deepEqual(index.search(v, 0), [])
  index.remove(1)
  index.remove(2)
  assert.deepEqual(index.search(v, 5), [], 'an index with only deleted vectors is empty')
})

test('vectors of the wrong dimension, non-finite values and bad labels or k are refused', () => {
  const index = createIndexSet(PARAMS).forOrg('org')
  const [v] = unitVectors(1, DIM, 8) as [Float32Array]
  assert.throws(() => {
    index.add(1, new Float32Array(DIM + 1))
  }, RangeError)
  assert.throws(() => {
    index.add(1, new Float32Array(DIM).fill(NaN))
  }, RangeError)
  for (const label of [-1, 1.5, 2 ** 32]) {
    assert.throws(() => {
      index.add(label, v)
    }, RangeError)
  }
  assert.throws(() => index.search(new Float32Array(3), 1), RangeError)
  assert.throws(() => index.search(v, -1), RangeError)
  assert.equal(index.size, 0)
})

test('organizations are isolated: searching one never returns labels of another', () => {
  const set = createIndexSet(PARAMS)
  const vectors = unitVectors(200, DIM, 9)
  vectors.forEach((v, i) => {
    set.forOrg(i < 100 ? 'a' : 'b').add(i, v)
  })
  for (const v of vectors.slice(0, 100)) {
    assert.ok(
      set
        .forOrg('b')
        .search(v, 50)
        .every((n) => n.label >= 100),
    )
  }
  assert.equal(set.forOrg('a').has(150), false)
  assert.equal(set.forOrg('a').remove(150), false)
  assert.equal(set.get('b')?.size, 100)
  assert.equal(set.get('c'), undefined)
  assert.deepEqual(set.orgs(), ['a', 'b'])
})

test('invalid parameters are refused with ERR_CONFIG_INVALID naming the option', () => {
  const cases: [Partial<IndexParams>, string][] = [
    [{ dim: 0 }, 'dim'],
    [{ M: 1 }, 'M'],
    [{ M: 101 }, 'M'],
    [{ M: 16, efConstruction: 8 }, 'efConstruction'],
    [{ ef: 0 }, 'ef'],
    [{ ef: 2.5 }, 'ef'],
  ]
  for (const [override, option] of cases) {
    const error = configError({ ...PARAMS, ...override })
    assert.equal(error.code, 'ERR_CONFIG_INVALID')
    assert.equal(error.details?.['option'], option)
    assert.match(error.message, new RegExp(`\\b${option}\\b`))
  }
})

test('a snapshot round trip gives identical search results, deletions and counts', (t) => {
  const { dir, set, vectors } = savedSnapshot(t)
  const loaded = loadSnapshot(dir, PARAMS)
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.reason)
  assert.equal(loaded.seq, 42)
  assert.deepEqual(loaded.set.orgs(), set.orgs())
  for (const org of set.orgs()) {
    const before = set.forOrg(org)
    const after = loaded.set.forOrg(org)
    assert.equal(after.size, before.size)
    for (const v of vectors.slice(0, 50)) assert.deepEqual(after.search(v, 10), before.search(v, 10))
  }
  assert.equal(loaded.set.forOrg('org-a').has(10), false, 'a deleted label stays deleted')
  assert.equal(loaded.set.forOrg('org-a').has(12), true)
  // The loaded indexes keep working: growth, deletes and revivals.
  const index = loaded.set.forOrg('org-a')
  index.add(10, vectors[10] ?? new Float32Array(DIM))
  assert.equal(index.search(vectors[10] ?? new Float32Array(DIM), 1)[0]?.label, 10)
  assert.equal(index.remove(12), true)
  assert.equal(index.search(vectors[12] ?? new Float32Array(DIM), 1)[0]?.label === 12, false)
})

test('snapshot file names come from hashes, never from organization names', (t) => {
  const { dir } = savedSnapshot(t)
  const names = readdirSync(dir).sort()
  assert.ok(names.includes(MANIFEST_FILE))
  for (const name of indexFiles(dir)) assert.match(name, /^[0-9a-f]{64}\.[0-9a-f]{12}\.hnsw$/)
  assert.equal(indexFiles(dir).length, 3)
  const orgHash = createHash('sha256').update('../weird org/ä').digest('hex')
  assert.ok(indexFiles(dir).some((name) => name.startsWith(orgHash)))
})

test('a new snapshot replaces the files of the previous one', (t) => {
  const { dir, set } = savedSnapshot(t)
  const first = indexFiles(dir)
  set.forOrg('org-a').remove(12)
  set.saveSnapshot(dir, 43)
  const second = indexFiles(dir)
  assert.equal(second.length, 3)
  assert.ok(second.every((name) => !first.includes(name)))
  const loaded = loadSnapshot(dir, PARAMS)
  assert.ok(loaded.ok)
  assert.equal(loaded.seq, 43)
  assert.equal(loaded.set.forOrg('org-a').has(12), false)
})

test('ef is applied after loading and a different efConstruction is accepted', (t) => {
  const { dir } = savedSnapshot(t)
  const loaded = loadSnapshot(dir, { ...PARAMS, ef: 10, efConstruction: 300 })
  assert.ok(loaded.ok)
  assert.deepEqual(loaded.set.params, { ...PARAMS, ef: 10, efConstruction: 300 })
})

function corruptions(): [string, (dir: string) => void, RegExp][] {
  const firstIndex = (dir: string): string => join(dir, indexFiles(dir)[0] ?? 'missing')
  return [
    [
      'flipped bytes in an index file',
      (dir) => {
        const path = firstIndex(dir)
        const bytes = readFileSync(path)
        for (const at of [100, 2000, bytes.length - 3]) bytes[at] = (bytes[at] ?? 0) ^ 0xff
        writeFileSync(path, bytes)
      },
      /sha256 mismatch/,
    ],
    [
      'a truncated index file',
      (dir) => {
        truncateSync(firstIndex(dir), 500)
      },
      /size mismatch/,
    ],
    [
      'a deleted index file',
      (dir) => {
        rmSync(firstIndex(dir))
      },
      /ENOENT/,
    ],
    [
      'a garbage manifest',
      (dir) => {
        writeFileSync(join(dir, MANIFEST_FILE), '\u0000\u0001garbage{')
      },
      /not JSON/,
    ],
    [
      'a manifest of the wrong shape',
      (dir) => {
        writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify({ format: 'something else' }))
      },
      /malformed/,
    ],
    [
      'an edited manifest',
      (dir) => {
        const path = join(dir, MANIFEST_FILE)
        writeFileSync(path, readFileSync(path, 'utf8').replace('"seq":42', '"seq":41'))
      },
      /checksum/,
    ],
    [
      'a missing manifest',
      (dir) => {
        rmSync(join(dir, MANIFEST_FILE))
      },
      /manifest unreadable/,
    ],
  ]
}

for (const [what, corrupt, reason] of corruptions()) {
  test(`loading a snapshot with ${what} fails with a reason instead of crashing`, (t) => {
    const { dir } = savedSnapshot(t)
    corrupt(dir)
    const loaded = loadSnapshot(dir, PARAMS)
    assert.equal(loaded.ok, false)
    if (!loaded.ok) assert.match(loaded.reason, reason)
  })
}

test('a file whose header disagrees with the manifest is refused even when its hash was rewritten', (t) => {
  const { dir } = savedSnapshot(t)
  const manifestPath = join(dir, MANIFEST_FILE)
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    orgs: { file: string; sha256: string }[]
    checksum?: string
  }
  const entry = manifest.orgs[0]
  assert.ok(entry !== undefined)
  const path = join(dir, entry.file)
  const bytes = readFileSync(path)
  bytes.writeBigUInt64LE(10n ** 12n, 16) // an absurd element count
  writeFileSync(path, bytes)
  entry.sha256 = createHash('sha256').update(bytes).digest('hex')
  delete manifest.checksum
  const checksum = createHash('sha256').update(JSON.stringify(manifest)).digest('hex')
  writeFileSync(manifestPath, JSON.stringify({ ...manifest, checksum }))
  const loaded = loadSnapshot(dir, PARAMS)
  assert.equal(loaded.ok, false)
  if (!loaded.ok) assert.match(loaded.reason, /header element count/)
})

test('an organization never loads a file named after another organization', (t) => {
  const { dir } = savedSnapshot(t)
  const manifestPath = join(dir, MANIFEST_FILE)
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    orgs: { org: string }[]
    checksum?: string
  }
  const [first, second] = manifest.orgs
  assert.ok(first !== undefined && second !== undefined)
  ;[first.org, second.org] = [second.org, first.org]
  delete manifest.checksum
  const checksum = createHash('sha256').update(JSON.stringify(manifest)).digest('hex')
  writeFileSync(manifestPath, JSON.stringify({ ...manifest, checksum }))
  const loaded = loadSnapshot(dir, PARAMS)
  assert.equal(loaded.ok, false)
  if (!loaded.ok) assert.match(loaded.reason, /is not the file of org/)
})

test('loading a snapshot with a different dim or M fails with a reason', (t) => {
  const { dir } = savedSnapshot(t)
  const dim = loadSnapshot(dir, { ...PARAMS, dim: DIM * 2 })
  assert.equal(dim.ok, false)
  if (!dim.ok) assert.match(dim.reason, /dim/)
  const m = loadSnapshot(dir, { ...PARAMS, M: 8 })
  assert.equal(m.ok, false)
  if (!m.ok) assert.match(m.reason, /\bM\b/)
})

test('loading from a directory with no snapshot fails with a reason', (t) => {
  const loaded = loadSnapshot(join(tempDir(t), 'nothing-here'), PARAMS)
  assert.equal(loaded.ok, false)
})

test('HNSW top-1 equals exact search on at least 95% of queries over 2000 random unit vectors', () => {
  const dim = 128
  const index = createIndexSet({ dim, M: 16, efConstruction: 200, ef: 64 }).forOrg('org')
  const vectors = unitVectors(2000, dim, 11)
  vectors.forEach((v, label) => {
    index.add(label, v)
  })
  // Like a new photo of an enrolled face: a gallery vector plus noise as large as itself (cosine
  // ~0.7 to its source), not a uniform random direction, which is nearly equidistant from all.
  const noise = unitVectors(200, dim, 12)
  const queries = noise.map((n, i) => {
    const source = vectors[(i * 7) % vectors.length] ?? n
    return source.map((x, d) => x + (n[d] ?? 0))
  })
  let agree = 0
  for (const q of queries) {
    let best = -1
    let bestSimilarity = -Infinity
    vectors.forEach((v, label) => {
      const s = cosine(q, v)
      if (s > bestSimilarity) {
        bestSimilarity = s
        best = label
      }
    })
    if (index.search(q, 1)[0]?.label === best) agree++
  }
  assert.ok(agree / queries.length >= 0.95, `recall@1 ${agree / queries.length}`)
})
