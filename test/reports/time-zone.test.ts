import { createHmac } from 'node:crypto'
import t from 'tap'
import { isoDate, reportRange, splitPeriods, tileRange, type Period } from '../../src/domain/periods.js'
import { calendarOf } from '../../src/domain/zone.js'
import { catchUp } from '../../src/reports/aggregate.js'
import { circulationMetrics } from '../../src/reports/circulation.metrics.js'
import { circulationFigures } from '../../src/reports/circulation.report.js'
import { flowFigures, flowInputs } from '../../src/reports/flows.report.js'
import { numberOf } from '../../src/reports/graph-cache.js'
import { NO_RULES } from '../../src/domain/disclosure.js'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { createResearcher, type LegOut } from './ledger.js'
import { normFigures, readLedger, recomputeFrom } from './recompute.js'

// A currency's reports in its own time zone (docs/metrics.md, "Periods"). London's days, written down here without
// the service's calendar: in 2026 British Summer Time runs from 01:00 UTC on Sunday 29 March to 01:00 UTC on
// Sunday 25 October, so local midnight is 23:00 UTC the day before from 30 March to 25 October, and midnight UTC
// otherwise.
const LONDON = calendarOf('Europe/London')
const HOUR = 3_600_000
const bst = (date: string) => date >= '2026-03-30' && date <= '2026-10-25'
/** the instant a London day of 2026 begins */
const midnight = (date: string) => Date.parse(`${date}T00:00:00Z`) - (bst(date) ? HOUR : 0)
const nextDate = (date: string) => isoDate(Date.parse(`${date}T00:00:00Z`) + 24 * HOUR)
/** the London date of an instant of 2026 */
const londonDate = (ms: number) => { const d = isoDate(ms); return ms >= midnight(nextDate(d)) ? nextDate(d) : d }
const dates = (from: string, to: string) => { const out: string[] = []; for (let d = from; d < to; d = nextDate(d)) out.push(d); return out }

t.test('London days, weeks and months: local midnights, 23 and 25 hours at the changes', async (t) => {
  const days = splitPeriods(midnight('2026-03-27'), midnight('2026-04-02'), 'day', LONDON)
  t.same(days.map(p => [p.start, p.end]), dates('2026-03-27', '2026-04-02').map(d => [midnight(d), midnight(nextDate(d))]))
  t.same(days.map(p => (p.end - p.start) / HOUR), [24, 24, 23, 24, 24, 24], 'Sunday 29 March is 23 hours long')
  t.same(days.map(p => isoDate(p.buckets[0].start)), dates('2026-03-27', '2026-04-02'), 'each is its own London date\'s bucket')
  const autumn = splitPeriods(midnight('2026-10-24'), midnight('2026-10-27'), 'day', LONDON)
  t.same(autumn.map(p => (p.end - p.start) / HOUR), [24, 25, 24], 'Sunday 25 October is 25 hours long')
  const months = splitPeriods(midnight('2026-03-01'), midnight('2026-11-01'), 'month', LONDON)
  t.same(months.map(p => [p.start, p.end]), ['03', '04', '05', '06', '07', '08', '09', '10'].map(m =>
    [midnight(`2026-${m}-01`), midnight(m === '10' ? '2026-11-01' : `2026-${String(Number(m) + 1).padStart(2, '0')}-01`)]))
  t.equal((months[0].end - months[0].start) / HOUR, 31 * 24 - 1, 'March is an hour short')
  t.equal((months[7].end - months[7].start) / HOUR, 31 * 24 + 1, 'October an hour long')
  const weeks = splitPeriods(midnight('2026-03-23'), midnight('2026-04-06'), 'week', LONDON)
  t.same(weeks.map(p => (p.end - p.start) / HOUR), [7 * 24 - 1, 7 * 24], 'the ISO week of the change is 167 hours')

  // a bare date is that London day; a time is rounded outwards to London days
  t.same(reportRange('2026-07-01', '2026-07-02', 0, LONDON), { from: midnight('2026-07-01'), to: midnight('2026-07-02') })
  t.same(reportRange('2026-06-30T23:30:00Z', '2026-07-01T22:59:59Z', 0, LONDON), { from: midnight('2026-07-01'), to: midnight('2026-07-02') },
    '23:30 UTC on 30 June is half past midnight on 1 July in London')
  t.same(reportRange(undefined, undefined, Date.parse('2026-10-31T23:30:00Z'), LONDON), { from: Date.parse('2025-11-01T00:00:00Z'), to: midnight('2026-11-01') },
    'by default the twelve London months up to the start of next month')
  t.same(reportRange(undefined, undefined, Date.parse('2026-09-30T23:30:00Z'), LONDON), { from: Date.parse('2025-11-01T00:00:00Z'), to: midnight('2026-11-01') },
    'at 00:30 on 1 October in London that is already November')
  t.equal(LONDON.isoTime(midnight('2026-07-01')), '2026-07-01T00:00:00.000+01:00')
  t.equal(LONDON.isoTime(midnight('2026-01-01')), '2026-01-01T00:00:00.000Z')
  t.equal(calendarOf('America/St_Johns').isoTime(Date.parse('2026-01-01T03:30:00Z')), '2026-01-01T00:00:00.000-03:30')
})

t.test('the service and PostgreSQL cut the same local days, in zones with changes at and around midnight', async (t) => {
  const ctx = await buildTestApp(t)
  const zones = ['Europe/London', 'America/Santiago', 'America/Havana', 'Australia/Lord_Howe', 'Asia/Kolkata', 'America/St_Johns', 'Pacific/Chatham', 'UTC']
  for (const zone of zones) {
    const cal = calendarOf(zone)
    // every day's start from 2024 to 2027, as PostgreSQL puts it (circ_bucket_end of the day before)
    const starts = (await ctx.app.pool.query<{ d: string, ms: string }>(`
      SELECT d::date::text AS d, (extract(epoch FROM circ_bucket_end((d - interval '1 day')::date, 'd', $1)) * 1000)::bigint::text AS ms
        FROM generate_series('2024-01-01'::date, '2027-12-31'::date, interval '1 day') d`, [zone])).rows
    const off = starts.filter(r => cal.instant(Date.parse(`${r.d}T00:00:00Z`)) !== Number(r.ms))
    t.same(off.slice(0, 3), [], `${zone}: day starts`)
    // the local day of instants every 20 minutes and either side of each day's start
    const instants: number[] = []
    for (let ms = Date.UTC(2024, 0, 1); ms < Date.UTC(2028, 0, 1); ms += 20 * 60_000) instants.push(ms)
    for (const r of starts) instants.push(Number(r.ms) - 1, Number(r.ms))
    const days = (await ctx.app.pool.query<{ d: string }>(`
      SELECT circ_local_day(to_timestamp(x / 1000.0), $2)::text AS d FROM unnest($1::bigint[]) WITH ORDINALITY AS u (x, i) ORDER BY i`,
    [instants, zone])).rows.map(r => r.d)
    const wrong = instants.filter((ms, i) => isoDate(cal.civil(ms)) !== days[i])
    t.same(wrong.slice(0, 3).map(ms => new Date(ms).toISOString()), [], `${zone}: local days of ${instants.length} instants`)
  }
})

t.test('a currency\'s time zone: set at creation, shown, changed only before the first transfer; bad names are 422', async (t) => {
  const ctx = await buildTestApp(t)
  const create = async (code: string, timeZone?: string) => await ctx.call('POST', '/v1/currencies', {
    token: ctx.issuerToken, body: { code, name: `${code} Pound`, ...(timeZone == null ? {} : { timeZone }) },
  })
  t.equal((await create('UTCX')).body.timeZone, 'UTC', 'UTC when none is given')
  const made = await create('LDN', 'Europe/London')
  t.equal(made.status, 201)
  t.equal(made.body.timeZone, 'Europe/London')
  t.equal((await ctx.call('GET', '/v1/currencies/LDN')).body.timeZone, 'Europe/London', 'and shown on the currency')
  for (const bad of ['Mars/Olympus_Mons', 'europe/london', 'Europe/London ', 'BST', '+01:00', 'posix/Europe/London', 'right/Europe/London', '']) {
    for (const r of [await create(`B${Math.random().toString(36).slice(2, 8)}`, bad),
      await ctx.call('PATCH', '/v1/currencies/LDN', { token: ctx.issuerToken, body: { timeZone: bad } })]) {
      t.equal(r.status, 422, `${JSON.stringify(bad)}: 422`)
      t.equal(r.body.code, 'VALIDATION_FAILED')
      t.match(String(r.headers['content-type']), /^application\/problem\+json/)
    }
  }
  t.equal((await ctx.call('GET', '/v1/currencies/LDN')).body.timeZone, 'Europe/London', 'nothing changed')

  const moved = await ctx.call('PATCH', '/v1/currencies/LDN', { token: ctx.issuerToken, body: { timeZone: 'America/New_York' } })
  t.equal(moved.status, 200, 'no transfers yet: the zone may change')
  t.equal(moved.body.timeZone, 'America/New_York')
  t.equal((await ctx.call('PATCH', '/v1/currencies/LDN', { body: { timeZone: 'UTC' } })).status, 401)
  const m = await member(ctx, 'LDN', 'BS6 5AB')
  const iss = await ctx.call('POST', '/v1/currencies/LDN/issuances', { token: ctx.issuerToken, key: 'tz-1', body: { toAccount: m.accountId, amount: '5.00', sterlingReference: 'x' } })
  t.equal(iss.status, 201)
  const fixed = await ctx.call('PATCH', '/v1/currencies/LDN', { token: ctx.issuerToken, body: { timeZone: 'Europe/London' } })
  t.equal(fixed.status, 409, 'once money has moved the zone is fixed')
  t.equal(fixed.body.code, 'TIME_ZONE_FIXED')
  t.equal((await ctx.call('PATCH', '/v1/currencies/LDN', { token: ctx.issuerToken, body: { timeZone: 'America/New_York' } })).status, 200, 'setting the same zone again is no change')
  const audit = await ctx.app.pool.query(`SELECT detail FROM audit_event WHERE action = 'currency.time_zone' AND outcome = 'success' ORDER BY at`)
  t.same(audit.rows.map(r => r.detail), [{ from: 'Europe/London', to: 'America/New_York' }, { from: 'America/New_York', to: 'America/New_York' }], 'each change is audited')
})

t.test('a London currency over both clock changes: every figure, the flows and the holding days from the raw transfers', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const pool = ctx.app.pool
  const book = await reportBook(ctx, 'LDN')
  t.equal((await ctx.call('PATCH', '/v1/currencies/LDN', { token: ctx.issuerToken, body: { timeZone: 'Europe/London' } })).status, 200)
  const m1 = await member(ctx, 'LDN', 'BS6 5AB')
  const m2 = await member(ctx, 'LDN', 'BS3 1AA')
  const m3 = await member(ctx, 'LDN', 'BA1 1AA')
  const cafe = await business(ctx, 'LDN', 'cafes-pubs', 'BS1 4DJ')
  const shop = await business(ctx, 'LDN', 'retail', 'BA2 3BB')
  const L = book.ledger
  for (const p of [m1, m2, m3]) await L.issue('2026-03-01T10:00:00Z', p.accountId, '300.00')
  await L.issue('2026-03-01T10:00:00Z', cafe.accountId, '50.00')
  // times where the London day (or month) is not the UTC one are marked *
  const paid: LegOut[][] = []
  const pay = async (at: string, from: string, to: string, amount: string) => { paid.push(await L.pay(at, from, to, amount)) }
  await pay('2026-03-28T23:30:00Z', m1.accountId, cafe.accountId, '10.00') //   Sat 28 March 23:30 GMT
  await pay('2026-03-29T00:30:00Z', m2.accountId, cafe.accountId, '11.00') //   Sun 29 March 00:30 GMT
  await pay('2026-03-29T22:30:00Z', m3.accountId, shop.accountId, '12.00') //   Sun 29 March 23:30 BST
  await pay('2026-03-29T23:30:00Z', m1.accountId, shop.accountId, '13.00') // * Mon 30 March 00:30 BST
  await pay('2026-03-31T23:30:00Z', m2.accountId, m1.accountId, '14.00') //   * 1 April 00:30 BST: April in London, March in UTC
  await pay('2026-04-01T10:00:00Z', cafe.accountId, shop.accountId, '15.00')
  await L.redeem('2026-06-30T23:10:00Z', shop.accountId, '20.00', '0.62') //         * 1 July 00:10 BST
  await pay('2026-09-30T23:20:00Z', m3.accountId, cafe.accountId, '16.00') // * 1 October 00:20 BST
  await pay('2026-10-24T23:30:00Z', m1.accountId, m3.accountId, '17.00') //   * Sun 25 October 00:30 BST
  await pay('2026-10-25T00:30:00Z', cafe.accountId, m2.accountId, '18.00') //   Sun 25 October 01:30 BST
  await pay('2026-10-25T01:30:00Z', shop.accountId, cafe.accountId, '19.00') //  Sun 25 October 01:30 GMT, again
  await pay('2026-10-25T23:30:00Z', m2.accountId, shop.accountId, '21.00') //   Sun 25 October 23:30 GMT
  await pay('2026-10-31T23:30:00Z', m3.accountId, m2.accountId, '22.00') //     Sat 31 October 23:30 GMT
  await L.reverse('2026-10-26T09:00:00Z', paid[2])

  const periods = [
    ...splitPeriods(midnight('2026-03-27'), midnight('2026-04-03'), 'day', LONDON),
    ...splitPeriods(midnight('2026-10-23'), midnight('2026-10-28'), 'day', LONDON),
  ]
  const months = splitPeriods(midnight('2026-02-01'), Date.parse('2026-12-01T00:00:00Z'), 'month', LONDON)
  // dormancy is "untouched since the local midnight 90 days before the end"; the recomputation takes the end minus
  // 90 x 24 hours: no transfer here lies in the hour between the two
  const check = async (what: string) => {
    await catchUp(pool)
    const raw = await readLedger(pool, book.currencyId)
    for (const [name, ps] of [['days', periods.slice(0, 7)], ['autumn days', periods.slice(7)], ['months', months]] as Array<[string, Period[]]>) {
      const fast = await circulationFigures(pool, book.currencyId, ps)
      t.same(fast.map(normFigures), recomputeFrom(raw, ps).map(normFigures), `${what}: ${name}, every figure`)
    }
    // flows: each London day's cells from the raw payments (members as "member", businesses by sector)
    const group = new Map([[m1.accountId, 'member'], [m2.accountId, 'member'], [m3.accountId, 'member'], [cafe.accountId, 'cafes-pubs'], [shop.accountId, 'retail']])
    const reversed = new Set(raw.ts.filter(x => x.reverses != null).map(x => x.reverses))
    const live = raw.ts.filter(x => x.kind === 'payment' && !reversed.has(x.id) && group.has(x.from) && group.has(x.to))
    const expected = new Map<string, Map<string, { value: number, count: number }>>()
    for (const x of live) {
      const cell = `${group.get(x.from)!}>${group.get(x.to)!}`
      const day = londonDate(Math.floor(x.at / 1000))
      const c = expected.get(cell) ?? new Map<string, { value: number, count: number }>()
      const d = c.get(day) ?? { value: 0, count: 0 }
      d.value += Math.round(Number(x.amount.toFixed()) * 100); d.count++
      c.set(day, d); expected.set(cell, c)
    }
    const flows = await flowFigures(pool, book.currencyId, tileRange(midnight('2026-03-01'), midnight('2026-11-02'), LONDON), 'sector')
    t.same(Object.fromEntries(flows.map(f => [`${f.payer}>${f.payee}`, f.days.map(d => [d.day, Math.round(Number(d.value) * 100), d.count])])),
      Object.fromEntries([...expected].map(([cell, days]) => [cell, [...days].sort().map(([day, d]) => [day, d.value, d.count])])),
      `${what}: flows by London day`)
    // the holding trace's days are London days: one for each day with a transfer it traces
    const held = (await pool.query<{ day: string }>('SELECT day::text AS day FROM circ_holding_day WHERE currency_id = $1 ORDER BY day', [book.currencyId])).rows.map(r => r.day)
    const traced = raw.ts.filter(x => x.kind !== 'reversal' && !reversed.has(x.id)).map(x => londonDate(Math.floor(x.at / 1000)))
    t.same(held, [...new Set(traced)].sort(), `${what}: holding days`)
  }
  await check('as posted')
  // a late payment into an hour that is the next day in London but not in UTC, after the summaries were kept
  await pay('2026-03-29T23:45:00Z', m3.accountId, m1.accountId, '5.00')
  await check('after a late payment')

  const fast = await circulationFigures(pool, book.currencyId, periods.slice(0, 7))
  const metrics = circulationMetrics(fast, 2, NO_RULES)
  const sunday = fast.findIndex(f => f.start === midnight('2026-03-29'))
  t.equal(fast[sunday].end - fast[sunday].start, 23 * HOUR)
  t.equal(metrics[sunday].averageSupply.value, metrics[sunday].supply.value, 'a 23-hour day with no change of supply: average supply is the supply')
  const autumn = await circulationFigures(pool, book.currencyId, splitPeriods(midnight('2026-10-27'), midnight('2026-10-29'), 'day', LONDON))
  const am = circulationMetrics(autumn, 2, NO_RULES)
  t.equal(am[0].averageSupply.value, am[0].supply.value, 'two quiet days after the change: likewise')
  // the same ledger cut in UTC months would put 1 April's 00:30 payment in March
  const utcMarch = recomputeFrom(await readLedger(pool, book.currencyId), splitPeriods(Date.parse('2026-03-01T00:00:00Z'), Date.parse('2026-04-01T00:00:00Z'), 'month'))[0]
  const londonMarch = (await circulationFigures(pool, book.currencyId, [months[1]]))[0]
  t.equal(new Date(londonMarch.start).toISOString(), '2026-03-01T00:00:00.000Z')
  t.not(londonMarch.volume.value, utcMarch.volume.value, 'London\'s March is not UTC\'s')

  // the API: periods start at London midnights, with the offset there
  const r = await ctx.call('GET', '/v1/currencies/LDN/reports/circulation?from=2026-10-24&to=2026-10-27&interval=day', { token: ctx.issuerToken })
  t.equal(r.status, 200)
  t.equal(r.body.timeZone, 'Europe/London')
  t.same(r.body.periods.map((p: { start: string, end: string }) => [p.start, p.end]), [
    ['2026-10-24T00:00:00.000+01:00', '2026-10-25T00:00:00.000+01:00'],
    ['2026-10-25T00:00:00.000+01:00', '2026-10-26T00:00:00.000Z'],
    ['2026-10-26T00:00:00.000Z', '2026-10-27T00:00:00.000Z'],
  ])
  const monthly = await ctx.call('GET', '/v1/currencies/LDN/reports/circulation?from=2026-03-01&to=2026-05-01', { token: ctx.issuerToken })
  t.same([monthly.body.from, monthly.body.to], ['2026-03-01T00:00:00.000Z', '2026-05-01T00:00:00.000+01:00'])
  const flows = await ctx.call('GET', '/v1/currencies/LDN/reports/flows?from=2026-04-01&to=2026-04-02', { token: ctx.issuerToken })
  t.same([flows.body.from, flows.body.to, flows.body.timeZone], ['2026-04-01T00:00:00.000+01:00', '2026-04-02T00:00:00.000+01:00', 'Europe/London'])
})

t.test('the flows know which accounts the accounts export places, by the month of joining in the currency\'s zone', async (t) => {
  // The flows publish a lone day's cell exactly only where the accounts export already gives its accounts' group
  // (docs/disclosure.md); they read which accounts those are by generalising the export's quasi-identifiers as the
  // export does. The export's month of joining is the currency's local month, the flows' was UTC's: in a zone far
  // from UTC the two generalised differently, and the flows took as given the district of accounts the export
  // withholds.
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx, 'KIR')
  t.equal((await ctx.call('PATCH', '/v1/currencies/KIR', { token: ctx.issuerToken, body: { timeZone: 'Pacific/Kiritimati' } })).status, 200)
  const accounts: string[] = []
  // five joined in April locally (UTC+14) but still March in UTC, five in March in both, one alone elsewhere
  for (let i = 0; i < 5; i++) accounts.push((await member(ctx, 'KIR', 'BS6 5AB', '2026-03-31T12:00:00Z')).accountId)
  for (let i = 0; i < 5; i++) accounts.push((await member(ctx, 'KIR', 'BS6 5AB', '2026-03-15T00:00:00Z')).accountId)
  accounts.push((await member(ctx, 'KIR', 'BA1 1AA', '2026-03-15T00:00:00Z')).accountId)
  await createResearcher(ctx.app.pool, book.currencyId, 'res-kir', 'researcher-password')
  const token = await ctx.token('res-kir', 'researcher-password')
  const exp = await ctx.call('GET', '/v1/currencies/KIR/exports/accounts', { token })
  t.equal(exp.status, 200)
  const salt = (await ctx.app.pool.query<{ salt: Buffer }>('SELECT salt FROM research_export WHERE id = $1', [String(exp.headers['x-export-id'])])).rows[0].salt
  const rows = new Map(exp.text.trim().split('\n').slice(1).map(l => l.split(',')).map(r => [r[0], r]))
  const placed = (id: string) => {
    const r = rows.get(createHmac('sha256', salt).update(id).digest('hex').slice(0, 20))!
    return r[3] !== '' && r[4] !== ''
  }
  t.ok(accounts.some(id => !placed(id)), 'the export withholds some accounts\' area')
  const inputs = await flowInputs(ctx.app.pool, book.currencyId, [{ grain: 'd', start: Date.UTC(2026, 3, 20) }], 'district', Date.now(), {}, 'Pacific/Kiritimati')
  t.same(accounts.map(id => inputs.known.has(numberOf(id))), accounts.map(placed), 'the flows take as placed exactly the accounts the export places')
})
