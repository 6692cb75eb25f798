import { randomUUID } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import pg from 'pg'
import t, { type Test } from 'tap'
import { sessionsWaitingOnLocks } from '../../support/postgres.js'
import { buildTestApp, issue, scenario } from '../helper.js'

// Every request of a logged-in caller takes one of its CALLS_PER_CALLER places (plugins/caller-share.ts); more wait
// in line up to CALLS_WAITING_PER_CALLER, one more is refused 429. The test holds a place by holding a row lock a
// payment needs, so it waits on conditions, never on the clock.

async function setup (t: Test) {
  const ctx = await buildTestApp(t, { CALLS_PER_CALLER: 1, CALLS_WAITING_PER_CALLER: 1 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const db = new pg.Client({ connectionString: ctx.db.url })
  await db.connect()
  const probe = new pg.Client({ connectionString: ctx.db.url })
  await probe.connect()
  t.teardown(async () => { await db.end(); await probe.end() })
  /** the member's payment, held at the database while the test holds the member's account row */
  const holdPlace = async () => {
    await db.query('BEGIN')
    await db.query('SELECT 1 FROM account WHERE id = $1 FOR UPDATE', [s.member.accountId])
    const paid = ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: s.member.token, key: 'held', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
    })
    await sessionsWaitingOnLocks(probe, 'circulate', 1)
    return { paid, release: async () => { await db.query('ROLLBACK') } }
  }
  return { ctx, s, holdPlace }
}
t.test('one request running and one waiting per caller: the next is refused 429 at once, other callers go on', async (t) => {
  const { ctx, s, holdPlace } = await setup(t)
  const held = await holdPlace()
  let waitingDone = false
  const waiting = ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token }).then((r) => { waitingDone = true; return r })
  // the same member, through its other token: one caller
  const again = await ctx.token(s.member.username, 'member-password')
  const refused = await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: again })
  t.equal(refused.status, 429, 'a third request of the member is refused')
  t.equal(refused.headers['retry-after'], '1')
  t.match(refused.body, { code: 'RATE_LIMITED', detail: /1 requests running and 1 waiting/ })
  const other = await ctx.call('GET', `/v1/accounts/${s.business.accountId}`, { token: s.business.token })
  t.equal(other.status, 200, 'another caller is not held by the member\'s requests')
  t.notOk(waitingDone, 'the member\'s second request is still in line behind its first')
  // a CSV statement has the read budget instead: it does not wait for the member's share
  const csv = await ctx.call('GET', `/v1/accounts/${s.member.accountId}/statement?format=csv`, { token: s.member.token })
  t.equal(csv.status, 200, 'a CSV statement is counted in the read budget, not the share')
  await held.release()
  t.equal((await held.paid).status, 201, 'the held payment is posted')
  t.equal((await waiting).status, 200, 'the waiting request ran after it')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })).status, 200, 'the places came back')
})

/** Until the service counts `waiting` requests in line (polls on the event loop's turns, bounded). */
async function inLine (app: { callerShare: () => { waiting: number } }, waiting: number): Promise<void> {
  await until(() => app.callerShare().waiting === waiting, `never ${waiting} in line`)
}

/** Until a condition on the service's state holds (polls on the event loop's turns and short timers, bounded). */
async function until (holds: () => boolean, never: string): Promise<void> {
  for (let i = 0, deadline = Date.now() + 10_000; Date.now() < deadline; i++) {
    if (holds()) return
    await new Promise(resolve => i < 1000 ? setImmediate(resolve) : setTimeout(resolve, 1))
  }
  throw new Error(never)
}

t.test('a request past the share is refused with its body unread; a client that leaves the line gives its place back', async (t) => {
  const { ctx, s, holdPlace } = await setup(t)
  const address = await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = new URL(address)
  const held = await holdPlace()
  // second in line: a client that will hang up
  const leaving = http.request({ port, method: 'GET', path: `/v1/accounts/${s.member.accountId}`, headers: { authorization: `Bearer ${s.member.token}` } })
  leaving.on('error', () => {})
  leaving.end()
  await inLine(ctx.app, 1)
  // a request declaring a 1 MB body and sending 10 bytes is answered at once: the service does not wait for the rest
  let posting!: http.ClientRequest
  const answer = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const r = posting = http.request({
      port, method: 'POST', path: `/v1/currencies/${s.code}/payments`,
      headers: { authorization: `Bearer ${s.member.token}`, 'content-type': 'application/json', 'content-length': '1000000', 'idempotency-key': 'unread' },
    }, (res) => { let b = ''; res.on('data', (c) => { b += String(c) }); res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: b }) }) })
    r.on('error', reject)
    r.write('{"amount":')
  })
  posting.destroy()
  t.equal(answer.status, 429, 'refused before its body arrived')
  t.match(JSON.parse(answer.body), { code: 'RATE_LIMITED' })
  leaving.destroy()
  await inLine(ctx.app, 0)
  const next = ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })
  await inLine(ctx.app, 1)
  t.pass('the place the hung-up client left is taken by the next request')
  await held.release()
  t.equal((await next).status, 200)
  t.equal((await held.paid).status, 201)
  t.same(ctx.app.callerShare(), { running: 0, waiting: 0 }, 'every place given back')
})

t.test('CALLS_PER_CALLER 0: no share', async (t) => {
  const ctx = await buildTestApp(t, { CALLS_PER_CALLER: 0 })
  const s = await scenario(ctx)
  const all = await Promise.all(Array.from({ length: 30 }, async () => await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })))
  t.same(new Set(all.map(r => r.status)), new Set([200]))
})

t.test('pipelined requests whose client hangs up give their places back', async (t) => {
  // On one connection, requests sent before the first is answered are answered in order; Node emits no 'close' on
  // a response still queued when the client goes, so the connection's own close must free its places.
  const ctx = await buildTestApp(t, { CALLS_PER_CALLER: 1, CALLS_WAITING_PER_CALLER: 4 })
  const s = await scenario(ctx)
  const address = await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const socket = net.connect(Number(new URL(address).port), '127.0.0.1')
  socket.on('error', () => {})
  await new Promise(resolve => socket.once('connect', resolve))
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.member.token}\r\n\r\n`
  // an event stream first (it never ends, so every answer behind it stays queued); once it is open, three reads
  const opened = new Promise(resolve => socket.once('data', resolve))
  socket.write(get(`/v1/accounts/${s.member.accountId}/events`))
  await opened
  socket.write([1, 2, 3].map(() => get(`/v1/accounts/${s.member.accountId}`)).join(''))
  // the first read has run and holds its place until its answer is sent, the other two wait behind it
  await until(() => ctx.app.callerShare().running === 1 && ctx.app.callerShare().waiting === 2, 'the reads never queued')
  socket.destroy()
  await until(() => ctx.app.callerShare().running === 0 && ctx.app.callerShare().waiting === 0, 'places still held after the client went')
  t.pass('every place given back')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })).status, 200, 'the member is served again')
})

t.test('a long-poll and an event stream take a place until they wait; while they wait they hold none', async (t) => {
  const { ctx, s, holdPlace } = await setup(t)
  const held = await holdPlace()
  // the member's share is full: the long-poll waits in line like any read, the next is refused, and so is a stream
  const polling = ctx.call('GET', `/v1/payment-requests/${randomUUID()}?waitSeconds=30`, { token: s.member.token })
  await inLine(ctx.app, 1)
  t.equal((await ctx.call('GET', `/v1/payment-requests/${randomUUID()}?waitSeconds=30`, { token: s.member.token })).status, 429, 'a second long-poll is refused')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}/events`, { token: s.member.token })).status, 429, 'so is an event stream')
  await held.release()
  t.equal((await held.paid).status, 201)
  t.equal((await polling).status, 404, 'the long-poll of no request answers at once when its turn comes')

  // a long-poll that waits gives its place back while it waits
  const asked = await ctx.call('POST', `/v1/currencies/${s.code}/payment-requests`, {
    token: s.business.token, key: 'ask-1', body: { toAccount: s.business.accountId, amount: '1.00' },
  })
  t.equal(asked.status, 201)
  const waiting = ctx.call('GET', `/v1/payment-requests/${asked.body.id as string}?waitSeconds=30`, { token: s.member.token })
  await until(() => ctx.app.services.requests.waiting() === 1, 'the long-poll never waited')
  t.same(ctx.app.callerShare(), { running: 0, waiting: 0 }, 'waiting, it holds no place')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })).status, 200, 'the member\'s other requests run meanwhile')
  t.equal((await ctx.call('POST', `/v1/payment-requests/${asked.body.id as string}/cancel`, { token: s.business.token })).status, 200)
  t.match((await waiting).body, { status: 'cancelled' }, 'the long-poll answers when the request changes')
  t.same(ctx.app.callerShare(), { running: 0, waiting: 0 })
})
