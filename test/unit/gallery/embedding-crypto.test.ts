import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import { test } from 'node:test'
import { FacewireError } from '../../../server/errors.js'
import {
  createEmbeddingKeyRing,
  EMBEDDING_FORMAT,
  embeddingKeyId,
  isEncryptedBlob,
  openEmbedding,
  parseEmbeddingBlob,
  parseEmbeddingKey,
  sealEmbedding,
  toEmbeddingBlob,
} from '../../../server/gallery/embedding-crypto.js'

const owner = { org: 'acme', faceId: '3f2b7c1e-8a4d-4c2e-9b1f-0a2b3c4d5e6f' }

function vector(dim = 128): Float32Array {
  return Float32Array.from({ length: dim }, (_, index) => Math.cos(index * 1.618) / 3)
}

function errorOf(fn: () => unknown): FacewireError {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof FacewireError, `expected a FacewireError, got ${String(error)}`)
    return error
  }
  assert.fail('expected a FacewireError')
}

test('stores a clear embedding as format byte 0 then its float32 little-endian bytes', () => {
  const embedding = vector()
  const blob = toEmbeddingBlob(embedding, owner, undefined)
  assert.equal(blob.length, 1 + 128 * 4)
  assert.equal(blob[0], EMBEDDING_FORMAT.clear)
  assert.equal(isEncryptedBlob(blob), false)
  for (let index = 0; index < embedding.length; index++) {
    assert.equal(blob.readFloatLE(1 + index * 4), embedding[index])
  }
  assert.deepEqual(parseEmbeddingBlob(blob, owner, undefined), embedding)
})

test('encrypts as format byte 1, a 12-byte IV, a 16-byte tag and ciphertext as long as the floats', () => {
  const key = parseEmbeddingKey(randomBytes(32))
  const embedding = vector()
  const blob = toEmbeddingBlob(embedding, owner, key)
  assert.equal(blob[0], EMBEDDING_FORMAT.aes256gcm)
  assert.equal(isEncryptedBlob(blob), true)
  assert.equal(blob.length, 1 + 12 + 16 + 128 * 4)
  const clear = Buffer.from(embedding.buffer)
  assert.equal(blob.indexOf(clear.subarray(0, 8)), -1, 'no clear bytes in the blob')
  assert.deepEqual(parseEmbeddingBlob(blob, owner, key), embedding)
})

test('keeps whatever dimension it is given', () => {
  const key = parseEmbeddingKey(randomBytes(32))
  for (const dim of [1, 3, 128, 512]) {
    assert.deepEqual(parseEmbeddingBlob(toEmbeddingBlob(vector(dim), owner, key), owner, key), vector(dim))
    assert.deepEqual(
      parseEmbeddingBlob(toEmbeddingBlob(vector(dim), owner, undefined), owner, undefined),
      vector(dim),
    )
  }
})

test('encrypts the same embedding differently every time (a fresh IV per blob)', () => {
  const key = parseEmbeddingKey(randomBytes(32))
  const first = toEmbeddingBlob(vector(), owner, key)
  const second = toEmbeddingBlob(vector(), owner, key)
  assert.notDeepEqual(first.subarray(1, 13), second.subarray(1, 13))
  assert.notDeepEqual(first, second)
})

test('reads an embedding from a blob at any byte offset, such as a slice of a larger buffer', () => {
  const key = parseEmbeddingKey(randomBytes(32))
  for (const k of [undefined, key]) {
    const blob = toEmbeddingBlob(vector(), owner, k)
    const padded = Buffer.concat([Buffer.of(9, 9, 9), blob])
    assert.deepEqual(parseEmbeddingBlob(padded.subarray(3), owner, k), vector())
  }
})

test('fails authentication with ERR_CONFIG_INVALID naming FACEWIRE_EMBEDDING_KEY for another key, org, face or any altered byte', () => {
  const raw = randomBytes(32)
  const key = parseEmbeddingKey(raw)
  const blob = toEmbeddingBlob(vector(), owner, key)
  const attempts: (() => unknown)[] = [
    () => parseEmbeddingBlob(blob, owner, parseEmbeddingKey(randomBytes(32))),
    () => parseEmbeddingBlob(blob, { ...owner, org: 'other' }, key),
    () => parseEmbeddingBlob(blob, { ...owner, faceId: 'another-face' }, key),
  ]
  for (const offset of [1, 13, 29, blob.length - 1]) {
    const altered = Buffer.from(blob)
    altered[offset] = (altered[offset] ?? 0) ^ 0x01
    attempts.push(() => parseEmbeddingBlob(altered, owner, key))
  }
  for (const attempt of attempts) {
    const error = errorOf(attempt)
    assert.equal(error.code, 'ERR_CONFIG_INVALID')
    assert.match(error.message, /FACEWIRE_EMBEDDING_KEY/)
    assert.deepEqual(error.details, { variables: ['FACEWIRE_EMBEDDING_KEY'] })
    for (const encoding of ['hex', 'base64'] as const) {
      assert.ok(!error.message.includes(raw.toString(encoding)), 'the key is never in a message')
    }
  }
})

test('refuses to read an encrypted blob without a key, naming FACEWIRE_EMBEDDING_KEY', () => {
  const blob = toEmbeddingBlob(vector(), owner, parseEmbeddingKey(randomBytes(32)))
  const error = errorOf(() => parseEmbeddingBlob(blob, owner, undefined))
  assert.equal(error.code, 'ERR_CONFIG_INVALID')
  assert.match(error.message, /FACEWIRE_EMBEDDING_KEY is not set/)
})

test('reads a clear blob whether or not a key is configured', () => {
  const blob = toEmbeddingBlob(vector(), owner, undefined)
  assert.deepEqual(parseEmbeddingBlob(blob, owner, parseEmbeddingKey(randomBytes(32))), vector())
  assert.deepEqual(parseEmbeddingBlob(blob, { org: 'x', faceId: 'y' }, undefined), vector())
})

test('accepts only a 32-byte key and never shows its bytes', () => {
  assert.equal(parseEmbeddingKey(undefined), undefined)
  for (const length of [0, 1, 16, 31, 33, 64]) {
    const raw = randomBytes(length)
    const error = errorOf(() => parseEmbeddingKey(raw))
    assert.equal(error.code, 'ERR_CONFIG_INVALID')
    assert.match(error.message, /FACEWIRE_EMBEDDING_KEY: must be 32 bytes/)
    if (length > 0) assert.ok(!error.message.includes(raw.toString('hex')))
  }
  const raw = randomBytes(32)
  const key = parseEmbeddingKey(raw)
  assert.ok(key !== undefined)
  const shown = inspect(key, { depth: 5 }) + JSON.stringify(key)
  assert.ok(!shown.includes(raw.toString('hex')) && !shown.includes(raw.toString('base64')))
})

test('reports a truncated, misaligned or unknown-format blob as ERR_INTERNAL', () => {
  const key = parseEmbeddingKey(randomBytes(32))
  const encrypted = toEmbeddingBlob(vector(), owner, key)
  const clear = toEmbeddingBlob(vector(), owner, undefined)
  const broken = [
    Buffer.alloc(0),
    Buffer.of(EMBEDDING_FORMAT.clear),
    clear.subarray(0, clear.length - 1),
    encrypted.subarray(0, 1 + 12 + 16),
    encrypted.subarray(0, encrypted.length - 2),
    Buffer.concat([Buffer.of(7), clear.subarray(1)]),
  ]
  for (const blob of broken) {
    assert.equal(errorOf(() => parseEmbeddingBlob(blob, owner, key)).code, 'ERR_INTERNAL')
  }
})

test('a key id is 16 hex digits, the same for the same key, different for another, and shows none of the key', () => {
  const raw = randomBytes(32)
  const id = embeddingKeyId(parseEmbeddingKey(raw) ?? assert.fail())
  assert.match(id, /^[0-9a-f]{16}$/)
  assert.equal(embeddingKeyId(parseEmbeddingKey(Buffer.from(raw)) ?? assert.fail()), id)
  assert.notEqual(embeddingKeyId(parseEmbeddingKey(randomBytes(32)) ?? assert.fail()), id)
  assert.ok(!raw.toString('hex').includes(id))
})

test('a key ring writes under its current key and reads rows under the current or the previous key by their key id', () => {
  const oldRaw = randomBytes(32)
  const newRaw = randomBytes(32)
  const old = createEmbeddingKeyRing(oldRaw)
  const ring = createEmbeddingKeyRing(newRaw, [{ key: oldRaw, variable: 'FACEWIRE_EMBEDDING_KEY_PREVIOUS' }])
  assert.deepEqual([...ring.keys.keys()], [ring.current?.id, old.current?.id], 'the current key first')

  const underOld = sealEmbedding(vector(), owner, old)
  assert.equal(underOld.keyId, old.current?.id)
  const underNew = sealEmbedding(vector(), owner, ring)
  assert.equal(underNew.keyId, ring.current?.id)
  assert.deepEqual(openEmbedding(underOld.blob, owner, underOld.keyId, ring), vector())
  assert.deepEqual(openEmbedding(underNew.blob, owner, underNew.keyId, ring), vector())
  // The old key alone does not open what the new one wrote.
  const error = errorOf(() => openEmbedding(underNew.blob, owner, underNew.keyId, old))
  assert.equal(error.code, 'ERR_CONFIG_INVALID')
  assert.match(error.message, new RegExp(`key ${underNew.keyId ?? 'none'}`))
  assert.match(error.message, /FACEWIRE_EMBEDDING_KEY_PREVIOUS/)
  for (const raw of [oldRaw, newRaw]) {
    for (const encoding of ['hex', 'base64'] as const)
      assert.ok(!error.message.includes(raw.toString(encoding)))
  }
})

test('a row without a key id is opened by whichever key of the ring fits, and clear rows by any ring', () => {
  const oldRaw = randomBytes(32)
  const legacy = toEmbeddingBlob(vector(), owner, parseEmbeddingKey(oldRaw))
  const ring = createEmbeddingKeyRing(randomBytes(32), [
    { key: oldRaw, variable: 'FACEWIRE_EMBEDDING_KEY_PREVIOUS' },
  ])
  assert.deepEqual(openEmbedding(legacy, owner, null, ring), vector())
  const stranger = createEmbeddingKeyRing(randomBytes(32))
  assert.equal(errorOf(() => openEmbedding(legacy, owner, null, stranger)).code, 'ERR_CONFIG_INVALID')
  const noKeys = createEmbeddingKeyRing(undefined)
  assert.match(
    errorOf(() => openEmbedding(legacy, owner, null, noKeys)).message,
    /FACEWIRE_EMBEDDING_KEY is not set/,
  )

  const clear = sealEmbedding(vector(), owner, noKeys)
  assert.equal(clear.keyId, null)
  assert.equal(isEncryptedBlob(clear.blob), false)
  for (const any of [noKeys, ring, stranger])
    assert.deepEqual(openEmbedding(clear.blob, owner, null, any), vector())
})

test('a key ring refuses a previous key without a current one and drops a previous key equal to the current', () => {
  const raw = randomBytes(32)
  const error = errorOf(() =>
    createEmbeddingKeyRing(undefined, [{ key: raw, variable: 'FACEWIRE_EMBEDDING_KEY_PREVIOUS' }]),
  )
  assert.equal(error.code, 'ERR_CONFIG_INVALID')
  assert.match(error.message, /FACEWIRE_EMBEDDING_KEY_PREVIOUS: needs FACEWIRE_EMBEDDING_KEY/)
  const short = errorOf(() =>
    createEmbeddingKeyRing(randomBytes(32), [
      { key: randomBytes(16), variable: 'FACEWIRE_EMBEDDING_KEY_PREVIOUS' },
    ]),
  )
  assert.match(short.message, /FACEWIRE_EMBEDDING_KEY_PREVIOUS: must be 32 bytes/)
  const same = createEmbeddingKeyRing(raw, [
    { key: Buffer.from(raw), variable: 'FACEWIRE_EMBEDDING_KEY_PREVIOUS' },
  ])
  assert.equal(same.keys.size, 1)
})
