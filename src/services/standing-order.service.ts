import type pg from 'pg'
import type { PrismaClient } from '../generated/prisma/client.js'
import { auditRecord, type RequestMeta } from '../domain/access.js'
import { CURSOR_DATE, CURSOR_UUID, decodeCursor, encodeCursor } from '../domain/cursor.js'
import { domainErrorFor } from '../db/errors.js'
import { DomainError } from '../domain/errors.js'
import { formatMoney, parseAmount } from '../domain/money.js'
import { isIssuerOf, type Principal } from '../domain/principal.js'
import { checkSchedule, dateOf, firstDue, parseDate } from '../domain/schedule.js'
import { auditRepo } from '../repositories/audit.repo.js'
import type { StandingOrderCreate, StandingOrderListQuery } from '../schemas/standing-orders.js'
import type { AccountService } from './account.service.js'
import type { CurrencyService } from './currency.service.js'
import type { Idempotency } from './transfer.service.js'

// Standing orders: a member's or business's account pays another account on a schedule (docs/scheme-operations.md).
// The account's owner and the currency's issuers set them up, read and cancel them; nobody else learns they exist.
// The payments are made by the scheduler (src/scheduler/standing-orders.ts).

/** Active standing orders one account may have (a bound on what a login can make the scheduler do). */
export const MAX_ACTIVE_PER_ACCOUNT = 100

interface OrderRow {
  id: string, currency_id: string, code: string, decimals: number, from_account_id: string, to_account_id: string, amount: string,
  reference: string, every: 'week' | 'month', day: number, starts_on: string, ends_on: string | null, next_due: string | null,
  status: 'active' | 'cancelled' | 'finished', created_at: Date, cancelled_at: Date | null, end_code: string | null, end_detail: string | null
}
const COLUMNS = `so.id, so.currency_id, c.code, c.decimals, so.from_account_id, so.to_account_id, so.amount::text AS amount, so.reference,
  so.every, so.day, to_char(so.starts_on, 'YYYY-MM-DD') AS starts_on, to_char(so.ends_on, 'YYYY-MM-DD') AS ends_on,
  to_char(so.next_due, 'YYYY-MM-DD') AS next_due, so.status, so.created_at, so.cancelled_at, so.end_code, so.end_detail`
const FROM = 'standing_order so JOIN currency c ON c.id = so.currency_id'

const view = (r: OrderRow) => ({
  id: r.id, currency: r.code, fromAccount: r.from_account_id, toAccount: r.to_account_id,
  amount: formatMoney(r.amount, r.decimals), reference: r.reference, schedule: { every: r.every, day: r.day },
  startsOn: r.starts_on, endsOn: r.ends_on, nextDue: r.next_due, status: r.status,
  createdAt: r.created_at.toISOString(), cancelledAt: r.cancelled_at?.toISOString() ?? null,
  endReason: r.end_code == null ? null : { code: r.end_code, detail: r.end_detail ?? '' },
})
export type StandingOrderView = ReturnType<typeof view>

const NOT_FOUND = () => new DomainError('NOT_FOUND', 'standing order not found')

export function standingOrderService (pool: pg.Pool, prisma: PrismaClient, currencies: CurrencyService,
  accounts: Pick<AccountService, 'readable'>, clock: () => Date) {
  /** The paying account, if the caller may manage its standing orders (its owner, an issuer of its currency). */
  const payingAccount = async (p: Principal | null, accountId: string) => {
    const { account, currency } = await accounts.readable(p, accountId)
    // a system account pays no standing order (the issuer reads system accounts, so it is told so)
    if (account.participantId == null) throw new DomainError('ACCOUNT_NOT_FOUND', 'a system account has no standing orders')
    return { account, currency, principal: p! }
  }
  const one = async (db: pg.Pool | pg.PoolClient, id: string, lock = false) =>
    (await db.query<OrderRow>(`SELECT ${COLUMNS} FROM ${FROM} WHERE so.id = $1${lock ? ' FOR UPDATE OF so' : ''}`, [id])).rows[0]
  /** The order this login made with this key before, if any; 422 if that was made by another request. */
  const earlier = async (p: Principal, idem: Idempotency) => {
    const r = (await pool.query<OrderRow & { request_hash: string }>(`SELECT ${COLUMNS}, so.request_hash FROM ${FROM}
      WHERE so.created_by = $1 AND so.idempotency_key = $2`, [p.userId, idem.key])).rows[0]
    if (r != null && r.request_hash !== idem.requestHash) {
      throw domainErrorFor('IDEMPOTENCY_KEY_REUSED')
    }
    return r
  }

  return {
    /**
     * Sets up an order once per Idempotency-Key of the calling login: a retry with the same key and body answers the
     * order as it is now (replayed), another body 422. The replay comes where docs/api.md puts idempotency among the
     * checks: after those of who may, of the body alone and of the payee's existence, and before those of the day and
     * the accounts' state, so a retry after midnight, or after the payee's account closed, still finds the order its
     * first try made.
     */
    async create (principal: Principal | null, accountId: string, b: StandingOrderCreate, idem: Idempotency, meta?: RequestMeta):
    Promise<{ order: StandingOrderView, replayed: boolean }> {
      const { account, currency: c, principal: p } = await payingAccount(principal, accountId)
      const amount = parseAmount(b.amount, c.decimals)
      checkSchedule(b.schedule)
      const startsOn = parseDate(b.startsOn, 'startsOn')
      const endsOn = b.endsOn == null ? null : parseDate(b.endsOn, 'endsOn')
      const first = firstDue(b.schedule, startsOn)
      if (endsOn != null && first > endsOn) {
        throw new DomainError('VALIDATION_FAILED', `the first due date (${first}) is after endsOn`, [{ pointer: '/endsOn', detail: 'no due date between startsOn and endsOn' }])
      }
      // the payee: a member's or business's account of the same currency (as for a payment, anything else is
      // "not found": an account of another currency is not revealed)
      const to = (await pool.query<{ currency_id: string, participant_id: string | null, status: string }>(
        'SELECT currency_id, participant_id, status FROM account WHERE id = $1', [b.toAccount])).rows[0]
      if (to == null || to.currency_id !== c.id || to.participant_id == null) {
        throw new DomainError('ACCOUNT_NOT_FOUND', 'toAccount not found', [{ pointer: '/toAccount', detail: 'no such account in this currency' }])
      }
      const prior = await earlier(p, idem)
      if (prior != null) return { order: view(prior), replayed: true }
      if (account.status === 'closed') throw new DomainError('ACCOUNT_CLOSED', 'the account is closed')
      // the currency's local date, as the scheduler pays by (src/scheduler/standing-orders.ts)
      const today = dateOf(clock(), c.calendar)
      if (startsOn < today) throw new DomainError('VALIDATION_FAILED', `startsOn must be today (${today}) or later`, [{ pointer: '/startsOn', detail: 'in the past' }])
      if (b.toAccount === account.id) throw new DomainError('SAME_ACCOUNT', 'an account cannot pay itself')
      if (to.status === 'closed') throw new DomainError('ACCOUNT_CLOSED', 'toAccount is closed')
      const issuer = isIssuerOf(p, c.id)
      const id = await prisma.$transaction(async (tx) => {
        // counted under the account's row lock, so two concurrent creations cannot both pass the bound
        await tx.$queryRawUnsafe('SELECT 1 FROM account WHERE id = $1::uuid FOR NO KEY UPDATE', account.id)
        // a concurrent create with this key (the same body, so the same account) committed while this one waited for
        // the lock: its order is the answer, not the bound below, which that order may have just reached
        const mine = await tx.$queryRawUnsafe<unknown[]>('SELECT 1 FROM standing_order WHERE created_by = $1 AND idempotency_key = $2', p.userId, idem.key)
        if (mine.length > 0) return null
        const [{ n }] = await tx.$queryRawUnsafe<Array<{ n: bigint }>>(
          `SELECT count(*) AS n FROM standing_order WHERE from_account_id = $1::uuid AND status = 'active'`, account.id)
        if (Number(n) >= MAX_ACTIVE_PER_ACCOUNT) throw new DomainError('VALIDATION_FAILED', `an account may have at most ${MAX_ACTIVE_PER_ACCOUNT} active standing orders`)
        // a concurrent create with the same key waits here for the first to commit (or roll back), then finds it
        const [so] = await tx.$queryRawUnsafe<Array<{ id: string }>>(
          `INSERT INTO standing_order (currency_id, from_account_id, to_account_id, payer_id, amount, reference, every, day, starts_on, ends_on,
             next_due, created_by, idempotency_key, request_hash)
           VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::numeric, $6, $7, $8, $9::date, $10::date, $11::date, $12, $13, $14)
           ON CONFLICT (created_by, idempotency_key) DO NOTHING RETURNING id`,
          c.id, account.id, b.toAccount, account.participantId!, amount.toFixed(), b.reference, b.schedule.every, b.schedule.day,
          startsOn, endsOn, first, p.userId, idem.key, idem.requestHash)
        if (so == null) return null
        if (issuer) {
          await auditRepo(tx).insert(auditRecord(p, 'standing_order.create', meta, {
            target: so.id, currencyId: c.id,
            detail: { fromAccount: account.id, toAccount: b.toAccount, amount: amount.toFixed(c.decimals), schedule: b.schedule, startsOn, endsOn },
          }))
        }
        return so.id
      })
      if (id == null) {
        // another request with this key committed while this one was checking: answer that one's order
        const raced = await earlier(p, idem)
        if (raced == null) throw domainErrorFor('IDEMPOTENCY_IN_FLIGHT')
        return { order: view(raced), replayed: true }
      }
      return { order: view(await one(pool, id)), replayed: false }
    },

    async list (principal: Principal | null, accountId: string, q: StandingOrderListQuery & { limit: number }) {
      const { account } = await payingAccount(principal, accountId)
      const after = decodeCursor(q.cursor, [CURSOR_UUID])
      const { rows } = await pool.query<OrderRow>(`SELECT ${COLUMNS} FROM ${FROM}
        WHERE so.from_account_id = $1 AND ($2::text IS NULL OR so.status = $2) AND ($3::uuid IS NULL OR so.id > $3)
        ORDER BY so.id LIMIT $4`, [account.id, q.status ?? null, after?.[0] ?? null, q.limit + 1])
      const page = rows.slice(0, q.limit)
      return { items: page.map(view), nextCursor: rows.length > q.limit ? encodeCursor([page.at(-1)!.id]) : null }
    },

    async get (principal: Principal | null, accountId: string, orderId: string) {
      const { account } = await payingAccount(principal, accountId)
      const r = await one(pool, orderId)
      if (r == null || r.from_account_id !== account.id) throw NOT_FOUND()
      return view(r)
    },

    /**
     * Cancels the order and its occurrences not yet paid; cancelling a cancelled order answers it as it is. A finished
     * order (no due date left) is not relabelled: 409 STANDING_ORDER_FINISHED, as a closed payment request answers,
     * unless its last payment is still to be retried, which the cancel stops (so it is then cancelled).
     */
    async cancel (principal: Principal | null, accountId: string, orderId: string, meta?: RequestMeta) {
      const { account, currency: c, principal: p } = await payingAccount(principal, accountId)
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        // the scheduler pays an order under this row's lock: a cancel waits for a payment under way, and after it
        // no occurrence of the order is paid
        const r = await one(client, orderId, true)
        if (r == null || r.from_account_id !== account.id) throw NOT_FOUND()
        if (r.status === 'finished') {
          const open = await client.query(`SELECT 1 FROM standing_order_occurrence
            WHERE standing_order_id = $1 AND status IN ('pending', 'retrying') LIMIT 1`, [orderId])
          if (open.rows.length === 0) throw new DomainError('STANDING_ORDER_FINISHED', 'this standing order has finished: every due date has been paid or has failed, and there is nothing left to cancel')
        }
        if (r.status !== 'cancelled') {
          await client.query(`UPDATE standing_order SET status = 'cancelled', cancelled_at = now(), next_due = NULL WHERE id = $1`, [orderId])
          await client.query(`UPDATE standing_order_occurrence SET status = 'cancelled', next_attempt_on = next_attempt_on
            WHERE standing_order_id = $1 AND status IN ('pending', 'retrying')`, [orderId])
          if (isIssuerOf(p, c.id)) {
            await client.query(`INSERT INTO audit_event (actor_id, actor_name, role, action, target, currency_id, outcome, client_address, request_id, detail)
              VALUES ($1, $2, $3, 'standing_order.cancel', $4, $5, 'success', $6, $7, $8)`,
            [p.userId, p.username ?? null, p.role, orderId, c.id, meta?.clientAddress ?? null, meta?.requestId ?? null, JSON.stringify({ fromAccount: account.id })])
          }
        }
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
      return view(await one(pool, orderId))
    },

    /** Each due date reached so far, oldest first: paid with its transfer, or failed with the ledger's reason. */
    async occurrences (principal: Principal | null, orderId: string, q: { cursor?: string, limit: number }) {
      if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
      if (principal.role === 'researcher') throw new DomainError('FORBIDDEN', 'researchers see reports and exports, not standing orders')
      const r = await one(pool, orderId)
      if (r == null) throw NOT_FOUND()
      // the rule of the paying account: its owner or an issuer of its currency; to anyone else, not found
      try { await accounts.readable(principal, r.from_account_id) } catch (err) {
        if (err instanceof DomainError && err.code === 'ACCOUNT_NOT_FOUND') throw NOT_FOUND()
        throw err
      }
      const after = decodeCursor(q.cursor, [CURSOR_DATE])
      const { rows } = await pool.query<{
        id: string, due_on: string, status: 'pending' | 'retrying' | 'paid' | 'failed' | 'cancelled', transfer_id: string | null, attempts: number,
        next_attempt_on: string, failure_code: string | null, failure_detail: string | null, last_attempt_at: Date | null
      }>(`SELECT id, to_char(due_on, 'YYYY-MM-DD') AS due_on, status, transfer_id, attempts, to_char(next_attempt_on, 'YYYY-MM-DD') AS next_attempt_on,
            failure_code, failure_detail, last_attempt_at
          FROM standing_order_occurrence WHERE standing_order_id = $1 AND ($2::date IS NULL OR due_on > $2::date)
          ORDER BY due_on LIMIT $3`, [orderId, after?.[0] ?? null, q.limit + 1])
      const page = rows.slice(0, q.limit)
      return {
        items: page.map(o => ({
          id: o.id, dueOn: o.due_on, status: o.status, transferId: o.transfer_id, attempts: o.attempts,
          nextAttemptOn: o.status === 'pending' || o.status === 'retrying' ? o.next_attempt_on : null,
          failure: o.failure_code == null ? null : { code: o.failure_code, detail: o.failure_detail ?? '' },
          lastAttemptAt: o.last_attempt_at?.toISOString() ?? null,
        })),
        nextCursor: rows.length > q.limit ? encodeCursor([page.at(-1)!.due_on]) : null,
      }
    },
  }
}
