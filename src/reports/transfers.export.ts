import type { Readable } from 'node:stream'
import type pg from 'pg'
import { csvFile } from '../domain/csv.js'
import { DomainError } from '../domain/errors.js'
import { formatMoney } from '../domain/money.js'
import type { ExportSession } from './pseudonym.js'

// Every transfer of a currency as pseudonymised microdata (docs/research-exports.md), in two dialects:
//   circulate (default): the project's own, complete enough to recompute every circulation figure: each transfer's
//     kind, the pseudonym of the transfer a fee belongs to (parent_id) and of the transfer a reversal undoes
//     (reverses_id), times to the microsecond as the ledger keeps them;
//   sarafu: the Sarafu Network data set's transaction file (Mattsson, Criscione and Ruddick 2022) column for
//     column and code for code, so the notebooks written for it read it unchanged.
// Dropped: transfer ids (uuid v7 carries the millisecond; only per-export HMAC pseudonyms leave), references,
// metadata, who posted it. Accounts appear only as this export's pseudonyms.

export type ExportDialect = 'circulate' | 'sarafu'

export const TRANSFER_COLUMNS = ['id', 'timeset', 'transfer_subtype', 'source', 'target', 'weight', 'token_name', 'parent_id', 'reverses_id'] as const
export const SARAFU_TRANSFER_COLUMNS = ['id', 'timeset', 'transfer_subtype', 'source', 'target', 'weight', 'token_name', 'token_address'] as const

const SUBTYPE: Record<string, string> = {
  issuance: 'DISBURSEMENT', redemption: 'RECLAMATION', payment: 'STANDARD', fee: 'FEE', reversal: 'REVERSAL',
}

// The Sarafu codes: DISBURSEMENT creates currency, RECLAMATION dissolves it, STANDARD moves it between accounts
// (fees and notes paid in too: the data set's notebooks mark the scheme's accounts, business_type "system").
// A reversal has no code of its own there: it is the movement that undoes the original (a reversed issuance
// dissolves currency), so the balances the notebooks rebuild from it are right at every instant.
const CREATES = ['issuance', 'note_sale']
const DISSOLVES = ['redemption', 'note_buyback', 'note_withdrawal']

export function sarafuSubtype (kind: string, reversedKind: string | null): string {
  const k = kind === 'reversal' ? reversedKind ?? '' : kind
  const creates = CREATES.includes(k); const dissolves = DISSOLVES.includes(k)
  if (kind === 'reversal' ? dissolves : creates) return 'DISBURSEMENT'
  if (kind === 'reversal' ? creates : dissolves) return 'RECLAMATION'
  return 'STANDARD'
}

/** SQL: whether a transfer is STANDARD in the Sarafu dialect (the same rule as sarafuSubtype). */
export function sarafuStandard (kind: string, reversedKind: string): string {
  const moves = [...CREATES, ...DISSOLVES].map(k => `'${k}'`).join(', ')
  return `(CASE WHEN ${kind} = 'reversal' THEN ${reversedKind} NOT IN (${moves}) ELSE ${kind} NOT IN (${moves}) END)`
}

const PAGE = 5000

// keyset pages on transfer_currency_time_idx (currency_id, created_at, id)
const PAGE_SQL = `
SELECT t.id, t.created_at, to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS timeset,
       t.kind, t.from_account_id, t.to_account_id, t.amount::text AS amount, t.parent_id, t.reverses_id, o.kind AS reversed_kind
  FROM transfer t LEFT JOIN transfer o ON o.id = t.reverses_id
 WHERE t.currency_id = $1
   AND ($2::timestamptz IS NULL OR t.created_at >= $2) AND ($3::timestamptz IS NULL OR t.created_at < $3)
   AND ($4::timestamp IS NULL OR (t.created_at, t.id) > ($4::timestamp AT TIME ZONE 'UTC', $5::uuid))
 ORDER BY t.created_at, t.id
 LIMIT $6`

export interface TransferExportInput {
  currencyId: string, code: string, decimals: number
  /** the range's bounds, RFC 3339 to the microsecond (periods.ts, microsIso): a Date would cut them to the millisecond */
  from?: string, to?: string
  dialect: ExportDialect
  /** rows per query (default 5000) */
  page?: number
  /** whether the caller may still read the file (its token not revoked since the request came in): asked before
   *  every page after the first, and a file whose caller lost the right is cut off there */
  allowed?: () => Promise<boolean>
}

interface Row {
  id: string, timeset: string, kind: string, from_account_id: string, to_account_id: string, amount: string,
  parent_id: string | null, reverses_id: string | null, reversed_kind: string | null
}

export function transfersCsv (pool: pg.Pool, x: TransferExportInput, session: ExportSession): Readable {
  const sarafu = x.dialect === 'sarafu'
  const page = x.page ?? PAGE
  // the data set's token_address is the token's contract: here a pseudonym of the currency, fixed within an export
  const token = session.address(`currency:${x.currencyId}`)
  async function * rows () {
    // the cursor keeps the microsecond: a JS Date would cut it to the millisecond and skip or repeat rows
    let after: { at: string, id: string } | null = null
    let n = 0
    for (;;) {
      // A file streams for as long as its client reads it: a researcher suspended (or whose password changed)
      // meanwhile gets no further page, as an event stream sends no further event (docs/research-exports.md)
      if (after != null && x.allowed != null && !(await x.allowed())) {
        throw new DomainError('UNAUTHENTICATED', 'this token was revoked while the export was streaming; the file is cut off')
      }
      const r: pg.QueryResult<Row> =
        await pool.query(PAGE_SQL, [x.currencyId, x.from ?? null, x.to ?? null, after?.at ?? null, after?.id ?? null, page])
      for (const t of r.rows) {
        const weight = formatMoney(t.amount, x.decimals)
        yield sarafu
          ? [++n, t.timeset, sarafuSubtype(t.kind, t.reversed_kind), session.address(t.from_account_id), session.address(t.to_account_id), weight, x.code, token]
          : [session.transfer(t.id), t.timeset, SUBTYPE[t.kind] ?? t.kind.toUpperCase(), session.pseudonym(t.from_account_id),
              session.pseudonym(t.to_account_id), weight, x.code,
              t.parent_id == null ? '' : session.transfer(t.parent_id), t.reverses_id == null ? '' : session.transfer(t.reverses_id)]
      }
      if (r.rows.length < page) return
      const last = r.rows[r.rows.length - 1]
      after = { at: last.timeset, id: last.id }
    }
  }
  return csvFile(sarafu ? SARAFU_TRANSFER_COLUMNS : TRANSFER_COLUMNS, rows())
}
