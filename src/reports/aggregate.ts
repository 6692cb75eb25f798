import type pg from 'pg'
import { cyclicComponents } from './graph.js'
import { LM_R3_SQL } from './local-multiplier.sql.js'

// The aggregator: folds queued transfers into the circulation buckets (SQL function circ_drain, migration
// *_circulation_aggregates), then recomputes the graph facts (cycle volume per account, the local multiplier's
// third round) of every bucket whose payment graph changed. Reports call catchUp() first, so what they read
// includes every transfer committed before the report started; a background timer keeps the queue short.
// Drainers and the graph step take the same advisory lock, so any number of instances may run this.

export const AGGREGATE_LOCK = 7_211_902
const DRAIN_BATCH = 20_000
const GRAPH_BATCH = 100

export interface CatchUp { transfers: number, buckets: number }

/** Folds every queued transfer into the buckets; returns how many it folded. */
export async function drain (pool: pg.Pool): Promise<number> {
  let total = 0
  for (;;) {
    const r = await pool.query<{ n: number }>('SELECT circ_drain($1) AS n', [DRAIN_BATCH])
    total += r.rows[0].n
    if (r.rows[0].n < DRAIN_BATCH) return total
  }
}

/** Recomputes the graph facts of every dirty bucket; returns how many buckets. */
export async function refreshGraphs (pool: pg.Pool): Promise<number> {
  let total = 0
  const client = await pool.connect()
  try {
    for (;;) {
      await client.query('BEGIN')
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [AGGREGATE_LOCK])
        const dirty = await client.query<{ currency_id: string, grain: string, start: string }>(
          'SELECT currency_id, grain, start::text FROM circ_dirty ORDER BY start, grain LIMIT $1', [GRAPH_BATCH])
        for (const d of dirty.rows) await recomputeBucket(client, d.currency_id, d.grain, d.start)
        if (dirty.rows.length > 0) {
          await client.query(`DELETE FROM circ_dirty d USING unnest($1::uuid[], $2::text[], $3::date[]) AS x (c, g, s)
            WHERE d.currency_id = x.c AND d.grain = x.g AND d.start = x.s`,
          [dirty.rows.map(d => d.currency_id), dirty.rows.map(d => d.grain), dirty.rows.map(d => d.start)])
        }
        await client.query('COMMIT')
        total += dirty.rows.length
        if (dirty.rows.length < GRAPH_BATCH) return total
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      }
    }
  } finally {
    client.release()
  }
}

export async function catchUp (pool: pg.Pool): Promise<CatchUp> {
  const transfers = await drain(pool)
  const buckets = await refreshGraphs(pool)
  return { transfers, buckets }
}

/** Cycle edges of one bucket by its strongly connected components; R3 of the local multiplier. */
async function recomputeBucket (client: pg.PoolClient, currency: string, grain: string, start: string): Promise<void> {
  const key = [currency, grain, start]
  // Only a payer that also received, and a payee that also paid, can sit on a cycle: the rest never reach Tarjan.
  const edges = await client.query<{ payers: string[] | null, payees: string[] | null }>(`
    SELECT array_agg(p.payer::text) AS payers, array_agg(p.payee::text) AS payees
      FROM circ_pair_bucket p
      JOIN circ_account_bucket a ON a.currency_id = p.currency_id AND a.grain = p.grain AND a.start = p.start
       AND a.account_id = p.payer AND a.recv_m + a.recv_b > 0
      JOIN circ_account_bucket b ON b.currency_id = p.currency_id AND b.grain = p.grain AND b.start = p.start
       AND b.account_id = p.payee AND b.paid_m + b.paid_b > 0
     WHERE p.currency_id = $1 AND p.grain = $2 AND p.start = $3`, key)
  const comps = cyclicComponents(edges.rows[0].payers ?? [], edges.rows[0].payees ?? [])
  await client.query(`UPDATE circ_account_bucket SET cyc_paid = 0, cyc_recv = 0
    WHERE currency_id = $1 AND grain = $2 AND start = $3 AND (cyc_paid <> 0 OR cyc_recv <> 0)`, key)
  if (comps.size > 0) {
    await client.query(`
      WITH comp AS (SELECT * FROM unnest($4::uuid[], $5::int[]) AS c (account_id, comp)),
      cyc AS (
        SELECT p.payer, p.payee, p.volume
          FROM circ_pair_bucket p
          JOIN comp a ON a.account_id = p.payer
          JOIN comp b ON b.account_id = p.payee AND b.comp = a.comp
         WHERE p.currency_id = $1 AND p.grain = $2 AND p.start = $3
      ),
      per AS (
        SELECT account_id, sum(paid) AS paid, sum(recv) AS recv
          FROM (SELECT payer AS account_id, volume AS paid, 0::numeric AS recv FROM cyc
                UNION ALL SELECT payee, 0, volume FROM cyc) u
         GROUP BY 1
      )
      UPDATE circ_account_bucket ab SET cyc_paid = per.paid, cyc_recv = per.recv
        FROM per
       WHERE ab.currency_id = $1 AND ab.grain = $2 AND ab.start = $3 AND ab.account_id = per.account_id`,
    [...key, [...comps.keys()], [...comps.values()]])
  }
  const r3 = await client.query<{ r3: string }>(LM_R3_SQL, [currency, [grain], [start]])
  await client.query(`
    INSERT INTO circ_bucket_graph (currency_id, grain, start, cycle_volume, lm_r3, computed_at)
    SELECT $1, $2, $3, COALESCE(sum(cyc_paid), 0), $4::numeric, now()
      FROM circ_account_bucket WHERE currency_id = $1 AND grain = $2 AND start = $3
    ON CONFLICT (currency_id, grain, start) DO UPDATE SET
      cycle_volume = excluded.cycle_volume, lm_r3 = excluded.lm_r3, computed_at = excluded.computed_at`,
  [...key, r3.rows[0].r3])
}
