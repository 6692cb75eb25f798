import t from 'tap'
import { DAY_MS, splitPeriods } from '../../src/domain/periods.js'
import { catchUp, drain } from '../../src/reports/aggregate.js'
import { circulationFigures } from '../../src/reports/circulation.report.js'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { normFigures, recompute } from './recompute.js'

// A report folds in new transfers (the drain) and no more: the buckets it reads that the drain made dirty are
// computed in its own snapshot (per-account sums from memory plus the tail, src/reports/account-cache.ts) and kept
// as their summaries; the others stay dirty for the background aggregator. The figures must equal a plain
// recomputation either way, and what the report kept must equal what the aggregator writes.

const norm = normFigures

t.test('a report after a drain alone computes the dirty buckets it reads, keeps them, and equals a recomputation', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const pool = ctx.app.pool
  const book = await reportBook(ctx, 'FRS')
  const L = book.ledger
  const [m1, m2] = await Promise.all(['BS1 1AA', 'BA1 1AA'].map(pc => member(ctx, 'FRS', pc, '2025-01-01T00:00:00Z')))
  const b1 = await business(ctx, 'FRS', 'food', 'BS1 3CC', '2025-01-01T00:00:00Z')
  const now = Date.now()
  const at = (daysAgo: number, minutes = 0) => new Date(now - daysAgo * DAY_MS + minutes * 60_000).toISOString()
  const monthStart = (ms: number) => { const x = new Date(ms); return Date.UTC(x.getUTCFullYear(), x.getUTCMonth(), 1) }
  const periods = splitPeriods(monthStart(now - 70 * DAY_MS), Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth() + 1, 1), 'month')
  const thisMonth = new Date(monthStart(now)).toISOString().slice(0, 10)
  const today = new Date(now).toISOString().slice(0, 10)
  const dayStart = Math.floor(now / DAY_MS) * DAY_MS
  const week = new Date(dayStart - ((new Date(dayStart).getUTCDay() + 6) % 7) * DAY_MS).toISOString().slice(0, 10)
  const dirty = async () => (await pool.query<{ g: string }>(`SELECT grain || ' ' || start::text AS g FROM circ_dirty WHERE currency_id = $1 ORDER BY 1`,
    [book.currencyId])).rows.map(r => r.g)

  for (const p of [m1, m2, b1]) await L.issue(at(60), p.accountId, '300.00')
  await L.pay(at(50), m1.accountId, b1.accountId, '40.00')
  await L.pay(at(40), b1.accountId, m2.accountId, '15.00')
  await L.pay(at(0, -60), m2.accountId, b1.accountId, '4.00')
  await catchUp(pool)
  const first = await circulationFigures(pool, book.currencyId, periods)
  t.same(first.map(norm), (await recompute(pool, book.currencyId, periods)).map(norm), 'after a full catch-up')

  // new payments today, then only the drain (what a report request does); placed between today's start and now,
  // so that a run just after midnight UTC does not post them into yesterday
  const inToday = (share: number) => new Date(dayStart + Math.floor((now - dayStart) * share)).toISOString()
  await L.pay(inToday(1 / 3), m1.accountId, b1.accountId, '2.50')
  await L.pay(inToday(2 / 3), b1.accountId, m1.accountId, '1.25')
  t.equal(await drain(pool), 2, 'the two payments drained')
  t.same(await dirty(), [`d ${today}`, `m ${thisMonth}`, `w ${week}`], 'their day, month and week are dirty after the drain')
  const fast = await circulationFigures(pool, book.currencyId, periods)
  t.same(fast.map(norm), (await recompute(pool, book.currencyId, periods)).map(norm), 'the report after the drain equals a recomputation')
  t.equal(fast[fast.length - 1].count, String(Number(first[first.length - 1].count) + 2), 'this month counts the two new payments')
  t.same(await dirty(), [`d ${today}`, `w ${week}`], 'the month the report read was kept as its summary; the day and the week are left dirty')
  const kept = (await pool.query<{ figures: unknown }>(`SELECT figures FROM circ_bucket_summary WHERE currency_id = $1 AND grain = 'm' AND start = $2`,
    [book.currencyId, thisMonth])).rows[0].figures

  // what the aggregator would have written is what the report kept
  await pool.query(`INSERT INTO circ_dirty (currency_id, grain, start) VALUES ($1, 'm', $2)`, [book.currencyId, thisMonth])
  await catchUp(pool)
  t.same((await pool.query<{ figures: unknown }>(`SELECT figures FROM circ_bucket_summary WHERE currency_id = $1 AND grain = 'm' AND start = $2`,
    [book.currencyId, thisMonth])).rows[0].figures, kept, 'the aggregator writes the same summary')
  t.same(await dirty(), [], 'nothing left dirty after the catch-up')
  t.same((await circulationFigures(pool, book.currencyId, periods)).map(norm), fast.map(norm), 'and the report reads the same')
})
