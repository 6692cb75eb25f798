// What a published figure was computed from, so that it can be cited and reproduced (docs/metrics.md "Citing a
// figure"): the definitions' version, and the ledger position the report read.

/**
 * Bumped whenever the definition of any published figure changes (what it counts, how it rounds, when it is
 * hidden); docs/metrics.md lists every version and what changed. A figure cited with its version and its asOf
 * can be recomputed from the ledger, or from a research export cut at asOfTransfer, with the definitions of that
 * version.
 */
export const DEFINITIONS_VERSION = 3

/** The last transfer a report included: the latest by (created_at, id) among those folded into the aggregates. */
export interface LedgerPosition {
  id: string
  /** RFC 3339, to the microsecond */
  createdAt: string
}

interface Query { query: (text: string, values?: unknown[]) => Promise<{ rows: any[] }> }

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
