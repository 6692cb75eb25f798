import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { freePort } from './ports.js'

// A real PostgreSQL primary and a streaming standby made with pg_basebackup, on free ports of this machine, for
// the tests of multi-host URLs, failover and replica reads. Uses the Debian PostgreSQL binaries
// (/usr/lib/postgresql/<n>/bin, or PG_BIN); as root the servers run as the postgres user (initdb refuses root).

export interface PgNode { name: string, port: number, dir: string, url: (db?: string) => string }

export interface PgCluster {
  primary: PgNode
  standby: PgNode
  /** pg_ctl promote on the standby (waits until it accepts writes) */
  promote: (node: PgNode) => void
  /** kill -9 the postmaster: a crash, not a shutdown */
  crash: (node: PgNode) => void
  stop: (node: PgNode) => void
  start: (node: PgNode) => void
  /** waits until the standby has replayed everything the primary has written */
  caughtUp: () => Promise<void>
  destroy: () => void
}

export function pgBin (): string | null {
  if (process.env.PG_BIN != null && fs.existsSync(path.join(process.env.PG_BIN, 'initdb'))) return process.env.PG_BIN
  const root = '/usr/lib/postgresql'
  if (!fs.existsSync(root)) return null
  const versions = fs.readdirSync(root).filter(v => /^\d+$/.test(v) && fs.existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))
  return versions.length > 0 ? path.join(root, versions[0]!, 'bin') : null
}

const asRoot = process.getuid?.() === 0

function run (bin: string, args: string[], opts: { allowFail?: boolean } = {}): string {
  const cmd = asRoot ? 'runuser' : bin
  const full = asRoot ? ['-u', 'postgres', '--', bin, ...args] : args
  const r = spawnSync(cmd, full, { encoding: 'utf8', timeout: 120_000 })
  if (r.status !== 0 && opts.allowFail !== true) throw new Error(`${path.basename(bin)} ${args.join(' ')} failed: ${r.stderr}${r.stdout}`)
  return r.stdout
}

const live = new Set<PgCluster>()
process.on('exit', () => { for (const c of live) c.destroy() })

/** Starts a primary (synchronous replication to the standby when sync) and a standby. */
export async function startCluster (opts: { sync?: boolean } = {}): Promise<PgCluster> {
  const bin = pgBin()
  if (bin == null) throw new Error('no PostgreSQL server binaries (initdb) on this machine')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-cluster-'))
  fs.chmodSync(dir, 0o777)
  if (asRoot) execFileSync('chown', ['postgres', dir])
  const node = (name: string, port: number): PgNode => ({
    name, port, dir: path.join(dir, name), url: (db = 'postgres') => `postgresql://postgres@127.0.0.1:${port}/${db}`,
  })
  const primary = node('primary', await freePort())
  const standby = node('standby', await freePort())
  const settings = (n: PgNode) => [
    `-p ${n.port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', '-c fsync=off', '-c full_page_writes=off',
    '-c shared_buffers=32MB', '-c max_connections=60', '-c wal_level=replica', '-c max_wal_senders=5', '-c hot_standby=on',
    `-c cluster_name=${n.name}`, ...(opts.sync === true && n === primary ? ["-c synchronous_standby_names='*'"] : []),
  ].join(' ')
  const pgCtl = path.join(bin, 'pg_ctl')
  const start = (n: PgNode) => { run(pgCtl, ['-D', n.dir, '-o', settings(n), '-l', `${n.dir}.log`, '-w', '-t', '60', 'start']) }
  const stop = (n: PgNode) => { run(pgCtl, ['-D', n.dir, '-m', 'immediate', '-w', 'stop'], { allowFail: true }) }

  run(path.join(bin, 'initdb'), ['-D', primary.dir, '-A', 'trust', '-U', 'postgres', '-N', '-E', 'UTF8', '--locale=C'])
  start(primary)
  run(path.join(bin, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', standby.dir, '-R', '-X', 'stream', '-c', 'fast'])
  // the standby names itself (walreceiver's application_name) so synchronous_standby_names='*' counts it
  fs.appendFileSync(path.join(standby.dir, 'postgresql.auto.conf'), "\nprimary_conninfo = 'host=127.0.0.1 port=" + primary.port + " user=postgres application_name=standby'\n")
  start(standby)

  const cluster: PgCluster = {
    primary,
    standby,
    promote: (n) => { run(pgCtl, ['-D', n.dir, '-w', '-t', '60', 'promote']) },
    crash: (n) => {
      const pid = Number(fs.readFileSync(path.join(n.dir, 'postmaster.pid'), 'utf8').split('\n')[0])
      process.kill(pid, 'SIGKILL')
      // the children notice the postmaster is gone and exit; wait until nobody answers on the port
      for (let i = 0; i < 100; i++) {
        const r = spawnSync(path.join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(n.port), '-t', '1'])
        if (r.status === 2 || r.status === 3) break
        spawnSync('sleep', ['0.1'])
      }
    },
    stop,
    start,
    caughtUp: async () => {
      const p = new pg.Client({ connectionString: primary.url() })
      await p.connect()
      try {
        const lsn = (await p.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l
        for (let i = 0; i < 300; i++) {
          const r = await p.query<{ ok: boolean }>('SELECT coalesce(bool_and(replay_lsn >= $1::pg_lsn), false) AS ok FROM pg_stat_replication', [lsn])
          if (r.rows[0]!.ok) return
          await new Promise(resolve => setTimeout(resolve, 50))
        }
        throw new Error('the standby did not catch up in 15 s')
      } finally { await p.end() }
    },
    destroy: () => {
      if (!live.has(cluster)) return
      live.delete(cluster)
      stop(standby); stop(primary)
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
  live.add(cluster)
  return cluster
}
