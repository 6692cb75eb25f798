import t from 'tap'
import { isoDate, splitPeriods, tileRange, type Period } from '../../src/domain/periods.js'
import { calendarOf } from '../../src/domain/zone.js'
import { catchUp } from '../../src/reports/aggregate.js'
import { circulationFigures } from '../../src/reports/circulation.report.js'
import { flowFigures } from '../../src/reports/flows.report.js'
import { clearGraphCache, dayLinks, localToday, periodPieces } from '../../src/reports/graph-cache.js'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { comparable, recompute, recomputeFlows } from './recompute.js'

// The report caches keep a settled bucket (one whose days are over) under its version and read the bucket still
// under way on every report (graph-cache.ts). "Over" is judged by the currency's local day, not the UTC date: in
// the evening of a zone behind UTC the UTC date is already tomorrow, and in the morning of one ahead of it, still
// yesterday. The reports are made here at injected instants where the two differ.

const civil = (date: string) => Date.parse(`${date}T00:00:00Z`)
const pieceDays = (bs: Array<{ grain: string, start: number }>) => bs.map(b => `${b.grain}${isoDate(b.start)}`)

t.test('Los Angeles in the evening (UTC is already tomorrow): today stays under way, and a second payment in it is counted', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  clearGraphCache()
  const pool = ctx.app.pool
  const book = await reportBook(ctx, 'LAX')
  t.equal((await ctx.call('PATCH', '/v1/currencies/LAX', { token: ctx.issuerToken, body: { timeZone: 'America/Los_Angeles' } })).status, 200)
  const LA = calendarOf('America/Los_Angeles')
  const m1 = await member(ctx, 'LAX', 'BS6 5AB')
  const m2 = await member(ctx, 'LAX', 'BS3 1AA')
  const cafe = await business(ctx, 'LAX', 'cafes-pubs', 'BS1 4DJ')
  const L = book.ledger
  for (const p of [m1, m2, cafe]) await L.issue('2026-06-01T17:00:00Z', p.accountId, '100.00')
  await L.pay('2026-06-10T18:00:00Z', m1.accountId, cafe.accountId, '4.00')

  // Monday 15 June, 18:00 and 19:00 in Los Angeles (PDT, UTC-7): 01:00 and 02:00 UTC on Tuesday 16 June
  await L.pay('2026-06-16T01:00:00Z', m2.accountId, cafe.accountId, '10.00')
  const now1 = Date.parse('2026-06-16T02:00:00Z')
  t.equal(isoDate(await localToday(pool, book.currencyId, now1)), '2026-06-15', 'the local day is 15 June, not UTC\'s 16th')
  // June in Los Angeles, by month and the days around today
  const month = splitPeriods(LA.instant(civil('2026-06-01')), LA.instant(civil('2026-07-01')), 'month', LA)
  const days = splitPeriods(LA.instant(civil('2026-06-14')), LA.instant(civil('2026-06-17')), 'day', LA)
  const report = async (what: string, now: number) => {
    // the summaries written too (as the background aggregator does), so every day with a payment has a version
    await catchUp(pool)
    for (const ps of [month, days] as Period[][]) {
      t.same(...comparable(await circulationFigures(pool, book.currencyId, ps, pool, {}, now),
        await recompute(pool, book.currencyId, ps)), `${what}: every figure of ${ps.length === 1 ? 'June' : 'the days'}`)
    }
    const tiles = tileRange(month[0].start, month[0].end, LA)
    t.same(await flowFigures(pool, book.currencyId, tiles, 'sector', now), await recomputeFlows(pool, book.currencyId, tiles, 'sector'), `${what}: flows`)
    return await periodPieces(pool, book.currencyId, month[0].buckets, await localToday(pool, book.currencyId, now))
  }
  const first = await report('after the first payment today', now1)
  t.ok(pieceDays(first.tail).includes('d2026-06-15'), 'today (15 June) is read as the tail')
  t.notOk(pieceDays(first.settled).includes('d2026-06-15'), 'not kept as settled')
  t.same(pieceDays(first.settled), ['d2026-06-01', 'd2026-06-10'], 'the days before it with movements are settled')
  const links = await dayLinks(pool, book.currencyId, [{ grain: 'd', start: civil('2026-06-14') }, { grain: 'd', start: civil('2026-06-15') }], () => false, now1)
  t.same(links.map(l => l.version == null), [true, true], 'flows keep no day that is under way (the 14th had no payment, the 15th is today)')

  // 20:30 the same local day (03:30 UTC on the 16th): another payment, reported at 21:00
  await L.pay('2026-06-16T03:30:00Z', m1.accountId, m2.accountId, '7.00')
  const now2 = Date.parse('2026-06-16T04:00:00Z')
  const second = await report('after a second payment the same local day', now2)
  t.equal(second.key, first.key, 'a payment in the local today changes nothing settled: the merged prefix is reused as it is')
  const june = (await circulationFigures(pool, book.currencyId, month, pool, {}, now2))[1]
  t.equal(june.count, '3', 'June counts all three payments')
  t.equal(june.volume.value, '21.000000')
  const today = (await circulationFigures(pool, book.currencyId, days, pool, {}, now2)).find(f => f.start === LA.instant(civil('2026-06-15')))!
  t.equal(today.count, '2', 'and 15 June both of its own')
  t.equal(today.volume.value, '17.000000')

  // at 00:30 on the 16th in Los Angeles the 15th is over: settled under its version
  const now3 = Date.parse('2026-06-16T07:30:00Z')
  const third = await report('the next local day', now3)
  t.same(pieceDays(third.settled), ['d2026-06-01', 'd2026-06-10', 'd2026-06-15'], 'the 15th is settled once the local day has ended')
  t.same(third.tail, [])
})

t.test('Auckland just after midnight (UTC is still yesterday): the local day that ended is settled, the new one under way', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  clearGraphCache()
  const pool = ctx.app.pool
  const book = await reportBook(ctx, 'AKL')
  t.equal((await ctx.call('PATCH', '/v1/currencies/AKL', { token: ctx.issuerToken, body: { timeZone: 'Pacific/Auckland' } })).status, 200)
  const NZ = calendarOf('Pacific/Auckland')
  const m1 = await member(ctx, 'AKL', 'BS6 5AB')
  const cafe = await business(ctx, 'AKL', 'cafes-pubs', 'BS1 4DJ')
  const L = book.ledger
  await L.issue('2026-06-01T00:00:00Z', m1.accountId, '100.00')
  // 14:00 on 15 June in Auckland (NZST, UTC+12)
  await L.pay('2026-06-15T02:00:00Z', m1.accountId, cafe.accountId, '10.00')
  // 01:00 on 16 June in Auckland, 13:00 on 15 June in UTC
  const now = Date.parse('2026-06-15T13:00:00Z')
  t.equal(isoDate(await localToday(pool, book.currencyId, now)), '2026-06-16')
  const month = splitPeriods(NZ.instant(civil('2026-06-01')), NZ.instant(civil('2026-07-01')), 'month', NZ)
  await catchUp(pool)
  const before = await periodPieces(pool, book.currencyId, month[0].buckets, await localToday(pool, book.currencyId, now))
  t.same(pieceDays(before.settled), ['d2026-06-01', 'd2026-06-15'], '15 June has ended in Auckland: settled')
  t.same(before.tail, [])
  const links = await dayLinks(pool, book.currencyId, [{ grain: 'd', start: civil('2026-06-15') }], () => false, now)
  t.not(links[0].version, null, 'and the flows may keep its cells')

  // 00:30 on 16 June in Auckland: a payment into the new local day
  await L.pay('2026-06-15T12:30:00Z', cafe.accountId, m1.accountId, '3.00')
  await catchUp(pool)
  const after = await periodPieces(pool, book.currencyId, month[0].buckets, await localToday(pool, book.currencyId, now))
  t.same(pieceDays(after.tail), ['d2026-06-16'], 'the new local day is the tail')
  t.equal(after.key, before.key, 'and nothing settled changed')
  t.same(...comparable(await circulationFigures(pool, book.currencyId, month, pool, {}, now),
    await recompute(pool, book.currencyId, month)), 'every figure of June')
  t.equal((await circulationFigures(pool, book.currencyId, month, pool, {}, now))[1].count, '2')
})
