import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { legFromRow, type LegRow, type TransferRow } from '../domain/transfer-view.js'
import type { TransferKind } from '../schemas/ledger.js'
import { uuidV7Floor } from '../domain/ids.js'

/**
 * `afterId`: the last transfer of the previous page of a search without an account; `afterEntry`: with an account,
 * the account's entry of the previous page's last transfer.
 */
export interface TransferSearch {
  currencyId: string, kind?: TransferKind, account?: string, from?: Date, to?: Date, afterId?: string, afterEntry?: string
}

/** A page's transfers (limit + 1 at most, so the caller knows if more follow), each with its key in the page's order. */
export interface TransferSearchPage {
  rows: Array<{ key: string, transfer: TransferRow }>
  /** the last key the page looked at when its window was full: where the next page starts if this one did not fill up */
  resumeAfter: string | null
}

// Transfers are read through transfer_rows(), the SQL function the ledger's posting call answers with, so every
// reader gets the same JSON (src/domain/transfer-view.ts).

/**
 * The issuer's search, bounded per page as the statement (STATEMENT_WINDOW) and the audit trail (AUDIT_WINDOW) are.
 *
 * Without an account the pages go along the currency's transfers in id order (transfer_currency_id_idx, migration
 * 20261230200000_transfer_currency_id_idx). With an account they go along the account's entries (entry_account_idx),
 * the order the account's movements were posted in: the ids of one account's entries rise in commit order (they are
 * drawn under the account's row lock), so a walk of an account's transfers misses none committed while it walks. Before,
 * the account's transfers were gathered from transfer_from_idx and transfer_to_idx and sorted by id for every page.
 *
 * kind, from and to are checked row by row. With one of them a page first finds the next `window` keys after its
 * cursor (TRANSFER_WINDOW, config.ts) and reads no further than the last of them, so a kind that is rare (a
 * redemption among 300,000 payments) costs a page about what `window` rows cost, not the rest of the ledger.
 *
 * Without an account, `from` also says where the walk starts: a transfer's id is made from its time (domain/ids.ts),
 * so none at or after `from` has an id below from's floor, and the pages begin there rather than at the ledger's
 * first transfer (before, a search for yesterday's transfers walked a year of empty windows first). An account's
 * entries have no such order by time, so its walk still begins at its first entry.
 */
export async function searchTransfers (prisma: PrismaClient, s: TransferSearch, limit: number, window: number): Promise<TransferSearchPage> {
  const filtered = s.kind != null || s.from != null || s.to != null
  const filters: Prisma.Sql[] = []
  if (s.kind != null) filters.push(Prisma.sql`t.kind = ${s.kind}`)
  if (s.from != null) filters.push(Prisma.sql`t.created_at >= ${s.from}`)
  if (s.to != null) filters.push(Prisma.sql`t.created_at < ${s.to}`)
  const and = filters.length === 0 ? Prisma.empty : Prisma.sql` AND ${Prisma.join(filters, ' AND ')}`
  let keys: Array<{ key: string, id: string }>
  let edge: string | null = null
  if (s.account != null) {
    // an account of another currency has none of this currency's transfers (and its entries are not walked)
    const acc = await prisma.$queryRaw<Array<{ ok: boolean }>>`
      SELECT currency_id = ${s.currencyId}::uuid AS ok FROM account WHERE id = ${s.account}::uuid`
    if (acc[0]?.ok !== true) return { rows: [], resumeAfter: null }
    const after = s.afterEntry != null ? Prisma.sql`AND e.id > ${s.afterEntry}::bigint` : Prisma.empty
    if (filtered) {
      const w = (await prisma.$queryRaw<Array<{ edge: string | null, n: number }>>`
        SELECT max(id)::text AS edge, count(*)::int AS n FROM (
          SELECT e.id FROM entry e WHERE e.account_id = ${s.account}::uuid ${after} ORDER BY e.id LIMIT ${window}) w`)[0]
      if (w.n >= window) edge = w.edge
    }
    const upTo = edge != null ? Prisma.sql`AND e.id <= ${edge}::bigint` : Prisma.empty
    keys = await prisma.$queryRaw<Array<{ key: string, id: string }>>`
      SELECT e.id::text AS key, t.id::text AS id FROM entry e JOIN transfer t ON t.id = e.transfer_id
       WHERE e.account_id = ${s.account}::uuid ${after} ${upTo}${and}
       ORDER BY e.id LIMIT ${limit + 1}`
  } else {
    const after = Prisma.sql`${s.afterId != null ? Prisma.sql`AND t.id > ${s.afterId}::uuid` : Prisma.empty}${
      s.from != null ? Prisma.sql` AND t.id >= ${uuidV7Floor(s.from)}::uuid` : Prisma.empty}`
    if (filtered) {
      const w = (await prisma.$queryRaw<Array<{ edge: string | null, n: number }>>`
        SELECT (array_agg(id ORDER BY id DESC))[1]::text AS edge, count(*)::int AS n FROM (
          SELECT t.id FROM transfer t WHERE t.currency_id = ${s.currencyId}::uuid ${after} ORDER BY t.id LIMIT ${window}) w`)[0]
      if (w.n >= window) edge = w.edge
    }
    const upTo = edge != null ? Prisma.sql`AND t.id <= ${edge}::uuid` : Prisma.empty
    keys = await prisma.$queryRaw<Array<{ key: string, id: string }>>`
      SELECT t.id::text AS key, t.id::text AS id FROM transfer t
       WHERE t.currency_id = ${s.currencyId}::uuid ${after} ${upTo}${and}
       ORDER BY t.id LIMIT ${limit + 1}`
  }
  if (keys.length === 0) return { rows: [], resumeAfter: edge }
  // each transfer on its own (a fee leg too): the first row of each, in the page's order
  const legs = await prisma.$queryRaw<Array<LegRow & { ord: number }>>`
    SELECT l.* FROM transfer_rows(${keys.map(k => k.id)}::uuid[]) l WHERE l.leg = 1 ORDER BY l.ord`
  return { rows: legs.map(l => ({ key: keys[l.ord - 1].key, transfer: legFromRow(l) })), resumeAfter: edge }
}

export const transferRepo = (prisma: PrismaClient) => ({
  /** A movement: the transfer `id` and the legs that point at it, main first, and its currency; null if none. */
  movement: async (id: string): Promise<{ currencyId: string, legs: TransferRow[] } | null> => {
    const rows = await prisma.$queryRaw<Array<LegRow & { currency_id: string }>>`
      SELECT l.*, t.currency_id FROM transfer_rows(ARRAY[${id}::uuid]) l JOIN transfer t ON t.id = l.id ORDER BY l.leg`
    if (rows.length === 0) return null
    return { currencyId: rows[0].currency_id, legs: rows.map(legFromRow) }
  },

  search: async (s: TransferSearch, limit: number, window: number) => await searchTransfers(prisma, s, limit, window),
})
