// Which folder may import what: the `no-restricted-imports` options of each layer, shared by
// eslint.config.js and its self-check (scripts/check-layers.mjs).
const uws = {
  name: 'uWebSockets.js',
  message: 'Only server/transport imports uWebSockets.js.',
  allowTypeImports: true,
}

const ioredis = {
  name: 'ioredis',
  message: 'Only server/cluster opens Redis connections (server/cluster/redis.ts).',
  allowTypeImports: true,
}

const notClient = {
  group: ['**/client/**'],
  message: 'server/ does not import client/ (only server/cli may).',
}

const notStore = {
  group: ['**/gallery/store.js'],
  message: 'the gallery store is private: go through the Gallery facade (server/gallery/index.ts).',
}

/** Options for `no-restricted-imports`, by layer. */
export const layers = {
  /** Everything not named below (bench/, test/, models/converter/, scripts/). */
  default: { paths: [uws] },
  /** The wire contract: a leaf shared with browsers. Nothing of the project, nothing of Node. */
  protocol: {
    paths: [uws],
    patterns: [
      { group: ['../*', '../**'], message: 'protocol/ is a leaf: it imports only protocol/ files.' },
      { group: ['node:*'], message: 'protocol/ runs in browsers: no Node built-ins.' },
    ],
  },
  /** Programs that talk to a server over the wire: protocol/ and their own files only. */
  client: {
    paths: [uws],
    patterns: [
      {
        group: ['**/server/**', '**/server', '**/bench/**', '**/models/converter/**'],
        message: 'client/ imports only protocol/ and client/ (the wire contract, never server code).',
      },
    ],
  },
  /** Server code never depends on a client; only the binary's dispatcher (server/cli) may. */
  server: { paths: [uws, ioredis], patterns: [notClient, notStore] },
  /** The gallery's own modules may open its store. */
  gallery: { paths: [uws, ioredis], patterns: [notClient] },
  /** The only folder that may import uWebSockets.js. */
  transport: { paths: [ioredis], patterns: [notClient, notStore] },
  /** The only folder that may open Redis connections. */
  cluster: { paths: [uws], patterns: [notClient, notStore] },
}

/** Flat-config entries applying each layer to its files (later entries win for a file). */
export const layerConfigs = [
  { files: ['**/*.ts'], rules: { 'no-restricted-imports': ['error', layers.default] } },
  { files: ['protocol/**/*.ts'], rules: { 'no-restricted-imports': ['error', layers.protocol] } },
  { files: ['client/**/*.ts'], rules: { 'no-restricted-imports': ['error', layers.client] } },
  { files: ['server/**/*.ts'], rules: { 'no-restricted-imports': ['error', layers.server] } },
  { files: ['server/gallery/**/*.ts'], rules: { 'no-restricted-imports': ['error', layers.gallery] } },
  {
    files: ['server/cli/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [uws, ioredis], patterns: [notStore] }] },
  },
  { files: ['server/transport/**/*.ts'], rules: { 'no-restricted-imports': ['error', layers.transport] } },
  { files: ['server/cluster/**/*.ts'], rules: { 'no-restricted-imports': ['error', layers.cluster] } },
]
