import type pg from 'pg'
import { DomainError } from '../domain/errors.js'
import { postPayments, type ItemResult, type PaymentItem } from './batch-path.js'

// Every payment with a fee credits the currency's one fee account, so every payment locks that row until its
// transaction commits: posted one by one, payments queue on it (measured here: 2,420 payments/s without a fee,
// 683/s with one, 64 workers). Concurrent single payments are therefore posted together, through the batch
// function with per-item results: while `concurrency` calls are at the database, new payments wait in a queue,
// and the next call takes all of them (up to `maxBatch`). At low load a payment goes alone and at once; under
// load the fee row, the hot accounts and the commit are paid once per call instead of once per payment.
// Each payment still gets its own result, idempotency and error, exactly as if it had been posted alone.

export interface CoalescerOptions {
  /** most payments in one call */
  maxBatch: number
  /** calls at the database at once, per currency */
  concurrency: number
  /** payments allowed to wait per currency; past it a payment is shed with a 503 */
  maxQueue: number
}

interface Waiting { item: PaymentItem, resolve: (r: ItemResult) => void, reject: (e: unknown) => void }

interface Lane { feeAccount: string, queue: Waiting[], running: number }

export function paymentCoalescer (pool: pg.Pool, opts: CoalescerOptions) {
  const lanes = new Map<string, Lane>()

  const run = (currencyId: string, lane: Lane) => {
    while (lane.running < opts.concurrency && lane.queue.length > 0) {
      const batch = lane.queue.splice(0, opts.maxBatch)
      lane.running++
      postPayments(pool, currencyId, lane.feeAccount, batch.map(w => w.item), false).then(
        (out) => { batch.forEach((w, i) => { w.resolve(out.results[i]) }) },
        (err) => { for (const w of batch) w.reject(err) },
      ).finally(() => {
        lane.running--
        run(currencyId, lane)
      })
    }
  }

  return {
    /** Posts one payment with others waiting at the same time; resolves with its own result. */
    async submit (currencyId: string, feeAccount: string, item: PaymentItem): Promise<ItemResult> {
      let lane = lanes.get(currencyId)
      if (lane == null) { lane = { feeAccount, queue: [], running: 0 }; lanes.set(currencyId, lane) }
      if (lane.queue.length >= opts.maxQueue) {
        throw new DomainError('SERVICE_UNAVAILABLE', 'too many payments are waiting; retry shortly')
      }
      const done = new Promise<ItemResult>((resolve, reject) => { lane.queue.push({ item, resolve, reject }) })
      run(currencyId, lane)
      return await done
    },
    /** Payments waiting and calls running, for health and tests. */
    stats: () => [...lanes.values()].reduce((s, l) => ({ queued: s.queued + l.queue.length, running: s.running + l.running }), { queued: 0, running: 0 }),
  }
}

export type PaymentCoalescer = ReturnType<typeof paymentCoalescer>
