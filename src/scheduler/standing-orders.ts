import { createHash } from 'node:crypto'
import type pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'
import { Money } from '../domain/money.js'
import { payment } from '../domain/movements.js'
import { addDays, dueDates } from '../domain/schedule.js'
import { recordEvent } from '../events/record.js'
import { postMovements } from '../ledger/post.js'
import type { LedgerCurrency } from '../domain/movements.js'

// The standing orders' scheduler, inside the service (docs/scheme-operations.md). Every SCHEDULER_INTERVAL_MS (and
// once at start-up) it pays what is due, safely with any number of instances running it at once:
//
//   * work is claimed a batch of standing orders at a time (`batch`, 100), `FOR UPDATE SKIP LOCKED`: two instances
//     never work on the same order at once, and neither waits for the other;
//   * in the batch's transaction, each due date up to today gets its occurrence row (unique per order and due
//     date; "today" is the local date of the order's currency, in its time zone, as its reports' days are), then the due occurrences are paid, each order's oldest first and the orders in claim order, in one
//     set-based ledger call per currency (the simulated year's orders were a thousand transactions a month one by
//     one), each payment through the ledger's one write path with its own
//     idempotency key (scope "standing-order", key "<order id>/<due date>"), and marked paid with the transfer in
//     the same transaction. An occurrence is paid at most once: by the row lock, the unique row, and, should all
//     else fail, the key (a retried key replays the first payment);
//   * after downtime the first look catches up: every missed due date gets its row and is paid, in date order;
//   * a payment the ledger refuses (insufficient funds, a frozen or closed account) is recorded on the occurrence
//     with the refusal's code, retried once the next day, and emitted as a `standing_order.failed` event (on the
//     paying account) in the same transaction;
//   * an order whose paying or paid account is closed ends instead (endClosed()): a closed account never takes or
//     makes a payment again, so its due occurrences fail at once without a payment, the order is cancelled with the
//     reason on it (end_code, end_detail), and each failure is an event, the end an audit row, in that transaction.
//
// The simulator (src/simulator/run.ts) runs this same code for the standing orders of the year it simulates: on its
// own session, at simulated instants, each payment posted at that instant through the ledger clock (`ledgerClock`).
// While it loads, it holds a session advisory lock on its currency (lockSimulation()), and the scheduler of every
// other session leaves that currency's orders alone: to the service, a simulated order is overdue (its dates are
// in the past), and paying it at the wall clock's time would put the currency's ledger ahead of the simulation.
//
// A hand-written claim loop rather than pg-boss or graphile-worker: the queue is the occurrence table itself
// (its rows are what GET .../occurrences shows), an occurrence must be marked paid in the ledger's own transaction
// (a job library completes its jobs in its own), catch-up is by calendar date rather than by timer, and the clock
// is injected so tests never wait. See the docs page for the longer argument.

export interface TickSummary {
  orders: number, paid: number, retrying: number, failed: number,
  /** orders ended because their paying or paid account is closed */
  ended: number,
  errors: number
}

export interface SchedulerOptions {
  /** the time the scheduler reads (tests inject one); default the wall clock */
  clock?: () => Date
  log?: FastifyBaseLogger | null
  /** at most this many due dates are caught up per order per look (the rest on the next look) */
  maxCatchUp?: number
  /**
   * The tooling only (the simulator, on its 'circulate-simulator' session): each payment is posted at the look's
   * instant through the ledger clock (src/ledger/post.ts), so a simulated year's orders are paid at simulated times.
   */
  ledgerClock?: boolean
  /** orders worked in one transaction (their payments in one ledger call per currency); default 100 */
  batch?: number
}

/** The currency a scheduler resolves an order's currency with (CurrencyService, or the simulator's own). */
export interface SchedulerCurrencies { resolveId: (id: string) => Promise<LedgerCurrency> }

interface OrderRow {
  id: string, currency_id: string, from_account_id: string, to_account_id: string, payer_id: string, amount: string,
  reference: string, every: 'week' | 'month', day: number, ends_on: string | null, next_due: string | null, status: string, created_by: string
  /** the look's date in the currency's time zone (YYYY-MM-DD) */
  today: string
}
interface OccurrenceRow { id: string, due_on: string, attempts: number }

const ORDER_COLUMNS = `so.id, so.currency_id, so.from_account_id, so.to_account_id, so.payer_id, so.amount::text AS amount, so.reference,
  so.every, so.day, to_char(so.ends_on, 'YYYY-MM-DD') AS ends_on, to_char(so.next_due, 'YYYY-MM-DD') AS next_due, so.status, so.created_by,
  to_char(lo.today, 'YYYY-MM-DD') AS today`

/**
 * The claim of look(): up to $4 orders with something due at $1 (each in its currency's time zone), not among $2,
 * or only the order $5, locked FOR UPDATE SKIP LOCKED; $3 is SIMULATION_LOCK_CLASS. Exported for the test that
 * EXPLAINs it.
 *
 * An order is due when it is active with its next due date reached, or when it has an occurrence to (re)try. Asked
 * as one OR with an EXISTS over standing_order, that could only be answered by reading every order, cancelled and
 * finished ones included, which nothing stops a login from piling up by creating and cancelling, so every claim of
 * every currency slowed with them (docs/scheme-operations.md). So the candidates come first, each
 * half from its own partial index (standing_order_due_idx: active orders by next due date;
 * standing_order_occurrence_todo_idx: open occurrences by attempt date), up to the latest "today" of any currency,
 * and only they are checked against their own currency's today and locked.
 */
export const CLAIM_SQL = `WITH loading AS MATERIALIZED (
    -- a currency another session is loading a simulation into is that session's: see lockSimulation()
    SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = $3 AND objsubid = 2 AND granted AND pid <> pg_backend_pid()),
  -- today: the look's date in each currency's time zone (circ_local_day(): the local day its reports cut)
  days AS MATERIALIZED (SELECT c.id, circ_local_day($1::timestamptz, c.time_zone) AS today FROM currency c),
  horizon AS MATERIALIZED (SELECT max(today) AS today FROM days),
  candidates AS MATERIALIZED (
    SELECT s.id FROM standing_order s WHERE s.status = 'active' AND s.next_due <= (SELECT today FROM horizon)
    UNION
    SELECT o.standing_order_id FROM standing_order_occurrence o
      WHERE o.status IN ('pending', 'retrying') AND o.next_attempt_on <= (SELECT today FROM horizon))
  SELECT ${ORDER_COLUMNS} FROM candidates k
    JOIN standing_order so ON so.id = k.id
    JOIN days lo ON lo.id = so.currency_id
  WHERE so.id <> ALL($2::uuid[]) AND ($5::uuid IS NULL OR so.id = $5::uuid)
    AND ((so.status = 'active' AND so.next_due <= lo.today)
      OR EXISTS (SELECT 1 FROM standing_order_occurrence o WHERE o.standing_order_id = so.id
                  AND o.status IN ('pending', 'retrying') AND o.next_attempt_on <= lo.today))
    AND NOT EXISTS (SELECT 1 FROM loading l WHERE l.objid = (hashtext(so.currency_id::text)::bigint & 4294967295)::oid)
  ORDER BY so.next_due NULLS FIRST, so.id LIMIT $4 FOR UPDATE OF so SKIP LOCKED`

export const STANDING_ORDER_SCOPE = 'standing-order'
/** Tried once on its due date (or at catch-up) and once more the next day. */
export const MAX_ATTEMPTS = 2

/** The advisory lock class of a currency being loaded by the simulator (the second key: hashtext of its id). */
export const SIMULATION_LOCK_CLASS = 0x51a1

/**
 * Takes, on the session of `db` (the simulator's one-connection pool), the lock that keeps every other session's
 * scheduler off the currency's standing orders until unlockSimulation() or the session ends. Returns false when
 * another session holds it (another load of the same currency).
 */
export async function lockSimulation (db: pg.Pool | pg.PoolClient, currencyId: string): Promise<boolean> {
  const r = await db.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2::text)) AS ok', [SIMULATION_LOCK_CLASS, currencyId])
  return r.rows[0].ok
}

export async function unlockSimulation (db: pg.Pool | pg.PoolClient, currencyId: string): Promise<void> {
  await db.query('SELECT pg_advisory_unlock($1, hashtext($2::text))', [SIMULATION_LOCK_CLASS, currencyId])
}

export function standingOrderScheduler (pool: pg.Pool, currencies: SchedulerCurrencies, opts: SchedulerOptions = {}) {
  const clock = opts.clock ?? (() => new Date())
  const log = opts.log ?? null
  const maxCatchUp = opts.maxCatchUp ?? 1000
  const ledgerClock = opts.ledgerClock ?? false
  const batch = opts.batch ?? 100

  /** Creates the occurrence rows of the orders' due dates up to today (each its currency's) and moves their next
   *  due dates on. */
  async function materialise (client: pg.PoolClient, orders: OrderRow[]): Promise<void> {
    const due = orders.filter(so => so.status === 'active' && so.next_due != null && so.next_due <= so.today).map(so => ({
      so, ...dueDates({ every: so.every, day: so.day }, so.next_due!, so.today, so.ends_on, maxCatchUp),
    }))
    if (due.length === 0) return
    const rows = due.flatMap(d => d.dates.map(date => ({ order: d.so.id, currency: d.so.currency_id, date })))
    await client.query(`INSERT INTO standing_order_occurrence (standing_order_id, currency_id, due_on, next_attempt_on)
      SELECT o, c, d, d FROM unnest($1::uuid[], $2::uuid[], $3::date[]) AS u(o, c, d) ON CONFLICT (standing_order_id, due_on) DO NOTHING`,
    [rows.map(r => r.order), rows.map(r => r.currency), rows.map(r => r.date)])
    await client.query(`UPDATE standing_order so SET next_due = u.next, status = CASE WHEN u.next IS NULL THEN 'finished' ELSE so.status END
      FROM unnest($1::uuid[], $2::date[]) AS u(id, next) WHERE so.id = u.id`, [due.map(d => d.so.id), due.map(d => d.next)])
  }

  /**
   * The claimed orders whose paying or paid account is closed (true: the paying one), read without a lock: an account
   * closed after this read is refused by the ledger (which locks it) and retried as any refusal, and the next look
   * ends the order.
   */
  async function closedOf (client: pg.PoolClient, orders: OrderRow[]): Promise<Map<string, boolean>> {
    const { rows } = await client.query<{ id: string, payer_closed: boolean }>(`SELECT so.id, f.status = 'closed' AS payer_closed
      FROM standing_order so JOIN account f ON f.id = so.from_account_id JOIN account t ON t.id = so.to_account_id
      WHERE so.id = ANY($1::uuid[]) AND (f.status = 'closed' OR t.status = 'closed')`, [orders.map(o => o.id)])
    return new Map(rows.map(r => [r.id, r.payer_closed]))
  }

  /**
   * Ends the orders closedOf() found, inside their transaction: their occurrences still open fail (ACCOUNT_CLOSED,
   * final: no retry, no payment tried), each with its standing_order.failed event, and the order is cancelled with
   * why (end_code, end_detail) and an audit row. Called after the batch's payments, whose ledger call has locked its
   * accounts in id order: the events then lock the paying accounts not yet held, also in id order.
   */
  async function endClosed (client: pg.PoolClient, orders: OrderRow[], ending: Map<string, boolean>, now: Date, s: TickSummary): Promise<void> {
    const byAccount = orders.filter(o => ending.has(o.id)).sort((a, b) => a.from_account_id < b.from_account_id ? -1 : a.from_account_id > b.from_account_id ? 1 : 0)
    for (const so of byAccount) {
      const detail = ending.get(so.id)! ? 'the paying account is closed: the standing order has ended' : 'the account paid is closed: the standing order has ended'
      const { rows: failed } = await client.query<{ id: string, due_on: string, attempts: number }>(`UPDATE standing_order_occurrence
          SET status = 'failed', attempts = attempts + 1, failure_code = 'ACCOUNT_CLOSED', failure_detail = $2, last_attempt_at = $3
        WHERE standing_order_id = $1 AND status IN ('pending', 'retrying')
        RETURNING id, to_char(due_on, 'YYYY-MM-DD') AS due_on, attempts`, [so.id, detail, now])
      await client.query(`UPDATE standing_order SET status = 'cancelled', cancelled_at = $2, next_due = NULL, end_code = 'ACCOUNT_CLOSED', end_detail = $3
        WHERE id = $1`, [so.id, now, detail])
      const c = await currencies.resolveId(so.currency_id)
      for (const o of failed.sort((a, b) => a.due_on < b.due_on ? -1 : 1)) {
        await recordEvent(client, {
          currencyId: so.currency_id, accountId: so.from_account_id, type: 'standing_order.failed',
          data: {
            standingOrder: so.id, occurrence: o.id, dueOn: o.due_on, toAccount: so.to_account_id, amount: new Money(so.amount).toFixed(c.decimals),
            code: 'ACCOUNT_CLOSED', detail, attempt: o.attempts, final: true, retryOn: null, ended: true,
          },
        })
      }
      await client.query(`INSERT INTO audit_event (actor_id, actor_name, role, action, target, currency_id, outcome, detail)
        VALUES (NULL, 'scheduler', NULL, 'standing_order.end', $1, $2, 'success', $3)`,
      [so.id, so.currency_id, JSON.stringify({ fromAccount: so.from_account_id, toAccount: so.to_account_id, code: 'ACCOUNT_CLOSED', detail, failed: failed.length })])
      log?.info({ standingOrder: so.id, code: 'ACCOUNT_CLOSED' }, 'standing order: ended, an account is closed')
      s.failed += failed.length
      s.ended++
    }
  }

  /**
   * Pays the due occurrences of the claimed orders, inside their transaction: each order's oldest first, the orders
   * in claim order, one ledger call per currency (a later payment sees the balances the earlier ones left, exactly as
   * if each order had been paid alone in that order).
   */
  async function payDue (client: pg.PoolClient, orders: OrderRow[], now: Date, s: TickSummary): Promise<void> {
    const ids = orders.map(o => o.id)
    const { rows } = await client.query<OccurrenceRow & { standing_order_id: string }>(`SELECT o.id, o.standing_order_id, to_char(o.due_on, 'YYYY-MM-DD') AS due_on, o.attempts
      FROM standing_order_occurrence o JOIN unnest($1::uuid[], $2::date[]) AS u (id, today) ON u.id = o.standing_order_id
      WHERE o.status IN ('pending', 'retrying') AND o.next_attempt_on <= u.today
      ORDER BY array_position($1::uuid[], o.standing_order_id), o.due_on FOR UPDATE OF o`, [ids, orders.map(o => o.today)])
    if (rows.length === 0) return
    const byId = new Map(orders.map(o => [o.id, o]))
    for (const currencyId of [...new Set(orders.map(o => o.currency_id))]) {
      const due = rows.filter(o => byId.get(o.standing_order_id)!.currency_id === currencyId)
      if (due.length === 0) continue
      const c = await currencies.resolveId(currencyId)
      const made = due.map(o => {
        const so = byId.get(o.standing_order_id)!
        const m = payment(c, {
          from: so.from_account_id, to: so.to_account_id, amount: new Money(so.amount), channel: 'online',
          reference: so.reference, metadata: { standingOrder: so.id, dueOn: o.due_on },
        })
        const key = `${so.id}/${o.due_on}`
        return {
          so, o, m,
          item: {
            ...m, scope: STANDING_ORDER_SCOPE, idempotencyKey: key,
            requestHash: createHash('sha256').update(`${key} ${so.from_account_id} ${so.to_account_id} ${so.amount}`).digest('base64url'),
            createdBy: so.created_by, owner: so.payer_id,
          },
        }
      })
      const { results } = await postMovements(client, c.id, made.map(x => x.item), { at: ledgerClock ? made.map(() => now) : null })
      const paid: Array<{ id: string, transfer: string, attempts: number }> = []
      for (const [k, { so, o, m }] of made.entries()) {
        const r = results[k]
        const attempts = o.attempts + 1
        if (r.ok) {
          paid.push({ id: o.id, transfer: r.legs[0].id, attempts })
          continue
        }
        const final = attempts >= MAX_ATTEMPTS
        const retryOn = final ? null : addDays(so.today, 1)
        await client.query(`UPDATE standing_order_occurrence SET status = $2, attempts = $3, next_attempt_on = COALESCE($4::date, next_attempt_on),
          failure_code = $5, failure_detail = $6, last_attempt_at = $7 WHERE id = $1`,
        [o.id, final ? 'failed' : 'retrying', attempts, retryOn, r.error.code, r.error.message, now])
        await recordEvent(client, {
          currencyId: c.id, accountId: so.from_account_id, type: 'standing_order.failed',
          data: {
            standingOrder: so.id, occurrence: o.id, dueOn: o.due_on, toAccount: so.to_account_id, amount: m.legs[0].amount.toFixed(c.decimals),
            code: r.error.code, detail: r.error.message, attempt: attempts, final, retryOn,
          },
        })
        log?.info({ standingOrder: so.id, dueOn: o.due_on, code: r.error.code, attempt: attempts, final }, 'standing order: payment refused')
        if (final) s.failed++
        else s.retrying++
      }
      if (paid.length > 0) {
        await client.query(`UPDATE standing_order_occurrence o SET status = 'paid', transfer_id = u.transfer, attempts = u.attempts,
            last_attempt_at = $4, failure_code = NULL, failure_detail = NULL
          FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS u(id, transfer, attempts) WHERE o.id = u.id`,
        [paid.map(x => x.id), paid.map(x => x.transfer), paid.map(x => x.attempts), now])
        s.paid += paid.length
      }
    }
  }

  /**
   * Claims up to `limit` orders with something due (or only the order `only`), in one transaction: their due dates
   * get their rows, their due occurrences are paid. Returns the claimed orders' ids (none: nothing left to do);
   * throws after rolling back if any of their work fails.
   */
  async function look (client: pg.PoolClient, now: Date, seen: string[], limit: number, only: string | null, s: TickSummary): Promise<string[]> {
    try {
      await client.query('BEGIN')
      const { rows: orders } = await client.query<OrderRow>(CLAIM_SQL, [now, seen, SIMULATION_LOCK_CLASS, limit, only])
      if (orders.length === 0) { await client.query('ROLLBACK'); return [] }
      seen.push(...orders.map(o => o.id))
      await materialise(client, orders)
      const part: TickSummary = { orders: 0, paid: 0, retrying: 0, failed: 0, ended: 0, errors: 0 }
      const ending = await closedOf(client, orders)
      await payDue(client, orders.filter(o => !ending.has(o.id)), now, part)
      if (ending.size > 0) await endClosed(client, orders, ending, now, part)
      await client.query('COMMIT')
      s.orders += orders.length; s.paid += part.paid; s.retrying += part.retrying; s.failed += part.failed; s.ended += part.ended
      return orders.map(o => o.id)
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    }
  }

  /** One look: pays everything due up to the clock's date in each order's currency's time zone, `batch` orders per
   *  transaction. Never throws: when a batch's work fails it is rolled back and its orders are worked one by one,
   *  so only the order at fault is logged and left for the next look. */
  async function tick (now: Date = clock()): Promise<TickSummary> {
    const s: TickSummary = { orders: 0, paid: 0, retrying: 0, failed: 0, ended: 0, errors: 0 }
    const seen: string[] = []
    for (;;) {
      let client: pg.PoolClient
      try {
        client = await pool.connect()
      } catch (err) {
        log?.warn({ err }, 'standing orders: no database connection; the next look retries')
        s.errors++
        return s
      }
      try {
        const before = seen.length
        let claimed: string[]
        try {
          claimed = await look(client, now, seen, batch, null, s)
        } catch (err) {
          const failed = seen.slice(before)
          if (failed.length === 0) {
            s.errors++
            log?.error({ err }, 'standing orders: could not claim orders; the next look retries')
            return s
          }
          for (const id of failed) {
            try {
              await look(client, now, seen.filter(x => x !== id), 1, id, s)
            } catch (err) {
              s.errors++
              log?.error({ err, standingOrder: id }, 'standing orders: could not process an order; the next look retries')
            }
          }
          continue
        }
        if (claimed.length === 0) return s
      } finally {
        client.release()
      }
    }
  }

  return { tick, clock }
}

export type StandingOrderScheduler = ReturnType<typeof standingOrderScheduler>
