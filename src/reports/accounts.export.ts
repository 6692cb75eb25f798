import { Readable } from 'node:stream'
import type pg from 'pg'
import { csvStream } from '../domain/csv.js'
import { formatMoney } from '../domain/money.js'
import { isLocal } from '../domain/postcode.js'
import { areaOf } from './flows.report.js'
import type { ExportSession } from './pseudonym.js'

// Every account of a currency as pseudonymised microdata, in the Sarafu data set's accounts layout. Names,
// usernames, full postcodes and ids are never read. The area is the postcode area (BS, not the district BS6) and
// whether the district lies in the currency's local areas; a business's sector is not given (business_type is
// empty for members and businesses alike): the flows report by district and by sector is protected only against
// totals a researcher can form exactly, and these are the totals the export allows (docs/disclosure.md; the
// directory is public too, so district and sector together would name many businesses). Times are cut to the
// hour. final_bal is the balance when the export is made.

export const ACCOUNT_COLUMNS = ['id', 'start', 'final_bal', 'area_name', 'area_type', 'held_roles', 'business_type'] as const

const PAGE = 5000

const PAGE_SQL = `
SELECT a.id, to_char(date_trunc('hour', a.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD HH24:MI:SS') AS start,
       a.balance::text AS balance, a.system_kind, p.kind, p.district
  FROM account a LEFT JOIN participant p ON p.id = a.participant_id
 WHERE a.currency_id = $1 AND ($2::uuid IS NULL OR a.id > $2)
 ORDER BY a.id
 LIMIT ${PAGE}`

export interface AccountExportInput { currencyId: string, decimals: number, localAreas: string[] }

export function accountsCsv (pool: pg.Pool, x: AccountExportInput, session: ExportSession): Readable {
  async function * rows () {
    let after: string | null = null
    for (;;) {
      const r: pg.QueryResult<{ id: string, start: string, balance: string, system_kind: string | null, kind: string | null, district: string | null, sector: string | null }> =
        await pool.query(PAGE_SQL, [x.currencyId, after])
      // rows leave in pseudonym order, not account id order: uuid v7 ids would give the creation order away
      const out = r.rows.map(a => [
        session.pseudonym(a.id), a.start, formatMoney(a.balance, x.decimals),
        a.district == null ? '' : areaOf(a.district), a.district == null ? '' : isLocal(a.district, x.localAreas) ? 'local' : 'non-local',
        a.system_kind != null ? 'ADMIN' : a.kind === 'business' ? 'VENDOR' : 'BENEFICIARY',
        a.system_kind ?? '',
      ])
      out.sort((p, q) => (p[0] < q[0] ? -1 : 1))
      yield * out
      if (r.rows.length < PAGE) return
      after = r.rows[r.rows.length - 1].id
    }
  }
  return Readable.from(rows()).pipe(csvStream(ACCOUNT_COLUMNS))
}
