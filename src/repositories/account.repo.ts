import type pg from 'pg'
import type { Db } from './db.js'

/** `after`: the last entry of the previous page; with `newest`, the pages go back in time from the latest entry. */
export interface StatementFilter { accountId: string, from?: Date, to?: Date, after?: bigint, newest?: boolean }

export interface StatementRow {
  id: string, transferId: string, amount: string, balanceAfter: string, createdAt: Date,
  kind: string, channel: string | null, reference: string | null, fromAccountId: string, toAccountId: string
}

// One query on pg rather than Prisma, so a statement can be read on either pool: the JSON page on the main pool,
// the CSV on the read pool (plugins/db.ts). Keyset on entry_account_idx (account_id, id), read forward or backward;
// $6 bounds the ids read (the window, below).
const statementSql = (newest: boolean) => `
SELECT e.id::text AS id, e.transfer_id AS "transferId", e.amount::text AS amount, e.balance_after::text AS "balanceAfter",
       e.created_at AS "createdAt", t.kind, t.channel, t.reference, t.from_account_id AS "fromAccountId", t.to_account_id AS "toAccountId"
  FROM entry e JOIN transfer t ON t.id = e.transfer_id
 WHERE e.account_id = $1
   AND ($2::bigint IS NULL OR e.id ${newest ? '<' : '>'} $2) AND ($6::bigint IS NULL OR e.id ${newest ? '>=' : '<='} $6)
   AND ($3::timestamptz IS NULL OR e.created_at >= $3) AND ($4::timestamptz IS NULL OR e.created_at < $4)
 ORDER BY e.id${newest ? ' DESC' : ''}
 LIMIT $5`
const STATEMENT_SQL = { oldest: statementSql(false), newest: statementSql(true) }

/** The last of the next `$3` entry ids after `$2` in the page's order, and how many there are. */
const windowSql = (newest: boolean) => `
SELECT ${newest ? 'min' : 'max'}(id)::text AS edge, count(*)::int AS n FROM (
  SELECT e.id FROM entry e WHERE e.account_id = $1 AND ($2::bigint IS NULL OR e.id ${newest ? '<' : '>'} $2)
   ORDER BY e.id${newest ? ' DESC' : ''} LIMIT $3) w`
const WINDOW_SQL = { oldest: windowSql(false), newest: windowSql(true) }

/**
 * Entries of an account with their transfer, oldest or newest first; limit + 1 rows so the caller knows if more
 * follow. With from/to, at most `window` entries (STATEMENT_WINDOW, config.ts) are looked at, and `resumeAfter` is
 * the last of them when the window was full: where the next page starts if this one did not fill up. The range is
 * checked entry by entry along the account's history, so without a bound a range that matched little cost the
 * account's whole history per page: an attacker probe grew its own account to 300,000 entries with free 0.01
 * payments and kept such pages in flight, and another currency's payments waited up to 1.2 s for a connection.
 * With the bound a page costs about what an unranged page of 200 does. An index on (account_id, created_at) was
 * tried instead: in the probe's test the pages still took 83-131 ms (why was not looked into: the page is sorted
 * by id, which that index does not give), and it would cost every entry written one more index entry.
 */
export async function statementRows (db: Pick<pg.Pool, 'query'>, f: StatementFilter, limit: number,
  window: number): Promise<{ rows: StatementRow[], resumeAfter: string | null }> {
  const order = f.newest === true ? 'newest' : 'oldest'
  const after = f.after?.toString() ?? null
  let edge: string | null = null
  if (f.from != null || f.to != null) {
    const w = (await db.query<{ edge: string | null, n: number }>(WINDOW_SQL[order], [f.accountId, after, window])).rows[0]
    if (w.n >= window) edge = w.edge
  }
  const r = await db.query<StatementRow>(STATEMENT_SQL[order], [f.accountId, after, f.from ?? null, f.to ?? null, limit + 1, edge])
  return { rows: r.rows, resumeAfter: edge }
}

export const accountRepo = (prisma: Db) => ({
  byId: async (id: string) => await prisma.account.findUnique({
    where: { id }, include: { participant: { select: { kind: true } } },
  }),

  byIds: async (ids: string[]) => await prisma.account.findMany({
    where: { id: { in: ids } }, select: { id: true, participantId: true, currencyId: true },
  }),

  /**
   * Changes status and limits. The limits are re-checked by the account's CHECK constraints under the row lock
   * the UPDATE takes, so a concurrent payment can never leave the balance outside the new floor or ceiling.
   */
  update: async (id: string, data: { status?: string, floor?: string | null, ceiling?: string | null }) =>
    await prisma.account.update({
      where: { id }, data: { ...data, updatedAt: new Date() }, include: { participant: { select: { kind: true } } },
    }),

})
