import type { Db } from './db.js'

export interface NewStaff { username: string, passwordHash: string, role: 'issuer' | 'researcher', name: string, currencyId: string }

export const userRepo = (db: Db) => ({
  /**
   * A login by its name folded to lower case by the caller (names are unique case-insensitively,
   * app_user_username_lower_key; they are ASCII, where lower() and the caller's folding agree). The name given is
   * not folded again here: PostgreSQL would fold some other letters to ASCII ones ('İ' to 'i').
   */
  byLoginName: async (name: string) => {
    const rows = await db.$queryRaw<Array<{ id: string }>>`SELECT id FROM app_user WHERE lower(username) = ${name}`
    return rows.length === 0 ? null : await db.appUser.findUnique({ where: { id: rows[0].id } })
  },
  /** Is the login of this participant (a business, for its API keys) suspended? */
  isParticipantSuspended: async (participantId: string): Promise<boolean> =>
    (await db.appUser.count({ where: { participantId, suspendedAt: { not: null } } })) > 0,
  /** Logins that are suspended, or whose tokens were revoked since `since`: with the participant each speaks for. */
  revoked: async (since: Date) => await db.appUser.findMany({
    where: { OR: [{ suspendedAt: { not: null } }, { tokensRevokedBefore: { gt: since } }] },
    select: { id: true, participantId: true, suspendedAt: true, tokensRevokedBefore: true },
  }),
  /** Suspends a login and revokes its tokens so far; false when it already was suspended (or does not exist). */
  suspend: async (userId: string, at: Date): Promise<boolean> =>
    (await db.appUser.updateMany({ where: { id: userId, suspendedAt: null }, data: { suspendedAt: at, tokensRevokedBefore: at } })).count === 1,
  /** Lifts a suspension (the tokens it revoked stay revoked); false when the login was not suspended. */
  reinstate: async (userId: string): Promise<boolean> =>
    (await db.appUser.updateMany({ where: { id: userId, suspendedAt: { not: null } }, data: { suspendedAt: null } })).count === 1,
  /** Staff logins (issuer staff, researchers) belong to one currency and speak for no participant. */
  createStaff: async (u: NewStaff) => await db.appUser.create({ data: u, select: { id: true } }),
})
