import t from 'tap'
import { DAY_MS, splitPeriods, tile } from '../../src/domain/periods.js'
import { catchUp } from '../../src/reports/aggregate.js'
import { circulationFigures } from '../../src/reports/circulation.report.js'
import { flowFigures } from '../../src/reports/flows.report.js'
import { clearGraphCache } from '../../src/reports/graph-cache.js'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import type { LegOut } from './ledger.js'
import { normFigures, recompute, recomputeFlows } from './recompute.js'

// The payment graph's links are kept in memory per settled bucket and per merged prefix (src/reports/
// graph-cache.ts). Around the present, where the cache takes months as days and today as a tail read every
// time, the figures must still equal a plain recomputation: after new payments today, after a late reversal of
// a payment in a settled month, after a backdated payment into a settled month, and when read again. The flows
// report's day cells, kept per settled day, likewise equal the plain query's, day cells and ranking included.

const norm = normFigures

t.test('graph figures around the present equal a plain recomputation, through every kind of change', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  clearGraphCache()
  const book = await reportBook(ctx, 'GRC')
  const L = book.ledger
  const since = '2025-01-01T00:00:00Z'
  const [m1, m2, m3] = await Promise.all(['BS1 1AA', 'BS6 2BB', 'BA1 1AA'].map(pc => member(ctx, 'GRC', pc, since)))
  const [b1, b2] = await Promise.all([business(ctx, 'GRC', 'food', 'BS1 3CC', since), business(ctx, 'GRC', 'retail', 'BS16 1DD', since)])
  const now = Date.now()
  const at = (daysAgo: number, minutes = 0) => new Date(now - daysAgo * DAY_MS + minutes * 60_000).toISOString()
  const monthStart = (ms: number) => { const x = new Date(ms); return Date.UTC(x.getUTCFullYear(), x.getUTCMonth(), 1) }
  const from = monthStart(now - 100 * DAY_MS)
  const to = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth() + 1, 1)
  const periods = splitPeriods(from, to, 'month')
  let checks = 0
  const check = async (what: string) => {
    await catchUp(ctx.app.pool)
    const fast = await circulationFigures(ctx.app.pool, book.currencyId, periods)
    const slow = await recompute(ctx.app.pool, book.currencyId, periods)
    t.same(fast.map(norm), slow.map(norm), what)
    for (const by of ['sector', 'district'] as const) {
      // twice: the second from what the first kept
      for (const pass of ['', ' (read again)']) {
        t.same(await flowFigures(ctx.app.pool, book.currencyId, tile(from, to), by), await recomputeFlows(ctx.app.pool, book.currencyId, tile(from, to), by), `flows by ${by}, ${what}${pass}`)
      }
    }
    checks++
    return fast
  }

  for (const p of [m1, m2, m3, b1, b2]) await L.issue(at(95), p.accountId, '500.00')
  // a settled month (about three months ago): a cycle m1 -> b1 -> b2 -> m1 and local re-spending
  const old: LegOut[][] = []
  old.push(await L.pay(at(90), m1.accountId, b1.accountId, '40.00'))
  old.push(await L.pay(at(89), b1.accountId, b2.accountId, '30.00'))
  old.push(await L.pay(at(88), b2.accountId, m1.accountId, '10.00'))
  old.push(await L.pay(at(87), m3.accountId, b2.accountId, '25.00'))
  // recent days and today
  await L.pay(at(20), m2.accountId, b2.accountId, '12.50')
  await L.pay(at(10), b2.accountId, m2.accountId, '8.00')
  await L.pay(at(0, -30), m1.accountId, b1.accountId, '3.00')
  const first = await check('after the first payments')
  t.not(first[0].cycle.value, '0.000000', 'the whole range has volume on cycles')
  t.not(first[0].lmR3, '0', 'and local re-spending')
  await check('read again: the cached prefix')

  // new payments today close a new cycle: the tail
  await L.pay(at(0, -20), b1.accountId, m2.accountId, '5.00')
  await L.pay(at(0, -10), m2.accountId, b1.accountId, '2.00')
  await check('after new payments today')

  // a late reversal of a payment in the settled month: that month's links change
  await L.reverse(at(0, -5), old[1])
  const reversed = await check('after a reversal of a payment months ago')
  t.not(reversed[0].cycle.value, first[0].cycle.value, 'the broken cycle is gone from the figures')
  await check('read again after the reversal')

  // a backdated payment into the settled month (test ledgers may post into the past)
  await L.pay(at(86), b1.accountId, b2.accountId, '7.00')
  await check('after a backdated payment into a settled month')

  // a business changes sector: cached day cells made with the old grouping are not used
  await ctx.app.pool.query(`UPDATE participant SET sector = 'arts' WHERE id = $1`, [b2.id])
  await check('after a business changed sector')

  // and with nothing in memory, the same again
  clearGraphCache()
  await check('from an empty cache')
  t.equal(checks, 8)
})
