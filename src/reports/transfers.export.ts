import { Readable } from 'node:stream'
import type pg from 'pg'
import { csvStream } from '../domain/csv.js'
import { formatMoney } from '../domain/money.js'
import type { ExportSession } from './pseudonym.js'

// Every transfer of a currency as pseudonymised microdata, in the column layout of the Sarafu Community
// Inclusion Currency data set (Mattsson, Criscione and Ruddick, Scientific Data 2022), so tools written for it
// run unchanged. Dropped: transfer ids (time-ordered UUIDs carry the millisecond), references, metadata, who
// posted it. Times are cut to the hour; accounts appear only as this export's pseudonyms.

export const TRANSFER_COLUMNS = ['id', 'timeset', 'transfer_subtype', 'source', 'target', 'weight', 'token_name'] as const

const SUBTYPE: Record<string, string> = {
  issuance: 'DISBURSEMENT', redemption: 'RECLAMATION', payment: 'STANDARD', fee: 'FEE', reversal: 'REVERSAL',
}

const PAGE = 5000

// keyset pages on transfer_currency_time_idx (currency_id, created_at, id)
const PAGE_SQL = `
SELECT t.id, t.created_at, to_char(date_trunc('hour', t.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD HH24:MI:SS') AS timeset,
       t.kind, t.from_account_id, t.to_account_id, t.amount::text AS amount
  FROM transfer t
 WHERE t.currency_id = $1
   AND ($2::timestamptz IS NULL OR t.created_at >= $2) AND ($3::timestamptz IS NULL OR t.created_at < $3)
   AND ($4::timestamptz IS NULL OR (t.created_at, t.id) > ($4, $5::uuid))
 ORDER BY t.created_at, t.id
 LIMIT ${PAGE}`

export interface TransferExportInput {
  currencyId: string, code: string, decimals: number, from?: Date, to?: Date
}

export function transfersCsv (pool: pg.Pool, x: TransferExportInput, session: ExportSession): Readable {
  async function * rows () {
    let after: { at: Date, id: string } | null = null
    let n = 0
    for (;;) {
      const r: pg.QueryResult<{ id: string, created_at: Date, timeset: string, kind: string, from_account_id: string, to_account_id: string, amount: string }> =
        await pool.query(PAGE_SQL, [x.currencyId, x.from ?? null, x.to ?? null, after?.at ?? null, after?.id ?? null])
      for (const t of r.rows) {
        yield [++n, t.timeset, SUBTYPE[t.kind] ?? t.kind.toUpperCase(), session.pseudonym(t.from_account_id),
          session.pseudonym(t.to_account_id), formatMoney(t.amount, x.decimals), x.code]
      }
      if (r.rows.length < PAGE) return
      const last = r.rows[r.rows.length - 1]
      after = { at: last.created_at, id: last.id }
    }
  }
  return Readable.from(rows()).pipe(csvStream(TRANSFER_COLUMNS))
}
