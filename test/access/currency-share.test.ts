import pg from 'pg'
import t, { type Test } from 'tap'
import { freePort } from '../../support/ports.js'
import { hasRedis, startRedis } from '../../support/redis.js'
import { buildTestApp, issue, registerMember, scenario, type TestContext } from '../helper.js'
import { openSse } from '../events/sse.js'
import { createResearcher } from '../reports/ledger.js'

// One currency's callers hold at most CURRENCY_SHARE_PERCENT of an instance's event streams, batch places and
// payment-request long-polls. A currency's issuer registers as many participants as it likes, each with a caller's
// share of its own, so per-caller bounds alone let one currency's participants take all of them, and another
// currency's callers got none (503, or long-polls answered at once). Here each instance bound is 4 and each
// caller's 1, so the share is 2: three participants of one currency used to take three places, and with a fourth
// the instance's last one.

async function listen (ctx: TestContext): Promise<string> {
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const a = ctx.app.server.address()
  if (a == null || typeof a === 'string') throw new Error('no address')
  return `http://127.0.0.1:${a.port}`
}

async function until (what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 10_000; !await ok();) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

t.test('event streams: one currency\'s participants take their currency\'s share, and another currency still opens one', async (t) => {
  const ctx = await buildTestApp(t, { EVENTS_STREAMS_PER_CALLER: 1, EVENTS_MAX_STREAMS: 4 })
  const base = await listen(ctx)
  const a = await scenario(ctx, { code: 'AAA' })
  const b = await scenario(ctx, { code: 'BBB' })
  const a3 = await registerMember(ctx, 'AAA')
  const stream = async (who: { token: string, accountId: string }) => await openSse(base, `/v1/accounts/${who.accountId}/events`, { token: who.token })

  const one = await stream(a.member)
  const two = await stream(a.business)
  const three = await stream(a3)
  t.same([one.status, two.status], [200, 200], 'two of the currency\'s participants open theirs')
  t.equal(three.status, 503, 'a third participant of the same currency is past its currency\'s share')
  t.match(three.body, /your currency's callers hold as many event streams/)
  const other = await stream(b.member)
  t.equal(other.status, 200, 'another currency\'s member opens its stream on the same instance')

  one.close()
  await until('the closed stream was released', () => ctx.app.events.perCurrency.of(a.currency.id) < 2)
  const again = await stream(a3)
  t.equal(again.status, 200, 'a stream the currency gave back can be taken by another of its participants')
  for (const s of [two, other, again]) s.close()
  await until('every stream released', () => ctx.app.events.streams.size === 0)
  t.equal(ctx.app.events.perCurrency.size, 0, 'no currency holds a stream after they end')
})

t.test('batches: one currency\'s participants take their currency\'s share of the line, and another currency\'s batch still queues', async (t) => {
  const ctx = await buildTestApp(t, { BATCH_CONCURRENCY: 1, BATCH_QUEUE_MAX: 3, BATCH_PER_CALLER: 1 })
  const a = await scenario(ctx, { code: 'AAA' })
  const b = await scenario(ctx, { code: 'BBB' })
  const a3 = await registerMember(ctx, 'AAA')
  for (const [code, who] of [['AAA', a.member], ['AAA', a.business], ['AAA', a3], ['BBB', b.member]] as const) await issue(ctx, code, who.accountId, '10.00')
  const db = new pg.Client({ connectionString: ctx.db.url })
  await db.connect()
  t.teardown(async () => { await db.end().catch(() => {}) })
  const { batches } = ctx.app.services
  const batch = async (code: string, who: { token: string, accountId: string }, to: string, key: string) => await ctx.app.inject({
    method: 'POST', url: `/v1/currencies/${code}/transfers/batch`, headers: { authorization: `Bearer ${who.token}` },
    payload: { items: [{ idempotencyKey: key, fromAccount: who.accountId, toAccount: to, amount: '1.00', channel: 'app' }] },
  })

  // the first batch is held at the database by a row lock, so the others wait in line behind it
  await db.query('BEGIN')
  await db.query('SELECT 1 FROM account WHERE id = $1 FOR UPDATE', [a.member.accountId])
  const first = batch('AAA', a.member, a.business.accountId, 'share-1')
  await until('the first batch is at the database', async () => (await db.query(`SELECT 1 FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'circulate' AND wait_event_type = 'Lock'`)).rows.length > 0)
  const second = batch('AAA', a.business, a.member.accountId, 'share-2')
  await until('the second batch is admitted', () => batches.admitted() === 2)
  const third = await batch('AAA', a3, a.business.accountId, 'share-3')
  t.equal(third.statusCode, 503, 'a third participant of the same currency is past its currency\'s share, answered at once')
  t.equal(third.json().code, 'SERVICE_UNAVAILABLE')
  t.match(third.json().detail, /your currency's callers hold as many batch places/)
  t.equal(third.headers['retry-after'], '1')
  const other = batch('BBB', b.member, b.business.accountId, 'share-4')
  await until('the other currency\'s batch is admitted', () => batches.admitted() === 3)
  await db.query('ROLLBACK')
  const answers = await Promise.all([first, second, other])
  t.same(answers.map(r => r.statusCode), [200, 200, 200], 'the currency\'s two batches and the other currency\'s all post')
  t.same(answers.map(r => r.json().posted), [1, 1, 1])
  t.equal(batches.admitted(), 0, 'every place given back')
})

t.test('long-polls: one currency\'s participants take their currency\'s share of the waits, and another currency\'s still waits', async (t) => {
  const ctx = await buildTestApp(t, { REQUESTS_MAX_WAITERS: 4, REQUESTS_WAITERS_PER_CALLER: 1 })
  const a = await scenario(ctx, { code: 'AAA' })
  const b = await scenario(ctx, { code: 'BBB' })
  const a3 = await registerMember(ctx, 'AAA')
  await issue(ctx, 'BBB', b.member.accountId, '20.00')
  const ask = async (code: string, business: { token: string, accountId: string }, key: string) => await ctx.call('POST', `/v1/currencies/${code}/payment-requests`, {
    token: business.token, key, body: { toAccount: business.accountId, amount: '2.00' },
  })
  const ra = await ask('AAA', a.business, 'ask-a')
  const rb = await ask('BBB', b.business, 'ask-b')
  t.same([ra.status, rb.status], [201, 201])
  const poll = async (id: string, token: string) => await ctx.call('GET', `/v1/payment-requests/${id}?waitSeconds=20`, { token })
  const { requests } = ctx.app.services

  const held = [poll(ra.body.id, a.business.token), poll(ra.body.id, a.member.token)]
  await until('two of the currency\'s long-polls wait', () => requests.waiting() === 2)
  const t0 = Date.now()
  const third = await poll(ra.body.id, a3.token)
  t.equal(third.body.status, 'pending', 'a third participant of the same currency is answered at once, as the request stands')
  t.ok(Date.now() - t0 < 5000, `in ${Date.now() - t0} ms, not after 20 s`)
  t.equal(requests.waiting(), 2)
  const other = poll(rb.body.id, b.business.token)
  await until('the other currency\'s long-poll waits', () => requests.waiting() === 3)
  t.pass('another currency\'s long-poll waits on the same instance')
  const paid = await ctx.call('POST', `/v1/payment-requests/${rb.body.id as string}/payments`, {
    token: b.member.token, key: 'pay-b', body: { fromAccount: b.member.accountId, channel: 'till' },
  })
  t.equal(paid.status, 201)
  t.equal((await other).body.status, 'paid', 'and wakes when its request is paid')
  const cancelled = await ctx.call('POST', `/v1/payment-requests/${ra.body.id as string}/cancel`, { token: a.business.token, key: 'cancel-a' })
  t.equal(cancelled.status, 200)
  t.same((await Promise.all(held)).map(x => x.body.status), ['cancelled', 'cancelled'])
})

// The caller share and the read budget: while another currency has requests there, one currency's callers together
// run at most CALLS_PER_CURRENCY requests (READS_PER_CURRENCY reports and exports); their others wait their turn
// (src/plugins/caller-queue.ts). Requests are held at the database by locks the test takes.

/** Sessions of the service waiting on a lock (application_name: the main pool's or the read pool's). */
async function waitingOnLocks (db: pg.Client, app: string): Promise<number> {
  const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'`, [app])
  return r.rows[0].n
}

t.test('the caller share: one currency\'s members past its requests wait while another currency\'s run', async (t) => {
  const ctx = await buildTestApp(t, { CALLS_PER_CALLER: 1, CALLS_PER_CURRENCY: 2, PAYMENT_COALESCE_MAX: 0 })
  const a = await scenario(ctx, { code: 'AAA' })
  const b = await scenario(ctx, { code: 'BBB' })
  const a2 = await registerMember(ctx, 'AAA')
  const a3 = await registerMember(ctx, 'AAA')
  for (const [code, who] of [['AAA', a.member], ['AAA', a2], ['AAA', a3], ['BBB', b.member]] as const) await issue(ctx, code, who.accountId, '10.00')
  const db = new pg.Client({ connectionString: ctx.db.url })
  await db.connect()
  t.teardown(async () => { await db.end().catch(() => {}) })
  const pay = (code: string, who: { token: string, accountId: string }, to: string, key: string) => ctx.call('POST', `/v1/currencies/${code}/payments`, {
    token: who.token, key, body: { fromAccount: who.accountId, toAccount: to, amount: '1.00', channel: 'app' },
  })
  // every payer's account row is locked, so each payment is held at the database, holding its place
  await db.query('BEGIN')
  await db.query('SELECT 1 FROM account WHERE id = ANY ($1) FOR UPDATE', [[a.member.accountId, a2.accountId, a3.accountId, b.member.accountId]])
  const held = [pay('BBB', b.member, b.business.accountId, 'b-1')]
  await until('BBB\'s payment is at the database', async () => await waitingOnLocks(db, 'circulate') === 1)
  held.push(pay('AAA', a.member, a.business.accountId, 'a-1'), pay('AAA', a2, a.business.accountId, 'a-2'))
  await until('two of AAA\'s payments are at the database', async () => await waitingOnLocks(db, 'circulate') === 3)
  const third = pay('AAA', a3, a.business.accountId, 'a-3')
  await until('AAA\'s third waits its turn', () => ctx.app.callerShare().waiting === 1)
  t.equal(ctx.app.callerShare().running, 3, 'it does not run: AAA has its two while BBB is there')
  const other = await ctx.call('GET', `/v1/accounts/${b.business.accountId}`, { token: b.business.token })
  t.equal(other.status, 200, 'another currency\'s request runs at once')
  await db.query('ROLLBACK')
  t.same((await Promise.all([...held, third])).map(r => r.status), [201, 201, 201, 201], 'all are answered once the locks go')
  t.same(ctx.app.callerShare(), { running: 0, waiting: 0 })
})

async function readBudgetCase (t: Test, env: Record<string, string | number> = {}): Promise<void> {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0, READ_POOL_MAX: 4, READS_PER_CALLER: 1, READS_PER_CURRENCY: 2, ...env })
  await scenario(ctx, { code: 'AAA' })
  await scenario(ctx, { code: 'BBB' })
  const researcher = async (code: string, name: string) => {
    const currencyId = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [code])).rows[0].id
    await createResearcher(ctx.app.pool, currencyId, name, 'researcher-password')
    return await ctx.token(name, 'researcher-password')
  }
  const [ra1, ra2, ra3, rb] = [await researcher('AAA', 'res-a1'), await researcher('AAA', 'res-a2'), await researcher('AAA', 'res-a3'), await researcher('BBB', 'res-b')]
  const db = new pg.Client({ connectionString: ctx.db.url })
  await db.connect()
  t.teardown(async () => { await db.end().catch(() => {}) })
  const exportOf = (code: string, token: string) => ctx.call('GET', `/v1/currencies/${code}/exports/accounts`, { token })
  // an export writes its row first: with the table locked it waits at the database, holding its read place
  await db.query('BEGIN')
  await db.query('LOCK TABLE research_export IN EXCLUSIVE MODE')
  const held = [exportOf('BBB', rb)]
  await until('BBB\'s export is running', () => ctx.app.readsRunning() === 1)
  held.push(exportOf('AAA', ra1), exportOf('AAA', ra2))
  await until('two of AAA\'s exports are running', () => ctx.app.readsRunning() === 3)
  const third = exportOf('AAA', ra3)
  await until('AAA\'s third export waits its turn', () => ctx.app.readsWaiting() === 1)
  t.equal(ctx.app.readsRunning(), 3, 'it does not run: AAA has its two while BBB is there')
  await db.query('COMMIT')
  t.same((await Promise.all([...held, third])).map(r => r.status), [200, 200, 200, 200], 'all are answered once the lock goes')
  t.equal(ctx.app.readsRunning(), 0)
}

t.test('the read budget: one currency\'s researchers past its reads wait while another currency\'s run', async (t) => {
  await readBudgetCase(t)
})

// With Redis the per-caller budget is shared by every instance; the currency groups share out this instance's read
// pool, and before, a read the shared budget let run skipped them: AAA's third export ran at once.
t.test('the read budget with Redis: the currency groups still apply on the instance', { skip: hasRedis() ? false : 'redis-server is not installed' }, async (t) => {
  const port = await freePort()
  const redis = await startRedis(port)
  t.teardown(() => { redis.kill('SIGKILL') })
  await readBudgetCase(t, { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_PREFIX: `cs${process.pid}:` })
})
