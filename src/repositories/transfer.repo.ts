import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { legFromRow, type LegRow, type TransferRow } from '../domain/transfer-view.js'
import type { TransferKind } from '../schemas/ledger.js'

export interface TransferSearch {
  currencyId: string, kind?: TransferKind, account?: string, from?: Date, to?: Date, afterId?: string
}

// Transfers are read through transfer_rows(), the SQL function the ledger's posting call answers with, so every
// reader gets the same JSON (src/domain/transfer-view.ts).

export const transferRepo = (prisma: PrismaClient) => ({
  /** A movement: the transfer `id` and the legs that point at it, main first, and its currency; null if none. */
  movement: async (id: string): Promise<{ currencyId: string, legs: TransferRow[] } | null> => {
    const rows = await prisma.$queryRaw<Array<LegRow & { currency_id: string }>>`
      SELECT l.*, t.currency_id FROM transfer_rows(ARRAY[${id}::uuid]) l JOIN transfer t ON t.id = l.id ORDER BY l.leg`
    if (rows.length === 0) return null
    return { currencyId: rows[0].currency_id, legs: rows.map(legFromRow) }
  },

  search: async (s: TransferSearch, limit: number): Promise<TransferRow[]> => {
    const where = [Prisma.sql`t.currency_id = ${s.currencyId}::uuid`]
    if (s.kind != null) where.push(Prisma.sql`t.kind = ${s.kind}`)
    if (s.account != null) where.push(Prisma.sql`(t.from_account_id = ${s.account}::uuid OR t.to_account_id = ${s.account}::uuid)`)
    if (s.from != null) where.push(Prisma.sql`t.created_at >= ${s.from}`)
    if (s.to != null) where.push(Prisma.sql`t.created_at < ${s.to}`)
    if (s.afterId != null) where.push(Prisma.sql`t.id > ${s.afterId}::uuid`)
    // each transfer on its own (a fee leg too): the first row of each
    const rows = await prisma.$queryRaw<LegRow[]>`
      SELECT l.* FROM transfer_rows(ARRAY(
        SELECT t.id FROM transfer t WHERE ${Prisma.join(where, ' AND ')} ORDER BY t.id LIMIT ${limit + 1})) l
       WHERE l.leg = 1 ORDER BY l.ord`
    return rows.map(legFromRow)
  },
})
