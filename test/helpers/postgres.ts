/**
 * A fresh PostgreSQL database per test on the machine's server (FACEWIRE_TEST_POSTGRES_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres), dropped when the test ends; and restarting that
 * server (the cluster tests' fault injection).
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import type { TestContext } from 'node:test'
import pg from 'pg'

export const ADMIN_URL =
  process.env['FACEWIRE_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres'

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${name}`
  return parsed.toString()
}

/** Runs one statement on the admin database. */
export async function adminQuery<R extends pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: ADMIN_URL })
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end()
  }
}

/** Creates an empty database, dropped (connections and all) after the test; returns its URL. */
export async function freshDatabase(t: TestContext): Promise<string> {
  const name = `facewire_test_${randomBytes(6).toString('hex')}`
  await adminQuery(`CREATE DATABASE ${name}`)
  t.after(async () => {
    await ensurePostgresRunning()
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  })
  return withDatabase(ADMIN_URL, name)
}

/** Queries a test database directly (what the server wrote, bypassing facewire). */
export async function query<R extends pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end()
  }
}

/** The local cluster's version (Debian's layout: /etc/postgresql/<version>/main). */
function clusterVersion(): string {
  const [version] = readdirSync('/etc/postgresql')
  if (version === undefined) throw new Error('no PostgreSQL cluster under /etc/postgresql')
  return version
}

/** Restarts the machine's PostgreSQL (fast shutdown: every connection is cut). */
export function restartPostgres(): void {
  execFileSync(
    'pg_ctlcluster',
    ['--skip-systemctl-redirect', clusterVersion(), 'main', 'restart', '-m', 'fast'],
    {
      stdio: 'ignore',
    },
  )
}

/** Stops the machine's PostgreSQL (fast: every connection is cut); ensurePostgresRunning starts it. */
export function stopPostgres(): void {
  execFileSync(
    'pg_ctlcluster',
    ['--skip-systemctl-redirect', clusterVersion(), 'main', 'stop', '-m', 'fast'],
    {
      stdio: 'ignore',
    },
  )
}

/** Starts the machine's PostgreSQL if a test left it stopped. */
export async function ensurePostgresRunning(): Promise<void> {
  try {
    await adminQuery('SELECT 1')
  } catch {
    execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', clusterVersion(), 'main', 'start'], {
      stdio: 'ignore',
    })
  }
}
