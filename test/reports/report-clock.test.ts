import t from 'tap'
import { buildTestApp, issue, scenario } from '../helper.js'

// The bench (scripts/bench-reports.ts) times reports over a simulated year as of its last day, so that new
// payments land in the report's today as they do in service; the reports take "now" from the app's report clock.
// A report without a range ends at the start of the month after the clock's today, and today's payments are
// counted as the day under way.
t.test('reports take now from the report clock', async (t) => {
  let now = new Date('2026-03-15T12:00:00Z')
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 }, { reportClock: () => now })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '50.00')
  const circulation = await ctx.call('GET', `/v1/currencies/${s.code}/reports/circulation`, { token: ctx.issuerToken })
  t.equal(circulation.status, 200)
  t.equal(circulation.body.to, '2026-04-01T00:00:00.000Z', 'the default range ends after the clock\'s month')
  t.equal(circulation.body.from, '2025-04-01T00:00:00.000Z')
  const flows = await ctx.call('GET', `/v1/currencies/${s.code}/reports/flows`, { token: ctx.issuerToken })
  t.equal(flows.status, 200)
  t.equal(flows.body.to, '2026-04-01T00:00:00.000Z')
  now = new Date('2027-01-02T00:30:00Z')
  const later = await ctx.call('GET', `/v1/currencies/${s.code}/reports/circulation`, { token: ctx.issuerToken })
  t.equal(later.body.to, '2027-02-01T00:00:00.000Z', 'the clock is read on every request')
})
