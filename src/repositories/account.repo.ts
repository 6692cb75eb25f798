import type pg from 'pg'
import type { Db } from './db.js'

/** `after`: the last entry of the previous page; with `newest`, the pages go back in time from the latest entry. */
export interface StatementFilter { accountId: string, from?: Date, to?: Date, after?: bigint, newest?: boolean }

export interface StatementRow {
  id: string, transferId: string, amount: string, balanceAfter: string, createdAt: Date,
  kind: string, channel: string | null, reference: string | null, fromAccountId: string, toAccountId: string
}

// One query on pg rather than Prisma, so a statement can be read on either pool: the JSON page on the main pool,
// the CSV on the read pool (plugins/db.ts). Keyset on entry_account_idx (account_id, id), read forward or backward.
const statementSql = (newest: boolean) => `
SELECT e.id::text AS id, e.transfer_id AS "transferId", e.amount::text AS amount, e.balance_after::text AS "balanceAfter",
       e.created_at AS "createdAt", t.kind, t.channel, t.reference, t.from_account_id AS "fromAccountId", t.to_account_id AS "toAccountId"
  FROM entry e JOIN transfer t ON t.id = e.transfer_id
 WHERE e.account_id = $1
   AND ($2::bigint IS NULL OR e.id ${newest ? '<' : '>'} $2) AND ($3::timestamptz IS NULL OR e.created_at >= $3) AND ($4::timestamptz IS NULL OR e.created_at < $4)
 ORDER BY e.id${newest ? ' DESC' : ''}
 LIMIT $5`
const STATEMENT_SQL = { oldest: statementSql(false), newest: statementSql(true) }

/** Entries of an account with their transfer, oldest or newest first; limit + 1 rows so the caller knows if more follow. */
export async function statementRows (db: Pick<pg.Pool, 'query'>, f: StatementFilter, limit: number): Promise<StatementRow[]> {
  const r = await db.query<StatementRow>(STATEMENT_SQL[f.newest === true ? 'newest' : 'oldest'], [f.accountId, f.after?.toString() ?? null, f.from ?? null, f.to ?? null, limit + 1])
  return r.rows
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
