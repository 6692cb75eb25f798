import http from 'node:http'
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
  for (let i = 0; i < 100_000; i++) {
    if (app.callerShare().waiting === waiting) return
    await new Promise(resolve => setImmediate(resolve))
  }
  throw new Error(`never ${waiting} in line`)
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
