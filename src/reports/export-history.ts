import { nextHistory, type ExportHistory, type QuasiIdentifiers } from './anonymise.js'

// What the accounts exports have published of each participant account (table account_export_history; why in
// anonymise.ts, publishedAccounts, and docs/disclosure.md). The export reads it and writes the next step under a
// lock per currency, so two exports made at once are generalised one after the other; the flows report reads it
// to know which margin classes some export has given.

interface Query { query: <R = any>(text: string, values?: unknown[]) => Promise<{ rows: R[] }> }

/** Every history of the currency's accounts, by account id. */
export async function readHistories (db: Query, currencyId: string): Promise<Map<string, ExportHistory>> {
  const r = await db.query<{ id: string } & ExportHistory>(`
    SELECT account_id::text AS id, history, role_known AS "roleKnown", area_known AS "areaKnown"
      FROM account_export_history WHERE currency_id = $1`, [currencyId])
  return new Map(r.rows.map(x => [x.id, { history: x.history, roleKnown: x.roleKnown, areaKnown: x.areaKnown }]))
}

/** Taken before the histories are read, in the transaction that records the export: exports of one currency queue. */
export async function lockHistories (db: Query, currencyId: string): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`account_export_history|${currencyId}`])
}

/** Records that export `exportId` published `published` (by account id), after `before`; `small`: the accounts
 *  publishedAccounts generalised with the small cohorts. */
export async function recordExport (db: Query, currencyId: string, exportId: string, before: ReadonlyMap<string, ExportHistory>,
  published: ReadonlyMap<string, QuasiIdentifiers>, small: ReadonlySet<string>): Promise<void> {
  const ids: string[] = []; const histories: string[] = []; const role: boolean[] = []; const area: boolean[] = []
  for (const [id, q] of published) {
    const h = nextHistory(before.get(id), q, exportId, small.has(id))
    ids.push(id); histories.push(h.history); role.push(h.roleKnown); area.push(h.areaKnown)
  }
  if (ids.length === 0) return
  await db.query(`
    INSERT INTO account_export_history AS h (currency_id, account_id, history, role_known, area_known)
    SELECT $1, x.id, x.history, x.role_known, x.area_known
      FROM unnest($2::uuid[], $3::text[], $4::boolean[], $5::boolean[]) AS x (id, history, role_known, area_known)
    ON CONFLICT (currency_id, account_id) DO UPDATE
       SET history = excluded.history, role_known = excluded.role_known, area_known = excluded.area_known, updated_at = now()`,
  [currencyId, ids, histories, role, area])
}
