import { createHash, randomInt, timingSafeEqual } from 'node:crypto'
import type pg from 'pg'
import { hashPassword, verifyPassword } from '../auth/password.js'
import { withRetry } from '../db/retry.js'
import { inTransaction } from '../db/transaction.js'
import { auditRecord, RateLimitedError, type AuditAction, type AuditRecord, type RequestMeta } from '../domain/access.js'
import { CURSOR_UUID, decodeCursor, encodeCursor } from '../domain/cursor.js'
import { DomainError } from '../domain/errors.js'
import { formatMoney, parseAmount } from '../domain/money.js'
import { payment } from '../domain/movements.js'
import { isIssuerOf, type Principal } from '../domain/principal.js'
import {
  CODE_MAX_FAILURES, CODES_PER_DAY, e164, gatewaySignature, IDLE_OUTCOMES, IDLE_REPLIES_PER_DAY, isPin, normaliseAmount, normaliseTextCode, parseCommand, parsePhone,
  PIN_MAX_FAILURES, replies, shortRef, signatureMatches, type Command, type FormFields,
} from '../domain/sms.js'
import { postMovement } from '../ledger/post.js'
import type { OutboxQuery, TextSettings } from '../schemas/sms.js'
import { holdQueued, type Queryable, type TextSender } from '../sms/outbound.js'
import type { CurrencyInfo, CurrencyService } from './currency.service.js'

// Pay by text (docs/text-payments.md): phones, text PINs and business text codes (the participant routes), the
// gateway's webhook (POST /v1/sms/inbound) and the outbox issuers read. Plain SQL on the write pool, each change in
// one transaction with the texts it queues (src/sms/outbound.ts) and its audit row.

export interface SmsOptions {
  scryptCost: number
  /** the gateway's auth token (SMS_AUTH_TOKEN): signs its webhooks; null turns the webhook off */
  authToken: string | null
  /** the webhook URL exactly as configured at the gateway (SMS_PUBLIC_URL); null: rebuilt from the request */
  publicUrl: string | null
  sender: TextSender
  /** the time codes expire by (tests inject one) */
  clock?: () => Date
  /** verification codes (tests may inject one); default 6 random digits */
  newCode?: () => string
}

/** How long a texted verification code is good for, and how soon another may be asked for. */
export const CODE_TTL_MS = 10 * 60_000
export const CODE_RESEND_MS = 60_000
const DAY_SECONDS = 86_400

interface ParticipantRow { id: string, currency_id: string, kind: string, name: string, text_code: string | null }
interface PhoneRow {
  participant_id: string, currency_id: string, phone: string | null, pending_phone: string | null, code_hash: string | null,
  code_expires_at: Date | null, code_sent_at: Date | null, code_failures: number, pin_hash: string | null,
  pin_failures: number, locked_at: Date | null
}

const codeHash = (participantId: string, phone: string, code: string) =>
  createHash('sha256').update(`${participantId}\u001f${phone}\u001f${code}`).digest('base64url')

/**
 * Holds a phone number until the transaction ends: requests for its codes (counted per day) and proofs of it (which
 * take it from whoever held it) go one at a time, whichever participants make them.
 */
async function lockNumber (db: Queryable, phone: string) {
  await db.query("SELECT pg_advisory_xact_lock(hashtextextended('text_phone:' || $1, 0))", [phone])
}

async function insertAudit (db: Queryable, r: AuditRecord) {
  await db.query(
    `INSERT INTO audit_event (actor_id, actor_name, role, action, target, currency_id, outcome, error_code, client_address, request_id, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [r.actorId, r.actorName, r.role, r.action, r.target, r.currencyId, r.outcome, r.errorCode, r.clientAddress, r.requestId, JSON.stringify(r.detail)])
}

/**
 * A number's answered idle texts of the last day. The outcomes are written out as the partial index
 * sms_inbound_idle_replies_idx names them, so that the planner matches the index (a parameter array would not):
 * the count reads at most IDLE_REPLIES_PER_DAY entries however many texts the number floods.
 */
export const IDLE_REPLIES_SQL = `SELECT count(*)::int AS n FROM sms_inbound
  WHERE from_phone = $1 AND received_at > now() - interval '24 hours'
    AND reply <> '' AND outcome IN (${IDLE_OUTCOMES.map(o => `'${o}'`).join(', ')})`

export function smsService (pool: pg.Pool, currencies: CurrencyService, opts: SmsOptions) {
  const clock = opts.clock ?? (() => new Date())
  const newCode = opts.newCode ?? (() => String(randomInt(0, 1_000_000)).padStart(6, '0'))
  const sender = opts.sender

  /**
   * Runs fn in a transaction on one client; rolled back if it throws, and run again whole after a deadlock or
   * serialization failure (its texts go to the outbox in the same transaction, so nothing is sent twice).
   */
  async function tx<T> (fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return await withRetry(async () => await inTransaction(pool, fn))
  }

  /**
   * Texts from one number on this instance, one after another, waiting here rather than on the number's row lock:
   * a waiter on the lock held a connection of the write pool, so a burst from one phone took every connection while
   * its PINs were checked in turn, and everyone else's requests queued behind it (or, past DB_ACQUIRE_TIMEOUT_MS,
   * failed with 503). The row lock still orders texts from one number across instances.
   */
  const turns = new Map<string, Promise<unknown>>()
  async function inTurn<T> (from: string, fn: () => Promise<T>): Promise<T> {
    const mine = (turns.get(from) ?? Promise.resolve()).then(fn)
    const tail = mine.catch(() => {})
    turns.set(from, tail)
    try {
      return await mine
    } finally {
      if (turns.get(from) === tail) turns.delete(from)
    }
  }

  /**
   * The participant a route names, when the caller may manage its text payments: the participant itself or an
   * issuer of its currency. Anyone else is told what an unknown id tells them (a researcher: that it may not).
   */
  async function managed (principal: Principal | null, id: string): Promise<ParticipantRow> {
    if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
    if (principal.role === 'researcher') throw new DomainError('FORBIDDEN', 'researchers see reports and exports, not participants')
    const p = (await pool.query<ParticipantRow>('SELECT id, currency_id, kind, name, text_code FROM participant WHERE id = $1', [id])).rows[0]
    if (p == null || !(principal.participantId === p.id || isIssuerOf(principal, p.currency_id))) {
      throw new DomainError('PARTICIPANT_NOT_FOUND', 'participant not found')
    }
    return p
  }

  const audit = (p: Principal, action: AuditAction, meta: RequestMeta | undefined, target: ParticipantRow, detail: Record<string, unknown>) =>
    auditRecord(p, action, meta, { target: target.id, currencyId: target.currency_id, detail })

  const view = (p: ParticipantRow, r: PhoneRow | null | undefined): TextSettings => ({
    participantId: p.id,
    phone: r?.phone ?? null,
    pendingPhone: r?.pending_phone ?? null,
    codeExpiresAt: r?.pending_phone != null ? r.code_expires_at?.toISOString() ?? null : null,
    pinSet: r?.pin_hash != null,
    locked: r?.locked_at != null,
    textCode: p.text_code,
  })

  /** The participant's phone row, created empty when missing, locked for the rest of the transaction. */
  async function lockedRow (c: Queryable, p: ParticipantRow): Promise<PhoneRow> {
    await c.query('INSERT INTO text_phone (participant_id, currency_id) VALUES ($1, $2) ON CONFLICT (participant_id) DO NOTHING', [p.id, p.currency_id])
    return (await c.query<PhoneRow>('SELECT * FROM text_phone WHERE participant_id = $1 FOR UPDATE', [p.id])).rows[0]
  }

  return {
    /** What a participant's text payments look like: its phone, a pending number, PIN set, locked. */
    async settings (principal: Principal | null, id: string): Promise<TextSettings> {
      const p = await managed(principal, id)
      const r = (await pool.query<PhoneRow>('SELECT * FROM text_phone WHERE participant_id = $1', [id])).rows[0]
      return view(p, r)
    },

    /** Starts registering a phone: a code is texted to it; the number counts once the code comes back. */
    async registerPhone (principal: Principal | null, id: string, raw: string, meta?: RequestMeta): Promise<TextSettings> {
      const p = await managed(principal, id)
      const phone = parsePhone(raw)
      return await tx(async (c) => {
        // the number before the participant's row, in the order a proof of the number takes them (it holds the
        // number while it takes the number from whoever held it): the other order could deadlock with it
        await lockNumber(c, phone)
        const r = await lockedRow(c, p)
        if (r.phone === phone && r.pending_phone == null) return view(p, r)
        const now = clock()
        if (r.code_sent_at != null && now.getTime() - r.code_sent_at.getTime() < CODE_RESEND_MS) {
          const wait = Math.ceil((CODE_RESEND_MS - (now.getTime() - r.code_sent_at.getTime())) / 1000)
          throw new RateLimitedError(wait, `a code was texted less than a minute ago; ask again in ${wait} s`)
        }
        // A day's codes are bounded by number and by participant: each code may be guessed CODE_MAX_FAILURES times,
        // and each is a text the scheme pays for, to a number the caller may not hold. The number is locked (above)
        // until commit, so requests for it from several participants at once are counted one after another.
        const day = (await c.query<{ to_number: number, by_participant: number, participant_free: number | null }>(`
          SELECT count(*) FILTER (WHERE to_phone = $1)::int AS to_number, count(*) FILTER (WHERE participant_id = $2)::int AS by_participant,
                 ceil(extract(epoch FROM min(created_at) FILTER (WHERE participant_id = $2) + interval '24 hours' - now()))::int AS participant_free
            FROM sms_outbox
           WHERE purpose = 'verification' AND created_at > now() - interval '24 hours' AND (to_phone = $1 OR participant_id = $2)`,
        [phone, p.id])).rows[0]
        if (day.to_number >= CODES_PER_DAY || day.by_participant >= CODES_PER_DAY) {
          // until the oldest of the caller's own codes is a day old; the number's codes may be others' (in any
          // currency), so when its limit is reached the wait is a whole day, which tells nothing of when they asked
          const wait = day.to_number >= CODES_PER_DAY ? DAY_SECONDS : Math.max(1, day.participant_free ?? 1)
          throw new RateLimitedError(wait, `at most ${CODES_PER_DAY} codes a day are texted to one number, or for one participant; ask again in ${wait} s`)
        }
        const code = newCode()
        const row = (await c.query<PhoneRow>(
          `UPDATE text_phone SET pending_phone = $2, code_hash = $3, code_expires_at = $4, code_sent_at = $5, code_failures = 0,
                  updated_at = now()
            WHERE participant_id = $1 RETURNING *`,
          [p.id, phone, codeHash(p.id, phone, code), new Date(now.getTime() + CODE_TTL_MS), now])).rows[0]
        await sender.send(c, { currencyId: p.currency_id, participantId: p.id, to: phone, purpose: 'verification', body: replies.code(code) })
        await insertAudit(c, audit(principal!, 'text.phone_register', meta, p, { phone }))
        return view(p, row)
      })
    },

    /** The code texted to the pending number: right, the number is the participant's; wrong, counted. */
    async verifyPhone (principal: Principal | null, id: string, code: string, meta?: RequestMeta): Promise<TextSettings> {
      const p = await managed(principal, id)
      const out = await tx(async (c) => {
        const r = await lockedRow(c, p)
        if (r.pending_phone == null || r.code_hash == null) {
          return new DomainError('VERIFICATION_FAILED', 'no code is waiting: register the phone first (PUT /v1/participants/{id}/phone)')
        }
        const clear = 'pending_phone = NULL, code_hash = NULL, code_expires_at = NULL, code_failures = 0, updated_at = now()'
        if (r.code_expires_at == null || clock() >= r.code_expires_at) {
          await c.query(`UPDATE text_phone SET ${clear} WHERE participant_id = $1`, [p.id])
          return new DomainError('VERIFICATION_FAILED', 'the code has expired: register the phone again for a new one')
        }
        const right = timingSafeEqual(Buffer.from(codeHash(p.id, r.pending_phone, code)), Buffer.from(r.code_hash))
        if (!right) {
          const failures = r.code_failures + 1
          if (failures >= CODE_MAX_FAILURES) {
            await c.query(`UPDATE text_phone SET ${clear} WHERE participant_id = $1`, [p.id])
            return new DomainError('VERIFICATION_FAILED', 'wrong code, too many times: register the phone again for a new code')
          }
          await c.query('UPDATE text_phone SET code_failures = $2, updated_at = now() WHERE participant_id = $1', [p.id, failures])
          return new DomainError('VERIFICATION_FAILED', `wrong code; ${CODE_MAX_FAILURES - failures} more tries before it is spent`)
        }
        // Whoever proves they hold a number gets it: a number verified before by someone else (a recycled
        // number, a shared phone) stops working for them. Two proofs of one number at once take turns (a lock on
        // the number until commit), so the later one takes it from the earlier instead of breaking the number's
        // unique index.
        await lockNumber(c, r.pending_phone)
        await c.query('UPDATE text_phone SET phone = NULL, updated_at = now() WHERE phone = $1 AND participant_id <> $2', [r.pending_phone, p.id])
        // Replies and receipts still queued for anyone else to this number (a balance, a sale) would go to whoever
        // proved they hold the phone now: they are not sent, as when a phone is removed. A code is for the number's
        // holder, whoever that is, and is left alone. Rows a relay round holds are skipped: the relay checks the holder
        // before each attempt (src/sms/gateway.ts), so one that fails now is not sent to the new holder later.
        await holdQueued(c, { anyoneBut: p.id }, [r.pending_phone], ['reply', 'receipt'], 'not sent: the number was confirmed by another participant')
        // and the participant's own, to the number it is leaving (a lost phone replaced by a new number rather than
        // removed first): they would go to whoever has the old phone now
        if (r.phone != null && r.phone !== r.pending_phone) {
          await holdQueued(c, { participant: p.id }, [r.phone], ['reply', 'receipt'], 'not sent: the participant moved to another number')
        }
        const row = (await c.query<PhoneRow>(`UPDATE text_phone SET phone = pending_phone, ${clear} WHERE participant_id = $1 RETURNING *`, [p.id])).rows[0]
        await insertAudit(c, audit(principal!, 'text.phone_verify', meta, p, { phone: row.phone }))
        return view(p, row)
      })
      // a wrong code is committed (counted) before it is refused
      if (out instanceof DomainError) throw out
      return out
    },

    /**
     * Takes the phone off the participant (a lost or stolen phone, a number given up): texts from it are then
     * answered as from a number nobody registered, and a code waiting for a new number is spent. The PIN is kept
     * for the next number, and so is the time the last code was texted (removing is no way round one code a minute).
     */
    async removePhone (principal: Principal | null, id: string, meta?: RequestMeta): Promise<TextSettings> {
      const p = await managed(principal, id)
      return await tx(async (c) => {
        const before = await lockedRow(c, p)
        if (before.phone == null && before.pending_phone == null) return view(p, before)
        const row = (await c.query<PhoneRow>(
          `UPDATE text_phone SET phone = NULL, pending_phone = NULL, code_hash = NULL, code_expires_at = NULL, code_failures = 0,
                  updated_at = now()
            WHERE participant_id = $1 RETURNING *`, [p.id])).rows[0]
        // what is still queued for the participant to that number (a balance, a receipt) would go to whoever has the
        // phone now: it is not sent (the relay sends queued rows only). Rows the relay holds are being sent as we
        // speak, and are skipped rather than waited for (a round holds its rows while it sends them all).
        const unsent = await holdQueued(c, { participant: p.id }, [before.phone, before.pending_phone].filter(x => x != null), null, 'not sent: the phone was removed')
        await insertAudit(c, audit(principal!, 'text.phone_remove', meta, p, { phone: before.phone, pendingPhone: before.pending_phone, unsent }))
        return view(p, row)
      })
    },

    /** Sets the text PIN (hashed with scrypt); also lifts a lock after wrong PINs. */
    async setPin (principal: Principal | null, id: string, pin: string, meta?: RequestMeta): Promise<TextSettings> {
      const p = await managed(principal, id)
      const hash = await hashPassword(pin, opts.scryptCost)
      return await tx(async (c) => {
        const before = await lockedRow(c, p)
        const row = (await c.query<PhoneRow>(
          `UPDATE text_phone SET pin_hash = $2, pin_failures = 0, locked_at = NULL, updated_at = now()
            WHERE participant_id = $1 RETURNING *`, [p.id, hash])).rows[0]
        await insertAudit(c, audit(principal!, 'text.pin_set', meta, p, { unlocked: before.locked_at != null }))
        return view(p, row)
      })
    },

    /** A business's text code: set, changed or removed (null), by the business itself or an issuer. */
    async setTextCode (principal: Principal | null, id: string, raw: string | null, meta?: RequestMeta): Promise<void> {
      const p = await managed(principal, id)
      if (p.kind !== 'business') {
        throw new DomainError('VALIDATION_FAILED', 'only a business has a text code', [{ pointer: '/textCode', detail: 'the participant is not a business' }])
      }
      const code = raw == null ? null : normaliseTextCode(raw)
      try {
        await tx(async (c) => {
          await c.query('UPDATE participant SET text_code = $2 WHERE id = $1', [p.id, code])
          await insertAudit(c, audit(principal!, 'text.code_set', meta, p, { textCode: code, before: p.text_code }))
        })
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new DomainError('TEXT_CODE_TAKEN', `text code ${code} is taken in this currency`)
        throw err
      }
    },

    /** Is this the gateway? The signature over the URL it called and every field it sent, or 403 (404: off). */
    authenticate (fields: FormFields, signature: string | undefined, requestUrl: string) {
      if (opts.authToken == null) throw new DomainError('NOT_FOUND', 'text payments are not enabled on this service (SMS_AUTH_TOKEN is not set)')
      const url = opts.publicUrl ?? requestUrl
      if (!signatureMatches(gatewaySignature(opts.authToken, url, fields), signature)) {
        throw new DomainError('FORBIDDEN', 'the request is not signed by the text gateway (X-Twilio-Signature)')
      }
    },

    /**
     * One signed incoming text, answered once: its MessageSid is claimed first, so a retry of it (or the same
     * message arriving twice at once) waits for the first and then changes nothing. Replies and receipts are
     * queued through the outbound port in the same transaction as the payment and the PIN count.
     */
    async inbound (f: { From: string, Body: string, MessageSid: string }): Promise<{ replayed: boolean, outcome: string }> {
      // a sender that is not a phone number gets no reply (there is nowhere to send one)
      const phone = e164(f.From)
      const from = phone ?? f.From.slice(0, 40)
      const cmd = parseCommand(f.Body)
      return await inTurn(from, async () => {
        // the sender's currency, read before the transaction: resolving it inside could need a second connection
        // of the pool while this one holds the number's row (with every connection so held, none would come back)
        const known = (await pool.query<{ currency_id: string }>('SELECT currency_id FROM text_phone WHERE phone = $1', [from])).rows[0]
        const cur = known == null ? null : await currencies.resolveId(known.currency_id)
        return await tx(async (c) => {
          const claimed = await c.query(
            `INSERT INTO sms_inbound (message_sid, from_phone, command, outcome, reply) VALUES ($1, $2, $3, 'pending', '')
             ON CONFLICT (message_sid) DO NOTHING`, [f.MessageSid, from, cmd.kind])
          if (claimed.rowCount === 0) {
            const prior = (await c.query<{ outcome: string }>('SELECT outcome FROM sms_inbound WHERE message_sid = $1', [f.MessageSid])).rows[0]
            return { replayed: true, outcome: prior?.outcome ?? 'unknown' }
          }
          const answer = await handle(c, from, cmd, f.MessageSid, cur)
          const quiet = IDLE_OUTCOMES.includes(answer.outcome) && await idleRepliesSpent(c, from)
          await c.query(
            'UPDATE sms_inbound SET currency_id = $2, participant_id = $3, outcome = $4, transfer_id = $5, reply = $6 WHERE message_sid = $1',
            [f.MessageSid, answer.currencyId, answer.participantId, answer.outcome, answer.transferId, quiet ? '' : answer.reply])
          if (phone != null && !quiet) {
            await sender.send(c, { currencyId: answer.currencyId, participantId: answer.participantId, to: phone, purpose: 'reply', body: answer.reply, inReplyTo: f.MessageSid })
          }
          return { replayed: false, outcome: answer.outcome }
        })
      })
    },

    /** Outgoing texts, oldest first: an issuer sees its currency's, the platform issuer any currency's (or all). */
    async outbox (principal: Principal | null, q: OutboxQuery & { limit: number }) {
      if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
      if (principal.role !== 'issuer' && principal.role !== 'platform_issuer') throw new DomainError('FORBIDDEN', 'only issuers read the text outbox')
      let currencyId: string | null = principal.role === 'issuer' ? principal.currencyId : null
      if (q.currency != null) {
        const c = await currencies.resolve(q.currency)
        currencies.assertIssuer(principal, c.id)
        currencyId = c.id
      }
      const after = decodeCursor(q.cursor, [CURSOR_UUID])
      const rows = (await pool.query<{
        id: string, code: string | null, participant_id: string | null, to_phone: string, purpose: 'verification' | 'reply' | 'receipt',
        body: string, in_reply_to: string | null, status: 'queued' | 'sent' | 'failed', attempts: number, created_at: Date, sent_at: Date | null
      }>(
        `SELECT o.id, c.code, o.participant_id, o.to_phone, o.purpose, o.body, o.in_reply_to, o.status, o.attempts, o.created_at, o.sent_at
           FROM sms_outbox o LEFT JOIN currency c ON c.id = o.currency_id
          WHERE ($1::uuid IS NULL OR o.currency_id = $1) AND ($2::text IS NULL OR o.status = $2) AND ($3::uuid IS NULL OR o.id > $3)
          ORDER BY o.id LIMIT $4`,
        [currencyId, q.status ?? null, after?.[0] ?? null, q.limit + 1])).rows
      const page = rows.slice(0, q.limit)
      const last = page.at(-1)
      return {
        items: page.map(r => ({
          id: r.id, currency: r.code, participantId: r.participant_id, to: r.to_phone, purpose: r.purpose,
          // the code is for the phone's holder: staff who read the outbox must not be able to confirm a number
          body: r.purpose === 'verification' ? r.body.replace(/[0-9]{6}/g, '******') : r.body,
          inReplyTo: r.in_reply_to, status: r.status, attempts: r.attempts,
          createdAt: r.created_at.toISOString(), sentAt: r.sent_at?.toISOString() ?? null,
        })),
        nextCursor: rows.length > q.limit && last != null ? encodeCursor([last.id]) : null,
      }
    },
  }

  /**
   * Has the number had its IDLE_REPLIES_PER_DAY answers to texts that pay and read nothing? Counted under a lock of
   * the number's own, held to commit: a number nobody holds has no row to lock, and inTurn orders its texts on one
   * instance only, so two instances taking its texts at once would each count the other's reply as not yet made and
   * both answer past the limit. The lock is taken last in the transaction and by nothing else, so it cannot deadlock.
   */
  async function idleRepliesSpent (c: pg.PoolClient, from: string): Promise<boolean> {
    await c.query("SELECT pg_advisory_xact_lock(hashtextextended('sms_idle:' || $1, 0))", [from])
    const { n } = (await c.query<{ n: number }>(IDLE_REPLIES_SQL, [from])).rows[0]
    return n >= IDLE_REPLIES_PER_DAY
  }

  interface Answer { reply: string, outcome: string, currencyId: string | null, participantId: string | null, transferId: string | null }

  /** What one command does and what the sender is told. Inside the inbound message's transaction. */
  async function handle (c: pg.PoolClient, from: string, cmd: Command, sid: string, known: CurrencyInfo | null): Promise<Answer> {
    const answer = (outcome: string, reply: string, who: { currency_id: string, participant_id: string } | null = null, transferId: string | null = null): Answer =>
      ({ outcome, reply, currencyId: who?.currency_id ?? null, participantId: who?.participant_id ?? null, transferId })
    // the sender's number, locked: its messages are taken one at a time, so wrong PINs sent at once are counted
    // one after the other and never pass the limit
    const who = (await c.query<PhoneRow & { suspended: boolean }>(
      `SELECT t.*, (u.suspended_at IS NOT NULL) AS suspended
         FROM text_phone t LEFT JOIN app_user u ON u.participant_id = t.participant_id
        WHERE t.phone = $1 FOR UPDATE OF t`, [from])).rows[0]
    if (cmd.kind === 'help') return answer('help', replies.help(), who ?? null)
    if (cmd.kind === 'unknown') return answer('unknown_command', replies.unknownCommand(), who ?? null)
    if (who == null) return answer('unknown_sender', replies.notRegistered())
    if (who.suspended) return answer('suspended', replies.notRegistered(), who)
    if (who.pin_hash == null) return answer('no_pin', replies.noPin(), who)
    if (who.locked_at != null) return answer('locked', replies.locked(), who)
    // a word that is no PIN (4 to 8 digits) cannot be the right one: it is answered, and not counted towards the lock
    // (an amount and a PIN swapped, a typo), which only ever locked out the member who typed it
    if (!isPin(cmd.pin)) return answer('bad_pin', replies.badPin(), who)
    if (!await verifyPassword(cmd.pin, who.pin_hash)) {
      const failures = who.pin_failures + 1
      const lock = failures >= PIN_MAX_FAILURES
      await c.query(`UPDATE text_phone SET pin_failures = $2, locked_at = CASE WHEN $3 THEN now() ELSE locked_at END, updated_at = now()
                      WHERE participant_id = $1`, [who.participant_id, failures, lock])
      return answer(lock ? 'wrong_pin_locked' : 'wrong_pin', replies.wrongPin(PIN_MAX_FAILURES - failures), who)
    }
    if (who.pin_failures > 0) await c.query('UPDATE text_phone SET pin_failures = 0, updated_at = now() WHERE participant_id = $1', [who.participant_id])
    // read before the transaction (inbound); again here only if the number changed currency in between
    const cur = known?.id === who.currency_id ? known : await currencies.resolveId(who.currency_id)
    const payer = (await c.query<{ id: string, balance: string, user_id: string | null }>(
      `SELECT a.id, a.balance::text, u.id AS user_id FROM account a LEFT JOIN app_user u ON u.participant_id = a.participant_id
        WHERE a.participant_id = $1 ORDER BY a.created_at, a.id LIMIT 1`, [who.participant_id])).rows[0]
    if (payer == null) return answer('refused', replies.refused(), who)
    const balanceOf = async () => formatMoney((await c.query<{ balance: string }>('SELECT balance::text FROM account WHERE id = $1', [payer.id])).rows[0].balance, cur.decimals)
    if (cmd.kind === 'bal') return answer('balance', replies.balance(formatMoney(payer.balance, cur.decimals), cur.code), who)

    let amount
    try { amount = parseAmount(normaliseAmount(cmd.amount), cur.decimals) } catch { return answer('bad_amount', replies.badAmount(), who) }
    const biz = (await c.query<{ participant_id: string, name: string, account_id: string, phone: string | null }>(
      `SELECT p.id AS participant_id, p.name, a.id AS account_id, t.phone
         FROM participant p JOIN account a ON a.participant_id = p.id LEFT JOIN text_phone t ON t.participant_id = p.id
        WHERE p.currency_id = $1 AND p.kind = 'business' AND p.text_code = $2
        ORDER BY a.created_at, a.id LIMIT 1`, [cur.id, cmd.code])).rows[0]
    if (biz == null) return answer('unknown_business', replies.unknownBusiness(cmd.code), who)
    const m = payment(cur, { from: payer.id, to: biz.account_id, amount, channel: 'text', reference: `text payment to ${cmd.code}` })
    let posted
    // under a savepoint: whatever the ledger refuses, the message's own rows (its claim, the PIN count, the reply)
    // still commit
    await c.query('SAVEPOINT text_payment')
    try {
      posted = await postMovement(c, cur.id, {
        ...m, scope: 'sms-gateway', idempotencyKey: sid,
        requestHash: createHash('sha256').update(`${payer.id}\u001f${biz.account_id}\u001f${amount.toFixed()}`).digest('base64url'),
        createdBy: payer.user_id ?? `participant:${who.participant_id}`, owner: who.participant_id,
      })
      await c.query('RELEASE SAVEPOINT text_payment')
    } catch (err) {
      await c.query('ROLLBACK TO SAVEPOINT text_payment')
      if (!(err instanceof DomainError) || err.status >= 500) throw err
      if (err.code === 'INSUFFICIENT_FUNDS') return answer('insufficient_funds', replies.insufficientFunds(await balanceOf(), cur.code), who)
      if (err.code === 'INVALID_AMOUNT') return answer('bad_amount', replies.badAmount(), who)
      return answer(`refused:${err.code.toLowerCase()}`, replies.refused(), who)
    }
    const [main, fee] = posted.legs
    const ref = shortRef(main.id)
    if (biz.phone != null) {
      await sender.send(c, {
        currencyId: cur.id, participantId: biz.participant_id, to: biz.phone, purpose: 'receipt', inReplyTo: sid,
        body: replies.received(formatMoney(main.amount, cur.decimals), cur.code, fee == null ? '' : formatMoney(fee.amount, cur.decimals), ref),
      })
    }
    return answer('paid', replies.paid(formatMoney(main.amount, cur.decimals), cur.code, biz.name, await balanceOf(), ref), who, main.id)
  }
}

export type SmsService = ReturnType<typeof smsService>
