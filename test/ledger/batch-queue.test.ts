import http from 'node:http'
import pg from 'pg'
import t from 'tap'
import { balance, buildTestApp, issue, registerMember, scenario } from '../helper.js'

// The batch route's turns at the database (services/batch.service.ts): BATCH_CONCURRENCY batches post at once,
// BATCH_QUEUE_MAX more wait their turn, and one past that is refused at once with a 503 problem. The first batch is
// held at the database by a row lock the test takes, so the test waits on conditions, never on the clock.

/** Waits until `n` sessions of the service's pool are waiting on a lock (polls the server, bounded). */
async function ledgerWaiting (db: pg.Client, n: number): Promise<void> {
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (await waitingOnLocks(db) >= n) return
    await new Promise(resolve => setImmediate(resolve))
  }
  throw new Error(`${n} ledger sessions never waited on the lock`)
}

async function waitingOnLocks (db: pg.Client): Promise<number> {
  const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'circulate' AND wait_event_type = 'Lock'`)
  return r.rows[0].n
}

t.test('one batch at the database, one waiting, the next refused with 503; the waiting one posts after', async (t) => {
  const ctx = await buildTestApp(t, { BATCH_CONCURRENCY: 1, BATCH_QUEUE_MAX: 1, CURRENCY_SHARE_PERCENT: 100 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const db = new pg.Client({ connectionString: ctx.db.url })
  await db.connect()
  t.teardown(async () => await db.end())

  const batch = async (n: number) => await ctx.app.inject({
    method: 'POST', url: `/v1/currencies/${s.code}/transfers/batch`, headers: { authorization: `Bearer ${s.member.token}` },
    payload: { items: [{ idempotencyKey: `queued-${n}`, fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' }] },
  })

  await db.query('BEGIN')
  await db.query('SELECT 1 FROM account WHERE id = $1 FOR UPDATE', [s.member.accountId])
  const first = batch(1)
  await ledgerWaiting(db, 1)
  const [second, third] = [batch(2), batch(3)]
  // one of the two takes the only place in the queue; the other finds it full and is answered at once
  const shed = await Promise.race([second, third])
  t.equal(shed.statusCode, 503)
  t.match(shed.headers['content-type'], /^application\/problem\+json/)
  t.equal(shed.headers['retry-after'], '1')
  t.equal(shed.json().code, 'SERVICE_UNAVAILABLE')
  t.equal(await waitingOnLocks(db), 1, 'the waiting batch is not at the database: one session waits on the lock')
  await db.query('ROLLBACK')

  const answers = await Promise.all([first, second, third])
  t.same(answers.map(r => r.statusCode).sort(), [200, 200, 503], 'the first and the queued batch post; only the shed one does not')
  const posted = answers.filter(r => r.statusCode === 200).map(r => r.json().items.map((x: any) => x.status))
  t.same(posted, [[201], [201]])
  t.equal(await balance(ctx, s.member.accountId), '8.00', 'exactly two payments of 1.00 left the member')
})

t.test('one participant has at most BATCH_PER_CALLER batches running or waiting: more answer 429, and the queue keeps room for others', async (t) => {
  const ctx = await buildTestApp(t, { BATCH_CONCURRENCY: 1, BATCH_QUEUE_MAX: 3, BATCH_PER_CALLER: 2, CURRENCY_SHARE_PERCENT: 100 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  await issue(ctx, s.code, s.business.accountId, '10.00')
  const db = new pg.Client({ connectionString: ctx.db.url })
  await db.connect()
  t.teardown(async () => await db.end())
  const batch = async (who: { token: string, accountId: string }, to: string, n: string) => await ctx.app.inject({
    method: 'POST', url: `/v1/currencies/${s.code}/transfers/batch`, headers: { authorization: `Bearer ${who.token}` },
    payload: { items: [{ idempotencyKey: `share-${n}`, fromAccount: who.accountId, toAccount: to, amount: '1.00', channel: 'app' }] },
  })

  await db.query('BEGIN')
  await db.query('SELECT 1 FROM account WHERE id = $1 FOR UPDATE', [s.member.accountId])
  const first = batch(s.member, s.business.accountId, 'm1')
  await ledgerWaiting(db, 1)
  const second = batch(s.member, s.business.accountId, 'm2')
  // the member's third and fourth: its two places are taken (one at the database, one waiting)
  for (const n of ['m3', 'm4']) {
    const r = await batch(s.member, s.business.accountId, n)
    t.equal(r.statusCode, 429, `${n}: past the member's share`)
    t.equal(r.json().code, 'RATE_LIMITED')
    t.equal(r.headers['retry-after'], '1')
  }
  // the business's batch still finds a place in the queue
  const theirs = batch(s.business, s.member.accountId, 'b1')
  await db.query('ROLLBACK')
  const answers = await Promise.all([first, second, theirs])
  t.same(answers.map(r => r.statusCode), [200, 200, 200])
  t.same(answers.map(r => r.json().items[0].status), [201, 201, 201])
  t.equal((await batch(s.member, s.business.accountId, 'm5')).statusCode, 200, 'answered batches give the member its places back')
})

/** Polls a condition of the service (bounded), for what happens after a hang-up the test cannot await. */
async function until (what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; !ok(); i++) {
    if (i > 1000) throw new Error(`never: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

t.test('a caller past its share is refused before its body is read, and a batch holds its place until its work is over', { timeout: 60_000 }, async (t) => {
  const ctx = await buildTestApp(t, { BATCH_CONCURRENCY: 2, BATCH_QUEUE_MAX: 4, BATCH_PER_CALLER: 1, CURRENCY_SHARE_PERCENT: 100 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const other = await registerMember(ctx, s.code)
  await issue(ctx, s.code, other.accountId, '10.00')
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const port = (ctx.app.server.address() as { port: number }).port
  const db = new pg.Client({ connectionString: ctx.db.url })
  await db.connect()
  t.teardown(async () => { await db.end().catch(() => {}) })
  const { batches } = ctx.app.services
  const url = `/v1/currencies/${s.code}/transfers/batch`
  const body = (key: string, from: string) => JSON.stringify({ items: [{ idempotencyKey: key, fromAccount: from, toAccount: s.business.accountId, amount: '1.00', channel: 'app' }] })
  /** A batch over a real connection; `sent` bytes of the body are written and, unless all, the rest never is. */
  const raw = (token: string, payload: string, declared = Buffer.byteLength(payload)) => {
    const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: url, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': declared } })
    const answer = new Promise<{ status: number, body: string }>((resolve, reject) => {
      req.on('response', (res) => { let b = ''; res.on('data', (c: Buffer) => { b += c.toString() }); res.on('end', () => { resolve({ status: res.statusCode!, body: b }) }) })
      req.on('error', reject)
    })
    req.write(payload)
    if (declared === Buffer.byteLength(payload)) req.end()
    return { req, answer }
  }

  // the member's one batch, held at the database by a row lock, and its client hangs up
  await db.query('BEGIN')
  await db.query('SELECT 1 FROM account WHERE id = $1 FOR UPDATE', [s.member.accountId])
  const held = raw(s.member.token, body('held-1', s.member.accountId))
  held.answer.catch(() => {})
  await ledgerWaiting(db, 1)
  held.req.destroy()
  await until('the server saw the hang-up', () => held.req.socket == null || held.req.socket.destroyed)
  t.equal(batches.admitted(), 1, 'the batch still runs after its client hung up, and holds the member\'s place')

  // the member's next batch declares a megabyte and sends 40 bytes: it is answered at once, its body unread
  const next = raw(s.member.token, '{"items":[{"idempotencyKey":"unread-1",', 1_000_000)
  const refused = await next.answer
  t.equal(refused.status, 429, 'past its share: refused before the body came')
  t.equal(JSON.parse(refused.body).code, 'RATE_LIMITED')
  next.req.destroy()

  // another member's batch whose body never arrives: its place is given back when its client goes
  const stalled = raw(other.token, '{"items":[', 1_000_000)
  stalled.answer.catch(() => {})
  await until('the stalled batch took its place', () => batches.admitted() === 2)
  stalled.req.destroy()
  await until('the stalled batch gave its place back', () => batches.admitted() === 1)

  await db.query('ROLLBACK')
  await until('the held batch finished and gave its place back', () => batches.admitted() === 0)
  t.equal(await balance(ctx, s.member.accountId), '9.00', 'the batch whose client hung up was posted')
  t.equal((await raw(other.token, body('other-1', other.accountId)).answer).status, 200, 'the member whose body never came may batch')
  const again = raw(s.member.token, body('held-2', s.member.accountId))
  t.equal((await again.answer).status, 200, 'the member may batch again')
})
