import { parse } from 'csv-parse/sync'
import t from 'tap'
import { NO_RULES } from '../../src/domain/disclosure.js'
import { isoDate, reportRange, splitPeriods, tileRange, type Interval } from '../../src/domain/periods.js'
import { calendarOf } from '../../src/domain/zone.js'
import { circulationMetrics } from '../../src/reports/circulation.metrics.js'
import { circulationFigures } from '../../src/reports/circulation.report.js'
import { flowFigures } from '../../src/reports/flows.report.js'
import { buildTestApp, type TestContext } from '../helper.js'
import { business, member } from './fixture.js'
import { ledger, type Book } from './ledger.js'

// Zones that skipped a whole local date (docs/metrics.md, "Periods in the currency's time zone"): Samoa went from
// Thursday 29 December 2011 (UTC-10) to Saturday 31 December (UTC+14), the Marshall Islands' Kwajalein from
// 20 August 1993 (UTC-12) to 22 August (UTC+12), Kiribati's Line Islands from 30 December 1994 (UTC-10) to
// 1 January 1995 (UTC+14). The skipped date begins at the same instant as the next, so it lasted no time: it was
// a report period ending where it started, two periods shared a start, and averageSupply and the velocities,
// divided by its length, were published as "NaN".
const SKIPPED: Array<{ zone: string, skipped: string, around: [string, string] }> = [
  { zone: 'Pacific/Apia', skipped: '2011-12-30', around: ['2011-11-20', '2012-02-10'] },
  { zone: 'Pacific/Kwajalein', skipped: '1993-08-21', around: ['1993-07-20', '1993-09-10'] },
  { zone: 'Pacific/Kiritimati', skipped: '1994-12-31', around: ['1994-11-20', '1995-02-10'] },
]
const INTERVALS: Interval[] = ['day', 'week', 'month']
const DECIMAL = /^-?\d+(\.\d+)?$/

t.test('a local date the zone skipped is no period; the periods still tile the range', async (t) => {
  for (const { zone, skipped, around } of SKIPPED) {
    const cal = calendarOf(zone)
    const range = reportRange(around[0], around[1], 0, cal)
    for (const interval of INTERVALS) {
      const ps = splitPeriods(range.from, range.to, interval, cal)
      const what = `${zone} by ${interval}`
      t.ok(ps.every(p => p.start < p.end), `${what}: every period lasts some time`)
      t.equal(ps[0].start, range.from, `${what}: the first period starts the range`)
      t.equal(ps[ps.length - 1].end, range.to, `${what}: the last ends it`)
      t.ok(ps.every((p, i) => i === 0 || p.start === ps[i - 1].end), `${what}: each starts where the one before ended`)
      t.equal(new Set(ps.map(p => p.start)).size, ps.length, `${what}: no two share a start`)
      if (interval === 'day') {
        t.notOk(ps.some(p => isoDate(p.buckets[0].start) === skipped), `${zone}: no day period for ${skipped}`)
        t.ok(ps.every(p => p.end - p.start === 86_400_000), `${zone}: every day around the skipped one is 24 hours long`)
      }
    }
  }
  // the skipped date itself, asked for alone, is an empty range
  const apia = calendarOf('Pacific/Apia')
  t.throws(() => reportRange('2011-12-30', '2011-12-31', 0, apia), { code: 'INVALID_QUERY', message: 'from must be before to' })
  // and the week holding it is six days long, beginning and ending at real midnights
  const [week] = splitPeriods(Date.parse('2011-12-26T10:00:00Z'), Date.parse('2012-01-01T10:00:00Z'), 'week', apia)
  t.same([apia.isoTime(week.start), apia.isoTime(week.end)], ['2011-12-26T00:00:00.000-10:00', '2012-01-02T00:00:00.000+14:00'])
  t.equal((week.end - week.start) / 86_400_000, 6)
})

async function currencyIn (ctx: TestContext, code: string, timeZone: string): Promise<Book> {
  const c = await ctx.call('POST', '/v1/currencies', {
    token: ctx.issuerToken,
    body: { code, name: `${code} Tala`, timeZone, decimals: 2, fees: { app: '0.01' }, redemptionFee: '0.03', localAreas: ['BS'] },
  })
  if (c.status !== 201) throw new Error(c.text)
  const id = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [code])).rows[0].id
  return { pool: ctx.app.pool, tooling: ctx.tooling(), currencyId: id, code, system: c.body.systemAccounts, currency: c.body }
}

/** Every cell of a circulation report, JSON: each value a decimal string or null. */
function nonDecimals (body: { periods: Array<{ start: string, end: string, metrics: Record<string, { value: string | null }> }>, total: { metrics: Record<string, { value: string | null }> } }): string[] {
  return [...body.periods, body.total].flatMap(p => Object.entries(p.metrics)
    .filter(([, c]) => c.value != null && !DECIMAL.test(c.value)).map(([k, c]) => `${k}=${String(c.value)}`))
}

t.test('Samoa\'s reports around 30 December 2011: no empty period, no NaN, in JSON and CSV', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await currencyIn(ctx, 'APIA', 'Pacific/Apia')
  const L = ledger(book)
  const ms = []; const bs = []
  for (let i = 0; i < 6; i++) {
    ms.push(await member(ctx, 'APIA', 'BS6 5AB', '2011-11-01T00:00:00Z'))
    bs.push(await business(ctx, 'APIA', 'food', 'BS1 4DJ', '2011-11-01T00:00:00Z'))
  }
  for (const m of ms) await L.issue('2011-12-20T12:00:00Z', m.accountId, '100')
  for (let i = 0; i < 6; i++) {
    await L.pay('2011-12-29T20:00:00Z', ms[i].accountId, bs[i].accountId, '10') // 10:00 on the 29th, UTC-10
    await L.pay('2011-12-30T09:59:59Z', ms[i].accountId, bs[i].accountId, '3') // the 29th's last second
    await L.pay('2011-12-30T10:00:00Z', ms[i].accountId, bs[i].accountId, '7') // the 31st's first, UTC+14
    await L.pay('2011-12-31T12:00:00Z', bs[i].accountId, bs[(i + 1) % 6].accountId, '2') // 02:00 on 1 January
  }
  const url = '/v1/currencies/APIA/reports/circulation'

  const day = await ctx.call('GET', `${url}?interval=day&from=2011-12-28&to=2012-01-02`, { token: ctx.issuerToken })
  t.equal(day.status, 200)
  t.same(day.body.periods.map((p: { start: string, end: string }) => [p.start, p.end]), [
    ['2011-12-28T00:00:00.000-10:00', '2011-12-29T00:00:00.000-10:00'],
    ['2011-12-29T00:00:00.000-10:00', '2011-12-31T00:00:00.000+14:00'],
    ['2011-12-31T00:00:00.000+14:00', '2012-01-01T00:00:00.000+14:00'],
    ['2012-01-01T00:00:00.000+14:00', '2012-01-02T00:00:00.000+14:00'],
  ], 'the 28th, 29th, 31st and 1st: 30 December is no period')
  t.same(day.body.periods.map((p: { metrics: { volume: { value: string | null } } }) => p.metrics.volume.value), ['0.00', '78.00', '42.00', '12.00'])
  t.equal(day.body.total.metrics.volume.value, '132.00')
  t.same(nonDecimals(day.body), [], 'every figure is a decimal string or null')

  for (const q of ['interval=day&from=2011-12-28&to=2012-01-02', 'interval=week&from=2011-12-26&to=2012-01-09', 'interval=month&from=2011-12-01&to=2012-02-01']) {
    const json = await ctx.call('GET', `${url}?${q}`, { token: ctx.issuerToken })
    t.equal(json.status, 200, q)
    t.same(nonDecimals(json.body), [], `${q}: every figure is a decimal string or null`)
    const starts = json.body.periods.map((p: { start: string }) => p.start)
    t.equal(new Set(starts).size, starts.length, `${q}: no two periods share a start`)
    const csv = await ctx.call('GET', `${url}?${q}&format=csv`, { token: ctx.issuerToken })
    t.equal(csv.status, 200)
    const rows = parse(csv.text) as string[][]
    t.equal(rows.length, 1 + starts.length + 1, `${q}: the CSV has a row per period and the total`)
    t.same(rows.flat().filter(c => /nan|infinity/i.test(c)), [], `${q}: no NaN or Infinity in the CSV`)
  }

  // the flows over the same days: the payments on the days they were made, none on the skipped date
  const cal = calendarOf('Pacific/Apia')
  const range = reportRange('2011-12-28', '2012-01-02', 0, cal)
  const flows = await flowFigures(ctx.app.pool, book.currencyId, tileRange(range.from, range.to, cal), 'sector')
  const byDay = new Map<string, number>()
  for (const d of flows.flatMap(f => f.days)) byDay.set(d.day, (byDay.get(d.day) ?? 0) + Number(d.value))
  t.same(Object.fromEntries([...byDay].sort()), { '2011-12-29': 78, '2011-12-31': 42, '2012-01-01': 12 })
  const published = await ctx.call('GET', '/v1/currencies/APIA/reports/flows?from=2011-12-28&to=2012-01-02', { token: ctx.issuerToken })
  t.equal(published.status, 200)

  // and should a period of no length reach the metrics, its figures that divide by its length are null, not NaN
  const one = reportRange('2011-12-31', '2012-01-01', 0, cal)
  const figures = await circulationFigures(ctx.app.pool, book.currencyId, splitPeriods(one.from, one.to, 'day', cal))
  const empty = figures.map(f => ({ ...f, end: f.start }))
  for (const m of circulationMetrics(empty, 2, NO_RULES)) {
    t.same([m.averageSupply.value, m.velocity.value, m.velocityAnnualised.value], [null, null, null], 'no length, no average')
  }
})

t.test('Kwajalein and Kiritimati, with no transfers: the day reports have no empty period and no NaN', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  for (const [code, zone, q, days] of [['KWAJ', 'Pacific/Kwajalein', 'from=1993-08-18&to=1993-08-25', 6], ['KIRI', 'Pacific/Kiritimati', 'from=1994-12-29&to=1995-01-03', 4]] as const) {
    await currencyIn(ctx, code, zone)
    const r = await ctx.call('GET', `/v1/currencies/${code}/reports/circulation?interval=day&${q}`, { token: ctx.issuerToken })
    t.equal(r.status, 200)
    t.equal(r.body.periods.length, days, `${zone}: a day fewer than the dates`)
    t.same(nonDecimals(r.body), [], `${zone}: every figure is a decimal string or null`)
  }
})
