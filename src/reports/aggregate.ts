import type pg from 'pg'
import { bucketEnd, type Grain } from '../domain/periods.js'
import { calendarOf } from '../domain/zone.js'
import { periodFigures, warmComposites } from './circulation.report.js'
import { traceHolding } from './holding.js'
import { AGGREGATE_LOCK } from './lock.js'
import { forgetExports } from './pseudonym.js'

// The aggregator: folds queued transfers into the circulation buckets (SQL function circ_drain, migration
// *_circulation_aggregates), then rewrites the summary (every report figure) of each bucket that changed.
// Reports call catchUp() first, so what they read includes every transfer committed before the report started;
// a background timer (src/plugins/aggregator.ts) keeps that catch-up short. Drains and the summary step take the
// same advisory lock, so any number of instances may run this.

// a batch takes about a second or two on a busy 2-core machine: well inside the statement timeout
const DRAIN_BATCH = 10_000
const SUMMARY_BATCH = 50

export interface CatchUp { transfers: number, buckets: number }

/** Folds every queued transfer into the buckets and the holding-period trace; returns how many it folded. */
export async function drain (pool: pg.Pool): Promise<number> {
  let total = 0
  for (;;) {
    const r = await pool.query<{ n: number }>('SELECT circ_drain($1) AS n', [DRAIN_BATCH])
    total += r.rows[0].n
    if (r.rows[0].n < DRAIN_BATCH) break
  }
  await traceHolding(pool)
  return total
}

/** Recomputes the summary of every dirty bucket; returns how many buckets. */
export async function summarise (pool: pg.Pool): Promise<number> {
  let total = 0
  const client = await pool.connect()
  try {
    for (;;) {
      await client.query('BEGIN')
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [AGGREGATE_LOCK])
        // start: the bucket's civil date (its local date as midnight UTC: domain/zone.ts)
        const dirty = await client.query<{ currency_id: string, grain: Grain, start: Date, zone: string }>(
          `SELECT d.currency_id, d.grain, (d.start::timestamp AT TIME ZONE 'UTC') AS start, c.time_zone AS zone
             FROM circ_dirty d JOIN currency c ON c.id = d.currency_id
            ORDER BY d.start, d.grain LIMIT $1`, [SUMMARY_BATCH])
        for (const d of dirty.rows) {
          const bucket = { grain: d.grain, start: d.start.getTime() }
          const cal = calendarOf(d.zone)
          const { start: _s, end: _e, ...figures } = await periodFigures(client, d.currency_id,
            { start: cal.instant(bucket.start), end: cal.instant(bucketEnd(bucket)), buckets: [bucket] })
          await client.query(`
            INSERT INTO circ_bucket_summary (currency_id, grain, start, figures, computed_at)
            VALUES ($1, $2, $3::timestamptz AT TIME ZONE 'UTC', $4, now())
            ON CONFLICT (currency_id, grain, start) DO UPDATE SET figures = excluded.figures, computed_at = excluded.computed_at`,
          [d.currency_id, d.grain, d.start.toISOString(), JSON.stringify(figures)])
        }
        if (dirty.rows.length > 0) {
          await client.query(`DELETE FROM circ_dirty d USING unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS x (c, g, s)
            WHERE d.currency_id = x.c AND d.grain = x.g AND d.start = (x.s AT TIME ZONE 'UTC')::date`,
          [dirty.rows.map(d => d.currency_id), dirty.rows.map(d => d.grain), dirty.rows.map(d => d.start.toISOString())])
        }
        await client.query('COMMIT')
        total += dirty.rows.length
        if (dirty.rows.length < SUMMARY_BATCH) return total
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      }
    }
  } finally {
    client.release()
  }
}

/** Everything committed so far, folded in and summarised. Cheap when nothing is queued (two index probes). */
export async function catchUp (pool: pg.Pool): Promise<CatchUp> {
  const transfers = await drain(pool)
  const idle = transfers === 0 && (await pool.query('SELECT 1 FROM circ_dirty LIMIT 1')).rows.length === 0
  const buckets = idle ? 0 : await summarise(pool)
  return { transfers, buckets }
}

/** The research exports' retention, for maintain(): the clock (tests inject one) and RESEARCH_EXPORT_RETENTION_HOURS. */
export interface ExportRetention { clock: () => Date, hours: number }

/**
 * For the background aggregator: catch up, then recompute the composites reports are likely to ask for again, then
 * (given `exports`) delete the research exports past their retention, salts and all (forgetExports()).
 */
export async function maintain (pool: pg.Pool, exports?: ExportRetention): Promise<CatchUp & { composites: number, exportsDeleted: number }> {
  const c = await catchUp(pool)
  const composites = await warmComposites(pool)
  const exportsDeleted = exports == null ? 0 : await forgetExports(pool, exports.clock(), exports.hours)
  return { ...c, composites, exportsDeleted }
}
