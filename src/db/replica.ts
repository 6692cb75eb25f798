import type pg from 'pg'

// Where an expensive read (report, research export, statement CSV) runs: on the streaming replica
// (REPLICA_DATABASE_URL) when it has replayed everything the primary had committed when the read started, else on
// the primary's read pool. "Everything" is checked exactly, by WAL position: the primary's pg_current_wal_lsn() is
// taken first (after any aggregate catch-up, which writes on the primary), then the replica is asked until its
// pg_last_wal_replay_lsn() has passed it, for at most REPLICA_MAX_LAG_MS. So a report from the replica shows
// exactly what one from the primary would have shown at `asOf`; a replica that lags more, or is down, or is not a
// standby at all, sends the read to the primary (logged, and counted in `fallbacks`).

export interface ReadSource {
  /** where to read */
  pool: pg.Pool
  /** read from the replica (false: the primary's read pool) */
  replica: boolean
  /** every transaction committed on the primary before this instant is visible to the read */
  asOf: Date
}

export interface ReplicaReads {
  /** chooses where one read runs; never throws for the replica's sake (a dead replica means the primary) */
  choose: () => Promise<ReadSource>
  readonly configured: boolean
  /** reads sent back to the primary because the replica lagged or failed, since start */
  readonly fallbacks: number
  /** reads that ran on the replica, since start */
  readonly served: number
}

export interface ReplicaOptions {
  maxLagMs: number
  log?: { warn: (o: object, msg: string) => void }
  /** how often the replica is asked while it catches up */
  pollMs?: number
}

export function replicaReads (primary: pg.Pool, replica: pg.Pool | null, opts: ReplicaOptions): ReplicaReads {
  let fallbacks = 0
  let served = 0
  let lastWarn = 0
  const fallback = (why: string, err?: unknown): ReadSource => {
    fallbacks++
    // one line per 10 s at most: a lagging replica under a stream of reports would log every report
    if (Date.now() - lastWarn > 10_000) { lastWarn = Date.now(); opts.log?.warn({ err, why }, 'replica reads: reading on the primary') }
    return { pool: primary, replica: false, asOf: new Date() }
  }
  return {
    configured: replica != null,
    get fallbacks () { return fallbacks },
    get served () { return served },
    async choose (): Promise<ReadSource> {
      if (replica == null) return { pool: primary, replica: false, asOf: new Date() }
      // the instant first, then the position: everything committed before `asOf` is at or before `lsn`
      const asOf = new Date()
      // (the primary's read pool failing here fails the read as it would have on the primary anyway)
      const lsn = (await primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn
      const deadline = Date.now() + opts.maxLagMs
      for (;;) {
        let r: { standby: boolean, ok: boolean | null }
        try {
          r = (await replica.query<{ standby: boolean, ok: boolean | null }>(
            'SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn])).rows[0]!
        } catch (err) {
          return fallback('the replica does not answer', err)
        }
        // a promoted or misconfigured "replica" has WAL positions of its own: nothing to compare
        if (!r.standby) return fallback('the replica is not a standby (pg_is_in_recovery() is false)')
        if (r.ok === true) { served++; return { pool: replica, replica: true, asOf } }
        if (Date.now() >= deadline) return fallback(`the replica is more than REPLICA_MAX_LAG_MS (${opts.maxLagMs} ms) behind`)
        await new Promise(resolve => setTimeout(resolve, opts.pollMs ?? 20))
      }
    },
  }
}
