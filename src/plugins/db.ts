import { PrismaPg } from '@prisma/adapter-pg'
import fp from 'fastify-plugin'
import pg from 'pg'
import { PrismaClient } from '../generated/prisma/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The pg pool: the money-moving path calls one SQL function on it directly (one round trip). */
    pool: pg.Pool
    /** Prisma, on the same pool, for everything else. */
    prisma: PrismaClient
  }
}

export interface DbOptions {
  databaseUrl: string
  poolMax: number
  acquireTimeoutMs: number
  statementTimeoutMs: number
}

export default fp<DbOptions>(async (app, opts) => {
  const pool = new pg.Pool({
    connectionString: opts.databaseUrl,
    max: opts.poolMax,
    // A bounded wait for a connection: past it the request is shed with a 503, instead of queueing forever.
    connectionTimeoutMillis: opts.acquireTimeoutMs,
    statement_timeout: opts.statementTimeoutMs,
    application_name: 'circulate',
  })
  // An idle client losing its server (restart, failover) must not crash the process; the pool replaces it.
  pool.on('error', (err) => { app.log.warn({ err }, 'idle database connection lost') })
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) })
  app.decorate('pool', pool)
  app.decorate('prisma', prisma)
  app.addHook('onClose', async () => {
    await prisma.$disconnect().catch(() => {})
    await pool.end()
  })
}, { name: 'db' })
