import type pg from 'pg'
import { CURSOR_UUID, decodeCursor, encodeCursor } from '../domain/cursor.js'
import { domainErrorFor } from '../db/errors.js'
import { DomainError } from '../domain/errors.js'
import { formatMoney, parseAmount } from '../domain/money.js'
import { callerCurrency, participantOrLogin, PerCaller } from '../domain/per-caller.js'
import { isIssuerOf, isParticipant, type Principal } from '../domain/principal.js'
import { legFromRow, transferView, type LegRow, type TransferView } from '../domain/transfer-view.js'
import type { RequestWatch } from '../db/request-watch.js'
import { inTransaction } from '../db/transaction.js'
import { recordEvent } from '../events/record.js'
import { postMovement } from '../ledger/post.js'
import {
  DEFAULT_EXPIRES_IN_SECONDS, type PaymentRequestCreate, type PaymentRequestListQuery, type PaymentRequestPay,
  type PaymentRequestView, type RequestStatus,
} from '../schemas/requests.js'
import type { CurrencyInfo, CurrencyService } from './currency.service.js'
import { isSystemAccount, paymentItem } from './payment-rules.js'
import type { Idempotency } from './transfer.service.js'
import type { AccountService } from './account.service.js'

// Payment requests (docs/shop.md). A business asks for an amount into its account; a participant of the same
// currency holding the id pays it once, through the ledger's one write path (postMovement on this transaction's
// client, src/ledger/post.ts, with the payment's legs from src/domain/movements.ts via payment-rules.ts), in the
// same transaction that locks the request row and marks it paid. Concurrent attempts queue on that row lock:
// the first pays, the others find it paid (409), or, with the first one's Idempotency-Key, get its replay.
//
// Who may do what:
//   create   the business owning toAccount (its login or an API key with requests:write)
//   read     any member or business of the request's currency, and its issuers (the id is a capability, like a
//            payment link); who paid is shown only to the payee, the payer and issuers
//   pay      a member or business of the currency from its own account, never the payee itself; only the
//            addressed account when the request names one (fromAccount)
//   cancel   the payee;   decline: the addressed payer only (an open request is left unpaid, not declined)
// Another currency's participants, issuers and everyone else are told what an unknown id tells them (404);
// researchers are refused by role before anything is looked up.
//
// Expiry is decided with the service's clock (injectable in tests): a pending request past expiresAt is expired
// everywhere at once, and is written 'expired' by the sweeper (expireDue) or by the first attempt to pay it, in the
// transaction that records the request.expired event.

export interface PaymentRequestOptions {
  /** the time expiry is judged by (tests inject one); default: the wall clock */
  clock?: () => Date
  watch?: RequestWatch | null
  /** write request.paid and request.expired to the event log (default true) */
  events?: boolean
  /** the longest a long-poll waits, in ms (the API allows 30 s) */
  maxWaitMs?: number
  /** long-polls one participant (all its logins and keys) or staff login may have waiting; more are answered at once */
  waitersPerCaller?: number
  /** long-polls one currency's callers may have waiting (domain/per-caller.ts, callerCurrency); default no bound of its own */
  waitersPerCurrency?: number
}

interface Row {
  id: string
  currency_id: string
  to_account_id: string
  from_account_id: string | null
  amount: string
  reference: string | null
  status: RequestStatus
  expires_at: Date
  created_by: string
  idempotency_key: string
  request_hash: string
  payer_account_id: string | null
  transfer_id: string | null
  closed_by: string | null
  pay_key: string | null
  pay_hash: string | null
  created_at: Date
  updated_at: Date
  payee_participant: string
  payee_name: string
  payee_kind: 'member' | 'business'
  payer_participant: string | null
  payer_name: string | null
  from_participant: string | null
}

const SELECT = `SELECT r.*, r.amount::text AS amount,
    pe.id AS payee_participant, pe.name AS payee_name, pe.kind AS payee_kind,
    pp.id AS payer_participant, pp.name AS payer_name, fa.participant_id AS from_participant
  FROM payment_request r
  JOIN account ta ON ta.id = r.to_account_id
  JOIN participant pe ON pe.id = ta.participant_id
  LEFT JOIN account pa ON pa.id = r.payer_account_id
  LEFT JOIN participant pp ON pp.id = pa.participant_id
  LEFT JOIN account fa ON fa.id = r.from_account_id`

const notFound = () => new DomainError('PAYMENT_REQUEST_NOT_FOUND', 'payment request not found')
// either case, as the uuid format of the routes' schemas (and PostgreSQL) take it
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The problem a request that is no longer pending answers with: 409 saying which. */
function closedError (status: RequestStatus): DomainError {
  switch (status) {
    case 'paid': return new DomainError('REQUEST_PAID', 'this payment request has already been paid')
    case 'cancelled': return new DomainError('REQUEST_CANCELLED', 'this payment request was cancelled by the payee')
    case 'declined': return new DomainError('REQUEST_DECLINED', 'this payment request was declined')
    default: return new DomainError('REQUEST_EXPIRED', 'this payment request has expired')
  }
}

export type PaymentRequestService = ReturnType<typeof paymentRequestService>

export function paymentRequestService (pool: pg.Pool, currencies: CurrencyService, accounts: Pick<AccountService, 'readable'>, opts: PaymentRequestOptions = {}) {
  const clock = opts.clock ?? (() => new Date())
  const watch = opts.watch ?? null
  const events = opts.events ?? true
  const maxWaitMs = opts.maxWaitMs ?? 30_000
  const waitersPerCaller = opts.waitersPerCaller ?? 50
  // the watch's places are the instance's, every currency's: one caller holding them all would make every other
  // till's long-poll answer at once, and poll in a loop
  const waiting = new PerCaller()
  // and one currency's callers, however many participants its issuer registers, not every place either
  const waitersPerCurrency = opts.waitersPerCurrency ?? Infinity
  const waitingByCurrency = new PerCaller()

  const effective = (r: Pick<Row, 'status' | 'expires_at'>, now = clock()): RequestStatus =>
    r.status === 'pending' && r.expires_at.getTime() <= now.getTime() ? 'expired' : r.status

  const requirePrincipal = (p: Principal | null): Principal => {
    if (p == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
    if (p.role === 'researcher') throw new DomainError('FORBIDDEN', 'researchers see reports and exports, not payment requests')
    return p
  }
  /** Participants of the request's currency and its issuers may read it; to anyone else it does not exist. */
  const canRead = (p: Principal, r: Pick<Row, 'currency_id'>) =>
    isIssuerOf(p, r.currency_id) || (isParticipant(p) && p.currencyId === r.currency_id)

  const byId = async (db: pg.Pool | pg.PoolClient, id: string, lock = false): Promise<Row | null> => {
    if (!UUID.test(id)) return null
    const rows = (await db.query<Row>(`${SELECT} WHERE r.id = $1${lock ? ' FOR UPDATE OF r' : ''}`, [id])).rows
    return rows[0] ?? null
  }

  const view = (p: Principal | null, r: Row, c: CurrencyInfo, base: string): PaymentRequestView => {
    const amount = formatMoney(r.amount, c.decimals)
    const party = p != null && (isIssuerOf(p, r.currency_id) ||
      (p.participantId != null && (p.participantId === r.payee_participant || p.participantId === r.payer_participant)))
    const payUrl = `${base}/pay/${r.id}`
    return {
      id: r.id, currency: c.code, status: effective(r), toAccount: r.to_account_id, fromAccount: r.from_account_id,
      payee: { name: r.payee_name, kind: r.payee_kind }, amount, reference: r.reference,
      expiresAt: r.expires_at.toISOString(), createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(),
      payUrl, qr: qrText(payUrl, c.code, amount),
      transferId: party ? r.transfer_id : null,
      payer: party && r.payer_account_id != null ? { accountId: r.payer_account_id, name: r.payer_name ?? '' } : null,
    }
  }

  /**
   * The payee account's request.paid or request.expired event, in the transaction of the change (the durable event
   * log, src/events/record.ts: the SSE stream and webhooks get it once it commits). After any posting on `tx`.
   */
  const record = async (tx: pg.PoolClient, type: 'request.paid' | 'request.expired', r: Row, c: CurrencyInfo) => {
    if (!events) return
    await recordEvent(tx, {
      currencyId: r.currency_id, accountId: r.to_account_id, type,
      data: {
        requestId: r.id, currency: c.code, status: type === 'request.paid' ? 'paid' : 'expired', toAccount: r.to_account_id,
        amount: formatMoney(r.amount, c.decimals), reference: r.reference, fromAccount: r.payer_account_id,
        payerName: r.payer_name, transferId: r.transfer_id, createdAt: r.created_at.toISOString(), expiresAt: r.expires_at.toISOString(),
      },
    })
  }

  /** Marks a locked pending request expired and records its event, in the caller's transaction. */
  const expire = async (tx: pg.PoolClient, r: Row, c: CurrencyInfo) => {
    await tx.query(`UPDATE payment_request SET status = 'expired', updated_at = now() WHERE id = $1 AND status = 'pending'`, [r.id])
    await record(tx, 'request.expired', r, c)
  }

  /** The request, for a principal allowed to act on it (else 404), with its currency. */
  const reachable = async (p: Principal, id: string) => {
    const r = await byId(pool, id)
    if (r == null || !canRead(p, r)) throw notFound()
    return { r, c: await currencies.resolveId(r.currency_id) }
  }

  /** The request this login made with this key before, if any; 422 if that was made by another request. */
  const earlier = async (p: Principal, idem: Idempotency): Promise<Row | null> => {
    const r = (await pool.query<Row>(`${SELECT} WHERE r.created_by = $1 AND r.idempotency_key = $2`, [p.userId, idem.key])).rows[0]
    if (r != null && r.request_hash !== idem.requestHash) {
      throw domainErrorFor('IDEMPOTENCY_KEY_REUSED')
    }
    return r ?? null
  }

  /** May this principal pay or decline it (its participant, not the payee; the addressed account's owner)? */
  const assertPayer = (p: Principal, r: Row) => {
    if (!isParticipant(p) || p.currencyId !== r.currency_id) {
      throw new DomainError('FORBIDDEN', 'only a member or a business of this currency pays or declines a payment request')
    }
    if (p.participantId === r.payee_participant) throw new DomainError('OWN_REQUEST', 'the payee cannot pay or decline its own payment request')
    if (r.from_account_id != null && r.from_participant !== p.participantId) {
      throw new DomainError('FORBIDDEN', 'this payment request is addressed to another account')
    }
  }

  return {
    effective,
    /** long-polls waiting on this instance now (tests wait on it instead of sleeping) */
    waiting: (): number => watch?.size() ?? 0,

    async create (principal: Principal | null, code: string, b: PaymentRequestCreate, idem: Idempotency, base: string) {
      const p = requirePrincipal(principal)
      const c = await currencies.resolve(code)
      if (p.role !== 'business' || p.participantId == null) throw new DomainError('FORBIDDEN', 'only a business asks for payments')
      if (p.currencyId !== c.id) throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
      const amount = parseAmount(b.amount, c.decimals)
      if (isSystemAccount(c, b.toAccount)) throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
      const accts = (await pool.query<{ id: string, currency_id: string, participant_id: string | null, status: string }>(
        'SELECT id, currency_id, participant_id, status FROM account WHERE id = ANY($1::uuid[])',
        [[b.toAccount, ...(b.fromAccount != null ? [b.fromAccount] : [])]])).rows
      const to = accts.find(a => a.id === b.toAccount)
      if (to == null || to.currency_id !== c.id || to.participant_id !== p.participantId) {
        throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found', [{ pointer: '/toAccount', detail: 'not one of your accounts' }])
      }
      if (b.fromAccount != null) {
        const from = accts.find(a => a.id === b.fromAccount)
        if (from == null || from.currency_id !== c.id || from.participant_id == null || isSystemAccount(c, from.id)) {
          throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found', [{ pointer: '/fromAccount', detail: 'no such account in this currency' }])
        }
        if (from.participant_id === p.participantId) throw new DomainError('OWN_REQUEST', 'a business cannot ask its own accounts for a payment')
      }
      // The replay comes after the checks of who may and of the body, and before that of the account's state (as
      // docs/api.md orders them): a retry after the account was frozen or closed still finds the request its first
      // try made, instead of being told no request could be made.
      const prior = await earlier(p, idem)
      if (prior != null) return { request: view(p, prior, c, base), replayed: true }
      if (to.status === 'frozen') throw new DomainError('ACCOUNT_FROZEN', 'the receiving account is frozen')
      if (to.status === 'closed') throw new DomainError('ACCOUNT_CLOSED', 'the receiving account is closed')
      const expiresAt = new Date(clock().getTime() + (b.expiresInSeconds ?? DEFAULT_EXPIRES_IN_SECONDS) * 1000)
      const inserted = await pool.query<{ id: string }>(
        `INSERT INTO payment_request (currency_id, to_account_id, from_account_id, amount, reference, expires_at, created_by, idempotency_key, request_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (created_by, idempotency_key) DO NOTHING RETURNING id`,
        [c.id, b.toAccount, b.fromAccount ?? null, amount.toFixed(), b.reference ?? null, expiresAt, p.userId, idem.key, idem.requestHash])
      const id = inserted.rows[0]?.id
      if (id == null) {
        // another request with this key committed while this one was checking: answer that one's request
        const raced = await earlier(p, idem)
        if (raced == null) throw domainErrorFor('IDEMPOTENCY_IN_FLIGHT')
        return { request: view(p, raced, c, base), replayed: true }
      }
      const r = await byId(pool, id)
      return { request: view(p, r!, c, base), replayed: false }
    },

    /**
     * GET: the request; with waitMs, while it is pending, waits for a status change (or its expiry) first.
     * `waits` is called as the wait begins (the route gives its place in the caller share back then).
     */
    async get (principal: Principal | null, id: string, base: string, waitMs = 0, signal?: AbortSignal, waits?: () => void) {
      const p = requirePrincipal(principal)
      let { r, c } = await reachable(p, id)
      const wait = Math.min(waitMs, maxWaitMs, r.expires_at.getTime() - clock().getTime())
      const caller = participantOrLogin(p)
      const currency = callerCurrency(p)
      if (watch != null && wait > 0 && effective(r) === 'pending' && waiting.of(caller) < waitersPerCaller &&
        waitingByCurrency.of(currency) < waitersPerCurrency) {
        const changed = async () => { r = (await byId(pool, id)) ?? r; return effective(r) !== 'pending' }
        waiting.take(caller)
        waitingByCurrency.take(currency)
        waits?.()
        try {
          // by the stored id: the status change's notification names it in lower case, whatever case the caller used
          await watch.wait(r.id, wait, changed, signal)
        } finally {
          waiting.give(caller)
          waitingByCurrency.give(currency)
        }
        r = (await byId(pool, id)) ?? r
      }
      return view(p, r, c, base)
    },

    /** Pays it once, with the channel's fee, through the ledger's write path, in the transaction that marks it paid. */
    async pay (principal: Principal | null, id: string, b: PaymentRequestPay, idem: Idempotency, base: string): Promise<{ transfer: TransferView, request: PaymentRequestView, replayed: boolean }> {
      const p = requirePrincipal(principal)
      const { r: seen, c } = await reachable(p, id)
      assertPayer(p, seen)
      let expired = false
      const out = await inTransaction(pool, async (tx) => {
        const r = (await byId(tx, id, true))!
        if (r.status === 'paid' && r.closed_by === p.userId && r.pay_key === idem.key) {
          // the same call again (a retry, or the same key sent twice at once): its first answer
          if (r.pay_hash !== idem.requestHash) throw domainErrorFor('IDEMPOTENCY_KEY_REUSED')
          const legs = (await tx.query<LegRow>('SELECT * FROM transfer_rows(ARRAY[$1::uuid]) ORDER BY leg', [r.transfer_id])).rows.map(legFromRow)
          return { r, legs, replayed: true }
        }
        const status = effective(r)
        if (status === 'expired' && r.status === 'pending') { await expire(tx, r, c); expired = true; return null }
        if (status !== 'pending') throw closedError(status)
        if (b.fromAccount === r.to_account_id) throw new DomainError('OWN_REQUEST', 'the payee cannot pay its own payment request')
        if (r.from_account_id != null && b.fromAccount !== r.from_account_id) {
          throw new DomainError('FORBIDDEN', 'this payment request is addressed to another account', [{ pointer: '/fromAccount', detail: 'not the account asked' }])
        }
        const item = paymentItem(c, { principal: p, issuer: false }, {
          fromAccount: b.fromAccount, toAccount: r.to_account_id, amount: formatMoney(r.amount, c.decimals), channel: b.channel,
          reference: r.reference ?? `payment request ${r.id}`, metadata: { paymentRequest: r.id },
        }, idem)
        // the payer's funds, limits, frozen accounts and ownership of fromAccount are the ledger's to check
        const posted = await postMovement(tx, c.id, item)
        const main = posted.legs[0]
        await tx.query(
          `UPDATE payment_request SET status = 'paid', transfer_id = $2, payer_account_id = $3, closed_by = $4, pay_key = $5,
             pay_hash = $6, updated_at = now() WHERE id = $1`,
          [r.id, main.id, b.fromAccount, p.userId, idem.key, idem.requestHash])
        const paid = (await byId(tx, r.id))!
        await record(tx, 'request.paid', paid, c)
        return { r: paid, legs: posted.legs, replayed: posted.replayed }
      })
      if (expired || out == null) throw closedError('expired')
      const r = (await byId(pool, id))!
      return { transfer: transferView(out.legs, c), request: view(p, r, c, base), replayed: out.replayed }
    },

    /** The payee withdraws a pending request. Cancelling a cancelled one answers it again. */
    async cancel (principal: Principal | null, id: string, base: string) {
      const p = requirePrincipal(principal)
      const { c } = await reachable(p, id)
      const r = await inTransaction(pool, async (tx) => {
        const r = (await byId(tx, id, true))!
        if (p.participantId !== r.payee_participant) throw new DomainError('FORBIDDEN', 'only the payee cancels a payment request')
        return await close(tx, r, 'cancelled', p, null)
      })
      return view(p, r, c, base)
    },

    /** A payer refuses a pending request. */
    async decline (principal: Principal | null, id: string, base: string) {
      const p = requirePrincipal(principal)
      const { r: seen, c } = await reachable(p, id)
      assertPayer(p, seen)
      // An open request (no fromAccount) is shown to every customer at the till: if any of them could decline it,
      // one stranger holding the link would close it for the customer it was meant for. Whoever does not want to
      // pay an open request simply does not.
      if (seen.from_account_id == null) {
        throw new DomainError('FORBIDDEN', 'only a request addressed to your account can be declined; an open request is simply left unpaid')
      }
      const r = await inTransaction(pool, async (tx) => await close(tx, (await byId(tx, id, true))!, 'declined', p, seen.from_account_id))
      return view(p, r, c, base)
    },

    /** The requests of an account, both ways (asked by it, asked of it, paid or declined from it), newest first. */
    async list (principal: Principal | null, accountId: string, q: PaymentRequestListQuery & { limit: number }, base: string) {
      const { account, currency } = await accounts.readable(principal, accountId)
      const after = decodeCursor(q.cursor, [CURSOR_UUID])
      const rows = (await pool.query<Row>(
        `${SELECT}
          WHERE (r.to_account_id = $1 OR r.from_account_id = $1 OR r.payer_account_id = $1)
            AND ($2::text IS NULL OR (CASE WHEN r.status = 'pending' AND r.expires_at <= $3 THEN 'expired' ELSE r.status END) = $2)
            AND ($4::uuid IS NULL OR r.id < $4)
          ORDER BY r.id DESC LIMIT $5`,
        [account.id, q.status ?? null, clock(), after?.[0] ?? null, q.limit + 1])).rows
      const page = rows.slice(0, q.limit)
      const last = page.at(-1)
      return {
        items: page.map(r => view(principal, r, currency, base)),
        nextCursor: rows.length > q.limit && last != null ? encodeCursor([last.id]) : null,
      }
    },

    /** The request's QR text, for one allowed to read it. */
    async qr (principal: Principal | null, id: string, base: string): Promise<string> {
      const p = requirePrincipal(principal)
      const { r, c } = await reachable(p, id)
      return view(p, r, c, base).qr
    },

    /**
     * Writes 'expired' on pending requests past their time, each with its request.expired event, in batches;
     * several instances share the work (SKIP LOCKED). Returns how many it expired.
     */
    async expireDue (limit = 500): Promise<number> {
      return await inTransaction(pool, async (tx) => {
        const due = (await tx.query<Row>(
          `${SELECT} WHERE r.id IN (SELECT id FROM payment_request WHERE status = 'pending' AND expires_at <= $1
             ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           ORDER BY r.to_account_id, r.id`, [clock(), limit])).rows
        // each event locks its payee account: in account id order, the order posting locks accounts in
        for (const r of due) await expire(tx, r, await currencies.resolveId(r.currency_id))
        return due.length
      })
    },
  }

  /** Cancel or decline a locked request: pending becomes `to`; the same status again is answered as it is. */
  async function close (tx: pg.PoolClient, r: Row, to: 'cancelled' | 'declined', p: Principal, payerAccount: string | null): Promise<Row> {
    const status = effective(r)
    if (status === to) return r
    // an expired one is left for the sweeper to write, with its event
    if (status !== 'pending') throw closedError(status)
    const u = await tx.query<{ updated_at: Date }>(
      'UPDATE payment_request SET status = $2, closed_by = $3, payer_account_id = $4, updated_at = now() WHERE id = $1 RETURNING updated_at',
      [r.id, to, p.userId, payerAccount])
    return { ...r, status: to, payer_account_id: payerAccount, updated_at: u.rows[0].updated_at }
  }
}

/**
 * The text a request's QR code encodes: its pay page's https (or, on a plain-HTTP deployment, http) URL, with the
 * currency and the amount as query parameters a scanning app may show before opening it. The page and the API
 * ignore both: what is paid is the request's own amount, so editing them changes nothing (docs/shop.md).
 */
export function qrText (payUrl: string, currency: string, amount: string): string {
  return `${payUrl}?currency=${encodeURIComponent(currency)}&amount=${encodeURIComponent(amount)}`
}
