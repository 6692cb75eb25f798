import t from 'tap'
import { DAY_MS, splitPeriods, type Interval } from '../../src/domain/periods.js'
import { catchUp } from '../../src/reports/aggregate.js'
import { circulationFigures } from '../../src/reports/circulation.report.js'
import { clearGraphCache } from '../../src/reports/graph-cache.js'
import { budgetBytes, cached, DEFAULT_BUDGET_BYTES, entries, heldBytes, keep, setBudget } from '../../src/reports/report-cache.js'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { comparable, recompute } from './recompute.js'

// Every report cache shares one byte budget (src/reports/report-cache.ts). However many periods and ranges are
// asked for, what the caches hold never passes it, the least recently used goes first, and figures read through
// a cache that keeps evicting are still the plain recomputation's.

t.test('the budget: least recently used out first, never above the budget, too large not kept', async (t) => {
  clearGraphCache()
  t.teardown(() => { setBudget(DEFAULT_BUDGET_BYTES); clearGraphCache() })
  setBudget(10_000)
  for (let i = 0; i < 100; i++) {
    keep(`k${i}`, i, 1_000)
    t.ok(heldBytes() <= budgetBytes(), `within the budget after ${i + 1} entries`)
    // k0 is read after every insertion: the most recently used stays
    t.equal(cached<number>('k0'), 0, `the entry read each time stays (${i + 1})`)
  }
  t.ok(entries() > 2 && entries() < 100, `some kept, most evicted (${entries()} entries)`)
  t.equal(cached('k1'), undefined, 'an old unread entry went')
  t.equal(cached('k99'), 99, 'the newest is there')
  keep('huge', 'x', 20_000)
  t.equal(cached('huge'), undefined, 'an entry larger than the budget is not kept')
  t.ok(heldBytes() <= budgetBytes())
  setBudget(3_000)
  t.ok(heldBytes() <= 3_000, 'a lower budget evicts down to it')
})

t.test('reports over many periods and ranges stay within a small budget and equal a plain recomputation', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  clearGraphCache()
  t.teardown(() => { setBudget(DEFAULT_BUDGET_BYTES); clearGraphCache() })
  const book = await reportBook(ctx, 'RCB')
  const L = book.ledger
  const since = '2025-01-01T00:00:00Z'
  const ms = await Promise.all(['BS1 1AA', 'BS6 2BB', 'BA1 1AA', 'BS16 1DD'].map(pc => member(ctx, 'RCB', pc, since)))
  const bs = await Promise.all([business(ctx, 'RCB', 'food', 'BS1 3CC', since), business(ctx, 'RCB', 'retail', 'BS16 1DD', since)])
  const everyone = [...ms, ...bs]
  const now = Date.now()
  const at = (daysAgo: number) => new Date(now - daysAgo * DAY_MS).toISOString()
  for (const p of everyone) await L.issue(at(200), p.accountId, '900.00')
  // payments on many days over six months, among everyone: many buckets, links and account rows
  for (let d = 190; d >= 0; d -= 3) {
    const a = everyone[d % everyone.length]
    const b = everyone[(d * 7 + 1) % everyone.length]
    if (a !== b) await L.pay(at(d), a.accountId, b.accountId, `${(d % 17) + 1}.25`)
  }
  await catchUp(ctx.app.pool)

  // what one monthly report over the six months keeps, with room for everything
  const monthStart = (x: number) => { const d = new Date(x); return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) }
  const from = monthStart(now - 180 * DAY_MS)
  const to = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth() + 1, 1)
  await circulationFigures(ctx.app.pool, book.currencyId, splitPeriods(from, to, 'month'))
  const oneReport = heldBytes()
  t.ok(oneReport > 0, `one report keeps something (${oneReport} bytes)`)

  // a budget of a fraction of that: every further report evicts
  clearGraphCache()
  const budget = Math.floor(oneReport / 3)
  setBudget(budget)
  let reports = 0
  let peak = 0
  const ranges: Array<[number, number, Interval]> = []
  for (let k = 0; k < 6; k++) {
    const f = from + k * 29 * DAY_MS
    ranges.push([f, to, 'month'], [f, Math.min(to, f + 60 * DAY_MS), 'week'], [f + 3 * DAY_MS, Math.min(to, f + 20 * DAY_MS), 'day'])
  }
  for (const [f, e, interval] of ranges) {
    const periods = splitPeriods(f, e, interval)
    const fast = await circulationFigures(ctx.app.pool, book.currencyId, periods)
    reports++
    peak = Math.max(peak, heldBytes())
    t.ok(heldBytes() <= budget, `within the budget after report ${reports} (${heldBytes()} of ${budget} bytes)`)
    if (reports % 6 === 1) {
      const slow = await recompute(ctx.app.pool, book.currencyId, periods)
      t.same(...comparable(fast, slow), `report ${reports} equals the plain recomputation`)
    }
  }
  t.ok(peak > budget / 4, `the caches were used up to the budget (peak ${peak} of ${budget})`)
})
