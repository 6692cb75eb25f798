import { createHmac, randomBytes } from 'node:crypto'
import type pg from 'pg'
import { RateLimitedError } from '../domain/access.js'
import { DomainError } from '../domain/errors.js'

// Pseudonyms for research exports: HMAC-SHA256 of the account (or transfer) id under a salt made for one export
// and kept only in the database (research_export.salt), never sent. Both files of one export use the same salt, so
// they join on the pseudonym; a new export gets a new salt, so pseudonyms never carry over between exports.
// Transfer ids are uuid v7, whose first 48 bits are the creation millisecond: only their pseudonyms leave.

export const EXPORT_TTL_HOURS = 24

export interface ExportSession {
  id: string
  /** an account's pseudonym: 20 hex digits (80 bits: collisions are negligible at any realistic number of accounts) */
  pseudonym: (accountId: string) => string
  /** a transfer's pseudonym, 20 hex digits; a different HMAC input, so it never equals an account's */
  transfer: (transferId: string) => string
  /** an account's pseudonym shaped as the Sarafu data set's keys (0x and 40 hex digits): its first 20 digits are
   *  `pseudonym`, so the two dialects of one export join */
  address: (accountId: string) => string
}

function session (id: string, salt: Buffer): ExportSession {
  const hmac = (x: string) => createHmac('sha256', salt).update(x).digest('hex')
  // accounts recur on every transfer they take part in; transfers appear about once (not cached: millions)
  const seen = new Map<string, string>()
  const account = (id: string) => {
    let h = seen.get(id)
    if (h === undefined) {
      h = hmac(id)
      seen.set(id, h)
    }
    return h
  }
  return {
    id,
    pseudonym: (accountId) => account(accountId).slice(0, 20),
    transfer: (transferId) => hmac(`transfer:${transferId}`).slice(0, 20),
    address: (accountId) => `0x${account(accountId).slice(0, 40)}`,
  }
}

/** The salt of the researcher's own unexpired export `exportId`; 404 when there is none (reads, writes nothing). */
export async function exportSalt (pool: pg.Pool, currencyId: string, userId: string, exportId: string): Promise<Buffer> {
  const r = await pool.query<{ salt: Buffer }>(
    `SELECT salt FROM research_export
      WHERE id = $1 AND currency_id = $2 AND created_by = $3 AND expires_at > now()`, [exportId, currencyId, userId])
  if (r.rows.length === 0) {
    throw new DomainError('NOT_FOUND', `no export ${exportId} of yours for this currency in the last ${EXPORT_TTL_HOURS} hours; start a new one without ?export=`)
  }
  return r.rows[0].salt
}

/** New exports one researcher may start in 24 hours, by default (RESEARCH_EXPORTS_PER_DAY). */
export const EXPORTS_PER_DAY = 100

/** 429 when the researcher has started `perDay` exports in the last 24 hours (openExport; a HEAD checks it too). */
export async function mayStartExport (pool: pg.Pool, userId: string, perDay = EXPORTS_PER_DAY): Promise<void> {
  // the last perDay of the researcher's exports, through research_export_user_idx (created_by, created_at)
  const recent = await pool.query<{ n: number, wait: number | null }>(
    `SELECT count(*)::int AS n, ceil(extract(epoch FROM min(created_at) + interval '24 hours' - now()))::int AS wait
       FROM (SELECT created_at FROM research_export WHERE created_by = $1 AND created_at > now() - interval '24 hours'
              ORDER BY created_at DESC LIMIT $2) x`, [userId, perDay])
  if (recent.rows[0].n >= perDay) {
    throw new RateLimitedError(Math.max(1, recent.rows[0].wait ?? 1),
      `you started ${perDay} exports in the last 24 hours, as many as a researcher may; continue one with ?export= (within its 24 hours) or retry later`)
  }
}

/**
 * A new export with a fresh salt, or the researcher's own unexpired export named by `exportId`. A researcher starts
 * at most `perDay` new exports in 24 hours (continuing one with `exportId` is not a new one): each keeps a row and
 * its salt for RESEARCH_EXPORT_RETENTION_HOURS, and one researcher asking for a millisecond's transfers in a loop
 * made some 300 a second, a million rows an hour, every one read by the aggregator's deletion of expired exports.
 * Past it 429 RATE_LIMITED, Retry-After until the oldest of the last `perDay` is 24 hours old. Requests of one
 * researcher running at the same moment (READS_PER_CALLER on each instance) may each pass the count.
 */
export async function openExport (pool: pg.Pool, currencyId: string, userId: string, exportId?: string, perDay = EXPORTS_PER_DAY): Promise<ExportSession> {
  if (exportId != null) return session(exportId, await exportSalt(pool, currencyId, userId, exportId))
  await mayStartExport(pool, userId, perDay)
  const salt = randomBytes(32)
  const r = await pool.query<{ id: string }>(
    `INSERT INTO research_export (currency_id, created_by, salt, expires_at)
     VALUES ($1, $2, $3, now() + make_interval(hours => $4)) RETURNING id`, [currencyId, userId, salt, EXPORT_TTL_HOURS])
  return session(r.rows[0].id, salt)
}

/**
 * Deletes the exports made more than `retentionHours` before `now` whose ?export= window has closed, salts and all.
 * A kept salt is all it takes to turn a published file's pseudonyms back into account ids (HMAC every account id
 * under it), so salts are kept only as long as an export may be continued (docs/research-exports.md). Returns how
 * many were deleted.
 */
export async function forgetExports (pool: pg.Pool, now: Date, retentionHours: number): Promise<number> {
  const r = await pool.query(`DELETE FROM research_export
    WHERE created_at < $1::timestamptz - make_interval(hours => $2) AND expires_at <= $1::timestamptz`, [now, retentionHours])
  return r.rowCount ?? 0
}
