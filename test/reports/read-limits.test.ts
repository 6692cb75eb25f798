import { EventEmitter } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import pg from 'pg'
import t from 'tap'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { handlerDone } from '../../src/plugins/held-places.js'
import { AGGREGATE_LOCK } from '../../src/reports/lock.js'
import { buildTestApp, issue, registerMember, scenario } from '../helper.js'
import { createResearcher } from './ledger.js'

// Expensive reads cannot starve the ledger: what one report may ask is bounded, a caller may run only a few
// reports and exports at once, and they run on a pool of their own (plugins/db.ts, readPool), so payments keep
// every connection of theirs however many reports are stuck. Reports are held up here with the database's own
// locks, so the test waits on conditions, never on the clock.

async function researchers (ctx: Awaited<ReturnType<typeof buildTestApp>>, code: string, n: number): Promise<string[]> {
  const currencyId = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [code])).rows[0].id
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    await createResearcher(ctx.app.pool, currencyId, `res-${code}-${i}`, 'researcher-password')
    out.push(await ctx.token(`res-${code}-${i}`, 'researcher-password'))
  }
  return out
}

/** Waits until `n` sessions of the read pool are waiting on a lock (polls the server; no fixed sleep decides anything).
 *  Asked outside the lock holder's transaction: pg_stat_activity is read once per transaction. */
async function readersWaiting (db: Pick<pg.Pool, 'query'>, n: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const r = await db.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'circulate-reads' AND wait_event_type = 'Lock'`)
    if (Number(r.rows[0].n) >= n) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`${n} read sessions never waited on the lock`)
}

t.test('what one report may ask is bounded: 400 past ten years or 400 periods', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const s = await scenario(ctx)
  const [token] = await researchers(ctx, s.code, 1)
  const get = async (q: string, what = 'circulation') => await ctx.call('GET', `/v1/currencies/${s.code}/reports/${what}?${q}`, { token })
  for (const [q, what] of [
    ['from=1970-01-01&to=2053-01-01&interval=month', 'circulation'], // the 8.4-second report of the issue
    ['from=2015-01-01&to=2026-01-01&interval=month', 'circulation'], // 11 years
    ['from=2025-01-01&to=2026-02-06&interval=day', 'circulation'], // 401 days
    ['from=2015-01-01&to=2026-01-01', 'flows'],
  ]) {
    const r = await get(q, what)
    t.equal(r.status, 400, `${what}?${q}: 400`)
    t.equal(r.body.code, 'INVALID_QUERY')
  }
  t.match((await get('from=2015-01-01&to=2026-01-01&interval=month')).body.detail, /at most 3660/)
  t.match((await get('from=2025-01-01&to=2026-02-06&interval=day')).body.detail, /at most 400 periods/)
  t.equal((await get('from=2025-01-01&to=2026-01-01&interval=day')).status, 200, 'a year of days is fine')
  t.equal((await get('from=2016-01-01&to=2026-01-01&interval=month')).status, 200, 'ten years of months are fine')
  t.equal((await get('from=2016-01-01&to=2026-01-01&interval=week')).status, 400, 'ten years of weeks are too many periods')
})

t.test('reports stuck on the database hold read connections only: payments go on, a caller is held to its budget', async (t) => {
  const ctx = await buildTestApp(t, {
    REPORTS_AGGREGATE_INTERVAL_MS: 0, DB_POOL_MAX: 2, READ_POOL_MAX: 2, READ_ACQUIRE_TIMEOUT_MS: 1000, READS_PER_CALLER: 1,
  })
  const s = await scenario(ctx)
  const payers = [s.member, ...await Promise.all(Array.from({ length: 3 }, async () => await registerMember(ctx, s.code)))]
  for (const m of payers) await issue(ctx, s.code, m.accountId, '100.00')
  const [r1, r2, r3] = await researchers(ctx, s.code, 3)

  // both read connections open beforehand: opening one counts against READ_ACQUIRE_TIMEOUT_MS, and a busy machine
  // can take that long
  await Promise.all([ctx.app.readPool.query('SELECT pg_sleep(0.1)'), ctx.app.readPool.query('SELECT pg_sleep(0.1)')])
  // A report catches the aggregates up first; with the aggregate lock held elsewhere it waits in the database,
  // holding a read connection. An export waits on its export row the same way.
  const blocker = new pg.Client({ connectionString: ctx.db.url })
  await blocker.connect()
  t.teardown(async () => { await blocker.end().catch(() => {}) })
  await blocker.query('BEGIN')
  await blocker.query('SELECT pg_advisory_xact_lock($1)', [AGGREGATE_LOCK])
  await blocker.query('LOCK TABLE research_export IN EXCLUSIVE MODE')

  const report = ctx.call('GET', `/v1/currencies/${s.code}/reports/circulation`, { token: r1 })
  const exportA = ctx.call('GET', `/v1/currencies/${s.code}/exports/accounts`, { token: r2 })
  await readersWaiting(ctx.app.pool, 2)
  t.equal(ctx.app.readsRunning(), 2, 'two expensive reads are running, each holding a read connection')

  // READS_PER_CALLER 1: one more of the same caller waits its turn, the next is refused at once
  const waiting = ctx.call('GET', `/v1/currencies/${s.code}/reports/flows?by=district`, { token: r1 })
  const again = await ctx.call('GET', `/v1/currencies/${s.code}/reports/flows`, { token: r1 })
  t.equal(again.status, 429, 'a third report of the same caller is refused at once')
  t.equal(again.body.code, 'RATE_LIMITED')
  t.equal(again.headers['retry-after'], '1')
  // (straight to inject: the test helper fails every 5xx, and this one is the point)
  const starved = await ctx.app.inject({ method: 'GET', url: `/v1/currencies/${s.code}/exports/transfers`, headers: { authorization: `Bearer ${r3}` } })
  t.equal(starved.statusCode, 503, 'another caller\'s export finds the read pool full and is shed after READ_ACQUIRE_TIMEOUT_MS')
  t.equal(starved.json().code, 'SERVICE_UNAVAILABLE')
  t.equal(starved.headers['retry-after'], '1')

  // the ledger is untouched by all this: 40 payments at once on a write pool of 2
  const pays = await Promise.all(Array.from({ length: 40 }, async (_, i) => await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: payers[i % payers.length].token, key: `p-${i}`,
    body: { fromAccount: payers[i % payers.length].accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
  })))
  t.same(pays.filter(p => p.status !== 201).map(p => [p.status, p.body.code]), [], 'every payment 201 while the reads are stuck')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}/statement`, { token: s.member.token })).status, 200, 'a JSON statement page is not an expensive read')

  await blocker.query('COMMIT')
  t.equal((await report).status, 200, 'the stuck report finishes once the lock is gone')
  t.equal((await waiting).status, 200, 'the report that waited its turn runs after it')
  t.equal((await exportA).status, 200, 'and so does the stuck export')
  t.equal(ctx.app.readsRunning(), 0, 'their places in the budget are given back')
  t.equal((await ctx.call('GET', `/v1/currencies/${s.code}/reports/flows`, { token: r1 })).status, 200, 'the caller may report again')
  const csv = await ctx.call('GET', `/v1/accounts/${s.business.accountId}/statement?format=csv`, { token: s.business.token })
  t.equal(csv.status, 200)
  t.match(String(csv.headers['content-type']), /^text\/csv/)
})

t.test('a caller that hangs up keeps its place until its report is over: hanging up does not let it run more at once', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0, READ_POOL_MAX: 2, READS_PER_CALLER: 1 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00') // a transfer to catch up, so the report waits on the lock
  const [r1] = await researchers(ctx, s.code, 1)
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const port = (ctx.app.server.address() as { port: number }).port
  const blocker = new pg.Client({ connectionString: ctx.db.url })
  await blocker.connect()
  t.teardown(async () => { await blocker.end().catch(() => {}) })
  await blocker.query('BEGIN')
  await blocker.query('SELECT pg_advisory_xact_lock($1)', [AGGREGATE_LOCK])

  // a report over a real connection, stuck on the lock, then the caller hangs up
  const req = http.get(`http://127.0.0.1:${port}/v1/currencies/${s.code}/reports/circulation`, { headers: { authorization: `Bearer ${r1}` } })
  req.on('error', () => {})
  await readersWaiting(ctx.app.pool, 1)
  req.destroy()
  for (let i = 0; ; i++) {
    const open = await new Promise<number>((resolve, reject) => { ctx.app.server.getConnections((err, n) => { if (err != null) reject(err); else resolve(n) }) })
    if (open === 0) break
    if (i > 500) throw new Error('the server never saw the hang-up')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  t.equal(ctx.app.readsRunning(), 1, 'the report still runs, and holds its place')
  const waiting = ctx.call('GET', `/v1/currencies/${s.code}/reports/flows`, { token: r1 })
  const refused = await ctx.call('GET', `/v1/currencies/${s.code}/reports/flows?by=district`, { token: r1 })
  t.equal(refused.status, 429, 'one running (its client gone) and one waiting: the next is refused')

  await blocker.query('COMMIT')
  t.equal((await waiting).status, 200, 'the waiting report runs once the abandoned one is over')
  for (let i = 0; ctx.app.readsRunning() > 0; i++) {
    if (i > 500) throw new Error('the places were never given back')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  t.equal((await ctx.call('GET', `/v1/currencies/${s.code}/reports/flows`, { token: r1 })).status, 200, 'the caller may report again')
})

t.test('a client that stops reading its export does not keep its place for good', async (t) => {
  // Attack: a researcher starts an export over a real connection and never reads it. The export streams until the
  // socket's buffers are full and then waits for the client; before READ_STALL_MS it waited for as long as the
  // connection stayed open, holding the researcher's place (and one of its currency's READS_PER_CURRENCY) with it,
  // so the researcher's next report waited behind it for good.
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0, READS_PER_CALLER: 1, READ_STALL_MS: 500 })
  const s = await scenario(ctx)
  const currencyId = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [s.code])).rows[0].id
  // ~11 MB of CSV, more than the loopback socket buffers on both sides hold
  await ctx.tooling().query(`INSERT INTO transfer (currency_id, kind, channel, from_account_id, to_account_id, amount, created_by, created_at)
    SELECT $1, 'payment', 'app', $2, $3, 0.01, 'test', now() - make_interval(secs => g) FROM generate_series(1, 100000) g`,
  [currencyId, s.member.accountId, s.business.accountId])
  const [r1] = await researchers(ctx, s.code, 1)
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const port = (ctx.app.server.address() as { port: number }).port
  const sock = net.connect(port, '127.0.0.1')
  t.teardown(() => { sock.destroy() })
  sock.on('error', () => {})
  sock.once('data', () => { sock.pause() })
  sock.write(`GET /v1/currencies/${s.code}/exports/transfers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${r1}\r\n\r\n`)
  for (let i = 0; ctx.app.readsRunning() === 0; i++) {
    if (i > 500) throw new Error('the export never started')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  // the export fills the buffers (a few seconds), then stalls; READ_STALL_MS later it is ended
  for (let i = 0; ctx.app.readsRunning() > 0; i++) {
    if (i > 2000) { t.fail('the stalled export still holds its place after 20 s'); return }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  t.pass('the stalled export gave its place back')
  const again = await ctx.call('GET', `/v1/currencies/${s.code}/reports/circulation`, { token: r1 })
  t.equal(again.status, 200, 'the researcher reports again')
})

t.test('a participant\'s logins and API keys share one read budget', async (t) => {
  const ctx = await buildTestApp(t, { READS_PER_CALLER: 1 })
  // reads as the budget sees them: the caller's principal, and a response that closes when the test says
  const read = (userId: string, participantId: string | null) => {
    const raw = new EventEmitter()
    const request = { principal: { userId, participantId }, ip: '10.0.0.1', log: { info: () => {} } } as unknown as FastifyRequest
    const reply = { raw } as unknown as FastifyReply
    return { go: async () => await ctx.app.readBudget(request, reply), done: () => { handlerDone(request); raw.emit('close') } }
  }
  const first = read('key-1', 'shop')
  await first.go()
  let waited = false
  const second = read('key-2', 'shop')
  const turn = second.go().then(() => { waited = true })
  const refused = await read('login-3', 'shop').go().then(() => null, (err: Error) => err)
  t.match(refused, { code: 'RATE_LIMITED' }, 'a third login of the same business: one read running, one waiting, so refused')
  t.notOk(waited, 'the second key\'s read waits for the first key\'s')
  const other = read('key-9', 'another shop')
  await other.go()
  t.pass('another participant reads at once')
  first.done()
  await turn
  t.ok(waited, 'the first read over, the second runs')
  second.done(); other.done()
  t.equal(ctx.app.readsRunning(), 0)
})
