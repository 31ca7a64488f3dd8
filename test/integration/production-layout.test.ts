/**
 * The Docker image without Docker: scripts/check-production-layout.sh replays the Dockerfile's
 * build, production-only install and runtime steps, starts the server with the image's CMD, ENV
 * and numeric USER on a read-only app folder, and reports what it checked as one JSON line. It
 * takes a few minutes (a production `npm ci` and native rebuilds) and needs the npm registry:
 * skipped when `npm ping` fails, except in CI.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const script = fileURLToPath(new URL('../../../scripts/check-production-layout.sh', import.meta.url))

async function registryReachable(): Promise<boolean> {
  try {
    await run('npm', ['ping'], { timeout: 30_000 })
    return true
  } catch {
    return false
  }
}

const skip =
  process.env['CI'] === undefined && !(await registryReachable())
    ? 'the npm registry is unreachable (npm ping)'
    : false

interface Summary {
  uid: number
  ready: number
  healthcheck: number
  kiosk: number
  kioskCsp: boolean
  npmLsOmitDev: number
  devPackages: string[]
  writesOutsideData: string[]
  exitCode: number
  errorLines: string[]
}

test(
  'the image installs production dependencies only and serves from them as a non-root user on a read-only root',
  { skip, timeout: 20 * 60_000 },
  async () => {
    let stdout = ''
    let stderr = ''
    let code = 0
    try {
      ;({ stdout, stderr } = await run('bash', [script], { maxBuffer: 16 * 1024 * 1024 }))
    } catch (error) {
      const failed = error as { code?: number; stdout?: string; stderr?: string }
      ;({ stdout = '', stderr = '', code = 1 } = failed)
    }
    assert.equal(code, 0, `check-production-layout.sh failed:\n${stderr.slice(-6000)}`)
    const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Summary
    assert.notEqual(summary.uid, 0, 'not root')
    assert.equal(summary.ready, 200)
    assert.equal(summary.healthcheck, 0, "the image's HEALTHCHECK command passes")
    assert.equal(summary.kiosk, 200, 'dist/kiosk is in the image')
    assert.equal(summary.kioskCsp, true)
    assert.equal(summary.npmLsOmitDev, 0, 'every production dependency is installed')
    assert.deepEqual(summary.devPackages, [], 'no dev-only package is installed')
    assert.deepEqual(summary.writesOutsideData, [], 'nothing is written outside FACEWIRE_DATA_DIR')
    assert.deepEqual(summary.errorLines, [], 'no error and no stray output in the log')
    assert.equal(summary.exitCode, 0, 'SIGTERM ends it cleanly')
  },
)
