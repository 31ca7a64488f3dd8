import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { parseConfig, parseDataToolConfig, parseEmbeddingKeyText } from '../../server/config.js'
import { FacewireError } from '../../server/errors.js'

function configError(env: Record<string, string>): FacewireError {
  try {
    parseConfig(env)
  } catch (error) {
    assert.ok(error instanceof FacewireError)
    return error
  }
  assert.fail('parseConfig accepted an invalid environment')
}

test('an empty environment gives the documented defaults', () => {
  const config = parseConfig({})
  assert.equal(config.host, '127.0.0.1')
  assert.equal(config.port, 8080)
  assert.equal(config.dataDir, './data')
  assert.equal(config.logLevel, 'info')
  assert.equal(config.env, 'development')
  assert.equal(config.jwtSecret, undefined)
})

test('faces per image are bounded in one place: REST images and stream frames each by their variable', () => {
  const defaults = parseConfig({})
  assert.equal(defaults.maxFaces, 10)
  assert.equal(defaults.streams.maxFaces, 5)
  const set = parseConfig({ FACEWIRE_MAX_FACES: '3', FACEWIRE_STREAM_MAX_FACES: '2' })
  assert.equal(set.maxFaces, 3)
  assert.equal(set.streams.maxFaces, 2)
  assert.match(
    configError({ FACEWIRE_MAX_FACES: '0' }).message,
    /FACEWIRE_MAX_FACES: must be between 1 and 50/,
  )
})

test('the config is frozen', () => {
  const config = parseConfig({ PORT: '9000' })
  assert.equal(config.port, 9000)
  assert.ok(Object.isFrozen(config))
})

test('a bad port fails with a message naming PORT', () => {
  const error = configError({ PORT: 'eighty' })
  assert.equal(error.code, 'ERR_CONFIG_INVALID')
  assert.match(error.message, /PORT/)
  assert.deepEqual(error.details?.['variables'], ['PORT'])
})

test('a port out of range fails with a message naming PORT', () => {
  assert.match(configError({ PORT: '70000' }).message, /PORT: must be between 0 and 65535/)
})

test('an unknown log level fails with a message naming LOG_LEVEL', () => {
  assert.match(configError({ LOG_LEVEL: 'loud' }).message, /LOG_LEVEL/)
})

test('every bad variable is named at once', () => {
  const error = configError({ PORT: '-1', LOG_LEVEL: 'loud', FACEWIRE_SHUTDOWN_TIMEOUT_MS: '0' })
  assert.deepEqual([...(error.details?.['variables'] as string[])].sort(), [
    'FACEWIRE_SHUTDOWN_TIMEOUT_MS',
    'LOG_LEVEL',
    'PORT',
  ])
})

test('a short JWT secret is refused', () => {
  assert.match(configError({ FACEWIRE_JWT_SECRET: 'short' }).message, /FACEWIRE_JWT_SECRET/)
})

test('production refuses to start without FACEWIRE_JWT_SECRET', () => {
  const error = configError({ NODE_ENV: 'production' })
  assert.match(error.message, /FACEWIRE_JWT_SECRET: required when NODE_ENV=production/)
})

test('production accepts a configured secret', () => {
  const secret = 'x'.repeat(40)
  assert.equal(parseConfig({ NODE_ENV: 'production', FACEWIRE_JWT_SECRET: secret }).jwtSecret, secret)
})

test('empty strings count as unset', () => {
  assert.equal(parseConfig({ PORT: '', HOST: '' }).port, 8080)
})

test('FACEWIRE_EMBEDDING_KEY_PREVIOUS is read beside the current key, and refused alone or equal to it', () => {
  const current = randomBytes(32).toString('base64')
  const previous = randomBytes(32).toString('base64')
  const config = parseConfig({ FACEWIRE_EMBEDDING_KEY: current, FACEWIRE_EMBEDDING_KEY_PREVIOUS: previous })
  assert.deepEqual(config.embeddingKey, Buffer.from(current, 'base64'))
  assert.deepEqual(config.embeddingKeyPrevious, Buffer.from(previous, 'base64'))
  assert.equal(config.newEmbeddingKey, undefined)
  const alone = configError({ FACEWIRE_EMBEDDING_KEY_PREVIOUS: previous })
  assert.match(alone.message, /FACEWIRE_EMBEDDING_KEY_PREVIOUS: needs FACEWIRE_EMBEDDING_KEY/)
  assert.deepEqual(alone.details, { variables: ['FACEWIRE_EMBEDDING_KEY_PREVIOUS'] })
  const same = configError({ FACEWIRE_EMBEDDING_KEY: current, FACEWIRE_EMBEDDING_KEY_PREVIOUS: current })
  assert.match(same.message, /FACEWIRE_EMBEDDING_KEY_PREVIOUS: is FACEWIRE_EMBEDDING_KEY itself/)
  for (const name of ['FACEWIRE_EMBEDDING_KEY_PREVIOUS', 'FACEWIRE_NEW_EMBEDDING_KEY']) {
    assert.match(
      configError({ FACEWIRE_EMBEDDING_KEY: current, [name]: 'c2hvcnQ=' }).message,
      new RegExp(`${name}: must be 32 bytes`),
    )
  }
})

test('the data tools read only their variables: a server setting that is missing or wrong does not stop them', () => {
  const key = randomBytes(32).toString('base64')
  const config = parseDataToolConfig({
    NODE_ENV: 'production',
    PORT: 'not a port',
    FACEWIRE_DATA_DIR: '/srv/facewire',
    FACEWIRE_NEW_EMBEDDING_KEY: key,
  })
  assert.equal(config.dataDir, '/srv/facewire')
  assert.equal(config.logLevel, 'warn', 'the tools print their own report; logs only from warn')
  assert.deepEqual(config.newEmbeddingKey, Buffer.from(key, 'base64'))
  assert.equal(config.embeddingKey, undefined)
  assert.equal(parseDataToolConfig({}).dataDir, './data')
  assert.throws(
    () => parseDataToolConfig({ FACEWIRE_EMBEDDING_KEY_PREVIOUS: key }),
    (error: unknown) => error instanceof FacewireError && error.code === 'ERR_CONFIG_INVALID',
  )
  assert.throws(
    () => parseDataToolConfig({ FACEWIRE_DATABASE_URL: 'postgres://db/facewire' }),
    (error: unknown) =>
      error instanceof FacewireError && error.code === 'ERR_CONFIG_INVALID' && /pg_dump/.test(error.message),
    'the SQLite tools refuse a cluster configuration instead of working on an empty data folder',
  )
})

test('FACEWIRE_DATABASE_URL must be a PostgreSQL URL; cluster settings reach the config', () => {
  const base = { FACEWIRE_JWT_SECRET: 'a-secret-that-is-long-enough-for-tests-1234' }
  const config = parseConfig({
    ...base,
    FACEWIRE_DATABASE_URL: 'postgres://u:p@db:5432/f',
    FACEWIRE_SYNC_POLL_MS: '250',
  })
  assert.equal(config.databaseUrl, 'postgres://u:p@db:5432/f')
  assert.equal(config.syncPollMs, 250)
  assert.equal(parseConfig(base).databaseUrl, undefined)
  assert.throws(
    () => parseConfig({ ...base, FACEWIRE_DATABASE_URL: 'mysql://db/f' }),
    (error: unknown) => error instanceof FacewireError && /FACEWIRE_DATABASE_URL/.test(error.message),
  )
})

test('a key file holds the key as the environment does, whitespace around it ignored', () => {
  const raw = randomBytes(32)
  assert.deepEqual(parseEmbeddingKeyText(`  ${raw.toString('base64')}\n`, '--new-key-file k'), raw)
  for (const text of ['', 'not base64!', randomBytes(16).toString('base64'), raw.toString('hex')]) {
    assert.throws(
      () => parseEmbeddingKeyText(text, '--new-key-file k'),
      (error: unknown) =>
        error instanceof FacewireError &&
        error.code === 'ERR_CONFIG_INVALID' &&
        /--new-key-file k: must be 32 bytes in base64/.test(error.message) &&
        !error.message.includes(raw.toString('hex')),
    )
  }
})

test('FACEWIRE_TRUSTED_PROXIES takes addresses and CIDR ranges, and names what it refuses', () => {
  assert.deepEqual(parseConfig({}).trustedProxies, [])
  const config = parseConfig({ FACEWIRE_TRUSTED_PROXIES: '127.0.0.1, 172.16.0.0/12,fd00::/8,::1' })
  assert.deepEqual(config.trustedProxies, [
    { address: '127.0.0.1', family: 4, prefix: undefined },
    { address: '172.16.0.0', family: 4, prefix: 12 },
    { address: 'fd00::', family: 6, prefix: 8 },
    { address: '::1', family: 6, prefix: undefined },
  ])
  assert.ok(Object.isFrozen(config.trustedProxies))
  for (const bad of ['nginx', '10.0.0.0/33', '10.0.0.1/8/1', 'fd00::/129', '10.0.0.0/x']) {
    assert.match(
      configError({ FACEWIRE_TRUSTED_PROXIES: `127.0.0.1,${bad}` }).message,
      new RegExp(
        `FACEWIRE_TRUSTED_PROXIES: must be IP addresses or CIDR ranges .*not ${bad.replace(/[./]/g, '\\$&')}`,
      ),
    )
  }
})

test('FACEWIRE_CORS_ORIGINS takes exact origins only: no wildcard, path, trailing slash or null', () => {
  assert.deepEqual(parseConfig({}).corsOrigins, [])
  const config = parseConfig({
    FACEWIRE_CORS_ORIGINS: 'https://app.example.com, http://localhost:3000,http://[::1]:8081',
  })
  assert.deepEqual(config.corsOrigins, [
    'https://app.example.com',
    'http://localhost:3000',
    'http://[::1]:8081',
  ])
  assert.ok(Object.isFrozen(config.corsOrigins))
  for (const bad of [
    '*',
    'null',
    'https://app.example.com/',
    'https://app.example.com/path',
    'app.example.com',
    'ftp://files.example.com',
    'https://APP.example.com',
    'https://app.example.com:443',
  ]) {
    assert.match(
      configError({ FACEWIRE_CORS_ORIGINS: `https://ok.example.com,${bad}` }).message,
      /FACEWIRE_CORS_ORIGINS: must be exact origins .*, not /,
      bad,
    )
  }
})

test('cluster mode Redis is off unless FACEWIRE_REDIS_URL is set; a bad URL is refused without echoing it', () => {
  assert.equal(parseConfig({}).redis, undefined)
  assert.equal(parseConfig({ FACEWIRE_REDIS_PREFIX: 'x:' }).redis, undefined)
  const on = parseConfig({ FACEWIRE_REDIS_URL: 'redis://:s3cret@cache:6379/2' })
  assert.deepEqual(on.redis, { url: 'redis://:s3cret@cache:6379/2', prefix: 'facewire:' })
  assert.equal(
    parseConfig({ FACEWIRE_REDIS_URL: 'rediss://cache', FACEWIRE_REDIS_PREFIX: 'eu:' }).redis?.prefix,
    'eu:',
  )
  for (const url of ['http://cache:6379', 'cache:6379', 'redis://', 'redis://:s3cret@']) {
    const error = configError({ FACEWIRE_REDIS_URL: url })
    assert.deepEqual(error.details?.['variables'], ['FACEWIRE_REDIS_URL'], url)
    assert.ok(!error.message.includes('s3cret'), 'the password is not echoed')
  }
  for (const prefix of ['has space:', 'x'.repeat(65), 'glob*:']) {
    assert.match(
      configError({ FACEWIRE_REDIS_PREFIX: prefix }).message,
      /FACEWIRE_REDIS_PREFIX: must be 1 to 64/,
    )
  }
})

test('outbound events: MQTT needs its broker and its organizations together, and the prefix must be topic levels', () => {
  const none = parseConfig({})
  assert.deepEqual(none.outbound, { webhooksFile: undefined, mqtt: undefined })
  const set = parseConfig({
    FACEWIRE_WEBHOOKS_FILE: '/etc/facewire/webhooks.json',
    FACEWIRE_MQTT_URL: 'mqtt://user:broker-password@broker.lan:1883',
    FACEWIRE_MQTT_ORGS: ' acme, home ,acme',
    FACEWIRE_MQTT_PREFIX: 'home/facewire',
  })
  assert.equal(set.outbound.webhooksFile, '/etc/facewire/webhooks.json')
  assert.deepEqual(set.outbound.mqtt, {
    url: 'mqtt://user:broker-password@broker.lan:1883',
    prefix: 'home/facewire',
    orgs: ['acme', 'home'],
    queueSize: 1000,
  })
  assert.equal(
    parseConfig({ FACEWIRE_MQTT_URL: 'mqtts://b', FACEWIRE_MQTT_ORGS: 'a' }).outbound.mqtt?.prefix,
    'facewire',
  )

  assert.match(
    configError({ FACEWIRE_MQTT_URL: 'mqtt://b' }).message,
    /FACEWIRE_MQTT_ORGS: required with FACEWIRE_MQTT_URL/,
  )
  assert.match(
    configError({ FACEWIRE_MQTT_ORGS: 'acme' }).message,
    /FACEWIRE_MQTT_URL: required with FACEWIRE_MQTT_ORGS/,
  )
  const badUrl = configError({ FACEWIRE_MQTT_URL: 'http://user:broker-password@b', FACEWIRE_MQTT_ORGS: 'a' })
  assert.match(badUrl.message, /FACEWIRE_MQTT_URL: must be a broker URL/)
  assert.ok(!badUrl.message.includes('broker-password'), 'the password is not repeated')
  assert.match(
    configError({ FACEWIRE_MQTT_URL: 'mqtt://b', FACEWIRE_MQTT_ORGS: 'acme,bad org' }).message,
    /FACEWIRE_MQTT_ORGS\.1: organization ids must match/,
  )
  for (const prefix of ['facewire/', '/facewire', 'a//b', 'face+wire', 'home/#', '$SYS']) {
    assert.match(
      configError({ FACEWIRE_MQTT_URL: 'mqtt://b', FACEWIRE_MQTT_ORGS: 'a', FACEWIRE_MQTT_PREFIX: prefix })
        .message,
      /FACEWIRE_MQTT_PREFIX: must/,
      prefix,
    )
  }
})
