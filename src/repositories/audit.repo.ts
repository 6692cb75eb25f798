import type { Prisma } from '../generated/prisma/client.js'
import type { AuditAction, AuditRecord } from '../domain/access.js'
import type { Db } from './db.js'

export interface AuditFilter {
  /** undefined: every currency and none (the platform issuer's view) */
  currencyId?: string
  action?: AuditAction
  actorId?: string
  outcome?: 'success' | 'failure'
  from?: Date
  to?: Date
  afterId?: bigint
}

export const auditRepo = (db: Db) => ({
  insert: async (r: AuditRecord) => {
    await db.auditEvent.create({ data: { ...r, detail: r.detail as Prisma.InputJsonValue } })
  },

  /** Oldest first, keyset-paginated on the identity id (the order rows were written in). */
  list: async (f: AuditFilter, limit: number) => await db.auditEvent.findMany({
    where: {
      ...(f.currencyId != null ? { currencyId: f.currencyId } : {}),
      ...(f.action != null ? { action: f.action } : {}),
      ...(f.actorId != null ? { actorId: f.actorId } : {}),
      ...(f.outcome != null ? { outcome: f.outcome } : {}),
      ...(f.from != null || f.to != null ? { at: { ...(f.from != null ? { gte: f.from } : {}), ...(f.to != null ? { lt: f.to } : {}) } } : {}),
      ...(f.afterId != null ? { id: { gt: f.afterId } } : {}),
    },
    orderBy: { id: 'asc' },
    take: limit + 1,
  }),
})
