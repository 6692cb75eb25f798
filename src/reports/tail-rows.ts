import { isoDate, type Bucket } from '../domain/periods.js'
import { cached, keep, OBJECT_BYTES } from './report-cache.js'

// The rows of a bucket still under way, kept between reports and brought forward by what drains changed since.
//
// A report reads the tail of each period (graph-cache.ts: today, and any bucket a drain has touched since its
// summary) on every request, as it may have changed. After new payments today alone is thousands of rows (its
// payment pairs, its accounts), and the drain changed a few hundred of them. Every bucket row records the drain
// that last wrote it (seq: the currency's circ_version after that drain, migration
// 20261221000000_bucket_row_sequence), so a report whose snapshot reads circ_version = V, holding the bucket's
// rows as of an earlier version K, reads only the rows with seq > K and puts them over the kept ones. Drains of a
// currency run one at a time, each holding the aggregates' lock until it commits, so a snapshot sees every drain up
// to its version and none after: the kept rows with seq <= K are exactly the rows no later drain has touched.
//
// The one change a drain makes that leaves no row behind is a pair whose payments were all reversed, which it
// deletes. The bucket's row count, read in the same query, finds it: the kept keys and the changed ones together
// must be as many as the bucket holds, or a kept one is gone and the bucket is read whole.
//
// Kept rows are never changed in place: a report brings a copy forward and keeps that, so a report running in an
// older snapshot (its version below the kept one) is never handed rows it must not see; it reads the bucket whole.

/** What a read of a bucket returns: its rows changed after `since` by key, and how many rows it holds now. */
export interface Changed<R> { rows: Array<[number, R]>, count: number }

interface Kept<R> { version: bigint, rows: Map<number, R> }

/**
 * The rows of bucket `b` of `kind` (links, sums), by key, as of a snapshot that reads circ_version = `version`.
 * read(since): the rows with seq > since (since -1: every row) and the bucket's row count, in that snapshot.
 * rowBytes: the heap a kept row holds (report-cache.ts's budget). The map returned must not be changed.
 */
export async function tailRows<R> (kind: string, currencyId: string, b: Bucket, version: bigint,
  read: (since: bigint) => Promise<Changed<R>>, rowBytes: number): Promise<Map<number, R>> {
  const key = `tail|${kind}|${currencyId}|${b.grain}${isoDate(b.start)}`
  const kept = cached<Kept<R>>(key)
  if (kept != null && kept.version === version) return kept.rows
  const base = kept != null && kept.version < version ? kept : undefined
  let rows: Map<number, R>
  const got = await read(base?.version ?? -1n)
  if (base == null) {
    rows = new Map(got.rows)
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
