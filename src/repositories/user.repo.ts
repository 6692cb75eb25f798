import { Prisma } from '../generated/prisma/client.js'
import type { Db } from './db.js'

export interface NewStaff { username: string, passwordHash: string, role: 'issuer' | 'researcher', name: string, currencyId: string }

/** A login's row as a login reads it, with when it was read (readAt). */
export interface Credential {
  id: string, username: string, passwordHash: string, role: string, currencyId: string | null, participantId: string | null,
  suspendedAt: Date | null
  /**
   * When the row was read, on the database's clock, in whole milliseconds (rounded down): the start of the read's
   * transaction, now(), which is taken before the read's snapshot, so whatever committed after the snapshot (and
   * so was not seen) committed later than this. Not statement_timestamp(): with the extended protocol (Prisma's
   * parameterised queries) it is set again by the Execute message, after Bind has taken the snapshot.
   */
  readAt: number
}

/** The database's now() in milliseconds since the epoch, rounded down (see Credential.readAt). */
export const READ_AT = Prisma.sql`floor(extract(epoch FROM now()) * 1000)::float8`

export const userRepo = (db: Db) => ({
  /**
   * A login by its name folded to lower case by the caller (names are unique case-insensitively,
   * app_user_username_lower_key; they are ASCII, where lower() and the caller's folding agree). The name given is
   * not folded again here: PostgreSQL would fold some other letters to ASCII ones ('İ' to 'i').
   */
  byLoginName: async (name: string): Promise<Credential | null> => {
    const rows = await db.$queryRaw<Credential[]>`
      SELECT id::text, username, password_hash AS "passwordHash", role, currency_id::text AS "currencyId",
             participant_id::text AS "participantId", suspended_at AS "suspendedAt", ${READ_AT} AS "readAt"
        FROM app_user WHERE lower(username) = ${name}`
    return rows[0] ?? null
  },
  /** Is the login of this participant (a business, for its API keys) suspended? */
  isParticipantSuspended: async (participantId: string): Promise<boolean> =>
    (await db.appUser.count({ where: { participantId, suspendedAt: { not: null } } })) > 0,
  /** Logins that are suspended, or whose tokens were revoked since `since`: with the participant each speaks for. */
  revoked: async (since: Date) => await db.appUser.findMany({
    where: { OR: [{ suspendedAt: { not: null } }, { tokensRevokedBefore: { gt: since } }] },
    select: { id: true, participantId: true, suspendedAt: true, tokensRevokedBefore: true },
  }),
  /**
   * Suspends a login and revokes its tokens so far, dated by the database's clock (clock_timestamp()); the time, or
   * null when it already was suspended (or does not exist).
   */
  suspend: async (userId: string): Promise<Date | null> => {
    const rows = await db.$queryRaw<Array<{ at: Date }>>`
      UPDATE app_user SET suspended_at = clock_timestamp(), tokens_revoked_before = GREATEST(tokens_revoked_before, clock_timestamp())
       WHERE id = ${userId}::uuid AND suspended_at IS NULL RETURNING suspended_at AS at`
    return rows[0]?.at ?? null
  },
  /**
   * After a change that revokes a login's tokens has committed: its tokens whose credential was read before now (the
   * database's clock_timestamp(), later than the commit) are revoked, never moved back. With `whileSuspended`, only
   * if the login is still suspended. The time revoked up to (ms, rounded down), or null when nothing was changed.
   */
  revokeTokens: async (userId: string, whileSuspended = false): Promise<number | null> => {
    const rows = await db.$queryRaw<Array<{ before: number }>>`
      UPDATE app_user SET tokens_revoked_before = GREATEST(tokens_revoked_before, clock_timestamp())
       WHERE id = ${userId}::uuid AND ${whileSuspended ? Prisma.sql`suspended_at IS NOT NULL` : Prisma.sql`TRUE`}
       RETURNING floor(extract(epoch FROM tokens_revoked_before) * 1000)::float8 AS before`
    return rows[0]?.before ?? null
  },
  /** Lifts a suspension (the tokens it revoked stay revoked); false when the login was not suspended. */
  reinstate: async (userId: string): Promise<boolean> =>
    (await db.appUser.updateMany({ where: { id: userId, suspendedAt: { not: null } }, data: { suspendedAt: null } })).count === 1,
  /** Staff logins (issuer staff, researchers) belong to one currency and speak for no participant. */
  createStaff: async (u: NewStaff) => await db.appUser.create({ data: u, select: { id: true } }),
})
