// What a published figure was computed from, so that it can be cited and reproduced (docs/metrics.md "Citing a
// figure"): the definitions' version, and the ledger position the report read.

/**
 * Bumped whenever the definition of any published figure changes (what it counts, how it rounds, when it is
 * hidden); docs/metrics.md lists every version and what changed. A figure cited with its version and its asOf
 * can be recomputed from the ledger, or from a research export cut at asOfTransfer, with the definitions of that
 * version.
 */
export const DEFINITIONS_VERSION = 4

/** The last transfer a report included: the latest by (created_at, id) among those folded into the aggregates. */
export interface LedgerPosition {
  id: string
  /** RFC 3339, to the microsecond */
  createdAt: string
}

import { ZoneChanged } from '../domain/zone.js'

interface Query { query: (text: string, values?: unknown[]) => Promise<{ rows: any[] }> }

/**
 * Checks, in the caller's snapshot, that the currency is still in `zone`, the zone the report's periods were cut
 * in (read with the currency, perhaps before another instance changed it just ahead of the first transfers, whose
 * buckets the snapshot then holds in the new zone); throws ZoneChanged with the snapshot's zone otherwise, before
 * anything is read or kept. No zone given: nothing to check.
 */
export async function checkZone (db: Query, currencyId: string, zone: string | undefined): Promise<void> {
  if (zone == null) return
  const now = (await db.query('SELECT time_zone AS zone FROM currency WHERE id = $1', [currencyId])).rows[0]?.zone as string | undefined
  if (now != null && now !== zone) throw new ZoneChanged(now)
}

// One probe down transfer_currency_time_idx. A transfer committed after the report's catch-up is still queued in
// circ_pending and not in the figures, so it is skipped: run this in the report's own snapshot.
const POSITION_SQL = `
SELECT t.id::text AS id, to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at
  FROM transfer t
 WHERE t.currency_id = $1 AND NOT EXISTS (SELECT 1 FROM circ_pending q WHERE q.transfer_id = t.id)
 ORDER BY t.created_at DESC, t.id DESC
 LIMIT 1`

/** The ledger position as of the caller's snapshot; null when the currency has no transfer yet. */
export async function ledgerPosition (db: Query, currencyId: string): Promise<LedgerPosition | null> {
  const r = (await db.query(POSITION_SQL, [currencyId])).rows[0] as { id: string, created_at: string } | undefined
  return r == null ? null : { id: r.id, createdAt: r.created_at }
}
