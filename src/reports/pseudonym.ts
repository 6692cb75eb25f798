import { createHmac, randomBytes } from 'node:crypto'
import type pg from 'pg'
import { DomainError } from '../domain/errors.js'

// Pseudonyms for research exports: HMAC-SHA256 of the account id under a salt made for one export and kept
// only in the database (research_export.salt), never sent. Both files of one export use the same salt, so
// they join on the pseudonym; a new export gets a new salt, so pseudonyms never carry over between exports.

export const EXPORT_TTL_HOURS = 24

export interface ExportSession { id: string, pseudonym: (accountId: string) => string }

function session (id: string, salt: Buffer): ExportSession {
  const seen = new Map<string, string>()
  return {
    id,
    pseudonym: (accountId) => {
      let p = seen.get(accountId)
      if (p === undefined) {
        // 80 bits: collisions are negligible at any realistic number of accounts
        p = createHmac('sha256', salt).update(accountId).digest('hex').slice(0, 20)
        seen.set(accountId, p)
      }
      return p
    },
  }
}

/** A new export with a fresh salt, or the researcher's own unexpired export named by `exportId`. */
export async function openExport (pool: pg.Pool, currencyId: string, userId: string, exportId?: string): Promise<ExportSession> {
  if (exportId != null) {
    const r = await pool.query<{ salt: Buffer }>(
      `SELECT salt FROM research_export
        WHERE id = $1 AND currency_id = $2 AND created_by = $3 AND expires_at > now()`, [exportId, currencyId, userId])
    if (r.rows.length === 0) {
      throw new DomainError('NOT_FOUND', `no export ${exportId} of yours for this currency in the last ${EXPORT_TTL_HOURS} hours; start a new one without ?export=`)
    }
    return session(exportId, r.rows[0].salt)
  }
  const salt = randomBytes(32)
  const r = await pool.query<{ id: string }>(
    `INSERT INTO research_export (currency_id, created_by, salt, expires_at)
     VALUES ($1, $2, $3, now() + make_interval(hours => $4)) RETURNING id`, [currencyId, userId, salt, EXPORT_TTL_HOURS])
  return session(r.rows[0].id, salt)
}
