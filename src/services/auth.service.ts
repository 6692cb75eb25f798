import type { PrismaClient } from '../generated/prisma/client.js'
import { DUMMY_HASH, hashPassword, verifyPassword } from '../auth/password.js'
import { DomainError } from '../domain/errors.js'
import type { Principal, Role } from '../domain/principal.js'

export function authService (prisma: PrismaClient, scryptCost: number) {
  return {
    /** Username and password to a principal. Unknown user and wrong password answer the same, in the same time. */
    async login (username: string, password: string): Promise<Principal> {
      const u = await prisma.appUser.findUnique({ where: { username } })
      const ok = await verifyPassword(password, u?.passwordHash ?? DUMMY_HASH)
      if (u == null || !ok) throw new DomainError('INVALID_CREDENTIALS', 'username or password is wrong')
      return { userId: u.id, role: u.role as Role, currencyId: u.currencyId, participantId: u.participantId }
    },

    /**
     * The platform issuer comes from config on first start, only when no platform issuer exists yet: never from
     * a default password. Returns whether one was created.
     */
    async ensurePlatformIssuer (username: string | undefined, password: string | undefined): Promise<boolean> {
      if (await prisma.appUser.count({ where: { role: 'platform_issuer' } }) > 0) return false
      if (username == null || password == null) return false
      await prisma.appUser.create({
        data: { username, passwordHash: await hashPassword(password, scryptCost), role: 'platform_issuer', name: 'Platform issuer' },
      })
      return true
    },
  }
}
