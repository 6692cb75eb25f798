import type { Db } from './db.js'

export interface NewStaff { username: string, passwordHash: string, role: 'issuer' | 'researcher', name: string, currencyId: string }

export const userRepo = (db: Db) => ({
  byUsername: async (username: string) => await db.appUser.findUnique({ where: { username } }),
  /** Staff logins (issuer staff, researchers) belong to one currency and speak for no participant. */
  createStaff: async (u: NewStaff) => await db.appUser.create({ data: u, select: { id: true } }),
})
