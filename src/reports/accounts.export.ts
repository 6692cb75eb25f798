import type { Readable } from 'node:stream'
import type pg from 'pg'
import { csvFile } from '../domain/csv.js'
import { formatMoney } from '../domain/money.js'
import { publishedAccounts, publishedStatus, type QuasiIdentifiers } from './anonymise.js'
import { lockHistories, readHistories, recordExport } from './export-history.js'
import type { ExportSession } from './pseudonym.js'
import { sarafuStandard, type ExportDialect } from './transfers.export.js'

// Every account of a currency as pseudonymised microdata (docs/research-exports.md). Names, usernames, full
// postcodes and ids are never read. What could link an account to a person or business (postcode area, local or
// not, member or business, month of joining, closed or not) is generalised until every published combination
// is shared by at least 5 participant accounts (anonymise.ts; docs/disclosure.md). A business's sector is never
// given: the flows report by sector is protected only against totals a researcher can form exactly, and these
// are the totals the exports allow; with the public directory it would name businesses too. An account is
// generalised together with the accounts earlier exports published alike (anonymise.ts, publishedAccounts), so
// two files of different dates are k-anonymous together too. final_bal is the balance when the export is made.
// System accounts (issuance, fees, paper) are no one: they are given as they are.

/** The project's own layout: enough to recompute every circulation figure (docs/research-exports.md). */
export const ACCOUNT_COLUMNS = ['id', 'start', 'final_bal', 'area_name', 'area_type', 'held_roles', 'business_type', 'status'] as const

/** The Sarafu Network data set's user file, column for column (docs/research-exports.md). */
export const SARAFU_ACCOUNT_COLUMNS = [
  'id', 'start', 'xDAI_blockchain_address', 'old_POA_blockchain_address', 'final_bal', 'area_name', 'area_type',
  'held_roles', 'gender', 'business_type',
  'ovol_in', 'ovol_out', 'otxns_in', 'otxns_out', 'ounique_in', 'ounique_out',
  'svol_in', 'svol_out', 'stxns_in', 'stxns_out', 'sunique_in', 'sunique_out',
] as const

const ACCOUNTS_SQL = `
SELECT a.id, to_char(a.created_at AT TIME ZONE c.time_zone, 'YYYY-MM') AS start, a.balance::text AS balance, a.status,
       a.system_kind, p.kind, p.district
  FROM account a JOIN currency c ON c.id = a.currency_id LEFT JOIN participant p ON p.id = a.participant_id
 WHERE a.currency_id = $1`

// The Sarafu user statistics: per account and side, over STANDARD transfers (s) and the others (o), as the
// Sarafu dialect of the transfers export names them (sarafuStandard): volume, count, distinct counterparties.
const STATS_SQL = `
WITH t AS (
  SELECT t.from_account_id AS src, t.to_account_id AS tgt, t.amount,
         ${sarafuStandard('t.kind', 'o.kind')} AS std
    FROM transfer t LEFT JOIN transfer o ON o.id = t.reverses_id
   WHERE t.currency_id = $1
)
SELECT x.account, x.std, x.side, sum(x.amount)::text AS vol, count(*) AS txns, count(DISTINCT x.other) AS uniq
  FROM (SELECT src AS account, tgt AS other, 'out' AS side, std, amount FROM t
        UNION ALL SELECT tgt, src, 'in', std, amount FROM t) x
 GROUP BY x.account, x.std, x.side`

export interface AccountExportInput { currencyId: string, decimals: number, localAreas: string[], dialect: ExportDialect }

interface Row { id: string, start: string, balance: string, status: string, system_kind: string | null, kind: string | null, district: string | null }

/**
 * The accounts and what this export publishes of each, recorded as published before a row leaves (export-history.ts):
 * read, generalised and recorded in one transaction on the primary, under the currency's lock, so the next export
 * is generalised knowing this one. A file that then fails on its way out has been counted as given; that only
 * ever withholds more.
 */
async function generaliseAndRecord (primary: pg.Pool, x: AccountExportInput, exportId: string): Promise<{ accounts: Row[], published: Map<string, QuasiIdentifiers> }> {
  const db = await primary.connect()
  try {
    await db.query('BEGIN')
    await lockHistories(db, x.currencyId)
    const histories = await readHistories(db, x.currencyId)
    // all at once: k-anonymity needs every account's combination (accounts are few next to transfers)
    const accounts = (await db.query<Row>(ACCOUNTS_SQL, [x.currencyId])).rows
    const small = new Set<string>()
    const published = publishedAccounts(accounts.filter(a => a.system_kind == null), x.localAreas, histories, small)
    await recordExport(db, x.currencyId, exportId, histories, published, small)
    await db.query('COMMIT')
    return { accounts, published }
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    db.release()
  }
}

/** Read on the primary, replica or not: the export records what it published (generaliseAndRecord), and its
 *  Sarafu statistics must count the same transfers as its balances. */
export function accountsCsv (pool: pg.Pool, x: AccountExportInput, session: ExportSession): Readable {
  async function * rows () {
    const { accounts, published } = await generaliseAndRecord(pool, x, session.id)
    // rows leave in pseudonym order, not account id order: uuid v7 ids would give the creation order away
    const ordered = accounts.map(a => ({ a, p: session.pseudonym(a.id) })).sort((p, q) => (p.p < q.p ? -1 : 1))
    if (x.dialect === 'sarafu') {
      yield * await sarafuRows(pool, x, session, ordered.map(o => o.a), published)
      return
    }
    for (const { a, p } of ordered) {
      const q = published.get(a.id)
      yield q == null
        ? [p, a.start, formatMoney(a.balance, x.decimals), '', '', 'ADMIN', a.system_kind ?? '', publishedStatus(a.status)]
        : [p, q.start, formatMoney(a.balance, x.decimals), q.area, q.areaType, q.role === '' ? '' : q.role === 'business' ? 'VENDOR' : 'BENEFICIARY', '', q.status]
    }
  }
  return csvFile(x.dialect === 'sarafu' ? SARAFU_ACCOUNT_COLUMNS : ACCOUNT_COLUMNS, rows())
}

async function sarafuRows (pool: pg.Pool, x: AccountExportInput, session: ExportSession, accounts: Row[],
  published: Map<string, QuasiIdentifiers>): Promise<string[][]> {
  const stats = new Map<string, { vol: string, txns: string, uniq: string }>()
  for (const r of (await pool.query<{ account: string, std: boolean, side: string, vol: string, txns: string, uniq: string }>(STATS_SQL, [x.currencyId])).rows) {
    stats.set(`${r.account}|${r.std ? 's' : 'o'}|${r.side}`, r)
  }
  const stat = (id: string) => ['o', 's'].flatMap(kind => {
    const side = (s: string) => stats.get(`${id}|${kind}|${s}`)
    const vol = (s: string) => formatMoney(side(s)?.vol ?? '0', x.decimals)
    return [vol('in'), vol('out'), side('in')?.txns ?? '0', side('out')?.txns ?? '0', side('in')?.uniq ?? '0', side('out')?.uniq ?? '0']
  })
  return accounts.map((a, i) => {
    const q = published.get(a.id)
    // the data set's codes: area_type and business_type "other" for unknown, "system" for the scheme's own accounts
    const start = q == null ? `${a.start}-01` : q.start === '' ? '' : `${q.start}-01`
    const area = q == null ? 'other' : q.area === '' ? 'other' : q.area
    const role = q == null ? 'ADMIN' : q.role === '' ? '' : q.role === 'business' ? 'VENDOR' : 'BENEFICIARY'
    return [String(i + 1), start, session.address(a.id), '', formatMoney(a.balance, x.decimals), area, 'other', role,
      'unknown', q == null ? 'system' : 'other', ...stat(a.id)]
  })
}
