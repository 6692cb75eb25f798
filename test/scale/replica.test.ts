import pg from 'pg'
import t from 'tap'
import { migrate } from '../../src/db/migrate.js'
import { buildTestApp, issue, scenario } from '../helper.js'
import { startCluster } from '../../support/pg-cluster.js'

// Reports, research exports and statement CSVs on a real streaming replica (pg_basebackup of a PostgreSQL this test
// starts on free ports): read there once it has replayed what the primary had, with asOf saying so; a replica that
// lags past REPLICA_MAX_LAG_MS, or is down, sends the read to the primary, and the answer is the same.

t.test('reads on a streaming replica, back to the primary when it lags or dies', { timeout: 240_000 }, async (t) => {
  const cluster = await startCluster()
  t.teardown(() => { cluster.destroy() })
  const admin = new pg.Client({ connectionString: cluster.primary.url() })
  await admin.connect()
  await admin.query('CREATE DATABASE circulate')
  await admin.end()
  const primaryUrl = cluster.primary.url('circulate')
  await migrate(primaryUrl)
  const ctx = await buildTestApp(t, { REPLICA_DATABASE_URL: cluster.standby.url('circulate'), REPLICA_MAX_LAG_MS: 1500 }, { db: { url: primaryUrl, drop: async () => {} } })
  // the same database without a replica: the reference answer
  const plain = await buildTestApp(t, {}, { db: ctx.db, keys: ctx.keys })
  t.ok(ctx.app.reads.configured)

  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  let n = 0
  const pay = async (amount: string) => {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: s.member.token, key: `p-${n++}`, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount, channel: 'app' },
    })
    t.equal(r.status, 201)
  }
  await pay('3.00')
  await pay('4.50')
  const report = `/v1/currencies/${s.code}/reports/circulation?interval=month`
  const withoutAsOf = (b: Record<string, unknown>) => { const { asOf: _a, ...rest } = b; return rest }

  await t.test('a caught-up replica serves the report', async (t) => {
    const before = { served: ctx.app.reads.served, fallbacks: ctx.app.reads.fallbacks }
    const started = Date.now()
    const r = await ctx.call('GET', report, { token: ctx.issuerToken })
    t.equal(r.status, 200)
    t.equal(ctx.app.reads.served, before.served + 1, 'read on the replica')
    t.equal(ctx.app.reads.fallbacks, before.fallbacks)
    t.equal(r.headers['x-as-of'], r.body.asOf, 'X-As-Of says the same as asOf')
    t.ok(Date.parse(r.body.asOf) >= started - 1000 && Date.parse(r.body.asOf) <= Date.now(), 'asOf is when the report started')
    const ref = await plain.call('GET', report, { token: ctx.issuerToken })
    t.same(withoutAsOf(r.body), withoutAsOf(ref.body), 'the same figures as the primary gives')
    const flows = await ctx.call('GET', `/v1/currencies/${s.code}/reports/flows`, { token: ctx.issuerToken })
    t.equal(flows.status, 200)
    t.ok(flows.body.asOf)

    const csv = await ctx.call('GET', `/v1/accounts/${s.member.accountId}/statement?format=csv`, { token: s.member.token })
    t.equal(csv.status, 200)
    t.match(csv.text, /4\.50/, 'the statement CSV has the last payment')
    t.ok(csv.headers['x-as-of'])

    t.equal((await ctx.call('POST', `/v1/currencies/${s.code}/researchers`, { token: ctx.issuerToken, body: { name: 'R', username: 'researcher-r', password: 'researcher-password' } })).status, 201)
    const rt = await ctx.token('researcher-r', 'researcher-password')
    const exp = await ctx.call('GET', `/v1/currencies/${s.code}/exports/transfers`, { token: rt })
    t.equal(exp.status, 200, 'a research export: its salt written on the primary, its rows read on the replica')
    t.ok(exp.headers['x-as-of'])
    t.equal(exp.text.trim().split('\n').length - 1, (await plain.call('GET', `/v1/currencies/${s.code}/exports/transfers?export=${String(exp.headers['x-export-id'])}`, { token: rt })).text.trim().split('\n').length - 1, 'as many rows as from the primary')
    t.equal(ctx.app.reads.fallbacks, before.fallbacks, 'none of these went to the primary')
  })

  await t.test('a lagging replica (replay paused): the read waits REPLICA_MAX_LAG_MS, then runs on the primary', async (t) => {
    const standby = new pg.Client({ connectionString: cluster.standby.url('circulate') })
    await standby.connect()
    t.teardown(async () => { await standby.query('SELECT pg_wal_replay_resume()').catch(() => {}); await standby.end() })
    await standby.query('SELECT pg_wal_replay_pause()')
    await pay('2.25')
    const fallbacks = ctx.app.reads.fallbacks
    const started = Date.now()
    const r = await ctx.call('GET', report, { token: ctx.issuerToken })
    t.equal(r.status, 200)
    t.ok(Date.now() - started >= 1400, 'it gave the replica its REPLICA_MAX_LAG_MS')
    t.equal(ctx.app.reads.fallbacks, fallbacks + 1, 'then read on the primary')
    const ref = await plain.call('GET', report, { token: ctx.issuerToken })
    t.same(withoutAsOf(r.body), withoutAsOf(ref.body), 'so the report has the payment the replica has not replayed')
    await standby.query('SELECT pg_wal_replay_resume()')
    await cluster.caughtUp()
    const served = ctx.app.reads.served
    t.equal((await ctx.call('GET', report, { token: ctx.issuerToken })).status, 200)
    t.equal(ctx.app.reads.served, served + 1, 'caught up again: back on the replica')
  })

  await t.test('a dead replica: reads run on the primary, no error', async (t) => {
    cluster.crash(cluster.standby)
    const fallbacks = ctx.app.reads.fallbacks
    const r = await ctx.call('GET', report, { token: ctx.issuerToken })
    t.equal(r.status, 200)
    t.equal(ctx.app.reads.fallbacks, fallbacks + 1)
    const csv = await ctx.call('GET', `/v1/accounts/${s.member.accountId}/statement?format=csv`, { token: s.member.token })
    t.equal(csv.status, 200)
    t.equal(ctx.app.reads.fallbacks, fallbacks + 2)
  })
})
