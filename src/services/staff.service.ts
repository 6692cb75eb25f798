import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { hashPassword } from '../auth/password.js'
import { checkNewPassword } from '../domain/password-rules.js'
import { auditRecord, type RequestMeta } from '../domain/access.js'
import { CURSOR_UUID, decodeCursor, encodeCursor } from '../domain/cursor.js'
import { DomainError } from '../domain/errors.js'
import type { Principal } from '../domain/principal.js'
import { auditRepo } from '../repositories/audit.repo.js'
import { userRepo } from '../repositories/user.repo.js'
import type { StaffCreate as StaffInput, StaffListQuery } from '../schemas/access.js'
import type { CurrencyService } from './currency.service.js'

/** Logins that speak for no participant: a currency's researchers (its issuers add them) and issuer staff
 *  (only the platform issuer adds them). */
export function staffService (prisma: PrismaClient, currencies: CurrencyService, scryptCost: number) {
  async function create (principal: Principal, role: 'issuer' | 'researcher', currencyId: string, b: StaffInput, meta?: RequestMeta) {
    checkNewPassword(b.username, b.password)
    const passwordHash = await hashPassword(b.password, scryptCost)
    try {
      return await prisma.$transaction(async (tx) => {
        const u = await userRepo(tx).createStaff({ username: b.username, passwordHash, role, name: b.name.trim(), currencyId })
        await auditRepo(tx).insert(auditRecord(principal, `${role}.register`, meta, {
          target: u.id, currencyId, detail: { username: b.username },
        }))
        return u
      })
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') {
        throw new DomainError('USERNAME_TAKEN', `username ${b.username} is taken`)
      }
      throw err
    }
  }

  return {
    async registerResearcher (principal: Principal | null, code: string, b: StaffInput, meta?: RequestMeta) {
      const c = await currencies.resolve(code)
      currencies.assertIssuer(principal, c.id)
      return await create(principal, 'researcher', c.id, b, meta)
    },

    async registerIssuer (principal: Principal | null, code: string, b: StaffInput, meta?: RequestMeta) {
      const c = await currencies.resolve(code)
      if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
      if (principal.role !== 'platform_issuer') throw new DomainError('FORBIDDEN', 'only the platform issuer adds issuer staff')
      return await create(principal, 'issuer', c.id, b, meta)
    },

    /** A currency's staff logins, oldest first, for its issuers: whom to suspend when a study ends or a laptop is lost. */
    async list (principal: Principal | null, code: string, q: StaffListQuery & { limit: number }) {
      const c = await currencies.resolve(code)
      currencies.assertIssuer(principal, c.id)
      const after = decodeCursor(q.cursor, [CURSOR_UUID])
      const rows = await prisma.appUser.findMany({
        where: { currencyId: c.id, participantId: null, role: q.role ?? { in: ['issuer', 'researcher'] }, ...(after != null ? { id: { gt: after[0] } } : {}) },
        orderBy: { id: 'asc' }, take: q.limit + 1,
        select: { id: true, role: true, username: true, name: true, createdAt: true, suspendedAt: true },
      })
      const page = rows.slice(0, q.limit)
      const last = page.at(-1)
      return {
        items: page.map(u => ({
          id: u.id, role: u.role as 'issuer' | 'researcher', username: u.username, name: u.name, createdAt: u.createdAt.toISOString(),
          suspended: u.suspendedAt != null, suspendedAt: u.suspendedAt?.toISOString() ?? null,
        })),
        nextCursor: rows.length > q.limit && last != null ? encodeCursor([last.id]) : null,
      }
    },
  }
}
