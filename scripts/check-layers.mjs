#!/usr/bin/env node
// Self-check of the layering rule (scripts/layers.mjs): lints small sources in memory, as files of
// each folder, with the same rule options eslint.config.js applies, and fails unless every
// forbidden import is reported and every allowed one is not. `npm run lint` runs it.
import { ESLint } from 'eslint'
import tseslint from 'typescript-eslint'
import { layerConfigs } from './layers.mjs'

const cases = [
  { file: 'client/cli/x.ts', source: "import { mintToken } from '../../server/auth.js'", ok: false },
  { file: 'client/x.ts', source: "import type { Config } from '../server/config.js'", ok: false },
  { file: 'client/x.ts', source: "export { FacewireError } from '../server/errors.js'", ok: false },
  { file: 'client/kiosk/x.ts', source: "import { parseFrame } from '../../protocol/frame.js'", ok: true },
  { file: 'client/x.ts', source: "import { openDetectStream } from './stream-client.js'", ok: true },
  { file: 'protocol/x.ts', source: "import { ERRORS } from './errors.js'", ok: true },
  { file: 'protocol/x.ts', source: "import type { Config } from '../server/config.js'", ok: false },
  { file: 'protocol/x.ts', source: "import { readFileSync } from 'node:fs'", ok: false },
  {
    file: 'server/api/x.ts',
    source: "import { createApiClient } from '../../client/api-client.js'",
    ok: false,
  },
  { file: 'server/api/x.ts', source: "import uws from 'uWebSockets.js'", ok: false },
  { file: 'server/transport/x.ts', source: "import uws from 'uWebSockets.js'", ok: true },
  { file: 'server/cli/x.ts', source: "import { runEnroll } from '../../client/cli/enroll.js'", ok: true },
  { file: 'server/api/x.ts', source: "import { openStore } from '../gallery/store.js'", ok: false },
  { file: 'server/cli/x.ts', source: "import { openStore } from '../gallery/store.js'", ok: false },
  { file: 'server/gallery/x.ts', source: "import { openStore } from './store.js'", ok: true },
  { file: 'server/streams/x.ts', source: "import { Redis } from 'ioredis'", ok: false },
  { file: 'server/cli/x.ts', source: "import { Redis } from 'ioredis'", ok: false },
  { file: 'server/x.ts', source: "import type { Redis } from 'ioredis'", ok: true },
  { file: 'server/cluster/x.ts', source: "import { Redis } from 'ioredis'", ok: true },
  { file: 'server/cluster/x.ts', source: "import uws from 'uWebSockets.js'", ok: false },
  { file: 'test/x.ts', source: "import { startServer } from '../server/main.js'", ok: true },
]

const eslint = new ESLint({
  cwd: process.cwd(),
  overrideConfigFile: true,
  overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...layerConfigs],
})

let failures = 0
for (const { file, source, ok } of cases) {
  const [result] = await eslint.lintText(source + '\n', { filePath: file })
  const reported = (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports')
  const others = (result?.messages ?? []).filter((m) => m.ruleId !== 'no-restricted-imports')
  if (others.length > 0 || reported.length > 0 === ok) {
    failures++
    console.error(`layer check: ${file}: ${source}: expected ${ok ? 'allowed' : 'refused'}`, others)
  }
}
if (failures > 0) process.exit(1)
console.log(`layer rule refuses every forbidden import of ${cases.length} cases and allows the rest`)
