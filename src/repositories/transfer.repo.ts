import type { PrismaClient } from '../generated/prisma/client.js'
import type { TransferKind, TransferRow, Channel } from '../ledger/write-path.js'

export interface TransferSearch {
  currencyId: string, kind?: TransferKind, account?: string, from?: Date, to?: Date, afterId?: string
}

type Row = {
  id: string, kind: string, channel: string | null, fromAccountId: string, toAccountId: string,
  amount: { toString: () => string }, reference: string | null, metadata: unknown, parentId: string | null,
  reversesId: string | null, createdAt: Date
}

// The same shape transfer_legs() gives the write path: amounts as text, times as RFC 3339 with milliseconds.
export const toTransferRow = (t: Row): TransferRow => ({
  id: t.id, kind: t.kind as TransferKind, channel: t.channel as Channel | null, fromAccount: t.fromAccountId,
  toAccount: t.toAccountId, amount: t.amount.toString(), reference: t.reference,
  metadata: (t.metadata ?? {}) as Record<string, unknown>, parentId: t.parentId, reversesId: t.reversesId,
  createdAt: t.createdAt.toISOString(),
})

export const transferRepo = (prisma: PrismaClient) => ({
  /** A transfer and the legs that point at it, exactly as the write path returned them (main first). */
  legs: async (id: string): Promise<TransferRow[] | null> => {
    const rows = await prisma.$queryRaw<Array<{ legs: TransferRow[] | null }>>`SELECT transfer_legs(${id}::uuid) AS legs`
    return rows[0]?.legs ?? null
  },
  currencyOf: async (id: string) =>
    (await prisma.transfer.findUnique({ where: { id }, select: { currencyId: true } }))?.currencyId ?? null,

  search: async (s: TransferSearch, limit: number) => (await prisma.transfer.findMany({
    where: {
      currencyId: s.currencyId,
      ...(s.kind != null ? { kind: s.kind } : {}),
      ...(s.account != null ? { OR: [{ fromAccountId: s.account }, { toAccountId: s.account }] } : {}),
      ...(s.from != null || s.to != null ? { createdAt: { ...(s.from != null ? { gte: s.from } : {}), ...(s.to != null ? { lt: s.to } : {}) } } : {}),
      ...(s.afterId != null ? { id: { gt: s.afterId } } : {}),
    },
    orderBy: { id: 'asc' },
    take: limit + 1,
  })).map(toTransferRow),
})
