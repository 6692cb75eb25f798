import t from 'tap'
import { Money } from '../../src/domain/money.js'
import { payment } from '../../src/domain/movements.js'
import { postMovement } from '../../src/ledger/post.js'
import { catchUp, maintain } from '../../src/reports/aggregate.js'
import { COMPOSITES_KEPT, warmComposites } from '../../src/reports/circulation.report.js'
import { buildTestApp, issue } from '../helper.js'
import { business, member, reportBook } from './fixture.js'

const volumeOf = async (pool: import('pg').Pool, currencyId: string) => (await pool.query<{ v: string | null, n: string | null }>(
  `SELECT sum(paid_m + paid_b)::text AS v, sum(n_paid)::text AS n FROM circ_account_bucket WHERE currency_id = $1 AND grain = 'm'`,
  [currencyId])).rows[0]

t.test('a transfer committed after a later one is still aggregated (the queue is commit-order safe)', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  const m = await member(ctx, 'BRS', 'BS6 5AB')
  const b = await business(ctx, 'BRS', 'food', 'BS1 4DJ')
  const m2 = await member(ctx, 'BRS', 'BS6 5AB')
  const b2 = await business(ctx, 'BRS', 'food', 'BS1 4DJ')
  await issue(ctx, 'BRS', m.accountId, '100.00')
  await issue(ctx, 'BRS', m2.accountId, '100.00')
  await catchUp(ctx.app.pool)

  // A posts first (its transfer id is the older one) but commits last
  const currency = { id: book.currencyId, decimals: 2, fees: { text: new Money(0), app: new Money(0), online: new Money(0), api: new Money(0), till: new Money(0) }, redemptionFee: new Money(0), system: book.system }
  const a = await ctx.app.pool.connect()
  t.teardown(() => a.release())
  await a.query('BEGIN')
  await postMovement(a, book.currencyId, {
    ...payment(currency, { from: m.accountId, to: b.accountId, amount: new Money(7), channel: 'till' }),
    scope: 'test', idempotencyKey: null, requestHash: '', createdBy: 'test', owner: null,
  })
  // B: other accounts (A holds m's and b's row locks until it commits), posted and committed while A is open
  await book.ledger.pay(new Date().toISOString(), m2.accountId, b2.accountId, '3')

  const first = await catchUp(ctx.app.pool)
  t.equal(first.transfers, 1, 'only the committed payment is folded in')
  t.same(await volumeOf(ctx.app.pool, book.currencyId), { v: '3.000000', n: '1' })

  await a.query('COMMIT')
  const second = await catchUp(ctx.app.pool)
  t.equal(second.transfers, 1, 'the late commit is picked up by the next drain')
  t.same(await volumeOf(ctx.app.pool, book.currencyId), { v: '10.000000', n: '2' })
  t.equal((await catchUp(ctx.app.pool)).transfers, 0, 'and nothing twice')
})

t.test('any writer of the transfer table is covered, including one statement inserting many rows', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  const m = await member(ctx, 'BRS', 'BS6 5AB')
  await catchUp(ctx.app.pool)
  // a set-based batch writer (like a batch posting function) inserts three transfers in one statement
  const rows = await ctx.app.pool.query(`INSERT INTO transfer (currency_id, kind, from_account_id, to_account_id, amount, created_by)
    SELECT $1, 'issuance', $2, $3, 1, 'batch' FROM generate_series(1, 3) RETURNING id`, [book.currencyId, book.system.issuance, m.accountId])
  t.equal(rows.rowCount, 3)
  t.equal((await ctx.app.pool.query('SELECT count(*)::int AS n FROM circ_pending')).rows[0].n, 3, 'all three are queued')
  t.equal((await catchUp(ctx.app.pool)).transfers, 3)
  const issued = await ctx.app.pool.query(`SELECT sum(issued)::text AS v FROM circ_account_bucket WHERE currency_id = $1 AND grain = 'd'`, [book.currencyId])
  t.equal(issued.rows[0].v, '3.000000')
})

t.test('the background aggregator folds transfers in without a report asking', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 50 })
  await reportBook(ctx)
  const m = await member(ctx, 'BRS', 'BS6 5AB')
  await issue(ctx, 'BRS', m.accountId, '5.00')
  for (let i = 0; i < 100; i++) {
    const q = await ctx.app.pool.query('SELECT count(*)::int AS n FROM circ_pending')
    if (q.rows[0].n === 0) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.equal((await ctx.app.pool.query('SELECT count(*)::int AS n FROM circ_pending')).rows[0].n, 0, 'the queue is empty')
  t.equal((await ctx.app.pool.query(`SELECT sum(issued)::text AS v FROM circ_account_bucket WHERE grain = 'm'`)).rows[0].v, '5.000000')
})

t.test('whole-range figures are cached, made stale by new transfers in the range, and refreshed in the background', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  const m = await member(ctx, 'BRS', 'BS6 5AB')
  const b = await business(ctx, 'BRS', 'food', 'BS1 4DJ')
  await book.ledger.issue('2026-01-01T00:00:00Z', m.accountId, '100')
  await book.ledger.pay('2026-01-05T00:00:00Z', m.accountId, b.accountId, '10')
  const url = '/v1/currencies/BRS/reports/circulation?from=2026-01-01&to=2026-03-01&interval=month'
  t.equal((await ctx.call('GET', url, { token: ctx.issuerToken })).status, 200)
  // (one member: every published cell is suppressed, so look at the cached figures themselves)
  const cached = async () => (await ctx.app.pool.query<{ figures: { issued: { value: string } } | null }>('SELECT figures FROM circ_composite')).rows
  t.equal((await cached()).length, 1, 'the whole range (two months) is cached')
  t.equal((await cached())[0].figures?.issued.value, '100.000000')

  // a transfer after the range leaves it alone; one inside makes it stale
  await book.ledger.issue('2026-03-05T00:00:00Z', m.accountId, '1')
  await catchUp(ctx.app.pool)
  t.ok((await cached())[0].figures != null, 'a transfer after the range does not touch it')
  await book.ledger.issue('2026-02-10T00:00:00Z', m.accountId, '5')
  await catchUp(ctx.app.pool)
  t.equal((await cached())[0].figures, null, 'a transfer inside the range makes it stale')
  const refreshed = await maintain(ctx.app.pool)
  t.equal(refreshed.composites, 1, 'the background aggregator recomputes it')
  t.equal((await cached())[0].figures?.issued.value, '105.000000', 'with the new transfer in it')
  t.equal((await ctx.call('GET', url, { token: ctx.issuerToken })).status, 200)
})

t.test('with REPORTS_MAX_STALENESS_MS a report reads what the background aggregator last folded in', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0, REPORTS_MAX_STALENESS_MS: 60_000 })
  await reportBook(ctx)
  const m = await member(ctx, 'BRS', 'BS6 5AB')
  const pending = async () => (await ctx.app.pool.query('SELECT count(*)::int AS n FROM circ_pending')).rows[0].n
  await issue(ctx, 'BRS', m.accountId, '5.00')
  await ctx.call('GET', '/v1/currencies/BRS/reports/circulation', { token: ctx.issuerToken })
  t.equal(await pending(), 0, 'no background catch-up yet: the report folds the queue in itself')
  ctx.app.services.reports.caughtUp() // as the background aggregator does after each run
  await issue(ctx, 'BRS', m.accountId, '5.00')
  await ctx.call('GET', '/v1/currencies/BRS/reports/circulation', { token: ctx.issuerToken })
  t.equal(await pending(), 1, 'within the allowed staleness the report leaves the queue to the background')
})

t.test('composites are kept per currency up to a bound, the least recently used going first', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const brs = await reportBook(ctx, 'BRS')
  const oth = await reportBook(ctx, 'OTH')
  const m = await member(ctx, 'BRS', 'BS6 5AB')
  await brs.ledger.issue('2026-01-01T00:00:00Z', m.accountId, '100')
  // as if a caller had asked for COMPOSITES_KEPT other ranges of BRS, the oldest first; and OTH for a few of its own
  const fill = (currencyId: string, n: number) => ctx.app.pool.query(`
    INSERT INTO circ_composite (currency_id, key, period, end_at, figures, version, used_at)
    SELECT $1, 'old-' || i, '{}', now(), NULL, 0, now() - make_interval(mins => $2 - i) FROM generate_series(1, $2) AS i`,
  [currencyId, n])
  await fill(brs.currencyId, COMPOSITES_KEPT)
  await fill(oth.currencyId, 3)
  const keys = async (currencyId: string) => (await ctx.app.pool.query<{ key: string }>(
    'SELECT key FROM circ_composite WHERE currency_id = $1', [currencyId])).rows.map(r => r.key)

  const res = await ctx.call('GET', '/v1/currencies/BRS/reports/circulation?from=2026-01-01&to=2026-03-01&interval=month', { token: ctx.issuerToken })
  t.equal(res.status, 200)
  const kept = await keys(brs.currencyId)
  t.equal(kept.length, COMPOSITES_KEPT, 'the currency holds no more than the bound')
  t.ok(kept.includes('2026-01-01T00:00:00.000Z/2026-03-01T00:00:00.000Z'), 'the range just asked for is kept')
  t.notOk(kept.includes('old-1'), 'the least recently used went')
  t.ok(kept.includes('old-2'), 'and only it')
  t.equal((await keys(oth.currencyId)).length, 3, "another currency's composites are not touched")
})

t.test("the aggregator warms every currency's recent stale composites in turn", async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const brs = await reportBook(ctx, 'BRS')
  const oth = await reportBook(ctx, 'OTH')
  for (const book of [brs, oth]) {
    const m = await member(ctx, book.code, 'BS6 5AB')
    await book.ledger.issue('2026-01-01T00:00:00Z', m.accountId, '100')
  }
  const url = (code: string, to: string) => `/v1/currencies/${code}/reports/circulation?from=2026-01-01&to=${to}&interval=month`
  t.equal((await ctx.call('GET', url('OTH', '2026-03-01'), { token: ctx.issuerToken })).status, 200)
  // BRS: more ranges asked for after OTH's than one run of the aggregator warms
  for (const to of ['2026-03-01', '2026-04-01', '2026-05-01', '2026-06-01']) {
    t.equal((await ctx.call('GET', url('BRS', to), { token: ctx.issuerToken })).status, 200)
  }
  // a transfer in every range makes all of them stale
  for (const book of [brs, oth]) await book.ledger.issue('2026-01-02T00:00:00Z', (await member(ctx, book.code, 'BS6 5AB')).accountId, '1')
  await catchUp(ctx.app.pool)
  const stale = async (currencyId: string) => (await ctx.app.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM circ_composite WHERE currency_id = $1 AND figures IS NULL', [currencyId])).rows[0].n
  t.equal(await stale(brs.currencyId), 4)
  t.equal(await stale(oth.currencyId), 1)
  t.equal(await warmComposites(ctx.app.pool, 2), 2)
  t.equal(await stale(oth.currencyId), 0, "OTH's one range was warmed although BRS's four were asked for later")
  t.equal(await stale(brs.currencyId), 3, "and BRS's most recent")
})
