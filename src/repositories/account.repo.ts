import type { Db } from './db.js'

export interface StatementFilter { accountId: string, from?: Date, to?: Date, afterEntryId?: bigint }

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

  statement: async (f: StatementFilter, limit: number) => await prisma.entry.findMany({
    where: {
      accountId: f.accountId,
      ...(f.afterEntryId != null ? { id: { gt: f.afterEntryId } } : {}),
      ...(f.from != null || f.to != null ? { createdAt: { ...(f.from != null ? { gte: f.from } : {}), ...(f.to != null ? { lt: f.to } : {}) } } : {}),
    },
    orderBy: { id: 'asc' },
    take: limit + 1,
    include: {
      transfer: {
        select: { kind: true, channel: true, reference: true, fromAccountId: true, toAccountId: true, parentId: true },
      },
    },
  }),
})
