import t from 'tap'
import { splitPeriods } from '../../src/domain/periods.js'
import { calendarOf, ZoneChanged } from '../../src/domain/zone.js'
import { drain } from '../../src/reports/aggregate.js'
import { circulationFigures } from '../../src/reports/circulation.report.js'
import { buildTestApp, issue, scenario } from '../helper.js'

// A currency's zone may change (PATCH) until its first transfer, on any instance; every instance keeps currencies
// for a while (currency.service.ts). An instance that kept the old zone cut the reports of the first transfers in
// it, while the database cut their buckets in the new one: the periods' instants, the supply integral over them,
// the zone and offsets the report states were wrong, and a summary computed so was kept for every instance.
const REPORT = 'reports/circulation?from=2026-01-01&to=2027-01-01&interval=month'
const AUCKLAND = 'Pacific/Auckland'

t.test('another instance\'s reports use the new zone once the first transfers land', async (t) => {
  const a = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const b = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 }, { db: a.db, keys: a.keys, noIssuer: true })
  const s = await scenario(a)
  const token = a.issuerToken
  // b reads the currency (and keeps it) while it is still in UTC
  const before = await b.call('GET', `/v1/currencies/${s.code}/${REPORT}`, { token })
  t.equal(before.status, 200)
  t.equal(before.body.timeZone, 'UTC')

  // a moves it to Auckland, and the first money is issued there
  t.equal((await a.call('PATCH', `/v1/currencies/${s.code}`, { token, body: { timeZone: AUCKLAND } })).status, 200)
  await issue(a, s.code, s.member.accountId, '50.00')

  const strip = (r: { asOf: string }) => ({ ...r, asOf: null })
  const onB = await b.call('GET', `/v1/currencies/${s.code}/${REPORT}`, { token })
  const onA = await a.call('GET', `/v1/currencies/${s.code}/${REPORT}`, { token })
  t.equal(onB.status, 200)
  t.equal(onB.body.timeZone, AUCKLAND, 'b states the new zone')
  t.equal(onB.body.periods[0].start, '2026-01-01T00:00:00.000+13:00', 'and cuts its periods there')
  t.same(strip(onB.body), strip(onA.body), 'b answers what a answers')
  const flows = await b.call('GET', `/v1/currencies/${s.code}/reports/flows?by=sector&from=2026-01-01&to=2027-01-01`, { token })
  t.equal(flows.status, 200)
  t.same([flows.body.timeZone, flows.body.from], [AUCKLAND, '2026-01-01T00:00:00.000+13:00'], 'the flows report too')
  t.equal((await b.call('GET', `/v1/currencies/${s.code}`, { token })).body.timeZone, AUCKLAND)
})

// The zone the report read with its currency can still be older than the snapshot's, if the change and the first
// transfer both land in between: the figures of periods cut in the old zone are then neither answered nor kept.
t.test('a snapshot that finds another zone than the periods were cut in keeps nothing', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const s = await scenario(ctx)
  t.equal((await ctx.call('PATCH', `/v1/currencies/${s.code}`, { token: ctx.issuerToken, body: { timeZone: AUCKLAND } })).status, 200)
  await issue(ctx, s.code, s.member.accountId, '50.00')
  await drain(ctx.app.pool)
  const pool = ctx.app.pool
  const id = (await pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [s.code])).rows[0].id
  const kept = async () => (await pool.query<{ n: string }>(`
    SELECT (SELECT count(*) FROM circ_composite WHERE currency_id = $1) + (SELECT count(*) FROM circ_bucket_summary WHERE currency_id = $1) AS n`, [id])).rows[0].n
  const from = Date.UTC(2026, 0, 1)
  const to = Date.UTC(2027, 0, 1)
  for (const interval of ['month', 'day'] as const) {
    const utc = splitPeriods(from, to, interval)
    await t.rejects(circulationFigures(pool, id, utc, pool, {}, undefined, 'UTC'), new ZoneChanged(AUCKLAND), `${interval}s cut in UTC`)
    t.equal(await kept(), '0', `${interval}s: nothing kept`)
  }
  const cal = calendarOf(AUCKLAND)
  const periods = splitPeriods(cal.instant(from), cal.instant(to), 'month', cal)
  const figures = await circulationFigures(pool, id, periods, pool, {}, undefined, AUCKLAND)
  t.equal(figures[0].issued.value, '50.000000', 'cut in the zone the snapshot finds: the figures')
  t.not(await kept(), '0', 'and kept')
})

// PATCH read the currency (and its zone) before its transaction and compared the zone asked for with that read:
// another instance's change landing in between (and the first transfers after it) was not seen. Asking for the
// zone the currency had before was taken as no change: 200, the zone left as the other instance set it, or kept
// after the first transfers where 409 TIME_ZONE_FIXED is due; the audit row said it was changed from the old one.
t.test('PATCH compares with the zone the currency has in its transaction, not one read before', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const prisma = ctx.app.prisma as unknown as { $transaction: (...a: unknown[]) => Promise<unknown> }
  const real = prisma.$transaction.bind(prisma)
  // another instance's PATCH (and, for the second currency, its first payment) just before this one's transaction
  const meanwhile = (work: () => Promise<void>) => {
    prisma.$transaction = async (...a: unknown[]) => {
      prisma.$transaction = real
      await work()
      return await real(...a)
    }
  }
  const elsewhere = async (code: string) => {
    await ctx.app.pool.query('UPDATE currency SET time_zone = $1 WHERE code = $2', [AUCKLAND, code])
  }
  try {
    const empty = await scenario(ctx, { code: 'ZEMP' })
    meanwhile(async () => { await elsewhere(empty.code) })
    const back = await ctx.call('PATCH', `/v1/currencies/${empty.code}`, { token: ctx.issuerToken, body: { timeZone: 'UTC' } })
    t.equal(back.status, 200)
    t.equal(back.body.timeZone, 'UTC', 'no transfers yet: the zone asked for is set')
    t.equal((await ctx.call('GET', `/v1/currencies/${empty.code}`, { token: ctx.issuerToken })).body.timeZone, 'UTC')

    const moved = await scenario(ctx, { code: 'ZMOV' })
    meanwhile(async () => {
      await elsewhere(moved.code)
      await issue(ctx, moved.code, moved.member.accountId, '5.00')
    })
    const late = await ctx.call('PATCH', `/v1/currencies/${moved.code}`, { token: ctx.issuerToken, body: { timeZone: 'UTC' } })
    t.equal(late.status, 409, 'the first transfers landed in the other zone: refused')
    t.equal(late.body.code, 'TIME_ZONE_FIXED')
    t.equal((await ctx.call('GET', `/v1/currencies/${moved.code}`, { token: ctx.issuerToken })).body.timeZone, AUCKLAND)
    const audit = (await ctx.app.pool.query<{ detail: { from: string, to: string } }>(`
      SELECT detail FROM audit_event WHERE action = 'currency.time_zone' AND target = $1 ORDER BY id DESC LIMIT 1`, [empty.code])).rows[0]
    t.same(audit.detail, { from: AUCKLAND, to: 'UTC' }, 'the audit row states the zone it was changed from')
  } finally {
    prisma.$transaction = real
  }
})
