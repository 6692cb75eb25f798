import { randomUUID } from 'node:crypto'
import pg from 'pg'
import t, { type Test } from 'tap'
import { firstDue, nextDue, dueDates } from '../../src/domain/schedule.js'
import { CLAIM_SQL, SIMULATION_LOCK_CLASS, standingOrderScheduler } from '../../src/scheduler/standing-orders.js'
import { MAX_ACTIVE_PER_ACCOUNT } from '../../src/services/standing-order.service.js'
import { buildTestApp, issue, registerBusiness, registerMember, scenario, type TestContext } from '../helper.js'
import { assertInvariants, invariantViolations } from '../../support/invariants.js'

// Standing orders through HTTP with real tokens on real PostgreSQL; the scheduler runs on an injected clock, so
// nothing here waits for the wall clock. 2027-03-01 is a Monday.
const MONDAY = '2027-03-01'
const at = (date: string, time = '09:00:00') => new Date(`${date}T${time}Z`)
const day = (d: string, n: number) => new Date(Date.parse(`${d}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10)

async function staff (ctx: TestContext, code: string, role: 'issuers' | 'researchers') {
  const username = `${role}-${Math.random().toString(36).slice(2, 8)}`
  await ctx.call('POST', `/v1/currencies/${code}/${role}`, { token: ctx.issuerToken, body: { name: 'Staff', username, password: 'staff-password-1' } })
  return await ctx.token(username, 'staff-password-1')
}

function dbPool (t: Test, ctx: TestContext) {
  const pool = new pg.Pool({ connectionString: ctx.db.url, max: 2 })
  pool.on('error', () => {})
  t.teardown(async () => { await pool.end() })
  return pool
}

t.test('due dates: weekly on a weekday, monthly on a day (a short month\'s last day), within start and end', async (t) => {
  t.equal(firstDue({ every: 'week', day: 1 }, MONDAY), MONDAY, 'a Monday order starting on a Monday is due that day')
  t.equal(firstDue({ every: 'week', day: 5 }, MONDAY), '2027-03-05')
  t.equal(firstDue({ every: 'week', day: 1 }, '2027-03-02'), '2027-03-08')
  t.equal(firstDue({ every: 'month', day: 31 }, '2027-02-10'), '2027-02-28')
  t.equal(firstDue({ every: 'month', day: 5 }, '2027-02-10'), '2027-03-05')
  t.equal(nextDue({ every: 'month', day: 31 }, '2027-02-28'), '2027-03-31', 'back to the 31st after February')
  t.equal(nextDue({ every: 'month', day: 30 }, '2028-01-30'), '2028-02-29', 'a leap year')
  t.same(dueDates({ every: 'week', day: 1 }, MONDAY, '2027-03-20', null), { dates: [MONDAY, '2027-03-08', '2027-03-15'], next: '2027-03-22' })
  t.same(dueDates({ every: 'week', day: 1 }, MONDAY, '2027-03-20', '2027-03-08'), { dates: [MONDAY, '2027-03-08'], next: null })
  t.same(dueDates({ every: 'month', day: 1 }, '2027-01-01', '2027-12-31', null, 3), { dates: ['2027-01-01', '2027-02-01', '2027-03-01'], next: '2027-04-01' }, 'catch-up in portions')
})

t.test('standing orders: who may set up, read and cancel them; bad input', async (t) => {
  let now = at(MONDAY)
  const ctx = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 }, { clock: () => now })
  const s = await scenario(ctx)
  const other = await scenario(ctx, { code: 'OTH' })
  const stranger = await registerMember(ctx, s.code)
  const researcher = await staff(ctx, s.code, 'researchers')
  const otherDesk = await staff(ctx, 'OTH', 'issuers')
  const url = `/v1/accounts/${s.member.accountId}/standing-orders`
  const body = { toAccount: s.business.accountId, amount: '12.50', reference: 'rent', schedule: { every: 'week', day: 1 }, startsOn: MONDAY }

  t.equal((await ctx.call('POST', url, { key: randomUUID(), body })).status, 401, 'anonymous')
  t.equal((await ctx.call('POST', url, { key: randomUUID(), token: stranger.token, body })).status, 404, 'another member: not found')
  t.equal((await ctx.call('POST', url, { key: randomUUID(), token: s.business.token, body })).status, 404, 'the payee: not found')
  t.equal((await ctx.call('POST', url, { key: randomUUID(), token: researcher, body })).status, 403, 'a researcher')
  t.equal((await ctx.call('POST', url, { key: randomUUID(), token: otherDesk, body })).status, 404, 'another currency\'s issuer: not found')
  const mine = await ctx.call('POST', url, { key: randomUUID(), token: s.member.token, body })
  t.equal(mine.status, 201, mine.text)
  t.match(mine.body, { currency: s.code, fromAccount: s.member.accountId, amount: '12.50', schedule: { every: 'week', day: 1 }, startsOn: MONDAY, endsOn: null, nextDue: MONDAY, status: 'active' })
  const byIssuer = await ctx.call('POST', url, { key: randomUUID(), token: ctx.issuerToken, body: { ...body, schedule: { every: 'month', day: 31 }, startsOn: '2027-04-02', endsOn: '2027-12-31', reference: 'council tax' } })
  t.equal(byIssuer.status, 201, byIssuer.text)
  t.equal(byIssuer.body.nextDue, '2027-04-30', 'the 31st falls on April\'s last day')

  const bad = async (b: Record<string, unknown>) => await ctx.call('POST', url, { key: randomUUID(), token: s.member.token, body: { ...body, ...b } })
  t.equal((await bad({ startsOn: '2027-02-28' })).status, 422, 'starting in the past')
  t.equal((await bad({ startsOn: '2027-02-30' })).status, 422, 'not a date')
  t.equal((await bad({ schedule: { every: 'week', day: 8 } })).status, 422, 'no 8th weekday')
  t.equal((await bad({ schedule: { every: 'fortnight', day: 1 } })).status, 422)
  t.equal((await bad({ schedule: { every: 'month', day: 0 } })).status, 422)
  t.equal((await bad({ endsOn: '2027-02-01' })).status, 422, 'ending before it starts')
  t.equal((await bad({ startsOn: '2027-03-02', endsOn: '2027-03-07' })).status, 422, 'no Monday between start and end')
  t.equal((await bad({ amount: '0' })).body.code, 'INVALID_AMOUNT')
  t.equal((await bad({ amount: '1.001' })).body.code, 'INVALID_AMOUNT')
  t.equal((await bad({ toAccount: s.member.accountId })).body.code, 'SAME_ACCOUNT')
  t.equal((await bad({ toAccount: other.business.accountId })).status, 404, 'a payee of another currency is not found')
  t.equal((await bad({ toAccount: s.currency.systemAccounts.fees })).status, 404, 'a system account is no payee')
  t.equal((await bad({ reference: '' })).status, 422)
  t.equal((await bad({ extra: true })).status, 422)
  t.equal((await ctx.call('POST', `/v1/accounts/${s.currency.systemAccounts.paper}/standing-orders`, { key: randomUUID(), token: ctx.issuerToken, body })).status, 404, 'no system account pays one')

  // lists: the owner and issuers, cursor-paginated
  for (let i = 0; i < 3; i++) await ctx.call('POST', url, { key: randomUUID(), token: s.member.token, body: { ...body, reference: `extra ${i}` } })
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const r: any = await ctx.call('GET', `${url}?limit=2${cursor != null ? `&cursor=${cursor}` : ''}`, { token: s.member.token })
    t.equal(r.status, 200)
    seen.push(...r.body.items.map((o: any) => o.id))
    cursor = r.body.nextCursor
  } while (cursor != null)
  t.equal(seen.length, 5, 'every order once across pages')
  t.equal(new Set(seen).size, 5)
  t.equal((await ctx.call('GET', url, { token: ctx.issuerToken })).body.items.length, 5)
  t.equal((await ctx.call('GET', url, { token: stranger.token })).status, 404)
  t.equal((await ctx.call('GET', url, { token: s.business.token })).status, 404)
  t.equal((await ctx.call('GET', `${url}?cursor=garbage`, { token: s.member.token })).status, 400)
  t.equal((await ctx.call('GET', `${url}/${mine.body.id}`, { token: s.member.token })).body.id, mine.body.id)
  t.equal((await ctx.call('GET', `/v1/accounts/${stranger.accountId}/standing-orders/${mine.body.id}`, { token: stranger.token })).status, 404, 'not through another account')
  t.equal((await ctx.call('GET', `/v1/standing-orders/${mine.body.id}/occurrences`, { token: stranger.token })).status, 404)
  t.equal((await ctx.call('GET', `/v1/standing-orders/${mine.body.id}/occurrences`, { token: researcher })).status, 403)
  t.equal((await ctx.call('GET', `/v1/standing-orders/${mine.body.id}/occurrences`, { token: otherDesk })).status, 404)
  t.equal((await ctx.call('GET', '/v1/standing-orders/018f0000-0000-7000-8000-000000000000/occurrences', { token: ctx.issuerToken })).status, 404)

  // cancelling: not by strangers; the owner's cancel stops its payments
  t.equal((await ctx.call('DELETE', `${url}/${mine.body.id}`, { token: stranger.token })).status, 404)
  t.equal((await ctx.call('DELETE', `/v1/accounts/${stranger.accountId}/standing-orders/${mine.body.id}`, { token: stranger.token })).status, 404)
  const cancelled = await ctx.call('DELETE', `${url}/${mine.body.id}`, { token: s.member.token })
  t.match(cancelled.body, { status: 'cancelled', nextDue: null })
  t.equal((await ctx.call('DELETE', `${url}/${mine.body.id}`, { token: s.member.token })).body.status, 'cancelled', 'cancelling again answers the same')
  t.equal((await ctx.call('DELETE', `${url}/${byIssuer.body.id}`, { token: ctx.issuerToken })).status, 200)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const summary = await ctx.app.scheduler.tick()
  t.equal(summary.paid, 3, 'only the three orders still active are paid')
  t.equal((await ctx.call('GET', `/v1/standing-orders/${mine.body.id}/occurrences`, { token: s.member.token })).body.items.length, 0, 'a cancelled order has no occurrence')
  const audit = await ctx.call('GET', `/v1/currencies/${s.code}/audit?limit=200`, { token: ctx.issuerToken })
  const actions = audit.body.items.map((a: any) => a.action)
  t.ok(actions.includes('standing_order.create') && actions.includes('standing_order.cancel'), 'the issuer\'s create and cancel are audited')
  now = at(day(MONDAY, 1))
})

t.test('creating an order takes an Idempotency-Key: a retry finds the first order, another body is refused', async (t) => {
  let now = at(MONDAY)
  const ctx = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 }, { clock: () => now })
  const s = await scenario(ctx)
  const pool = dbPool(t, ctx)
  const url = `/v1/accounts/${s.member.accountId}/standing-orders`
  const body = { toAccount: s.business.accountId, amount: '7.00', reference: 'veg box', schedule: { every: 'week', day: 1 }, startsOn: MONDAY }
  const orders = async () => Number((await pool.query('SELECT count(*) AS n FROM standing_order WHERE from_account_id = $1', [s.member.accountId])).rows[0].n)
  const audits = async () => Number((await pool.query(`SELECT count(*) AS n FROM audit_event WHERE action = 'standing_order.create'`)).rows[0].n)

  const none = await ctx.call('POST', url, { token: s.member.token, body })
  t.same([none.status, none.body.code], [400, 'IDEMPOTENCY_KEY_MISSING'], none.text)
  t.equal(await orders(), 0, 'a create without a key makes nothing')

  const first = await ctx.call('POST', url, { token: s.member.token, key: 'veg', body })
  t.equal(first.status, 201, first.text)
  t.equal(first.headers['idempotent-replayed'], 'false')
  const again = await ctx.call('POST', url, { token: s.member.token, key: 'veg', body: { schedule: body.schedule, startsOn: MONDAY, reference: 'veg box', amount: '7.00', toAccount: s.business.accountId } })
  t.same([again.status, again.headers['idempotent-replayed'], again.body.id], [201, 'true', first.body.id], 'the same body, its keys in another order, replays')
  const caps = await ctx.call('POST', url.toUpperCase().replace('/V1/ACCOUNTS/', '/v1/accounts/').replace('/STANDING-ORDERS', '/standing-orders'), {
    token: s.member.token, key: 'veg', body: { ...body, toAccount: s.business.accountId.toUpperCase() },
  })
  t.same([caps.status, caps.body.id], [201, first.body.id], 'ids in capitals are the same request')
  t.equal(await orders(), 1, 'one order for three tries')

  const other = await ctx.call('POST', url, { token: s.member.token, key: 'veg', body: { ...body, amount: '70.00' } })
  t.same([other.status, other.body.code], [422, 'IDEMPOTENCY_KEY_REUSED'], other.text)
  t.equal(await orders(), 1, 'the same key with another body makes nothing')
  // the checks docs/api.md puts before idempotency answer first: a body that is no order, a payee that does not
  // exist (they were told IDEMPOTENCY_KEY_REUSED)
  const notADate = await ctx.call('POST', url, { token: s.member.token, key: 'veg', body: { ...body, startsOn: '2027-02-30' } })
  t.same([notADate.status, notADate.body.code, notADate.body.errors?.[0]?.pointer], [422, 'VALIDATION_FAILED', '/startsOn'], notADate.text)
  const nobody = await ctx.call('POST', url, { token: s.member.token, key: 'veg', body: { ...body, toAccount: randomUUID() } })
  t.same([nobody.status, nobody.body.code], [404, 'ACCOUNT_NOT_FOUND'], nobody.text)

  // the replay comes before the checks of the day and the accounts' state: a retry after midnight, after the order
  // was cancelled, finds the first order as it is now, where a new create would be refused (startsOn in the past)
  t.equal((await ctx.call('DELETE', `${url}/${first.body.id as string}`, { token: s.member.token })).status, 200)
  now = at(day(MONDAY, 1))
  const late = await ctx.call('POST', url, { token: s.member.token, key: 'veg', body })
  t.same([late.status, late.headers['idempotent-replayed'], late.body.id, late.body.status], [201, 'true', first.body.id, 'cancelled'], late.text)
  t.equal((await ctx.call('POST', url, { token: s.member.token, key: 'veg-2', body })).status, 422, 'a new key with that body: startsOn is past')
  t.equal(await orders(), 1)
  // but not before the checks of who may: another member's retry of the key is not told the order exists
  const stranger = await registerMember(ctx, s.code)
  t.equal((await ctx.call('POST', url, { token: stranger.token, key: 'veg', body })).status, 404)

  // keys are per login: the issuer's 'veg' is its own
  const tuesday = { ...body, startsOn: day(MONDAY, 1) }
  const byIssuer = await ctx.call('POST', url, { token: ctx.issuerToken, key: 'veg', body: tuesday })
  t.equal(byIssuer.status, 201, byIssuer.text)
  t.not(byIssuer.body.id, first.body.id, 'another login\'s key makes its own order')
  const before = await audits()
  t.equal((await ctx.call('POST', url, { token: ctx.issuerToken, key: 'veg', body: tuesday })).headers['idempotent-replayed'], 'true')
  t.equal(await audits(), before, 'an issuer\'s replay writes no second audit row')

  // the same key sent twice at once: one order, both told of it
  const both = await Promise.all([0, 1].map(async () => await ctx.call('POST', url, { token: s.member.token, key: 'twice', body: tuesday })))
  t.same(both.map(r => r.status), [201, 201], both.map(r => r.text).join('\n'))
  t.equal(both[0].body.id, both[1].body.id, 'both answers name one order')
  t.same(both.map(r => r.headers['idempotent-replayed']).sort(), ['false', 'true'])
  t.equal(await orders(), 3, 'the member\'s, the issuer\'s and the concurrent pair\'s one')

  // and so at the bound of active orders an account may have: the retries that waited for the first's lock find its
  // order, not the bound its order has just reached (they were told 422 VALIDATION_FAILED)
  await pool.query(`INSERT INTO standing_order (currency_id, from_account_id, to_account_id, payer_id, amount, reference, every, day, starts_on,
      ends_on, next_due, created_by)
    SELECT currency_id, from_account_id, to_account_id, payer_id, amount, reference, every, day, starts_on, ends_on, next_due, created_by
    FROM standing_order, generate_series(1, $2) WHERE id = $1`, [both[0].body.id, MAX_ACTIVE_PER_ACCOUNT - 3])
  const atBound = await Promise.all([0, 1, 2].map(async () => await ctx.call('POST', url, { token: s.member.token, key: 'last', body: tuesday })))
  t.same(atBound.map(r => r.status), [201, 201, 201], atBound.map(r => r.text).join('\n'))
  t.equal(new Set(atBound.map(r => r.body.id)).size, 1, 'all three answers name one order')
  t.same(atBound.map(r => r.headers['idempotent-replayed']).sort(), ['false', 'true', 'true'])
  t.equal((await ctx.call('POST', url, { token: s.member.token, key: 'one-more', body: tuesday })).body.code, 'VALIDATION_FAILED', 'a new key is past the bound')
})

t.test('two instances running the scheduler at once pay each occurrence once', async (t) => {
  let now = at(MONDAY)
  const clock = () => now
  const a = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 }, { clock })
  const b = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 }, { clock, db: a.db })
  const s = await scenario(a)
  const payers = []
  for (let i = 0; i < 6; i++) payers.push(await registerMember(a, s.code))
  const orders: string[] = []
  for (const [i, p] of payers.entries()) {
    await issue(a, s.code, p.accountId, '1000.00')
    for (let k = 0; k < 4; k++) {
      const r = await a.call('POST', `/v1/accounts/${p.accountId}/standing-orders`, {
        key: randomUUID(),
        token: p.token, body: { toAccount: s.business.accountId, amount: `${i + 1}.${k}0`, reference: `order ${i}/${k}`, schedule: { every: 'week', day: 1 }, startsOn: MONDAY },
      })
      t.equal(r.status, 201)
      orders.push(r.body.id)
    }
  }
  const pool = dbPool(t, a)
  const paidPerOrder = async () => (await pool.query<{ id: string, n: number }>(`SELECT so.id, (SELECT count(*)::int FROM transfer t
      WHERE t.kind = 'payment' AND t.metadata->>'standingOrder' = so.id::text) AS n FROM standing_order so ORDER BY so.id`)).rows
  for (const [week, expected] of [[0, 1], [7, 2], [14, 3]]) {
    now = at(day(MONDAY, week))
    // both instances, twice each, all at once
    const runs = await Promise.all([a.app.scheduler.tick(), b.app.scheduler.tick(), a.app.scheduler.tick(), b.app.scheduler.tick()])
    t.equal(runs.reduce((n, r) => n + r.paid, 0), orders.length, `week ${week / 7}: ${orders.length} payments between the instances`)
    t.equal(runs.reduce((n, r) => n + r.errors, 0), 0)
    t.same((await paidPerOrder()).map(r => r.n), orders.map(() => expected), `week ${week / 7}: every order paid exactly ${expected} time(s)`)
  }
  const occurrences = (await a.call('GET', `/v1/standing-orders/${orders[0]}/occurrences`, { token: a.issuerToken })).body.items
  t.same(occurrences.map((o: any) => [o.status, typeof o.transferId]), [['paid', 'string'], ['paid', 'string'], ['paid', 'string']], 'three weeks, three paid occurrences')
  assertInvariants(t, await invariantViolations(pool))
})

t.test('a restart after missed due dates catches up in date order; an order starting today pays on the first look', async (t) => {
  const base = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 }, { clock: () => at(MONDAY, '08:00:00') })
  const s = await scenario(base)
  await issue(base, s.code, s.member.accountId, '500.00')
  const wages = await base.call('POST', `/v1/accounts/${s.business.accountId}/standing-orders`, {
    key: randomUUID(),
    token: s.business.token, body: { toAccount: s.member.accountId, amount: '20.00', reference: 'wages', schedule: { every: 'week', day: 1 }, startsOn: MONDAY },
  })
  await issue(base, s.code, s.business.accountId, '500.00')
  t.equal(wages.status, 201)

  // an instance starts with the default interval: its first look, at start-up, pays today's occurrence
  const first = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 60_000 }, { db: base.db, clock: () => at(MONDAY, '09:00:00') })
  await first.app.scheduler.idle()
  let occ = await base.call('GET', `/v1/standing-orders/${wages.body.id}/occurrences`, { token: s.business.token })
  t.same(occ.body.items.map((o: any) => [o.dueOn, o.status]), [[MONDAY, 'paid']], 'paid at the start-up look')
  await first.app.close()

  // down for three weeks and a day; the next instance to start catches up
  const later = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 60_000 }, { db: base.db, clock: () => at(day(MONDAY, 22), '07:00:00') })
  await later.app.scheduler.idle()
  occ = await base.call('GET', `/v1/standing-orders/${wages.body.id}/occurrences`, { token: s.business.token })
  t.same(occ.body.items.map((o: any) => [o.dueOn, o.status]),
    [[MONDAY, 'paid'], [day(MONDAY, 7), 'paid'], [day(MONDAY, 14), 'paid'], [day(MONDAY, 21), 'paid']], 'every missed due date paid')
  // the statement lists entries in the order they were posted
  const stmt = await base.call('GET', `/v1/accounts/${s.member.accountId}/statement`, { token: s.member.token })
  const wagesPaid = stmt.body.items.filter((e: any) => e.reference === 'wages' && e.kind === 'payment')
  t.same(wagesPaid.map((e: any) => e.amount), ['20.00', '20.00', '20.00', '20.00'])
  t.same(wagesPaid.map((e: any) => e.transferId), occ.body.items.map((o: any) => o.transferId), 'paid in date order')
  t.equal((await base.call('GET', `/v1/accounts/${s.business.accountId}/standing-orders/${wages.body.id}`, { token: s.business.token })).body.nextDue, day(MONDAY, 28))
  t.equal((await later.app.scheduler.tick()).paid, 0, 'a second look the same day pays nothing')
})

t.test('a refused payment is recorded, retried once the next day, and emitted as an event', async (t) => {
  let now = at(MONDAY)
  const ctx = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 }, { clock: () => now })
  const s = await scenario(ctx)
  const poor = await registerMember(ctx, s.code)
  const biz2 = await registerBusiness(ctx, s.code, { tradingName: 'Frozen Out', sector: 'retail', postcode: 'BS1 1AA' })
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const create = async (who: { accountId: string, token: string }, to: string, amount: string) => (await ctx.call('POST', `/v1/accounts/${who.accountId}/standing-orders`, {
    key: randomUUID(),
    token: who.token, body: { toAccount: to, amount, reference: 'rates', schedule: { every: 'month', day: 1 }, startsOn: MONDAY },
  })).body.id as string
  const funded = await create(poor, s.business.accountId, '30.00')
  const neverFunded = await create(poor, s.business.accountId, '5000.00')
  const toFrozen = await create(s.member, biz2.accountId, '10.00')
  t.equal((await ctx.call('PATCH', `/v1/accounts/${biz2.accountId}`, { token: ctx.issuerToken, body: { status: 'frozen' } })).status, 200)

  let r = await ctx.app.scheduler.tick()
  t.match(r, { paid: 0, retrying: 3, failed: 0, errors: 0 })
  const occ = async (id: string) => (await ctx.call('GET', `/v1/standing-orders/${id}/occurrences`, { token: ctx.issuerToken })).body.items
  t.match(await occ(funded), [{ dueOn: MONDAY, status: 'retrying', attempts: 1, nextAttemptOn: day(MONDAY, 1), transferId: null, failure: { code: 'INSUFFICIENT_FUNDS' } }])
  t.match(await occ(toFrozen), [{ status: 'retrying', failure: { code: 'ACCOUNT_FROZEN' } }], 'a frozen account may be unfrozen: retried')
  t.equal((await ctx.app.scheduler.tick()).retrying + (await ctx.app.scheduler.tick()).paid, 0, 'not retried again the same day')

  await issue(ctx, s.code, poor.accountId, '40.00')
  now = at(day(MONDAY, 1))
  r = await ctx.app.scheduler.tick()
  t.match(r, { paid: 1, failed: 2 }, 'the next day: one now paid, two refused for good')
  t.match(await occ(funded), [{ status: 'paid', attempts: 2, failure: null, nextAttemptOn: null }])
  t.match(await occ(neverFunded), [{ status: 'failed', attempts: 2, nextAttemptOn: null, failure: { code: 'INSUFFICIENT_FUNDS' } }])
  now = at(day(MONDAY, 2))
  t.equal((await ctx.app.scheduler.tick()).failed, 0, 'a failed occurrence is not tried a third time')

  const pool = dbPool(t, ctx)
  const events = (await pool.query<{ account_id: string, data: any }>(`SELECT account_id, data FROM event WHERE type = 'standing_order.failed' ORDER BY id`)).rows
  t.equal(events.length, 5, 'an event per refusal: three on the first day, two final ones the next')
  t.match(events.filter(e => e.data.standingOrder === neverFunded).map(e => [e.account_id, e.data.code, e.data.attempt, e.data.final, e.data.retryOn]),
    [[poor.accountId, 'INSUFFICIENT_FUNDS', 1, false, day(MONDAY, 1)], [poor.accountId, 'INSUFFICIENT_FUNDS', 2, true, null]])
  assertInvariants(t, await invariantViolations(pool))
})

t.test('an order whose paying or paid account is closed ends: failed without a payment, cancelled with the reason, an event and an audit row', async (t) => {
  let now = at(MONDAY)
  const ctx = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 }, { clock: () => now })
  const s = await scenario(ctx)
  const leaving = await registerMember(ctx, s.code)
  const shut = await registerBusiness(ctx, s.code, { tradingName: 'Closing Down', sector: 'retail', postcode: 'BS1 1AA' })
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const create = async (who: { accountId: string, token: string }, to: string) => (await ctx.call('POST', `/v1/accounts/${who.accountId}/standing-orders`, {
    key: randomUUID(), token: who.token, body: { toAccount: to, amount: '10.00', reference: 'rates', schedule: { every: 'week', day: 1 }, startsOn: MONDAY },
  })).body.id as string
  const fromClosed = await create(leaving, s.business.accountId)
  const toClosed = await create(s.member, shut.accountId)
  const open = await create(s.member, s.business.accountId)
  for (const id of [leaving.accountId, shut.accountId]) {
    t.equal((await ctx.call('PATCH', `/v1/accounts/${id}`, { token: ctx.issuerToken, body: { status: 'closed' } })).status, 200)
  }

  t.match(await ctx.app.scheduler.tick(), { paid: 1, retrying: 0, failed: 2, ended: 2, errors: 0 }, 'the open order is paid; the two others end')
  const order = async (from: string, id: string) => (await ctx.call('GET', `/v1/accounts/${from}/standing-orders/${id}`, { token: ctx.issuerToken })).body
  t.match(await order(leaving.accountId, fromClosed), {
    status: 'cancelled', nextDue: null, cancelledAt: at(MONDAY).toISOString(), endReason: { code: 'ACCOUNT_CLOSED', detail: /paying account is closed/ },
  })
  t.match(await order(s.member.accountId, toClosed), { status: 'cancelled', nextDue: null, endReason: { code: 'ACCOUNT_CLOSED', detail: /account paid is closed/ } })
  t.match(await order(s.member.accountId, open), { status: 'active', endReason: null, nextDue: day(MONDAY, 7) })
  const occ = async (id: string) => (await ctx.call('GET', `/v1/standing-orders/${id}/occurrences`, { token: ctx.issuerToken })).body.items
  for (const id of [fromClosed, toClosed]) {
    t.match(await occ(id), [{ dueOn: MONDAY, status: 'failed', attempts: 1, nextAttemptOn: null, transferId: null, failure: { code: 'ACCOUNT_CLOSED' } }])
  }

  const pool = dbPool(t, ctx)
  const events = (await pool.query<{ account_id: string, data: any }>(`SELECT account_id, data FROM event WHERE type = 'standing_order.failed' ORDER BY id`)).rows
  t.match(events.map(e => [e.account_id, e.data.standingOrder, e.data.code, e.data.final, e.data.retryOn, e.data.ended, e.data.amount]).sort(),
    [[leaving.accountId, fromClosed, 'ACCOUNT_CLOSED', true, null, true, '10.00'], [s.member.accountId, toClosed, 'ACCOUNT_CLOSED', true, null, true, '10.00']].sort(),
    'one final event each, on the paying account')
  const trail = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?action=standing_order.end&limit=200`, { token: ctx.issuerToken })).body.items as any[]
  t.same(trail.map(e => e.target).sort(), [fromClosed, toClosed].sort(), 'each end is audited')
  t.match(trail[0], { actorName: 'scheduler', outcome: 'success', detail: { code: 'ACCOUNT_CLOSED', failed: 1 } })

  // weeks later: nothing more is tried, only the open order is paid
  now = at(day(MONDAY, 1))
  t.match(await ctx.app.scheduler.tick(), { orders: 0, failed: 0, ended: 0 }, 'no retry the next day')
  now = at(day(MONDAY, 14))
  t.match(await ctx.app.scheduler.tick(), { orders: 1, paid: 2, failed: 0, ended: 0 }, 'two weeks on, only the open order')
  t.equal((await occ(fromClosed)).length, 1, 'no new due dates for an ended order')
  t.equal((await pool.query(`SELECT 1 FROM event WHERE type = 'standing_order.failed'`)).rowCount, 2, 'and no new events')
  // cancelling an ended order answers it as it is
  const again = await ctx.call('DELETE', `/v1/accounts/${s.member.accountId}/standing-orders/${toClosed}`, { token: s.member.token })
  t.match([again.status, again.body.status, again.body.endReason?.code], [200, 'cancelled', 'ACCOUNT_CLOSED'])
  assertInvariants(t, await invariantViolations(pool))
})

t.test('a finished order is not relabelled cancelled: 409 STANDING_ORDER_FINISHED; one whose last payment is to be retried can be', async (t) => {
  let now = at(MONDAY)
  const ctx = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 }, { clock: () => now })
  const s = await scenario(ctx)
  const poor = await registerMember(ctx, s.code)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const create = async (who: { accountId: string, token: string }, amount: string) => (await ctx.call('POST', `/v1/accounts/${who.accountId}/standing-orders`, {
    key: randomUUID(),
    token: who.token, body: { toAccount: s.business.accountId, amount, reference: 'once', schedule: { every: 'week', day: 1 }, startsOn: MONDAY, endsOn: MONDAY },
  })).body.id as string
  const paid = await create(s.member, '1.00')
  const refused = await create(poor, '1.00')
  t.match(await ctx.app.scheduler.tick(), { paid: 1, retrying: 1 })
  const url = (who: { accountId: string }, id: string) => `/v1/accounts/${who.accountId}/standing-orders/${id}`
  const occ = async (id: string) => (await ctx.call('GET', `/v1/standing-orders/${id}/occurrences`, { token: ctx.issuerToken })).body.items
  t.match((await ctx.call('GET', url(s.member, paid), { token: s.member.token })).body, { status: 'finished', nextDue: null, cancelledAt: null })

  const d = await ctx.call('DELETE', url(s.member, paid), { token: s.member.token })
  t.equal(d.status, 409)
  t.match(d.body, { code: 'STANDING_ORDER_FINISHED', status: 409 })
  t.match(d.headers['content-type'], /application\/problem\+json/)
  t.match((await ctx.call('GET', url(s.member, paid), { token: s.member.token })).body, { status: 'finished', cancelledAt: null }, 'still finished')
  t.match(await occ(paid), [{ dueOn: MONDAY, status: 'paid' }])
  t.equal((await ctx.call('DELETE', url(s.member, paid), { token: ctx.issuerToken })).body.code, 'STANDING_ORDER_FINISHED', 'an issuer is told the same')

  // finished (no due date left) but its only payment is to be retried tomorrow: cancelling stops the retry
  t.match((await ctx.call('GET', url(poor, refused), { token: poor.token })).body, { status: 'finished', nextDue: null })
  const c = await ctx.call('DELETE', url(poor, refused), { token: poor.token })
  t.equal(c.status, 200)
  t.match(c.body, { status: 'cancelled' })
  t.match(await occ(refused), [{ dueOn: MONDAY, status: 'cancelled', nextAttemptOn: null }])
  t.equal((await ctx.call('DELETE', url(poor, refused), { token: poor.token })).status, 200, 'cancelling it again answers it as it is')
  await issue(ctx, s.code, poor.accountId, '10.00')
  now = at(day(MONDAY, 1))
  t.match(await ctx.app.scheduler.tick(), { paid: 0, retrying: 0, failed: 0 }, 'the cancelled retry is not paid')
})

t.test('the claim reads the due orders through their indexes, not the cancelled ones: no Seq Scan however many pile up', async (t) => {
  let now = at(MONDAY)
  const ctx = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 }, { clock: () => now })
  const s = await scenario(ctx)
  const poor = await registerMember(ctx, s.code)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const url = (who: { accountId: string }) => `/v1/accounts/${who.accountId}/standing-orders`
  const body = (reference: string, endsOn?: string) => ({ toAccount: s.business.accountId, amount: '1.00', reference, schedule: { every: 'week', day: 1 }, startsOn: MONDAY, endsOn })
  // finished at once, its one payment refused: it is due again tomorrow only through its retrying occurrence
  const retried = (await ctx.call('POST', url(poor), { key: randomUUID(), token: poor.token, body: body('once', MONDAY) })).body.id as string
  for (let i = 0; i < 3; i++) t.equal((await ctx.call('POST', url(s.member), { key: randomUUID(), token: s.member.token, body: body(`weekly ${i}`) })).status, 201)
  t.match(await ctx.app.scheduler.tick(), { paid: 3, retrying: 1 })
  // what create-and-cancel loops leave behind (the rows the API writes, inserted by SQL to be quick)
  const pool = dbPool(t, ctx)
  const cancelled = (await ctx.call('POST', url(poor), { key: randomUUID(), token: poor.token, body: body('noise') })).body.id as string
  t.equal((await ctx.call('DELETE', `${url(poor)}/${cancelled}`, { token: poor.token })).status, 200)
  await pool.query(`INSERT INTO standing_order (currency_id, from_account_id, to_account_id, payer_id, amount, reference, every, day, starts_on,
      next_due, status, created_by, cancelled_at)
    SELECT currency_id, from_account_id, to_account_id, payer_id, amount, reference, every, day, starts_on, NULL, 'cancelled', created_by, now()
      FROM standing_order, generate_series(1, 20000) WHERE id = $1`, [cancelled])
  await pool.query('VACUUM ANALYZE standing_order')
  await pool.query('VACUUM ANALYZE standing_order_occurrence')

  const tomorrow = at(day(MONDAY, 1))
  const plan = (await pool.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${CLAIM_SQL}`, [tomorrow, [], SIMULATION_LOCK_CLASS, 100, null])).rows[0]['QUERY PLAN'][0].Plan
  const nodes: Array<Record<string, any>> = []
  const walk = (n: Record<string, any>) => { nodes.push(n); for (const c of n.Plans ?? []) walk(c) }
  walk(plan)
  const on = (table: string) => nodes.filter(n => n['Relation Name'] === table)
  t.equal(on('standing_order').filter(n => n['Node Type'] === 'Seq Scan').length, 0, 'no Seq Scan on standing_order')
  const read = on('standing_order').reduce((sum, n) => sum + n['Actual Rows'] * n['Actual Loops'] + (n['Rows Removed by Filter'] ?? 0) * n['Actual Loops'], 0)
  t.equal(read, 1, 'the claim reads one row of standing_order (tomorrow only the retry is due), not the 20,001 cancelled ones')

  // and it still finds both kinds of due order
  await issue(ctx, s.code, poor.accountId, '10.00')
  now = tomorrow
  t.match(await ctx.app.scheduler.tick(), { orders: 1, paid: 1, retrying: 0, failed: 0, errors: 0 }, 'the next day: the retry is paid')
  t.match((await ctx.call('GET', `/v1/standing-orders/${retried}/occurrences`, { token: poor.token })).body.items, [{ dueOn: MONDAY, status: 'paid', attempts: 2 }])
  now = at(day(MONDAY, 7))
  t.match(await ctx.app.scheduler.tick(), { orders: 3, paid: 3, errors: 0 }, 'a week on: the weekly orders are paid again')
})

t.test('orders are worked in batches; a batch whose work fails is worked order by order, and only the order at fault waits', async (t) => {
  const now = at(MONDAY)
  const ctx = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 }, { clock: () => now })
  const s = await scenario(ctx)
  const o = await scenario(ctx, { code: 'OTH' })
  const made: Array<{ id: string, currency: string }> = []
  for (const [sc, n] of [[s, 5], [o, 1]] as const) {
    await issue(ctx, sc.code, sc.member.accountId, '100.00')
    for (let k = 0; k < n; k++) {
      const r = await ctx.call('POST', `/v1/accounts/${sc.member.accountId}/standing-orders`, {
        key: randomUUID(),
        token: sc.member.token, body: { toAccount: sc.business.accountId, amount: '1.00', reference: `order ${k}`, schedule: { every: 'week', day: 1 }, startsOn: MONDAY },
      })
      t.equal(r.status, 201)
      made.push({ id: r.body.id, currency: sc.code })
    }
  }
  const pool = dbPool(t, ctx)
  const othId = (await pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', ['OTH'])).rows[0].id
  // OTH cannot be resolved this look: its order's work throws (a fault, not a refusal by the ledger)
  let broken = true
  const currencies = {
    resolveId: async (id: string) => {
      if (broken && id === othId) throw new Error('test: currency unavailable')
      return await ctx.app.services.currencies.resolveId(id)
    },
  }
  const scheduler = standingOrderScheduler(ctx.app.pool, currencies, { clock: () => now, batch: 4 })
  const first = await scheduler.tick()
  t.same(first, { orders: 5, paid: 5, retrying: 0, failed: 0, ended: 0, errors: 1 }, 'five orders paid, in a batch of 4 and the rest; the OTH order logged as an error')
  const statuses = async () => (await pool.query<{ id: string, status: string }>(`SELECT so.id::text, coalesce(max(oc.status), 'none') AS status
      FROM standing_order so LEFT JOIN standing_order_occurrence oc ON oc.standing_order_id = so.id GROUP BY so.id`)).rows
  const byOrder = new Map((await statuses()).map(r => [r.id, r.status]))
  t.same(made.map(m => byOrder.get(m.id)), [...made.filter(m => m.currency === s.code).map(() => 'paid'), 'none'],
    'the order at fault was rolled back whole (no occurrence row), the others paid')
  broken = false
  t.same(await scheduler.tick(), { orders: 1, paid: 1, retrying: 0, failed: 0, ended: 0, errors: 0 }, 'the next look pays it')
  assertInvariants(t, await invariantViolations(pool))
})

t.test('due dates are the currency\'s own dates: orders are paid, refused and retried by the local date of its time zone', async (t) => {
  // Los Angeles is on PDT (UTC-7) and Auckland on NZDT (UTC+13) around 1 April 2027
  let now = new Date('2027-03-31T02:00:00Z') // 30 March 19:00 in Los Angeles, 31 March in UTC, 31 March 15:00 in Auckland
  const ctx = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 }, { clock: () => now })
  const la = await scenario(ctx, { code: 'LAX' })
  const nz = await scenario(ctx, { code: 'AKL' })
  for (const [sc, zone] of [[la, 'America/Los_Angeles'], [nz, 'Pacific/Auckland']] as const) {
    t.equal((await ctx.call('PATCH', `/v1/currencies/${sc.code}`, { token: ctx.issuerToken, body: { timeZone: zone } })).status, 200)
    await issue(ctx, sc.code, sc.member.accountId, '100.00')
  }
  const create = async (sc: typeof la, schedule: { every: 'week' | 'month', day: number }, startsOn: string, amount = '10.00') =>
    await ctx.call('POST', `/v1/accounts/${sc.member.accountId}/standing-orders`, {
      key: randomUUID(),
      token: sc.member.token, body: { toAccount: sc.business.accountId, amount, reference: 'rent', schedule, startsOn },
    })
  const occ = async (id: string) => (await ctx.call('GET', `/v1/standing-orders/${id}/occurrences`, { token: ctx.issuerToken })).body.items

  // startsOn is checked against the currency's today: 30 March in Los Angeles, though UTC is on the 31st
  const laEnd = await create(la, { every: 'month', day: 31 }, '2027-03-30')
  t.equal(laEnd.status, 201, 'Los Angeles: an order may start on its 30 March')
  t.equal(laEnd.body.nextDue, '2027-03-31')
  const laFirst = await create(la, { every: 'month', day: 1 }, '2027-03-30')
  t.equal(laFirst.body.nextDue, '2027-04-01')
  const nzFirst = await create(nz, { every: 'month', day: 1 }, '2027-03-31')
  t.equal(nzFirst.status, 201)
  const nzPoor = await create(nz, { every: 'month', day: 1 }, '2027-03-31', '500.00')
  t.same(await ctx.app.scheduler.tick(), { orders: 0, paid: 0, retrying: 0, failed: 0, ended: 0, errors: 0 }, 'nothing is due anywhere yet: in UTC it is the 31st, in Los Angeles the 30th')

  now = new Date('2027-03-31T12:30:00Z') // 31 March 05:30 in Los Angeles, 1 April 01:30 in Auckland
  t.match(await ctx.app.scheduler.tick(), { paid: 2, retrying: 1, failed: 0, errors: 0 }, 'Los Angeles\'s 31st and Auckland\'s 1st, though UTC is still on the 31st')
  t.match(await occ(laEnd.body.id), [{ dueOn: '2027-03-31', status: 'paid' }])
  t.match(await occ(nzFirst.body.id), [{ dueOn: '2027-04-01', status: 'paid' }])
  t.match(await occ(nzPoor.body.id), [{ dueOn: '2027-04-01', status: 'retrying', nextAttemptOn: '2027-04-02', failure: { code: 'INSUFFICIENT_FUNDS' } }],
    'a refusal is retried on the next local day')
  t.same(await occ(laFirst.body.id), [], 'Los Angeles\'s 1 April has not begun')
  const late = await create(nz, { every: 'week', day: 3 }, '2027-03-31')
  t.equal(late.status, 422, 'in Auckland 31 March is over: an order cannot start on it')
  t.match(late.body, { code: 'VALIDATION_FAILED', detail: /today \(2027-04-01\)/ })

  now = new Date('2027-04-01T03:00:00Z') // 31 March 20:00 in Los Angeles, 1 April in UTC
  t.match(await ctx.app.scheduler.tick(), { paid: 0, retrying: 0, failed: 0 }, 'Los Angeles\'s 1 April has still not begun, though UTC\'s has')
  now = new Date('2027-04-01T07:30:00Z') // 1 April 00:30 in Los Angeles
  t.match(await ctx.app.scheduler.tick(), { paid: 1, retrying: 0, failed: 0 }, 'at its midnight it is paid')
  t.match(await occ(laFirst.body.id), [{ dueOn: '2027-04-01', status: 'paid' }])
  now = new Date('2027-04-01T10:30:00Z') // 1 April 23:30 in Auckland
  t.match(await ctx.app.scheduler.tick(), { paid: 0, retrying: 0, failed: 0 }, 'Auckland\'s refusal is not tried again on its 1 April')
  now = new Date('2027-04-01T11:30:00Z') // 2 April 00:30 in Auckland, still 1 April in UTC
  t.match(await ctx.app.scheduler.tick(), { paid: 0, failed: 1 }, 'but is on its 2 April')
  assertInvariants(t, await invariantViolations(dbPool(t, ctx)))
})
