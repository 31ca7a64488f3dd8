import assert from 'node:assert/strict'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import {
  BACKUP_MANIFEST_FILE,
  describeFile,
  parseBackupManifest,
  readBackup,
  toBackupManifest,
  verifyBackupFiles,
  type BackupManifest,
} from '../../../server/gallery/backup-manifest.js'
import { DataToolError, type DataToolErrorCode } from '../../../server/gallery/data-tool-error.js'
import { tempDataDir } from '../../helpers/temp-dir.js'

const INDEX_FILE = `index/${'a'.repeat(64)}.${'b'.repeat(12)}.hnsw`

/** A backup folder with a database, a snapshot manifest and one index file, and its manifest. */
function backupDir(t: TestContext): { dir: string; manifest: BackupManifest } {
  const dir = tempDataDir('facewire-backup-manifest-')
  t.after(() => {
    rmSync(dir, { recursive: true, force: true })
  })
  mkdirSync(join(dir, 'index'))
  writeFileSync(join(dir, 'facewire.db'), 'database bytes')
  writeFileSync(join(dir, 'index/manifest.json'), '{"seq": 7}')
  writeFileSync(join(dir, INDEX_FILE), 'index bytes')
  const manifest = toBackupManifest({
    createdAt: '2025-01-01T00:00:00.000Z',
    createdBy: 'facewire 0.0.0-test',
    store: {
      file: 'facewire.db',
      schemaVersion: 2,
      seq: 9,
      identities: 2,
      faces: 3,
      embeddingKeys: [{ keyId: '0123456789abcdef', faces: 3 }],
    },
    snapshot: { seq: 7 },
    files: ['facewire.db', 'index/manifest.json', INDEX_FILE].map((path) => describeFile(dir, path)),
  })
  writeFileSync(join(dir, BACKUP_MANIFEST_FILE), JSON.stringify(manifest))
  return { dir, manifest }
}

function codeOf(fn: () => unknown): DataToolErrorCode {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof DataToolError, `expected a DataToolError, got ${String(error)}`)
    return error.code
  }
  assert.fail('expected a DataToolError')
}

/** The manifest's JSON with `change` applied and the checksum recomputed (a well-formed lie). */
function resealed(manifest: BackupManifest, change: (body: Record<string, unknown>) => void): string {
  const { createdAt, createdBy, store, snapshot, files } = structuredClone(manifest)
  const body = { createdAt, createdBy, store, snapshot, files }
  change(body)
  return JSON.stringify(toBackupManifest(body))
}

test('a manifest round-trips through its text, whatever order its keys are written in', (t) => {
  const { dir, manifest } = backupDir(t)
  assert.deepEqual(readBackup(dir), manifest)
  const reordered = Object.fromEntries(Object.entries(manifest).reverse())
  assert.deepEqual(parseBackupManifest(JSON.stringify(reordered)), manifest)
  assert.equal(manifest.format, 'facewire.backup')
  assert.match(manifest.checksum, /^[0-9a-f]{64}$/)
})

test('a manifest that is not JSON, has another format or version, or whose checksum does not match is invalid', (t) => {
  const { manifest } = backupDir(t)
  const edited = { ...manifest, store: { ...manifest.store, faces: 4 } }
  for (const text of [
    '',
    'not json',
    '[]',
    JSON.stringify({ ...manifest, version: 2 }),
    JSON.stringify({ ...manifest, format: 'other' }),
    JSON.stringify({ ...manifest, extra: true }),
    JSON.stringify(edited),
  ]) {
    assert.equal(
      codeOf(() => parseBackupManifest(text)),
      'ERR_BACKUP_INVALID',
      text.slice(0, 40),
    )
  }
})

test('a manifest may list only the files a backup holds, each once, the database always', (t) => {
  const { manifest } = backupDir(t)
  const file = { path: 'facewire.db', bytes: 1, sha256: 'c'.repeat(64) }
  const lies: ((body: Record<string, unknown>) => void)[] = [
    (body) => (body['files'] = [...manifest.files, { ...file, path: 'dev-jwt-secret' }]),
    (body) => (body['files'] = [...manifest.files, { ...file, path: '../facewire.db' }]),
    (body) => (body['files'] = [...manifest.files, { ...file, path: '/etc/passwd' }]),
    (body) => (body['files'] = [...manifest.files, file]),
    (body) => (body['files'] = manifest.files.filter((entry) => entry.path !== 'facewire.db')),
    (body) => (body['files'] = manifest.files.filter((entry) => entry.path !== 'index/manifest.json')),
    (body) => (body['snapshot'] = null),
    (body) => (body['snapshot'] = { seq: 10 }),
  ]
  for (const lie of lies) {
    assert.equal(
      codeOf(() => parseBackupManifest(resealed(manifest, lie))),
      'ERR_BACKUP_INVALID',
    )
  }
})

test('every listed file is checked: a missing file, another size or one changed byte is damage', (t) => {
  const { dir, manifest } = backupDir(t)
  verifyBackupFiles(dir, manifest)
  writeFileSync(join(dir, INDEX_FILE), 'index bytez')
  assert.throws(
    () => readBackup(dir),
    (error: unknown) =>
      error instanceof DataToolError &&
      error.code === 'ERR_BACKUP_DAMAGED' &&
      error.message.includes(`the sha256 of ${INDEX_FILE} does not match`),
  )
  writeFileSync(join(dir, INDEX_FILE), 'index')
  assert.equal(
    codeOf(() => {
      verifyBackupFiles(dir, manifest)
    }),
    'ERR_BACKUP_DAMAGED',
  )
  rmSync(join(dir, INDEX_FILE))
  assert.throws(() => {
    verifyBackupFiles(dir, manifest)
  }, /is missing/)
})

test('a folder without a manifest is not a backup (or one that did not finish)', (t) => {
  const { dir } = backupDir(t)
  rmSync(join(dir, BACKUP_MANIFEST_FILE))
  assert.throws(
    () => readBackup(dir),
    (error: unknown) =>
      error instanceof DataToolError &&
      error.code === 'ERR_BACKUP_INVALID' &&
      /did not finish/.test(error.message),
  )
})
