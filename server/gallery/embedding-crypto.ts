import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  randomBytes,
  type KeyObject,
} from 'node:crypto'
import { endianness } from 'node:os'
import { FacewireError } from '../errors.js'

/*
 * How an embedding is stored in the faces.embedding column. The first byte is the format:
 *   0  clear:          float32 little-endian values
 *   1  AES-256-GCM:    12-byte random IV | 16-byte tag | ciphertext of the clear float32 bytes
 * The GCM additional data is `${org}\n${faceId}`, so a blob copied onto another row (or another
 * organization) fails authentication instead of decrypting as someone else's face. Face ids are
 * UUIDs (no newline), so the additional data is unambiguous.
 *
 * Which key encrypted a row is recorded beside it (faces.key_id) as the key's id: an HMAC of a
 * fixed label under the key, so it names a key without revealing it. A key ring (the current key
 * plus the previous one while a rotation runs) reads rows under any of its keys and writes under
 * the current one.
 */

/** Length of FACEWIRE_EMBEDDING_KEY in bytes (AES-256). */
export const EMBEDDING_KEY_BYTES = 32

/** First byte of a stored embedding: its format. */
export const EMBEDDING_FORMAT = { clear: 0, aes256gcm: 1 } as const

const IV_BYTES = 12
const TAG_BYTES = 16
const CLEAR_HEADER_BYTES = 1
const ENCRYPTED_HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES
const LITTLE_ENDIAN = endianness() === 'LE'
const KEY_VARIABLE = 'FACEWIRE_EMBEDDING_KEY'
const PREVIOUS_KEY_VARIABLE = 'FACEWIRE_EMBEDDING_KEY_PREVIOUS'

/** The row an embedding belongs to; bound into the ciphertext. */
export interface EmbeddingOwner {
  org: string
  faceId: string
}

/**
 * Validates the embedding key and wraps it in a KeyObject (its bytes never show up when the
 * object is logged or inspected). Throws ERR_CONFIG_INVALID naming `variable`
 * (FACEWIRE_EMBEDDING_KEY by default).
 */
export function parseEmbeddingKey(
  key: Uint8Array | undefined,
  variable = KEY_VARIABLE,
): KeyObject | undefined {
  if (key === undefined) return undefined
  if (key.length !== EMBEDDING_KEY_BYTES) {
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `invalid configuration: ${variable}: must be ${EMBEDDING_KEY_BYTES} bytes (got ${key.length})`,
      { details: { variables: [variable] } },
    )
  }
  return createSecretKey(key)
}

/** Hex characters of a key id (64 bits of the HMAC: ids of distinct keys never meet in practice). */
const KEY_ID_HEX = 16
const KEY_ID_LABEL = 'facewire embedding key id v1'

/** The id recorded beside each row a key encrypts: HMAC-SHA256(key, fixed label), 16 hex digits. */
export function embeddingKeyId(key: KeyObject): string {
  return createHmac('sha256', key).update(KEY_ID_LABEL).digest('hex').slice(0, KEY_ID_HEX)
}

/** The keys a store reads with, and the one it writes with. */
export interface EmbeddingKeyRing {
  /** Writes are encrypted under it; undefined = written in clear. */
  readonly current: { readonly id: string; readonly key: KeyObject } | undefined
  /** Every key by id, the current one first. */
  readonly keys: ReadonlyMap<string, KeyObject>
}

/**
 * The current key plus older ones still readable (FACEWIRE_EMBEDDING_KEY_PREVIOUS while a rotation
 * runs). A previous key equal to the current one, or to another previous one, is dropped. Throws
 * ERR_CONFIG_INVALID for a key that is not 32 bytes, and for previous keys without a current one
 * (a rotation always has a key to rotate to).
 */
export function createEmbeddingKeyRing(
  current: Uint8Array | undefined,
  previous: readonly { key: Uint8Array; variable: string }[] = [],
): EmbeddingKeyRing {
  const currentKey = parseEmbeddingKey(current)
  const keys = new Map<string, KeyObject>()
  const currentEntry =
    currentKey === undefined ? undefined : { id: embeddingKeyId(currentKey), key: currentKey }
  if (currentEntry !== undefined) keys.set(currentEntry.id, currentEntry.key)
  for (const { key, variable } of previous) {
    const parsed = parseEmbeddingKey(key, variable)
    if (parsed === undefined) continue
    if (currentEntry === undefined) {
      throw new FacewireError(
        'ERR_CONFIG_INVALID',
        `invalid configuration: ${variable}: needs ${KEY_VARIABLE} (the key new embeddings are written under)`,
        { details: { variables: [variable, KEY_VARIABLE] } },
      )
    }
    const id = embeddingKeyId(parsed)
    if (!keys.has(id)) keys.set(id, parsed)
  }
  return { current: currentEntry, keys }
}

/** A stored embedding and the id of the key that encrypted it (null when stored in clear). */
export interface SealedEmbedding {
  blob: Buffer
  keyId: string | null
}

/** Encrypts under the ring's current key (clear without one). */
export function sealEmbedding(
  embedding: Float32Array,
  owner: EmbeddingOwner,
  ring: EmbeddingKeyRing,
): SealedEmbedding {
  return {
    blob: toEmbeddingBlob(embedding, owner, ring.current?.key),
    keyId: ring.current?.id ?? null,
  }
}

/**
 * Reads a stored embedding with the ring: a row with a key id is decrypted by that key only; a
 * row without one (clear, or encrypted before key ids were recorded) by each key in turn. Throws
 * ERR_CONFIG_INVALID naming the key variables when no key of the ring opens it.
 */
export function openEmbedding(
  blob: Uint8Array,
  owner: EmbeddingOwner,
  keyId: string | null,
  ring: EmbeddingKeyRing,
): Float32Array {
  if (!isEncryptedBlob(blob)) return parseEmbeddingBlob(blob, owner, undefined)
  if (keyId !== null) {
    const key = ring.keys.get(keyId)
    if (key === undefined) throw unknownKey(keyId, ring)
    return parseEmbeddingBlob(blob, owner, key)
  }
  if (ring.keys.size === 0) return parseEmbeddingBlob(blob, owner, undefined)
  let failure: FacewireError | undefined
  for (const key of ring.keys.values()) {
    try {
      return parseEmbeddingBlob(blob, owner, key)
    } catch (error) {
      if (!(error instanceof FacewireError) || error.code !== 'ERR_CONFIG_INVALID') throw error
      failure ??= error
    }
  }
  throw failure ?? new FacewireError('ERR_INTERNAL')
}

/** ERR_CONFIG_INVALID for a row encrypted under a key the ring does not hold. */
export function unknownKey(keyId: string, ring: EmbeddingKeyRing): FacewireError {
  const held = [...ring.keys.keys()]
  const message =
    held.length === 0
      ? `the gallery holds embeddings encrypted under key ${keyId} but ${KEY_VARIABLE} is not set`
      : `embeddings are encrypted under key ${keyId}, which is neither ${KEY_VARIABLE} nor ${PREVIOUS_KEY_VARIABLE} ` +
        `(keys held: ${held.join(', ')}); while a key rotation is under way, set the old key as ${PREVIOUS_KEY_VARIABLE}`
  return new FacewireError('ERR_CONFIG_INVALID', message, {
    details: { variables: [KEY_VARIABLE, PREVIOUS_KEY_VARIABLE], keyId },
  })
}

/** The bytes stored for an embedding: encrypted when a key is given, clear otherwise. */
export function toEmbeddingBlob(
  embedding: Float32Array,
  owner: EmbeddingOwner,
  key: KeyObject | undefined,
): Buffer {
  const clear = toLittleEndianBytes(embedding)
  if (key === undefined) {
    return Buffer.concat([Buffer.of(EMBEDDING_FORMAT.clear), clear])
  }
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(additionalData(owner))
  const ciphertext = Buffer.concat([cipher.update(clear), cipher.final()])
  return Buffer.concat([Buffer.of(EMBEDDING_FORMAT.aes256gcm), iv, cipher.getAuthTag(), ciphertext])
}

/**
 * The embedding stored in `blob`. Throws ERR_CONFIG_INVALID naming FACEWIRE_EMBEDDING_KEY when an
 * encrypted blob is read without a key or fails authentication (another key, or a blob that was
 * moved or altered), and ERR_INTERNAL for a blob that is malformed.
 */
export function parseEmbeddingBlob(
  blob: Uint8Array,
  owner: EmbeddingOwner,
  key: KeyObject | undefined,
): Float32Array {
  const format = blob[0]
  if (format === EMBEDDING_FORMAT.clear) return fromLittleEndianBytes(checkedBody(blob, CLEAR_HEADER_BYTES))
  if (format === EMBEDDING_FORMAT.aes256gcm) return fromLittleEndianBytes(decrypt(blob, owner, key))
  throw malformed(`unknown embedding format ${String(format)}`)
}

/** Whether a stored embedding is encrypted (by its format byte). */
export function isEncryptedBlob(blob: Uint8Array): boolean {
  return blob[0] === EMBEDDING_FORMAT.aes256gcm
}

function decrypt(blob: Uint8Array, owner: EmbeddingOwner, key: KeyObject | undefined): Buffer {
  const ciphertext = checkedBody(blob, ENCRYPTED_HEADER_BYTES)
  if (key === undefined) {
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `the gallery holds encrypted embeddings but ${KEY_VARIABLE} is not set`,
      { details: { variables: [KEY_VARIABLE] } },
    )
  }
  const iv = blob.subarray(1, 1 + IV_BYTES)
  const tag = blob.subarray(1 + IV_BYTES, ENCRYPTED_HEADER_BYTES)
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
  decipher.setAAD(additionalData(owner))
  decipher.setAuthTag(tag)
  try {
    return Buffer.concat([decipher.update(ciphertext), decipher.final()])
  } catch (error) {
    // The cause is OpenSSL's "unable to authenticate data": it holds no key or embedding bytes.
    throw new FacewireError(
      'ERR_CONFIG_INVALID',
      `an embedding failed to decrypt: ${KEY_VARIABLE} is not the key it was written with, or the row was altered`,
      { cause: error, details: { variables: [KEY_VARIABLE] } },
    )
  }
}

function checkedBody(blob: Uint8Array, headerBytes: number): Uint8Array {
  const bodyBytes = blob.length - headerBytes
  if (bodyBytes <= 0 || bodyBytes % Float32Array.BYTES_PER_ELEMENT !== 0) {
    throw malformed(`embedding blob of ${blob.length} bytes is truncated or misaligned`)
  }
  return blob.subarray(headerBytes)
}

function malformed(reason: string): FacewireError {
  // A corrupt row is our bug or a damaged file, not the client's: ERR_INTERNAL, reason in the cause.
  return new FacewireError('ERR_INTERNAL', undefined, { cause: new Error(reason) })
}

function additionalData(owner: EmbeddingOwner): Buffer {
  return Buffer.from(`${owner.org}\n${owner.faceId}`, 'utf8')
}

function toLittleEndianBytes(embedding: Float32Array): Buffer {
  const bytes = Buffer.alloc(embedding.length * Float32Array.BYTES_PER_ELEMENT)
  if (LITTLE_ENDIAN) {
    bytes.set(new Uint8Array(embedding.buffer, embedding.byteOffset, bytes.length))
  } else {
    embedding.forEach((value, index) => bytes.writeFloatLE(value, index * Float32Array.BYTES_PER_ELEMENT))
  }
  return bytes
}

function fromLittleEndianBytes(bytes: Uint8Array): Float32Array {
  // Always a copy: the source may be unaligned (offset 1) or a pooled Buffer.
  const embedding = new Float32Array(bytes.length / Float32Array.BYTES_PER_ELEMENT)
  if (LITTLE_ENDIAN) {
    new Uint8Array(embedding.buffer).set(bytes)
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    for (let index = 0; index < embedding.length; index++) {
      embedding[index] = view.getFloat32(index * Float32Array.BYTES_PER_ELEMENT, true)
    }
  }
  return embedding
}
