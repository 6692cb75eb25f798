import http from 'node:http'
import net from 'node:net'
import pg from 'pg'
import t, { type Test } from 'tap'
import { buildTestApp, issue, registerMember, scenario, type TestContext } from '../helper.js'
import { openSse } from './sse.js'

// GET /v1/accounts/{id}/events over real HTTP with real tokens.

/** Holds the event table locked in a transaction of the test's own, so a stream's read of its last event id waits. */
async function lockEvents (t: Test, ctx: TestContext): Promise<pg.Client> {
  const locker = new pg.Client({ connectionString: ctx.db.url })
  await locker.connect()
  t.teardown(async () => { await locker.end() })
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE event IN ACCESS EXCLUSIVE MODE')
  return locker
}

/** Until a stream waits at that lock for its last event id (polled on the app's pool: pg_stat_activity is read once
 *  per transaction, and the locker's is still open). */
async function streamWaitsOnLock (ctx: TestContext): Promise<void> {
  for (const deadline = Date.now() + 10_000; ;) {
    const waiting = await ctx.app.pool.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%max(id)%FROM event%'`)
    if (waiting.rows.length > 0) return
    if (Date.now() > deadline) throw new Error('the stream never waited for its last event id')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

async function listen (ctx: TestContext): Promise<string> {
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const a = ctx.app.server.address()
  if (a == null || typeof a === 'string') throw new Error('no address')
  return `http://127.0.0.1:${a.port}`
}

t.test('payments reach the stream; Last-Event-ID resumes after a disconnect with no gap and no duplicate', async (t) => {
  const ctx = await buildTestApp(t, { EVENTS_HEARTBEAT_MS: 50 })
  const base = await listen(ctx)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  let k = 0
  const pay = async (amount: string) => {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: s.member.token, key: `p${k++}`, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount, channel: 'app', reference: `r${k}` },
    })
    t.equal(r.status, 201)
    return r.body
  }
  await pay('1.00') // before the stream: not sent (a stream without Last-Event-ID starts with the next event)

  const url = `/v1/accounts/${s.business.accountId}/events`
  const a = await openSse(base, url, { token: s.business.token })
  t.equal(a.status, 200)
  t.match(a.headers['content-type'], /^text\/event-stream/)
  t.equal(a.headers['cache-control'], 'no-store')
  const p2 = await pay('2.00')
  const [m] = await a.waitFor(1)
  t.equal(m.event, 'payment.received')
  t.same(m.data, {
    id: m.id, type: 'payment.received', accountId: s.business.accountId, createdAt: p2.createdAt,
    data: { transferId: p2.id, currency: s.code, fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '2.00', fee: '0.04', channel: 'app', reference: 'r2', createdAt: p2.createdAt },
  })
  await a.waitForComment(/heartbeat/)
  t.pass('heartbeats on an idle stream')
  a.close()
  await a.ended

  // while disconnected: three payments
  for (const x of ['3.00', '4.00', '5.00']) await pay(x)
  const b = await openSse(base, url, { token: s.business.token, lastEventId: m.id! })
  const got = await b.waitFor(3)
  t.same(got.map(x => x.data.data.amount), ['3.00', '4.00', '5.00'], 'exactly the events after Last-Event-ID, in order')
  t.ok(got.every((x, i) => BigInt(x.id!) > BigInt(i === 0 ? m.id! : got[i - 1].id!)), 'ids rise')
  await pay('6.00')
  const live = await b.waitFor(4)
  t.equal(live[3].data.data.amount, '6.00', 'then live again')
  // a batch of many payments at once: every one, once, in order
  const items = Array.from({ length: 30 }, (_, i) => ({ idempotencyKey: `bt${i}`, fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '0.10', channel: 'app' }))
  t.equal((await ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, { token: s.member.token, body: { items } })).status, 200)
  const all = await b.waitFor(34)
  t.equal(new Set(all.map(x => x.id)).size, 34, 'no duplicates among them')
  // and none after them: the next message is the next payment (a marker, instead of waiting to see nothing come)
  await pay('0.01')
  const marked = await b.waitFor(35)
  t.equal(marked[34].data.data.amount, '0.01', 'no duplicate came between the batch and the next payment')
  t.equal(b.messages.length, 35)
  b.close()

  // the payer's stream from the start (?after=0): every payment.sent, nothing of the business's
  const c = await openSse(base, `/v1/accounts/${s.member.accountId}/events?after=0`, { token: s.member.token })
  const sent = await c.waitFor(37)
  t.same(sent.map(x => [x.event, x.data.accountId]), Array(37).fill(['payment.sent', s.member.accountId]), 'all 37 payments, as sent')
  c.close()
})

t.test('an event committed through one instance reaches a stream on another; a lost listener catches up by id', async (t) => {
  // A delivers no webhooks, so it does not listen: the one listening connection is B's
  const a = await buildTestApp(t, { WEBHOOK_DELIVERY: '0' })
  const s = await scenario(a)
  await issue(a, s.code, s.member.accountId, '100.00')
  const b = await buildTestApp(t, {}, { db: a.db, keys: a.keys })
  const baseB = await listen(b)
  const stream = await openSse(baseB, `/v1/accounts/${s.business.accountId}/events`, { token: s.business.token })
  t.equal(stream.status, 200)
  let k = 0
  const pay = async (amount: string) => {
    const r = await a.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: s.member.token, key: `x${k++}`, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount, channel: 'app' },
    })
    t.equal(r.status, 201)
  }
  await pay('1.00')
  t.equal((await stream.waitFor(1))[0].data.data.amount, '1.00', 'posted on A, streamed by B')

  // B's listening connection is killed; payments commit while B is deaf; B reconnects and reads them by id
  const killed = await a.app.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'circulate-events'`)
  t.equal(killed.rowCount, 1, 'one listening connection (B\'s; A has no stream, so it listens to nothing)')
  await pay('2.00')
  await pay('3.00')
  const got = await stream.waitFor(3, 10_000)
  t.same(got.map(x => x.data.data.amount), ['1.00', '2.00', '3.00'])
  t.ok(b.app.events.hub.isListening, 'listening again')
  stream.close()
})

t.test('who may open a stream', async (t) => {
  const ctx = await buildTestApp(t)
  const base = await listen(ctx)
  const s = await scenario(ctx)
  const other = await registerMember(ctx, s.code)
  const o = await scenario(ctx, { code: 'OTH' })
  void o
  const staff = async (code: string, kind: 'issuers' | 'researchers') => {
    const username = `${kind}-${Math.random().toString(36).slice(2)}`
    const r = await ctx.call('POST', `/v1/currencies/${code}/${kind}`, { token: ctx.issuerToken, body: { name: 'Staff', username, password: 'staff-password' } })
    t.equal(r.status, 201)
    return await ctx.token(username, 'staff-password')
  }
  const keyWith = async (scopes: string[]) => {
    const k = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: `k-${scopes.join('-')}`, scopes } })
    return (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: k.body.key } })).body.accessToken as string
  }
  const url = `/v1/accounts/${s.business.accountId}/events`
  const cases: Array<[string, string | null, number, string | null]> = [
    ['anonymous', null, 401, 'UNAUTHENTICATED'],
    ['another member', other.token, 404, 'ACCOUNT_NOT_FOUND'],
    ['the payer member', s.member.token, 404, 'ACCOUNT_NOT_FOUND'],
    ['another currency\'s issuer', await staff('OTH', 'issuers'), 404, 'ACCOUNT_NOT_FOUND'],
    ['a researcher of the currency', await staff(s.code, 'researchers'), 403, 'FORBIDDEN'],
    ['an API key without statements:read', await keyWith(['payments:write', 'accounts:read']), 403, 'INSUFFICIENT_SCOPE'],
    ['the owner', s.business.token, 200, null],
    ['the owner\'s API key with statements:read', await keyWith(['statements:read']), 200, null],
    ['the currency\'s issuer', await staff(s.code, 'issuers'), 200, null],
  ]
  for (const [who, token, status, code] of cases) {
    const r = await openSse(base, url, { token })
    t.equal(r.status, status, who)
    if (status !== 200) {
      await r.ended
      t.match(r.headers['content-type'], /^application\/problem\+json/, `${who}: a problem`)
      t.equal(JSON.parse(r.body).code, code, `${who}: ${code}`)
    }
    r.close()
  }
  // bad resume points are refused, not streamed
  for (const bad of ['abc', '-1', '99999999999999999999', '1.5']) {
    const r = await ctx.call('GET', url, { token: s.business.token, headers: { 'last-event-id': bad } })
    t.equal(r.status, 400, `Last-Event-ID ${bad}`)
  }
  t.equal((await ctx.call('GET', `${url}?after=x`, { token: s.business.token })).status, 400)
  t.equal((await ctx.call('GET', '/v1/accounts/not-a-uuid/events', { token: s.business.token })).status, 400)
})

t.test('streams per caller are limited', async (t) => {
  const ctx = await buildTestApp(t, { EVENTS_STREAMS_PER_CALLER: 2 })
  const base = await listen(ctx)
  const s = await scenario(ctx)
  const url = `/v1/accounts/${s.business.accountId}/events`
  const one = await openSse(base, url, { token: s.business.token })
  const two = await openSse(base, url, { token: s.business.token })
  const three = await openSse(base, url, { token: s.business.token })
  t.same([one.status, two.status, three.status], [200, 200, 429])
  one.close()
  await one.ended
  // the server notices the hang-up on its own schedule: wait for that (bounded), not a guessed time
  for (const deadline = Date.now() + 10_000; ctx.app.events.streams.size > 1;) {
    if (Date.now() > deadline) throw new Error(`the closed stream was never released (${ctx.app.events.streams.size} open)`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  const four = await openSse(base, url, { token: s.business.token })
  t.equal(four.status, 200, 'a closed stream frees its place')
  two.close(); four.close()
})

t.test('streams asked for all at once: one caller still gets its share only, and another caller its place', async (t) => {
  const ctx = await buildTestApp(t, { EVENTS_STREAMS_PER_CALLER: 2, EVENTS_MAX_STREAMS: 3, CURRENCY_SHARE_PERCENT: 100 })
  const s = await scenario(ctx)
  const open = async (token: string, accountId: string) => await ctx.app.inject({
    method: 'GET', url: `/v1/accounts/${accountId}/events?maxSeconds=1`, headers: { authorization: `Bearer ${token}` },
  })
  // twenty at once: every one is checked before any has awaited its listener or its last event id
  const burst = Promise.all(Array.from({ length: 20 }, async () => await open(s.member.token, s.member.accountId)))
  for (const deadline = Date.now() + 10_000; ctx.app.events.streams.size < 2;) {
    if (Date.now() > deadline) throw new Error('the burst\'s streams never opened')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  const other = await open(s.business.token, s.business.accountId)
  const statuses = (await burst).map(r => r.statusCode)
  t.equal(statuses.filter(x => x === 200).length, 2, 'two streams for the caller')
  t.equal(statuses.filter(x => x === 429).length, 18, 'the rest refused as the caller\'s, not the instance\'s')
  t.equal(other.statusCode, 200, 'another caller found its place')
  t.equal(ctx.app.events.streams.size, 0, 'every stream released when it ended')
  t.equal(ctx.app.events.perCaller.size, 0)
})

t.test('a caller that hangs up while its stream is being opened gives its place back', async (t) => {
  const ctx = await buildTestApp(t, { EVENTS_STREAMS_PER_CALLER: 1, EVENTS_MAX_STREAMS: 1, CURRENCY_SHARE_PERCENT: 100 })
  const base = await listen(ctx)
  const s = await scenario(ctx)
  // the stream's last event id waits on a lock the test holds, so the hang-up lands while the route awaits it
  const locker = await lockEvents(t, ctx)
  const req = http.get(new URL(`/v1/accounts/${s.member.accountId}/events`, base), { headers: { authorization: `Bearer ${s.member.token}` } })
  req.on('error', () => {})
  await streamWaitsOnLock(ctx)
  t.equal(ctx.app.events.streams.size, 1, 'the place is taken while the stream opens')
  req.destroy()
  await new Promise(resolve => req.once('close', resolve))
  await locker.query('COMMIT')
  for (const deadline = Date.now() + 10_000; ctx.app.events.streams.size > 0 || ctx.app.events.perCaller.size > 0;) {
    if (Date.now() > deadline) throw new Error(`the hung-up stream kept its place (${ctx.app.events.streams.size} open)`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  const again = await openSse(base, `/v1/accounts/${s.member.accountId}/events`, { token: s.member.token })
  t.equal(again.status, 200, 'the caller opens a stream again, on an instance that holds one')
  again.close()
})

t.test('a stream ends when its login is suspended or its API key revoked, before the next event', async (t) => {
  const ctx = await buildTestApp(t)
  const base = await listen(ctx)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '20.00')
  const url = `/v1/accounts/${s.business.accountId}/events`
  const k = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['statements:read'] } })
  const keyToken = (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: k.body.key } })).body.accessToken as string
  const pay = async (key: string, amount: string) => {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: s.member.token, key, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount, channel: 'app' },
    })
    t.equal(r.status, 201)
  }
  const byLogin = await openSse(base, url, { token: s.business.token })
  const byKey = await openSse(base, url, { token: keyToken })
  t.same([byLogin.status, byKey.status], [200, 200])
  await pay('p1', '1.00')
  await byLogin.waitFor(1)
  await byKey.waitFor(1)

  // the key revoked: its stream ends; the login's goes on
  t.equal((await ctx.call('DELETE', `/v1/api-keys/${k.body.id}`, { token: s.business.token })).status, 204)
  await pay('p2', '2.00')
  await byKey.ended
  await byLogin.waitFor(2)
  t.equal(byKey.messages.length, 1, 'the revoked key\'s stream got no event after the revocation')

  // the business suspended: the login's stream ends too, before the next payment's event
  t.equal((await ctx.call('PUT', `/v1/participants/${s.business.id}/suspension`, { token: ctx.issuerToken, body: { reason: 'investigating' } })).status, 200)
  await pay('p3', '3.00')
  await byLogin.ended
  t.equal(byLogin.messages.length, 2, 'the suspended login\'s stream got no event after the suspension')
  // and their places are free again
  for (const deadline = Date.now() + 10_000; ctx.app.events.streams.size > 0;) {
    if (Date.now() > deadline) throw new Error(`the ended streams were never released (${ctx.app.events.streams.size} open)`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
})

t.test('streams pipelined on one connection give their slots back when the client hangs up, and when the instance closes', async (t) => {
  // Node emits no 'close' on an answer queued behind another on the same connection, so the stream also watches
  // the connection; and ending a queued stream from this side (its time up, its right gone, shutdown) frees its
  // slot at once instead of waiting for a 'close' that would come only when the client goes.
  const ctx = await buildTestApp(t, { EVENTS_HEARTBEAT_MS: 50 })
  const base = await listen(ctx)
  const s = await scenario(ctx)
  const get = `GET /v1/accounts/${s.member.accountId}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.member.token}\r\n\r\n`
  const connect = async () => {
    const socket = net.connect(Number(new URL(base).port), '127.0.0.1')
    socket.on('error', () => {})
    socket.on('data', () => {})
    await new Promise(resolve => socket.once('connect', resolve))
    socket.write(get.repeat(3))
    return socket
  }
  const until = async (holds: () => boolean, never: string) => {
    for (const deadline = Date.now() + 10_000; !holds();) {
      if (Date.now() > deadline) throw new Error(never)
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  }
  const socket = await connect()
  await until(() => ctx.app.events.streams.size === 3 && ctx.app.callerShare().running === 0, `never 3 streams open (${ctx.app.events.streams.size})`)
  socket.destroy()
  await until(() => ctx.app.events.streams.size === 0 && ctx.app.events.perCaller.size === 0, `the hung-up streams kept their slots (${ctx.app.events.streams.size})`)
  t.pass('every slot given back after the hang-up')

  const open = await connect()
  t.teardown(() => { open.destroy() })
  // counted, and open: each holds a place in its caller's share until it is
  await until(() => ctx.app.events.streams.size === 3 && ctx.app.callerShare().running === 0, 'never 3 streams open again')
  // closing the instance ends them all, the two queued ones too (their heartbeats would otherwise keep it running)
  await ctx.app.close()
  t.equal(ctx.app.events.streams.size, 0, 'no stream left counted after close')
  t.equal(ctx.app.events.perCaller.size, 0)
})

t.test('a stream still opening when the instance closes is refused and gives its slot back', async (t) => {
  const ctx = await buildTestApp(t)
  const base = await listen(ctx)
  const s = await scenario(ctx)
  // the stream's last event id waits on a lock the test holds, so the close lands while the route awaits it
  const locker = await lockEvents(t, ctx)
  const answered = new Promise<number>((resolve, reject) => {
    const req = http.get(new URL(`/v1/accounts/${s.member.accountId}/events`, base), { headers: { authorization: `Bearer ${s.member.token}` } },
      (res) => { resolve(res.statusCode ?? 0); res.resume() })
    req.on('error', reject)
  })
  await streamWaitsOnLock(ctx)
  const closed = ctx.app.close()
  // the close has begun (its preClose hooks run before it waits for open requests); the stream's read goes on
  await new Promise(resolve => setImmediate(resolve))
  await locker.query('COMMIT')
  t.equal(await answered, 503, 'refused: the instance is shutting down')
  await closed
  t.equal(ctx.app.events.perCaller.size, 0, 'its slot given back')
})
