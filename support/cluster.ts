// Shared by the failover fault test (test-faults/failover.faults.ts), the HAProxy test (test-faults/cluster.faults.ts)
// and `npm run bench:cluster`: a pg_auto_failover formation (Debian's postgresql-15-auto-failover: a monitor, a
// primary and a secondary with synchronous replication) and HAProxy in front of service instances, each with a
// generated configuration, in a folder of their own on free ports. scripts/ensure-cluster-tools.sh installs both.
// Everything started here is killed by destroy()/stop(), by process group, so nothing outlives the caller.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import { sleep } from './payment-load.js'
import { freePort } from './ports.js'

const asRoot = process.getuid?.() === 0

/** The pg_autoctl binary (Debian puts it in /usr/bin; the PostgreSQL binaries it drives are found by PG_CONFIG). */
export function pgAutoctl (): string | null {
  for (const p of ['/usr/bin/pg_autoctl', '/usr/lib/postgresql/15/bin/pg_autoctl']) if (fs.existsSync(p)) return p
  return spawnSync('pg_autoctl', ['--version'], { stdio: 'ignore' }).status === 0 ? 'pg_autoctl' : null
}

/** pg_config of the PostgreSQL the extension was built for (the package is postgresql-15-auto-failover). */
function pgConfig (): string | null {
  const p = '/usr/lib/postgresql/15/bin/pg_config'
  return fs.existsSync(p) ? p : null
}

/** Why a formation cannot be made on this machine, or null when it can. */
export function formationUnavailable (): string | null {
  if (pgAutoctl() == null) return 'pg_autoctl is not installed (postgresql-15-auto-failover, scripts/ensure-cluster-tools.sh)'
  if (pgConfig() == null) return 'PostgreSQL 15 server binaries are not installed'
  if (asRoot && spawnSync('id', ['postgres'], { stdio: 'ignore' }).status !== 0) return 'running as root and there is no postgres user to run pg_autoctl as'
  return null
}

// The monitor's failure detection, shortened so a failover takes seconds rather than ~40 s (pg_auto_failover's
// defaults: health checks every 5 s, unhealthy after 20 s, then 30 s for the old primary to demote itself). Safe
// here because the old primary's keeper is killed with it, so it cannot keep accepting writes; a deployment keeps
// primary_demote_timeout above the keepers' network_partition_timeout (docs/operations.md).
// Not shorter: on a loaded machine a check that gives up after a second fails over a healthy primary.
const MONITOR_SETTINGS: Record<string, number> = {
  'pgautofailover.health_check_period': 2000,
  'pgautofailover.health_check_timeout': 3000,
  'pgautofailover.health_check_max_retries': 2,
  'pgautofailover.health_check_retry_delay': 1000,
  'pgautofailover.node_considered_unhealthy_timeout': 8000,
  'pgautofailover.primary_demote_timeout': 5000,
}

export interface FormationNode {
  name: string
  port: number
  /** a single-host URL to this node's `db` */
  url: string
  /** the pg_autoctl process (keeper and postgres run in its process group) */
  proc: ChildProcess
}

export interface NodeState { name: string, port: number, reported: string, goal: string }

export interface Formation {
  monitorUrl: string
  nodes: FormationNode[]
  /** postgresql://…@127.0.0.1:p1,127.0.0.1:p2/db?target_session_attrs=read-write, as the service is given */
  multiHostUrl: string
  /** the nodes' states as the monitor sees them */
  state: () => Promise<NodeState[]>
  /** the node the monitor has as primary (reported and assigned), or null */
  primary: () => Promise<FormationNode | null>
  /** kill -9 the node's keeper and its postgres (the whole process group) */
  kill: (n: FormationNode) => void
  /** polls until `n` accepts writes (SHOW transaction_read_only = off); the milliseconds it took */
  waitWritable: (n: FormationNode, timeoutMs: number) => Promise<number>
  /** kills everything; removes the folder unless `keep` (its logs, for a failed run) */
  destroy: (keep?: boolean) => void
}

/**
 * The failover both the fault test and the cluster bench measure: kill -9 `primary` while `attempts` (a running
 * payment load's list) grows, wait until `standby` accepts writes, then until an attempt started after the kill is
 * answered 201 (null if none is within `timeoutMs`). Times are from the kill.
 */
export async function failOver (f: Formation, primary: FormationNode, standby: FormationNode,
  attempts: ReadonlyArray<{ status?: number | null }>, timeoutMs = 150_000): Promise<{ firstAfter: number, writableMs: number, resumedMs: number | null }> {
  const firstAfter = attempts.length
  const killedAt = Date.now()
  f.kill(primary)
  const writableMs = await f.waitWritable(standby, 120_000)
  while (Date.now() - killedAt < timeoutMs) {
    if (attempts.slice(firstAfter).some(a => a.status === 201)) return { firstAfter, writableMs, resumedMs: Date.now() - killedAt }
    await sleep(100)
  }
  return { firstAfter, writableMs, resumedMs: null }
}

/**
 * A monitor and two nodes, created with `pg_autoctl create … --run` in `dir` (as the postgres user when we are
 * root: initdb refuses root). Resolves once one node is primary and the other secondary, with synchronous
 * replication on (pg_auto_failover's default for two nodes: synchronous_standby_names = ANY 1 (…)).
 */
export async function startFormation (dir: string, o: { db?: string, timeoutMs?: number } = {}): Promise<Formation> {
  const why = formationUnavailable()
  if (why != null) throw new Error(why)
  const db = o.db ?? 'circulate'
  const bin = pgAutoctl()!
  fs.mkdirSync(dir, { recursive: true })
  fs.chmodSync(dir, 0o755)
  if (asRoot) spawnSync('chown', ['postgres', dir])
  const env = {
    PATH: `/usr/lib/postgresql/15/bin:${process.env.PATH ?? ''}`, PG_CONFIG: pgConfig()!,
    // pg_autoctl keeps its configuration and state under the XDG folders: this formation's own, not ~postgres's
    XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_DATA_HOME: path.join(dir, 'share'), XDG_RUNTIME_DIR: path.join(dir, 'run'),
  }
  const procs: ChildProcess[] = []
  const run = (name: string, args: string[]): ChildProcess => {
    const out = fs.openSync(path.join(dir, `${name}.log`), 'a')
    const cmd = asRoot ? 'runuser' : bin
    const full = asRoot ? ['-u', 'postgres', '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), bin, ...args] : args
    // its own process group: kill(-pid) reaches pg_autoctl, its services and the postgres they start
    const p = spawn(cmd, full, { env: { ...process.env, ...env }, stdio: ['ignore', out, out], detached: true })
    fs.closeSync(out)
    procs.push(p)
    return p
  }
  const killGroup = (p: ChildProcess) => { try { process.kill(-p.pid!, 'SIGKILL') } catch {} }
  const destroy = (keep = false) => {
    for (const p of procs) killGroup(p)
    if (!keep) fs.rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + (o.timeoutMs ?? 180_000)
  const until = async <T>(what: string, fn: () => Promise<T | null>): Promise<T> => {
    for (;;) {
      const v = await fn().catch(() => null)
      if (v != null) return v
      if (Date.now() > deadline) throw new Error(`pg_auto_failover: ${what} not reached in time; logs in ${dir}`)
      await sleep(250)
    }
  }
  const query = async <R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> => {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
    c.on('error', () => {})
    try { await c.connect(); return (await c.query<R>(sql)).rows } finally { await c.end().catch(() => {}) }
  }

  try {
    const [monitorPort, p1, p2] = [await freePort(), await freePort(), await freePort()]
    const monitorUrl = `postgresql://postgres@127.0.0.1:${monitorPort}/pg_auto_failover`
    const common = ['--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl']
    run('monitor', ['create', 'monitor', '--pgdata', path.join(dir, 'monitor'), '--pgport', String(monitorPort), ...common, '--run'])
    await until('the monitor', async () => (await query(monitorUrl, 'SELECT 1 AS ok FROM pgautofailover.formation LIMIT 1')).length > 0 ? true : null)
    for (const [k, v] of Object.entries(MONITOR_SETTINGS)) await query(monitorUrl, `ALTER SYSTEM SET ${k} = ${v}`)
    await query(monitorUrl, 'SELECT pg_reload_conf()')

    const nodeMonitor = `postgres://autoctl_node@127.0.0.1:${monitorPort}/pg_auto_failover?sslmode=disable`
    const nodes: FormationNode[] = []
    const startNode = (name: string, port: number) => {
      const proc = run(name, ['create', 'postgres', '--pgdata', path.join(dir, name), '--pgport', String(port), '--name', name,
        '--dbname', db, ...common, '--pg-hba-lan', '--monitor', nodeMonitor, '--run'])
      nodes.push({ name, port, url: `postgresql://postgres@127.0.0.1:${port}/${db}`, proc })
    }
    const state = async (): Promise<NodeState[]> => (await query<{ name: string, port: number, reported: string, goal: string }>(monitorUrl,
      'SELECT nodename AS name, nodeport AS port, reportedstate AS reported, goalstate AS goal FROM pgautofailover.node ORDER BY nodeid'))
    // the second node registers once the first has (it then waits for it and copies it with pg_basebackup)
    startNode('node1', p1)
    await until('node1 registered', async () => (await state()).length > 0 ? true : null)
    startNode('node2', p2)
    let poked = 0
    await until('a primary and a secondary', async () => {
      const s = await state()
      // the secondary's pg_basebackup waits for a checkpoint, which PostgreSQL spreads over a minute or more: ask
      // the primary for an immediate one instead (the copy then starts at once)
      if (s.some(n => n.reported === 'catchingup' || n.goal === 'catchingup') && Date.now() - poked > 3000) {
        poked = Date.now()
        const p = s.find(n => n.reported === 'wait_primary')
        if (p != null) await query(`postgresql://postgres@127.0.0.1:${p.port}/postgres`, 'CHECKPOINT').catch(() => {})
      }
      return s.some(n => n.reported === 'primary' && n.goal === 'primary') && s.some(n => n.reported === 'secondary' && n.goal === 'secondary') ? true : null
    })

    return {
      monitorUrl,
      nodes,
      multiHostUrl: `postgresql://postgres@127.0.0.1:${p1},127.0.0.1:${p2}/${db}?target_session_attrs=read-write`,
      state,
      primary: async () => {
        const p = (await state()).find(n => n.reported === 'primary' && n.goal === 'primary')
        return nodes.find(n => n.port === p?.port) ?? null
      },
      kill: (n) => { killGroup(n.proc) },
      waitWritable: async (n, timeoutMs) => {
        const t0 = Date.now()
        for (;;) {
          const r = await query<{ ro: string }>(n.url, 'SELECT current_setting(\'transaction_read_only\') AS ro').catch(() => [])
          if (r[0]?.ro === 'off') return Date.now() - t0
          if (Date.now() - t0 > timeoutMs) throw new Error(`${n.name} did not accept writes within ${timeoutMs} ms; logs in ${dir}`)
          await sleep(100)
        }
      },
      destroy,
    }
  } catch (err) {
    destroy()
    throw err
  }
}

/** haproxy.cfg for `n` instances: round robin, health checks on /ready, a refused connection retried elsewhere. */
export function haproxyConfig (listen: number, backends: number[]): string {
  return [
    'global', '  maxconn 2000', '',
    'defaults', '  mode http', '  timeout connect 2s', '  timeout client 30s', '  timeout server 30s',
    // a request that could not be sent (connection refused) goes to another instance; one that was sent is never
    // replayed by the balancer (clients retry with their Idempotency-Key)
    '  retries 2', '  option redispatch', '  retry-on conn-failure', '',
    'frontend api', `  bind 127.0.0.1:${listen}`, '  option forwardfor', '  default_backend circulate', '',
    // checks every 500 ms; an instance is out after 2 failed or slower than 2 s (a loaded machine answers late)
    'backend circulate', '  balance roundrobin', '  option httpchk GET /ready', '  timeout check 2s', '  default-server inter 500ms fall 2 rise 2',
    ...backends.map((p, i) => `  server s${i + 1} 127.0.0.1:${p} check`), '',
  ].join('\n')
}

export interface Balancer { url: string, port: number, stop: () => void }

/** Debian's HAProxy with haproxyConfig() for `backends`, in the foreground; resolves once /ready answers through it. */
export async function startHaproxy (dir: string, backends: number[]): Promise<Balancer> {
  const port = await freePort()
  const cfg = path.join(dir, 'haproxy.cfg')
  fs.writeFileSync(cfg, haproxyConfig(port, backends))
  const proc = spawn('haproxy', ['-f', cfg, '-db'], { stdio: 'ignore' })
  const url = `http://127.0.0.1:${port}`
  const stop = () => { proc.kill('SIGKILL') }
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${url}/ready`)).status === 200) break } catch {}
    if (i > 200) { stop(); throw new Error('HAProxy did not answer /ready within 20 s') }
    await sleep(100)
  }
  return { url, port, stop }
}

export const hasHaproxy = (): boolean => spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0
