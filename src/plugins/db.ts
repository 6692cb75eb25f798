import { PrismaPg } from '@prisma/adapter-pg'
import fp from 'fastify-plugin'
import type { FastifyBaseLogger } from 'fastify'
import pg from 'pg'
import { connectionOptions, type HostResolver } from '../db/hosts.js'
import { inUtc } from '../db/session.js'
import { replicaReads, type ReplicaReads } from '../db/replica.js'
import { PrismaClient } from '../generated/prisma/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The pg pool: the money-moving path calls one SQL function on it directly (one round trip). */
    pool: pg.Pool
    /** Prisma, on the same pool, for everything else. */
    prisma: PrismaClient
    /**
     * The expensive reads (reports, research exports, statement CSVs) on a pool of their own, with its own
     * connection budget, wait and statement timeout: they can queue, time out or be shed, but never take a
     * connection the ledger's writes need. Today it is the same database; it is the seam for a read replica.
     * The report path also keeps the circulation aggregates up to date on it (catch-up, composite cache) and
     * records research exports, which are writes: pointed at a replica, those must go to the primary.
     */
    readPool: pg.Pool
    /** With a multi-host DATABASE_URL: which host the pools use now (src/db/hosts.ts); null for one plain host. */
    dbHosts: HostResolver | null
    /**
     * Where each expensive read runs: the replica (REPLICA_DATABASE_URL) once it has replayed everything the
     * primary had when the read started, else readPool (db/replica.ts). Without a replica: always readPool.
     */
    reads: ReplicaReads
  }
}

export interface DbOptions {
  databaseUrl: string
  poolMax: number
  acquireTimeoutMs: number
  statementTimeoutMs: number
  /** the read pool (see readPool above); defaults: one connection, the write pool's timeouts */
  reads?: { poolMax: number, acquireTimeoutMs: number, statementTimeoutMs: number }
  /** a streaming replica for the expensive reads (its pool has the read pool's size and timeouts) */
  replica?: { url: string, maxLagMs: number }
}

export default fp<DbOptions>(async (app, opts) => {
  // A list of hosts (db1,db2,...?target_session_attrs=read-write): every new connection goes to the host that
  // accepts writes now, so after a failover the pools follow the new primary (src/db/hosts.ts).
  const { config: found, resolver } = connectionOptions(opts.databaseUrl, Math.min(opts.acquireTimeoutMs, 5000), {
    onSwitch: (to, from) => { app.log[from == null ? 'info' : 'warn']({ to: `${to.host}:${to.port}`, from: from == null ? null : `${from.host}:${from.port}` }, 'database host chosen') },
  })
  const target = { ...found, connectionString: inUtc(found.connectionString!) }
  const pool = new pg.Pool({
    ...target,
    max: opts.poolMax,
    // A bounded wait for a connection: past it the request is shed with a 503, instead of queueing forever.
    connectionTimeoutMillis: opts.acquireTimeoutMs,
    statement_timeout: opts.statementTimeoutMs,
    application_name: 'circulate',
  })
  // An idle client losing its server (restart, failover) must not crash the process; the pool replaces it.
  pool.on('error', (err) => { app.log.warn({ err }, 'idle database connection lost') })
  keepAliveOnClientErrors(pool, app.log, 'database connection lost while checked out')
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) })
  const reads = opts.reads ?? { poolMax: 1, acquireTimeoutMs: opts.acquireTimeoutMs, statementTimeoutMs: opts.statementTimeoutMs }
  const readPool = new pg.Pool({
    ...target,
    max: reads.poolMax,
    connectionTimeoutMillis: reads.acquireTimeoutMs,
    statement_timeout: reads.statementTimeoutMs,
    // its own name, so its sessions can be told apart in pg_stat_activity
    application_name: 'circulate-reads',
  })
  readPool.on('error', (err) => { app.log.warn({ err }, 'idle read connection lost') })
  keepAliveOnClientErrors(readPool, app.log, 'read connection lost while checked out')
  let replicaPool: pg.Pool | null = null
  if (opts.replica != null) {
    // a list of replicas is fine too: the first that answers (target_session_attrs=any unless the URL says)
    const r = connectionOptions(opts.replica.url, Math.min(reads.acquireTimeoutMs, 5000))
    replicaPool = new pg.Pool({
      ...r.config,
      connectionString: inUtc(r.config.connectionString!),
      max: reads.poolMax,
      // a replica that does not answer quickly is not waited for: the read goes to the primary
      connectionTimeoutMillis: Math.min(reads.acquireTimeoutMs, 2000),
      statement_timeout: reads.statementTimeoutMs,
      application_name: 'circulate-replica',
    })
    replicaPool.on('error', (err) => { app.log.warn({ err }, 'idle replica connection lost') })
    keepAliveOnClientErrors(replicaPool, app.log, 'replica connection lost while checked out')
  }
  app.decorate('reads', replicaReads(readPool, replicaPool, { maxLagMs: opts.replica?.maxLagMs ?? 0, log: app.log }))
  app.decorate('pool', pool)
  app.decorate('prisma', prisma)
  app.decorate('readPool', readPool)
  app.decorate('dbHosts', resolver)
  app.addHook('onClose', async () => {
    await prisma.$disconnect().catch(() => {})
    await pool.end()
    await readPool.end()
    await replicaPool?.end()
  })
}, { name: 'db' })

/**
 * The pool's 'error' listener covers idle clients only. A client that is checked out but between queries (a
 * transaction waiting on the coalescer, a worker holding its client) emits 'error' on itself when the server goes
 * away, and with no listener that is an uncaught exception that ends the process. Its next query fails anyway,
 * which its caller answers with a 503, and the pool drops it on release (it is no longer queryable).
 */
function keepAliveOnClientErrors (pool: pg.Pool, log: FastifyBaseLogger, msg: string): void {
  pool.on('connect', (client) => { client.on('error', (err) => { log.warn({ err }, msg) }) })
}
