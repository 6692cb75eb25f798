import { Prisma } from '../generated/prisma/client.js'
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

  /**
   * Oldest first, keyset-paginated on the identity id (the order rows were written in); limit + 1 rows so the
   * caller knows if more follow. Only the currency has an index (audit_event_currency_idx): the other filters
   * (action, actor, outcome, time) are checked row by row along the trail, so one that matched rarely read the
   * whole trail after the cursor for every page. With one of them, at most `window` rows after the cursor
   * (AUDIT_WINDOW, config.ts) are looked at, and `resumeAfter` is the last of them when the window was full: where
   * the next page starts if this one did not fill up. A statement with a time range is bounded the same way
   * (account.repo.ts, statementRows).
   */
  list: async (f: AuditFilter, limit: number, window: number) => {
    let edge: bigint | undefined
    if (f.action != null || f.actorId != null || f.outcome != null || f.from != null || f.to != null) {
      const w = (await db.$queryRaw<Array<{ edge: bigint | null, n: number }>>`
        SELECT max(id) AS edge, count(*)::int AS n FROM (
          SELECT id FROM audit_event
           WHERE ${f.currencyId != null ? Prisma.sql`currency_id = ${f.currencyId}::uuid` : Prisma.sql`TRUE`}
             AND ${f.afterId != null ? Prisma.sql`id > ${f.afterId}` : Prisma.sql`TRUE`}
           ORDER BY id LIMIT ${window}) w`)[0]
      if (w.n >= window && w.edge != null) edge = w.edge
    }
    const rows = await db.auditEvent.findMany({
      where: {
        ...(f.currencyId != null ? { currencyId: f.currencyId } : {}),
        ...(f.action != null ? { action: f.action } : {}),
        ...(f.actorId != null ? { actorId: f.actorId } : {}),
        ...(f.outcome != null ? { outcome: f.outcome } : {}),
        ...(f.from != null || f.to != null ? { at: { ...(f.from != null ? { gte: f.from } : {}), ...(f.to != null ? { lt: f.to } : {}) } } : {}),
        ...(f.afterId != null || edge != null ? { id: { ...(f.afterId != null ? { gt: f.afterId } : {}), ...(edge != null ? { lte: edge } : {}) } } : {}),
      },
      orderBy: { id: 'asc' },
      take: limit + 1,
    })
    return { rows, resumeAfter: edge?.toString() ?? null }
  },
})
