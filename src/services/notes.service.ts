import type { Readable } from 'node:stream'
import type pg from 'pg'
import type { PrismaClient } from '../generated/prisma/client.js'
import { auditRecord, type AuditAction, type RequestMeta } from '../domain/access.js'
import { csvFile } from '../domain/csv.js'
import { DomainError } from '../domain/errors.js'
import { formatMoney, Money, parseAmount } from '../domain/money.js'
import { noteBuyback, noteDeposit, noteSale, noteWithdrawal, type Movement } from '../domain/movements.js'
import { parseInstant } from '../domain/periods.js'
import { isIssuerOf, type Principal } from '../domain/principal.js'
import type { MovementCoalescer } from '../ledger/coalescer.js'
import { DENOMINATIONS, type Denominations, type NoteBuyback, type NoteDeposit, type NoteSale, type NoteWithdrawal, type ReserveQuery } from '../schemas/notes.js'
import type { CurrencyInfo, CurrencyService } from './currency.service.js'
import { isSystemAccount } from './payment-rules.js'
import { onBehalfOf, submitMovement, type Idempotency } from './transfer.service.js'

// Paper notes and the sterling reserve (docs/scheme-operations.md). Exchange points are issuer staff: they record
// notes sold, paid in, bought back and withdrawn, each one movement built in src/domain/movements.ts and posted
// through the one write path (src/ledger/post.ts), idempotent per staff login and key, audited with the movement.

const UNAUTHENTICATED = () => new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')

/** The face values of the notes, checked against the amount: a miscounted bundle is refused, never posted. */
export function checkDenominations (amount: Money, d: Denominations): string {
  let total = new Money(0)
  const parts: string[] = []
  for (const v of DENOMINATIONS) {
    const n = d[v] ?? 0
    if (n > 0) { total = total.plus(new Money(v).times(n)); parts.push(`${v}x${n}`) }
  }
  if (!total.eq(amount)) {
    throw new DomainError('VALIDATION_FAILED', `the notes add up to ${total.toFixed()}, not ${amount.toFixed()}`,
      [{ pointer: '/denominations', detail: `face values sum to ${total.toFixed()}; the amount is ${amount.toFixed()}` }])
  }
  return parts.join(' ')
}

export interface Reserve {
  currency: string
  at: string
  sterlingReserve: string
  electronicCirculation: string
  paperCirculation: string
  difference: string
  movements: number
  lastMovementAt: string | null
}

export function notesService (pool: pg.Pool, readPool: pg.Pool, prisma: PrismaClient, currencies: CurrencyService, coalescer: MovementCoalescer | null = null) {
  /** An exchange point's movement: only an issuer of the currency (or the platform issuer) records one. */
  const record = async (principal: Principal | null, code: string, action: AuditAction, idem: Idempotency, meta: RequestMeta | undefined,
    build: (c: CurrencyInfo) => Promise<{ m: Movement, target: string, detail: Record<string, unknown> }>) => {
    const c = await currencies.resolve(code)
    currencies.assertIssuer(principal, c.id)
    const { m, target, detail } = await build(c)
    return await submitMovement(pool, coalescer, c, onBehalfOf(principal, idem, m, {
      audit: auditRecord(principal, action, meta, { target, currencyId: c.id, detail }),
    }))
  }
  const notes = (c: CurrencyInfo, raw: string, d: Denominations) => {
    const amount = parseAmount(raw, c.decimals)
    return { amount, notes: checkDenominations(amount, d) }
  }

  return {
    async sell (principal: Principal | null, code: string, b: NoteSale, idem: Idempotency, meta?: RequestMeta) {
      return await record(principal, code, 'notes.sale', idem, meta, async (c) => {
        const { amount, notes: n } = notes(c, b.amount, b.denominations)
        return {
          m: noteSale(c, { amount, sterlingReference: b.sterlingReference, metadata: { notes: n } }),
          target: c.system.paper, detail: { amount: amount.toFixed(c.decimals), notes: n, sterlingReference: b.sterlingReference },
        }
      })
    },

    async deposit (principal: Principal | null, code: string, b: NoteDeposit, idem: Idempotency, meta?: RequestMeta) {
      return await record(principal, code, 'notes.deposit', idem, meta, async (c) => {
        const { amount, notes: n } = notes(c, b.amount, b.denominations)
        // notes are paid into a member's or business's account; the ledger checks it exists and is of this currency
        if (isSystemAccount(c, b.toAccount)) throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
        return {
          m: noteDeposit(c, { to: b.toAccount, amount, reference: b.reference ?? 'paper notes paid in', metadata: { notes: n } }),
          target: b.toAccount, detail: { amount: amount.toFixed(c.decimals), notes: n },
        }
      })
    },

    async buyback (principal: Principal | null, code: string, b: NoteBuyback, idem: Idempotency, meta?: RequestMeta) {
      return await record(principal, code, 'notes.buyback', idem, meta, async (c) => {
        const { amount, notes: n } = notes(c, b.amount, b.denominations)
        const biz = await prisma.participant.findUnique({ where: { id: b.business }, select: { currencyId: true, kind: true } })
        if (biz == null || biz.currencyId !== c.id) throw new DomainError('PARTICIPANT_NOT_FOUND', 'business not found')
        if (biz.kind !== 'business') throw new DomainError('NOT_REDEEMABLE', 'only businesses sell notes back for sterling')
        const m = noteBuyback(c, { amount, sterlingReference: b.sterlingReference, metadata: { notes: n, business: b.business } })
        return {
          m, target: b.business,
          detail: { amount: amount.toFixed(c.decimals), fee: amount.minus(m.legs[0].amount).toFixed(c.decimals), notes: n, sterlingReference: b.sterlingReference },
        }
      })
    },

    async withdraw (principal: Principal | null, code: string, b: NoteWithdrawal, idem: Idempotency, meta?: RequestMeta) {
      return await record(principal, code, 'notes.withdrawal', idem, meta, async (c) => {
        const { amount, notes: n } = notes(c, b.amount, b.denominations)
        return {
          m: noteWithdrawal(c, { amount, reason: b.reason, sterlingReference: b.sterlingReference, metadata: { notes: n, reason: b.reason } }),
          target: c.system.paper, detail: { amount: amount.toFixed(c.decimals), notes: n, reason: b.reason, sterlingReference: b.sterlingReference },
        }
      })
    },

    /**
     * The reserve at a time: sterling recorded against electronic and paper circulation. Issuers of the currency
     * and the platform issuer read it all; a researcher reads the JSON totals (aggregates, as the circulation
     * report's supply already is) but not the reconciliation CSV, whose sterling references are bank details.
     */
    async reserve (principal: Principal | null, code: string, q: ReserveQuery): Promise<{ json: Reserve } | { csv: (allowed?: () => Promise<boolean>) => Readable }> {
      if (principal == null) throw UNAUTHENTICATED()
      const c = await currencies.resolve(code)
      const issuer = isIssuerOf(principal, c.id)
      const researcher = principal.role === 'researcher' && principal.currencyId === c.id
      if (!issuer && !researcher) throw new DomainError('FORBIDDEN', 'only issuers (and, for the totals, researchers) of this currency read its reserve')
      // a bare date is the start of that day in the currency's time zone, as in its reports
      const atMs = parseInstant(q.at, 'at', c.calendar)
      if (atMs != null && (atMs < Date.UTC(1970, 0, 1) || atMs > Date.UTC(9999, 0, 1))) throw new DomainError('INVALID_QUERY', 'at must lie between 1970 and 9999')
      if (q.format === 'csv') {
        if (!issuer) throw new DomainError('FORBIDDEN', 'the reconciliation (sterling references) is for issuers only')
        // made only when sent: a HEAD checks who may read it and reads no movement
        // allowed: whether the caller may still read it, asked between its pages (reconciliation)
        return { csv: (allowed) => reconciliation(readPool, c, atMs, undefined, allowed) }
      }
      return { json: await reserveAt(readPool, c, atMs) }
    },
  }
}

/** One statement, one snapshot: the reserve, and each kind of account's balance as it stood at `at` (its balance
 *  now less what moved it after `at`, so a recent `at` reads few rows). */
export async function reserveAt (db: pg.Pool | pg.PoolClient, c: CurrencyInfo, atMs?: number): Promise<Reserve> {
  const { rows: [r] } = await db.query<{ at: Date, reserve: string, n: string, last: Date | null, electronic: string, paper: string }>(`
    WITH p AS (SELECT COALESCE($2::timestamptz, now()) AS at),
    later AS (
      SELECT e.account_id, sum(e.amount) AS s FROM transfer t JOIN entry e ON e.transfer_id = t.id, p
       WHERE t.currency_id = $1 AND t.created_at > p.at GROUP BY e.account_id),
    bal AS (
      SELECT a.system_kind, a.balance - COALESCE(l.s, 0) AS b FROM account a LEFT JOIN later l ON l.account_id = a.id
       WHERE a.currency_id = $1),
    res AS (
      SELECT COALESCE(sum(m.amount), 0) AS reserve, count(*) AS n, max(m.created_at) AS last
        FROM reserve_movement m, p WHERE m.currency_id = $1 AND m.created_at <= p.at)
    SELECT p.at, res.reserve::text, res.n::text, res.last,
      (SELECT COALESCE(sum(b), 0) FROM bal WHERE system_kind IS NULL OR system_kind = 'fees')::text AS electronic,
      (SELECT COALESCE(sum(b), 0) FROM bal WHERE system_kind = 'paper')::text AS paper
    FROM p, res`, [c.id, atMs == null ? null : new Date(atMs).toISOString()])
  const reserve = new Money(r.reserve)
  const electronic = new Money(r.electronic)
  const paper = new Money(r.paper)
  return {
    currency: c.code,
    at: r.at.toISOString(),
    sterlingReserve: formatMoney(reserve, c.decimals),
    electronicCirculation: formatMoney(electronic, c.decimals),
    paperCirculation: formatMoney(paper, c.decimals),
    difference: formatMoney(reserve.minus(electronic).minus(paper), c.decimals),
    movements: Number(r.n),
    lastMovementAt: r.last?.toISOString() ?? null,
  }
}

export const RECONCILIATION_COLUMNS = ['time', 'transfer_id', 'kind', 'sterling_reference', 'amount', 'running_total'] as const

/** Sterling movements read per query: the file is streamed, so memory stays bounded whatever the scheme's age. */
const RECONCILIATION_PAGE = 5000

/**
 * Every sterling movement up to `at`, in the order they were recorded, with the reserve's running total, streamed
 * a page at a time in id order (the order of recording, and the reserve_movement_currency_idx index's, so each page
 * is an index range). `at` defaults to the database's time as the file starts: a movement recorded while it streams
 * is not in it. The running total is summed here, exactly (decimal.js), from the first movement on.
 */
export function reconciliation (db: pg.Pool, c: CurrencyInfo, atMs?: number, page = RECONCILIATION_PAGE,
  allowed?: () => Promise<boolean>): Readable {
  async function * rows () {
    // the moment the file is for, and the last movement recorded by then: each page is its own read, so one whose
    // transaction began before `at` but was recorded while the file streams is left out by its id
    const start = (await db.query<{ now: Date, last: string | null }>(
      'SELECT now(), (SELECT max(id) FROM reserve_movement WHERE currency_id = $1)::text AS last', [c.id])).rows[0]
    const at = atMs == null ? start.now : new Date(atMs)
    if (start.last == null) return
    let after = '0'
    let total = new Money(0)
    for (;;) {
      // a file streams for as long as its client reads it: an issuer suspended (or whose password changed) meanwhile
      // gets no further page, as an event stream sends no further event (docs/operations.md, "Suspending a login")
      if (after !== '0' && allowed != null && !(await allowed())) {
        throw new DomainError('UNAUTHENTICATED', 'this token was revoked while the file was streaming; the file is cut off')
      }
      const { rows } = await db.query<{ id: string, created_at: Date, transfer_id: string, kind: string, sterling_reference: string | null, amount: string }>(`
        SELECT m.id::text, m.created_at, m.transfer_id, t.kind, m.sterling_reference, m.amount::text
          FROM reserve_movement m JOIN transfer t ON t.id = m.transfer_id
         WHERE m.currency_id = $1 AND m.id > $2::bigint AND m.id <= $5::bigint AND m.created_at <= $3
         ORDER BY m.id LIMIT $4`, [c.id, after, at, page, start.last])
      for (const r of rows) {
        total = total.plus(r.amount)
        yield [r.created_at.toISOString(), r.transfer_id, r.kind, r.sterling_reference, formatMoney(r.amount, c.decimals), formatMoney(total, c.decimals)]
      }
      if (rows.length < page) return
      after = rows[rows.length - 1].id
    }
  }
  return csvFile(RECONCILIATION_COLUMNS, rows())
}

export type NotesService = ReturnType<typeof notesService>
