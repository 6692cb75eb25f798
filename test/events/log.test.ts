import pg from 'pg'
import t from 'tap'
import { recordEvent } from '../../src/events/record.js'
import { buildTestApp, issue, registerMember, scenario } from '../helper.js'

// The event log (prisma/migrations/20261211000000_event_log, src/events/record.ts): written in the transaction of
// what causes it, by any writer; nothing for what is refused or rolled back; NOTIFY on commit; one account's ids
// rise in commit order.

const events = async (pool: pg.Pool, accountId: string) =>
  (await pool.query<{ id: string, type: string, data: any, currency_id: string }>(
    'SELECT id::text, type, data, currency_id FROM event WHERE account_id = $1 ORDER BY id', [accountId])).rows

t.test('a payment writes payment.sent and payment.received; refused ones write nothing', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const pool = ctx.app.pool
  const cid = (await ctx.app.services.currencies.resolve(s.code)).id
  await issue(ctx, s.code, s.member.accountId, '100.00')
  t.same(await events(pool, s.member.accountId), [], 'an issuance is not a payment')

  const body = { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '12.60', channel: 'app', reference: 'coffee' }
  const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'p1', body })
  t.equal(pay.status, 201)
  const sent = await events(pool, s.member.accountId)
  const recv = await events(pool, s.business.accountId)
  t.equal(sent.length, 1)
  t.equal(recv.length, 1)
  const data = { transferId: pay.body.id, currency: s.code, fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '12.60', fee: '0.25', channel: 'app', reference: 'coffee', createdAt: pay.body.createdAt }
  t.same(sent[0], { id: sent[0].id, type: 'payment.sent', data, currency_id: cid })
  t.same(recv[0], { id: recv[0].id, type: 'payment.received', data, currency_id: cid })
  t.ok(BigInt(recv[0].id) > BigInt(sent[0].id), 'received after sent')

  const replay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'p1', body })
  t.equal(replay.status, 201)
  t.equal((await events(pool, s.business.accountId)).length, 1, 'a replay writes no event')

  const refused = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'p2', body: { ...body, amount: '500.00' } })
  t.equal(refused.status, 422)
  const atomic = await ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, {
    token: s.member.token,
    body: { atomic: true, items: [{ ...body, idempotencyKey: 'b1', amount: '1.00' }, { ...body, idempotencyKey: 'b2', amount: '999.00' }] },
  })
  t.equal(atomic.status, 422)
  t.equal((await events(pool, s.business.accountId)).length, 1, 'a refused payment and a failed atomic batch write no event')

  const partial = await ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, {
    token: s.member.token,
    body: { items: [{ ...body, idempotencyKey: 'c1', amount: '1.00', channel: 'app' }, { ...body, idempotencyKey: 'c2', amount: '999.00' }, { ...body, idempotencyKey: 'c3', amount: '2.00', channel: 'app', reference: undefined }] },
  })
  t.equal(partial.status, 200)
  const after = await events(pool, s.business.accountId)
  t.same(after.slice(1).map(e => [e.data.amount, e.data.fee, e.data.reference]), [['1.00', '0.02', 'coffee'], ['2.00', '0.04', null]],
    'a batch: one event per posted payment, in posting order, none for the refused one')

  // reversal: not a payment
  const rev = await ctx.call('POST', `/v1/transfers/${pay.body.id}/reversal`, { token: ctx.issuerToken, key: 'r1' })
  t.equal(rev.status, 201)
  t.equal((await events(pool, s.business.accountId)).length, 3, 'a reversal is not a payment event')

  // the log is append-only
  await t.rejects(pool.query('UPDATE event SET type = $1', ['payment.sent']), /never updated/)
  await t.rejects(pool.query('DELETE FROM event'), /never deleted/)
})

t.test('recordEvent: in the caller transaction, rolled back with it, account of the currency only', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const other = await scenario(ctx, { code: 'OTH' })
  const pool = ctx.app.pool
  const c = await pool.connect()
  t.teardown(() => c.release())

  await c.query('BEGIN')
  await recordEvent(c, { currencyId: (await ctx.app.services.currencies.resolve(s.code)).id, accountId: s.business.accountId, type: 'request.paid', data: { requestId: 'r-1' } })
  await c.query('ROLLBACK')
  t.same(await events(pool, s.business.accountId), [], 'rolled back with its transaction')

  await c.query('BEGIN')
  const e = await recordEvent(c, { currencyId: (await ctx.app.services.currencies.resolve(s.code)).id, accountId: s.business.accountId, type: 'request.expired', data: { requestId: 'r-2', amount: '3.50' } })
  await c.query('COMMIT')
  t.match(e, { id: /^\d+$/, createdAt: /^\d{4}-\d\d-\d\dT.*Z$/ })
  t.same((await events(pool, s.business.accountId)).map(x => [x.id, x.type, x.data]), [[e.id, 'request.expired', { requestId: 'r-2', amount: '3.50' }]])

  await t.rejects(recordEvent(pool, { currencyId: (await ctx.app.services.currencies.resolve(other.code)).id, accountId: s.business.accountId, type: 'request.paid', data: {} }), /not an account of currency/)
  await t.rejects(recordEvent(pool, { currencyId: (await ctx.app.services.currencies.resolve(s.code)).id, accountId: s.business.accountId, type: 'nope' as any, data: {} }), /unknown event type/)
  await t.rejects(recordEvent(pool, { currencyId: (await ctx.app.services.currencies.resolve(s.code)).id, accountId: s.business.accountId, type: 'request.paid', data: [] as any }), /object/)
})

t.test('NOTIFY circulate_events on commit only, with the currency id', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '50.00')
  const listener = new pg.Client({ connectionString: ctx.db.url })
  await listener.connect()
  t.teardown(() => listener.end())
  const got: string[] = []
  listener.on('notification', n => { if (n.channel === 'circulate_events') got.push(n.payload ?? '') })
  await listener.query('LISTEN circulate_events')

  const c = await ctx.app.pool.connect()
  t.teardown(() => c.release())
  await c.query('BEGIN')
  await recordEvent(c, { currencyId: (await ctx.app.services.currencies.resolve(s.code)).id, accountId: s.business.accountId, type: 'request.paid', data: {} })
  await c.query('ROLLBACK')
  const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'n1', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
  })
  t.equal(pay.status, 201)
  // a round trip on the listener's connection: notifications committed before it are delivered before its reply
  await listener.query('SELECT 1')
  t.same(got, [(await ctx.app.services.currencies.resolve(s.code)).id], 'one notification, for the committed payment only')
})

t.test('one account\'s event ids rise in commit order', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const m2 = await registerMember(ctx, s.code)
  await issue(ctx, s.code, m2.accountId, '50.00')
  const pool = ctx.app.pool
  const a = await pool.connect()
  const b = await pool.connect()
  t.teardown(() => { a.release(); b.release() })
  await a.query('BEGIN')
  const first = await recordEvent(a, { currencyId: (await ctx.app.services.currencies.resolve(s.code)).id, accountId: s.business.accountId, type: 'request.paid', data: { n: 1 } })
  await b.query('BEGIN')
  // b writes an event of the same account while a is still open: it waits for a's commit before it draws its id
  let bDone = false
  const second = recordEvent(b, { currencyId: (await ctx.app.services.currencies.resolve(s.code)).id, accountId: s.business.accountId, type: 'request.paid', data: { n: 2 } })
    .then(r => { bDone = true; return r })
  // and a payment to that account, from a third session, also waits
  const pay = ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: m2.token, key: 'o1', body: { fromAccount: m2.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
  })
  for (let i = 0; i < 100; i++) {
    const w = await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
    if (w.rows[0].n >= 1) break
    await new Promise(resolve => setImmediate(resolve))
  }
  t.equal(bDone, false, 'the second writer waits for the first to commit')
  await a.query('COMMIT')
  const two = await second
  await b.query('COMMIT')
  t.equal((await pay).status, 201)
  const ids = (await events(pool, s.business.accountId)).map(e => BigInt(e.id))
  t.equal(ids.length, 3)
  t.ok(BigInt(first.id) < BigInt(two.id), 'the later commit has the larger id')
  t.same(ids, [...ids].sort((x, y) => (x < y ? -1 : 1)))
})
