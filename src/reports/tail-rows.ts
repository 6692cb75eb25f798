import { isoDate, type Bucket } from '../domain/periods.js'
import { cached, keep, OBJECT_BYTES } from './report-cache.js'

// The rows of a bucket still under way, kept between reports and brought forward by what drains changed since.
//
// A report reads the tail of each period (graph-cache.ts: today, and any bucket a drain has touched since its
// summary) on every request, as it may have changed. After new payments today alone is thousands of rows (its
// payment pairs, its accounts), and the drain changed a few hundred of them. Every bucket row records the drain
// that last wrote it (seq: the currency's circ_version after that drain, migration
// 20261221000000_bucket_row_sequence, whose triggers refuse a write that does not carry a newer one), so a report
// whose snapshot reads circ_version = V, holding the bucket's rows as of an earlier version K, is sent only the
// rows with seq > K (PostgreSQL still walks the bucket's rows to find them) and puts them over a copy of the kept
// ones. Drains run one at a time (one advisory lock for every currency, held until commit), so a snapshot sees
// every drain up to its version and none after: the kept rows with seq <= K are exactly the rows no later drain
// has touched.
//
// The one change a drain makes that leaves no row behind is a pair whose payments were all reversed, which it
// deletes. The bucket's row count, read in the same query, finds it: the kept keys and the changed ones together
// must be as many as the bucket holds, or a kept one is gone and the bucket is read whole.
//
// Kept rows are never changed in place: a report brings a copy forward and keeps that, so a report running in an
// older snapshot (its version below the kept one) is never handed rows it must not see; it reads the bucket whole.
// Only buckets still under way are kept this way (the callers read a settled bucket that is dirty whole, with the
// others of its kind in one query): after a late reversal every later bucket is dirty for a while, and one query
// and one kept copy per day would cost more than they save.

/**
 * What a report's snapshot has seen of the drains: the currency's circ_version, and the start time of the server
 * it reads (pg_postmaster_start_time()), which names the history those versions count. A standby promoted after
 * losing the primary's last commits, or a restored backup, is another server start: rows kept from a history that
 * has since been lost are never brought forward, though its version numbers come round again. It must be read in
 * the caller's snapshot (readDrains), never carried from an earlier one.
 */
export interface DrainsSeen { version: bigint, server: string }

/** DrainsSeen in the caller's snapshot (also the version as circ_version gives it, '0' when no drain yet). */
export async function readDrains (db: { query: (text: string, values?: unknown[]) => Promise<{ rows: any[] }> }, currencyId: string):
Promise<DrainsSeen & { text: string }> {
  const r = (await db.query(`SELECT (SELECT version FROM circ_version WHERE currency_id = $1)::text AS version,
    pg_postmaster_start_time()::text AS server`, [currencyId])).rows[0] as { version: string | null, server: string }
  const text = r.version ?? '0'
  return { version: BigInt(text), server: r.server, text }
}

/** What a read of a bucket returns: its rows changed after `since` by key, and how many rows it holds now. */
export interface Changed<R> { rows: Array<[number, R]>, count: number }

interface Kept<R> { version: bigint, rows: Map<number, R> }

/**
 * The rows of bucket `b` of `kind` (links, sums), by key, as of a snapshot that has seen `drains`.
 * read(since): the rows with seq > since (since -1: every row) and the bucket's row count, in that snapshot.
 * rowBytes: the heap a kept row holds (report-cache.ts's budget). The map returned must not be changed.
 */
export async function tailRows<R> (kind: string, currencyId: string, b: Bucket, drains: DrainsSeen,
  read: (since: bigint) => Promise<Changed<R>>, rowBytes: number): Promise<Map<number, R>> {
  const { version } = drains
  const key = `tail|${kind}|${drains.server}|${currencyId}|${b.grain}${isoDate(b.start)}`
  const kept = cached<Kept<R>>(key)
  if (kept != null && kept.version === version) return kept.rows
  const base = kept != null && kept.version < version ? kept : undefined
  let rows: Map<number, R>
  const got = await read(base?.version ?? -1n)
  if (base == null) {
    rows = new Map(got.rows)
  } else if (got.rows.length === 0 && base.rows.size === got.count) {
    // no drain since has touched the bucket: the same rows, kept again under the newer version
    rows = base.rows
  } else {
    rows = new Map(base.rows)
    for (const [k, r] of got.rows) rows.set(k, r)
    // a kept row that is gone (a pair whose payments were all reversed): the bucket read whole
    if (rows.size !== got.count) rows = new Map((await read(-1n)).rows)
  }
  // an older snapshot's rows are not kept over a newer one's
  if (kept == null || kept.version < version) keep(key, { version, rows } satisfies Kept<R>, OBJECT_BYTES + rows.size * rowBytes)
  return rows
}
