import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import { auditRecord, type RequestMeta } from '../domain/access.js'
import { CURSOR_UUID, decodeCursor, encodeCursor } from '../domain/cursor.js'
import { domainErrorFor } from '../db/errors.js'
import { DomainError } from '../domain/errors.js'
import type { Principal } from '../domain/principal.js'
import type { PrismaClient } from '../generated/prisma/client.js'
import { auditRepo } from '../repositories/audit.repo.js'
import type { DeliveryListQuery, WebhookCreate } from '../schemas/webhooks.js'
import { checkAddresses, checkUrlForm, UrlRefused, type AddressPolicy } from '../webhooks/address.js'
import type { CurrencyService } from './currency.service.js'
import type { Idempotency } from './transfer.service.js'

// Webhook endpoints and their delivery log. A business registers endpoints for the events of its own accounts; an
// issuer for every account of its currency (the platform issuer names the currency). Endpoints are managed with a
// login, never with an API key (a leaked key must not be able to redirect the shop's events). Anyone else's
// endpoint is "not found". The audit trail, which the currency's issuers read, records an endpoint's origin only
// (scheme, host, port): a URL's path and query often carry the receiver's own secret (a catch-hook token).

interface Owner { currencyId: string, participantId: string | null, principal: Principal }

interface WebhookRow {
  id: string, currency_id: string, participant_id: string | null, url: string, events: string[], description: string | null,
  status: 'active' | 'disabled' | 'deleted', disabled_reason: string | null, created_at: Date, code: string
}
interface DeliveryRow {
  id: string, event_id: string, type: string, status: 'pending' | 'delivered' | 'failed', attempts: number,
  last_status_code: number | null, last_latency_ms: number | null, last_error: string | null, last_attempt_at: Date | null,
  next_attempt_at: Date, delivered_at: Date | null, created_at: Date
}

const view = (w: WebhookRow) => ({
  id: w.id, url: w.url, events: w.events as any, description: w.description, currency: w.code, participantId: w.participant_id,
  status: w.status as 'active' | 'disabled', disabledReason: w.disabled_reason, createdAt: w.created_at.toISOString(),
})
const deliveryView = (d: DeliveryRow) => ({
  id: d.id, eventId: d.event_id, eventType: d.type as any, status: d.status, attempts: d.attempts,
  lastStatusCode: d.last_status_code, lastLatencyMs: d.last_latency_ms, lastError: d.last_error,
  lastAttemptAt: d.last_attempt_at?.toISOString() ?? null,
  nextAttemptAt: d.status === 'pending' ? d.next_attempt_at.toISOString() : null,
  deliveredAt: d.delivered_at?.toISOString() ?? null, createdAt: d.created_at.toISOString(),
})

/** How long the secret a rotation replaced keeps signing beside the new one. */
export const PREVIOUS_SECRET_HOURS = 24

/** 256 random bits, in the Standard Webhooks form (whsec_ and base64). */
const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`

/** The scheme, host and port of a stored URL (all the audit trail keeps of it). */
const originOf = (url: string): string | null => URL.canParse(url) ? new URL(url).origin : null

const SELECT = `SELECT w.*, c.code FROM webhook w JOIN currency c ON c.id = w.currency_id`
const D_SELECT = `SELECT d.id, d.event_id::text, e.type, d.status, d.attempts, d.last_status_code, d.last_latency_ms, d.last_error,
  d.last_attempt_at, d.next_attempt_at, d.delivered_at, d.created_at FROM webhook_delivery d JOIN event e ON e.id = d.event_id`

/**
 * One page of an endpoint's delivery log, newest first ($1 webhook, $2 after this id, $3 status or null, $4 limit).
 * A status that is rare in the log (failed) is found through its partial index (migration
 * 20261229100200_webhook_delivery_failed_idx), not by walking the endpoint's whole log.
 */
export const DELIVERY_PAGE = `${D_SELECT} WHERE d.webhook_id = $1 AND ($2::uuid IS NULL OR d.id < $2) AND ($3::text IS NULL OR d.status = $3)
  ORDER BY d.id DESC LIMIT $4`

export function webhookService (pool: pg.Pool, prisma: PrismaClient, currencies: CurrencyService, o: { policy: AddressPolicy, maxPerOwner: number, kick: () => void,
  /** where a refused URL's cause is written (its caller is not told it for a host name) */
  log?: { info: (o: unknown, m: string) => void } }) {
  function caller (p: Principal | null): Principal {
    if (p == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
    if (p.apiKeyId != null) throw new DomainError('FORBIDDEN', 'webhooks are managed with a password login, not with an API key')
    if (p.role === 'business' && p.participantId != null && p.currencyId != null) return p
    if (p.role === 'issuer' && p.currencyId != null) return p
    if (p.role === 'platform_issuer') return p
    throw new DomainError('FORBIDDEN', 'webhooks are for businesses (their own accounts) and issuers (their currency)')
  }

  async function owner (p: Principal | null, code: string | undefined): Promise<Owner> {
    const c = caller(p)
    if (c.role === 'platform_issuer') {
      if (code == null) throw new DomainError('VALIDATION_FAILED', 'the platform issuer names the currency', [{ pointer: '/currency', detail: 'required for the platform issuer' }])
      return { currencyId: (await currencies.resolve(code)).id, participantId: null, principal: c }
    }
    if (code != null) {
      const cur = await currencies.resolve(code)
      if (cur.id !== c.currencyId) throw new DomainError('CURRENCY_NOT_FOUND', `no currency ${code}`)
    }
    return { currencyId: c.currencyId!, participantId: c.role === 'business' ? c.participantId : null, principal: c }
  }

  /** The webhook if the caller may manage it (a deleted one is gone). */
  async function mine (p: Principal | null, id: string): Promise<WebhookRow> {
    const c = caller(p)
    const w = (await pool.query<WebhookRow>(`${SELECT} WHERE w.id = $1 AND w.status <> 'deleted'`, [id])).rows[0]
    const ok = w != null && (c.role === 'business'
      ? w.participant_id === c.participantId
      : w.participant_id == null && (c.role === 'platform_issuer' || w.currency_id === c.currencyId))
    if (!ok) throw new DomainError('NOT_FOUND', 'webhook not found')
    return w
  }

  return {
    async create (principal: Principal | null, b: WebhookCreate, meta?: RequestMeta) {
      const who = await owner(principal, b.currency)
      let url: URL
      try {
        url = checkUrlForm(b.url, o.policy)
        await checkAddresses(url, o.policy)
      } catch (err) {
        if (err instanceof UrlRefused) {
          // the caller is told the same for every host name refused (address.ts, NAME_REFUSED); the log says why
          if (err.reason != null) {
            o.log?.info({ requestId: meta?.requestId ?? null, currencyId: who.currencyId, participantId: who.participantId, reason: err.reason },
              'webhooks: a url refused at registration')
          }
          throw new DomainError('VALIDATION_FAILED', err.message, [{ pointer: '/url', detail: err.message }])
        }
        throw err
      }
      const events = [...new Set(b.events)]
      const secret = newSecret()
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        // per owner, one at a time (the count below is then exact)
        await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 11))', [`webhook:${who.currencyId}:${who.participantId ?? ''}`])
        const n = (await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM webhook WHERE currency_id = $1 AND participant_id IS NOT DISTINCT FROM $2 AND status <> 'deleted'`,
          [who.currencyId, who.participantId])).rows[0].n
        if (n >= o.maxPerOwner) throw new DomainError('VALIDATION_FAILED', `at most ${o.maxPerOwner} webhooks; delete one first`)
        const id = (await client.query<{ id: string }>(
          `INSERT INTO webhook (currency_id, participant_id, url, events, description, secret, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
          [who.currencyId, who.participantId, url.toString(), events, b.description ?? null, secret, who.principal.userId])).rows[0].id
        await client.query('COMMIT')
        await auditRepo(prisma).insert(auditRecord(who.principal, 'webhook.create', meta, {
          target: id, currencyId: who.currencyId, detail: { origin: url.origin, events, participantId: who.participantId },
        })).catch(() => {})
        const w = (await pool.query<WebhookRow>(`${SELECT} WHERE w.id = $1`, [id])).rows[0]
        return { ...view(w), secret }
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
    },

    /**
     * A new signing secret, shown once. The old one signs beside it for PREVIOUS_SECRET_HOURS (every request carries
     * both signatures), so the receiver can change over without refusing a delivery; rotating again within that time
     * drops the oldest at once. The endpoint, its deliveries and their ids stay as they are.
     *
     * Once per Idempotency-Key of the calling login and endpoint: a retry with the same key answers the same rotation
     * (the same new secret, replayed), where rotating again would have dropped the secret the receiver held before
     * from the day of overlap. Only the rotation that made the current secret can be answered again: a key whose
     * rotation a later one replaced is 409 ROTATION_SUPERSEDED, and rotates nothing. Rotations of one endpoint take
     * turns on its row lock, so a retry sent while its first try runs waits for it and is answered by it.
     */
    async rotateSecret (principal: Principal | null, id: string, idem: Idempotency, meta?: RequestMeta) {
      const w = await mine(principal, id)
      const p = principal!
      const client = await pool.connect()
      let r: { secret: string, previous_secret_until: Date, replayed: boolean }
      try {
        await client.query('BEGIN')
        const cur = (await client.query<{ secret: string, previous_secret_until: Date | null, rotated_by: string | null, rotation_key: string | null }>(
          `SELECT secret, previous_secret_until, rotated_by, rotation_key FROM webhook WHERE id = $1 AND status <> 'deleted' FOR UPDATE`, [w.id])).rows[0]
        if (cur == null) throw new DomainError('NOT_FOUND', 'webhook not found')
        const prior = (await client.query<{ request_hash: string }>(
          `SELECT request_hash FROM webhook_rotation WHERE currency_id = $1 AND webhook_id = $2 AND created_by = $3 AND idempotency_key = $4`,
          [w.currency_id, w.id, p.userId, idem.key])).rows[0]
        if (prior != null) {
          if (prior.request_hash !== idem.requestHash) throw domainErrorFor('IDEMPOTENCY_KEY_REUSED')
          if (cur.rotated_by !== p.userId || cur.rotation_key !== idem.key || cur.previous_secret_until == null) {
            throw new DomainError('ROTATION_SUPERSEDED', 'a later rotation replaced the secret this Idempotency-Key\'s rotation made; ' +
              'rotate with a new key for a secret to keep')
          }
          r = { secret: cur.secret, previous_secret_until: cur.previous_secret_until, replayed: true }
        } else {
          const secret = newSecret()
          const u = (await client.query<{ previous_secret_until: Date }>(
            `UPDATE webhook SET previous_secret = secret, previous_secret_until = now() + $3 * interval '1 hour', secret = $2,
                    rotated_by = $4, rotation_key = $5
              WHERE id = $1 RETURNING previous_secret_until`, [w.id, secret, PREVIOUS_SECRET_HOURS, p.userId, idem.key])).rows[0]
          await client.query(
            `INSERT INTO webhook_rotation (currency_id, webhook_id, created_by, idempotency_key, request_hash) VALUES ($1, $2, $3, $4, $5)`,
            [w.currency_id, w.id, p.userId, idem.key, idem.requestHash])
          r = { secret, previous_secret_until: u.previous_secret_until, replayed: false }
        }
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
      if (!r.replayed) {
        await auditRepo(prisma).insert(auditRecord(principal, 'webhook.rotate_secret', meta, {
          target: w.id, currencyId: w.currency_id, detail: { origin: originOf(w.url) },
        })).catch(() => {})
      }
      return { webhook: { ...view(w), secret: r.secret, previousSecretExpiresAt: r.previous_secret_until.toISOString() }, replayed: r.replayed }
    },

    async list (principal: Principal | null, q: { cursor?: string, limit: number }) {
      const c = caller(principal)
      const after = decodeCursor(q.cursor, [CURSOR_UUID])?.[0] ?? null
      const rows = (await pool.query<WebhookRow>(
        `${SELECT} WHERE w.status <> 'deleted' AND ($1::uuid IS NULL OR w.id > $1)
           AND CASE $2 WHEN 'business' THEN w.participant_id = $3::uuid
                       WHEN 'issuer' THEN w.participant_id IS NULL AND w.currency_id = $4::uuid
                       ELSE w.participant_id IS NULL END
         ORDER BY w.id LIMIT $5`,
        [after, c.role, c.participantId, c.currencyId, q.limit + 1])).rows
      const page = rows.slice(0, q.limit)
      const last = page.at(-1)
      return { items: page.map(view), nextCursor: rows.length > q.limit && last != null ? encodeCursor([last.id]) : null }
    },

    async remove (principal: Principal | null, id: string, meta?: RequestMeta) {
      const w = await mine(principal, id)
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        await client.query(`UPDATE webhook SET status = 'deleted', deleted_at = now() WHERE id = $1`, [w.id])
        await client.query(`UPDATE webhook_delivery SET status = 'failed', last_error = coalesce(last_error || '; ', '') || 'not sent: endpoint deleted'
                             WHERE webhook_id = $1 AND status = 'pending'`, [w.id])
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
      await auditRepo(prisma).insert(auditRecord(principal, 'webhook.delete', meta, { target: w.id, currencyId: w.currency_id, detail: { origin: originOf(w.url) } })).catch(() => {})
    },

    async deliveries (principal: Principal | null, id: string, q: DeliveryListQuery & { limit: number }) {
      const w = await mine(principal, id)
      const after = decodeCursor(q.cursor, [CURSOR_UUID])?.[0] ?? null
      const rows = (await pool.query<DeliveryRow>(DELIVERY_PAGE, [w.id, after, q.status ?? null, q.limit + 1])).rows
      const page = rows.slice(0, q.limit)
      const last = page.at(-1)
      return { items: page.map(deliveryView), nextCursor: rows.length > q.limit && last != null ? encodeCursor([last.id]) : null }
    },

    /** Sends a delivery again now (also a delivered or failed one); enables its endpoint again if it was disabled. */
    async retry (principal: Principal | null, id: string, deliveryId: string, meta?: RequestMeta) {
      const w = await mine(principal, id)
      const client = await pool.connect()
      let d: DeliveryRow | undefined
      try {
        await client.query('BEGIN')
        // (a delivery written before deliveries carried their currency has none: pending, it needs it to be claimed)
        // Not while a worker is sending it (its lease, sending_until, has not ended): made due now, the next claim
        // would send it a second time beside that send.
        const upd = await client.query(`UPDATE webhook_delivery SET status = 'pending', next_attempt_at = now(), delivered_at = NULL,
                                                currency_id = $3
                                         WHERE id = $1 AND webhook_id = $2 AND (sending_until IS NULL OR sending_until <= now())`,
        [deliveryId, w.id, w.currency_id])
        if (upd.rowCount !== 1) {
          const busy = (await client.query<{ sending_until: Date | null }>(
            'SELECT sending_until FROM webhook_delivery WHERE id = $1 AND webhook_id = $2', [deliveryId, w.id])).rows[0]
          if (busy == null) throw new DomainError('NOT_FOUND', 'delivery not found')
          throw new DomainError('DELIVERY_SENDING', 'a send of this delivery is under way; its outcome is in the delivery log ' +
            `when it ends (by ${busy.sending_until?.toISOString() ?? 'its timeout'} at the latest): retry after it`)
        }
        if (w.status === 'disabled') {
          await client.query(`UPDATE webhook SET status = 'active', disabled_at = NULL, disabled_reason = NULL, consecutive_failures = 0,
                                     failing_since = NULL WHERE id = $1 AND status = 'disabled'`, [w.id])
        }
        d = (await client.query<DeliveryRow>(`${D_SELECT} WHERE d.id = $1`, [deliveryId])).rows[0]
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
      await auditRepo(prisma).insert(auditRecord(principal, 'webhook.retry', meta, { target: deliveryId, currencyId: w.currency_id, detail: { webhookId: w.id, reenabled: w.status === 'disabled' } })).catch(() => {})
      o.kick()
      return deliveryView(d)
    },
  }
}
export type WebhookService = ReturnType<typeof webhookService>
