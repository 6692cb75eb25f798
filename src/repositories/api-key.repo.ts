import type { Db } from './db.js'
import { READ_AT } from './user.repo.js'

export interface NewApiKey {
  currencyId: string, participantId: string, name: string, prefix: string, secretHash: string, scopes: string[], createdBy: string
}

const PUBLIC = {
  id: true, currencyId: true, participantId: true, name: true, prefix: true, scopes: true,
  createdAt: true, lastUsedAt: true, revokedAt: true,
} as const

export const apiKeyRepo = (db: Db) => ({
  create: async (k: NewApiKey) => await db.apiKey.create({ data: k, select: PUBLIC }),

  byId: async (id: string) => await db.apiKey.findUnique({ where: { id }, select: PUBLIC }),

  /**
   * The business's keys not revoked, counted after its participant row is locked (FOR UPDATE, until the
   * transaction ends), so that two creations at once cannot both pass a limit on the count.
   */
  activeLocked: async (participantId: string): Promise<number> => {
    await db.$queryRaw`SELECT 1 FROM participant WHERE id = ${participantId}::uuid FOR UPDATE`
    return await db.apiKey.count({ where: { participantId, revokedAt: null } })
  },

  byHash: async (secretHash: string) => await db.apiKey.findUnique({ where: { secretHash }, select: PUBLIC }),

  list: async (participantId: string, afterId: string | undefined, limit: number) => await db.apiKey.findMany({
    where: { participantId, ...(afterId != null ? { id: { gt: afterId } } : {}) },
    orderBy: { id: 'asc' }, take: limit + 1, select: PUBLIC,
  }),

  /** Marks the key revoked; false when it already was (or does not exist). */
  revoke: async (id: string): Promise<boolean> =>
    (await db.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } })).count === 1,

  /**
   * Records a use of an active key and says whether it is still active, in one statement: the token exchange
   * and the revocation check of outstanding tokens both go through here. When it is: the time of the read, on the
   * database's clock (ms, rounded down: user.repo.ts, Credential.readAt); null when it is not.
   */
  touch: async (id: string): Promise<number | null> => {
    const rows = await db.$queryRaw<Array<{ active: boolean, readAt: number }>>`
      UPDATE api_key SET last_used_at = CASE WHEN revoked_at IS NULL THEN now() ELSE last_used_at END
       WHERE id = ${id}::uuid RETURNING revoked_at IS NULL AS active, ${READ_AT} AS "readAt"`
    return rows[0]?.active === true ? rows[0].readAt : null
  },
})
