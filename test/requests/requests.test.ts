import t, { type Test } from 'tap'
import { balance, buildTestApp, issue, registerBusiness, registerMember, scenario } from '../helper.js'

// Payment requests end to end through HTTP with real tokens on real PostgreSQL: who may ask, read, pay, cancel
// and decline; paid at most once (also when raced); expired, cancelled and declined requests refused with a 409
// saying which; the amount comes from the request, never from the payer; long-polling wakes on the payment.

let n = 0
const k = (p: string) => `${p}-${Date.now().toString(36)}-${(n++).toString(36)}`

async function setup (t: Test, clock?: () => Date, config: Parameters<typeof buildTestApp>[1] = {}) {
  const ctx = await buildTestApp(t, config, clock != null ? { requestClock: clock } : {})
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const ask = async (body: Record<string, unknown> = {}, token = s.business.token, key = k('req')) =>
    await ctx.call('POST', `/v1/currencies/${s.code}/payment-requests`, {
      token, key, body: { toAccount: s.business.accountId, amount: '12.60', reference: 'Two coffees', ...body },
    })
  const pay = async (id: string, token = s.member.token, fromAccount = s.member.accountId, key = k('pay'), extra: Record<string, unknown> = {}) =>
    await ctx.call('POST', `/v1/payment-requests/${id}/payments`, { token, key, body: { fromAccount, channel: 'till', ...extra } })
  return { ctx, s, ask, pay }
}

t.test('a business asks, a member pays once with the till fee, and the transfer references the request', async (t) => {
  const { ctx, s, ask, pay } = await setup(t)
  const key = k('req')
  const r = await ask({}, s.business.token, key)
  t.equal(r.status, 201, r.text)
  t.equal(r.body.status, 'pending')
  t.equal(r.body.amount, '12.60')
  t.equal(r.body.currency, s.code)
  t.equal(r.body.payee.kind, 'business')
  t.match(r.body.payUrl, new RegExp(`/pay/${r.body.id}$`))
  t.equal(r.body.qr, `${r.body.payUrl}?currency=${s.code}&amount=12.60`)
  t.ok(Date.parse(r.body.expiresAt) - Date.parse(r.body.createdAt) >= 899_000, 'expires in 900 s by default')
  t.equal(r.headers['idempotent-replayed'], 'false')

  const again = await ask({}, s.business.token, key)
  t.equal(again.status, 201)
  t.equal(again.body.id, r.body.id, 'a replay answers the same request')
  t.equal(again.headers['idempotent-replayed'], 'true')
  const reused = await ask({ amount: '1.00' }, s.business.token, key)
  t.equal(reused.status, 422)
  t.equal(reused.body.code, 'IDEMPOTENCY_KEY_REUSED')

  const paid = await pay(r.body.id)
  t.equal(paid.status, 201, paid.text)
  t.equal(paid.body.amount, '12.60')
  t.equal(paid.body.channel, 'till')
  t.equal(paid.body.fromAccount, s.member.accountId)
  t.equal(paid.body.toAccount, s.business.accountId)
  t.equal(paid.body.reference, 'Two coffees')
  t.same(paid.body.metadata, { paymentRequest: r.body.id }, 'the transfer references the request')
  t.equal(paid.body.related.length, 1, 'the till fee is a second leg')
  t.equal(paid.body.related[0].amount, '0.13', '1% of 12.60, half up')
  t.equal(await balance(ctx, s.member.accountId), '87.40')
  t.equal(await balance(ctx, s.business.accountId), '12.47')

  const seen = await ctx.call('GET', `/v1/payment-requests/${r.body.id}`, { token: s.business.token })
  t.equal(seen.body.status, 'paid')
  t.equal(seen.body.transferId, paid.body.id)
  t.same(seen.body.payer, { accountId: s.member.accountId, name: 'Test Member' }, 'the payee sees who paid')
  const other = await registerMember(ctx, s.code)
  const byOther = await ctx.call('GET', `/v1/payment-requests/${r.body.id}`, { token: other.token })
  t.equal(byOther.status, 200, 'any member of the currency holding the id may read it')
  t.equal(byOther.body.payer, null, 'but not who paid')
  t.equal(byOther.body.transferId, null)

  const twice = await pay(r.body.id, other.token, other.accountId)
  t.equal(twice.status, 409)
  t.equal(twice.body.code, 'REQUEST_PAID')
  const replay = await ctx.call('POST', `/v1/payment-requests/${r.body.id}/payments`, {
    token: s.member.token, key: 'same-key', body: { fromAccount: s.member.accountId, channel: 'till' },
  })
  t.equal(replay.status, 409, 'a new key on a paid request is a second payment: refused')
  t.equal(await balance(ctx, s.member.accountId), '87.40', 'nothing more was taken')

  const tx = await ctx.call('GET', `/v1/transfers/${paid.body.id}`, { token: s.member.token })
  t.equal(tx.body.metadata.paymentRequest, r.body.id)

  // request.paid on the payee's account, committed with the payment (the event log, src/events/record.ts)
  const events = (await ctx.app.pool.query(`SELECT account_id, data FROM event WHERE type = 'request.paid'`)).rows
  t.equal(events.length, 1, 'one request.paid event')
  t.equal(events[0].account_id, s.business.accountId)
  t.match(events[0].data, {
    requestId: r.body.id, currency: s.code, status: 'paid', amount: '12.60', fromAccount: s.member.accountId,
    payerName: 'Test Member', transferId: paid.body.id, reference: 'Two coffees',
  })
})

t.test('a retry with the paying call\'s own Idempotency-Key replays its 201', async (t) => {
  const { ctx, s, ask, pay } = await setup(t)
  const r = await ask()
  const first = await pay(r.body.id, s.member.token, s.member.accountId, 'till-7')
  const again = await pay(r.body.id, s.member.token, s.member.accountId, 'till-7')
  t.equal(again.status, 201)
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.same(again.body, first.body, 'the same body')
  const changed = await pay(r.body.id, s.member.token, s.member.accountId, 'till-7', { channel: 'app' })
  t.equal(changed.status, 422)
  t.equal(changed.body.code, 'IDEMPOTENCY_KEY_REUSED')
  t.equal(await balance(ctx, s.member.accountId), '87.40')
})

t.test('a retry of a create after the payee account was frozen finds the request its first try made', async (t) => {
  const { ctx, s, ask } = await setup(t)
  const first = await ask({}, s.business.token, 'till-req-1')
  t.equal(first.status, 201, first.text)
  const frozen = await ctx.call('PATCH', `/v1/accounts/${s.business.accountId}`, { token: ctx.issuerToken, body: { status: 'frozen' } })
  t.equal(frozen.status, 200, frozen.text)
  // the replay comes before the account's state is checked (docs/api.md, the order of checks): it was 422 ACCOUNT_FROZEN
  const again = await ask({}, s.business.token, 'till-req-1')
  t.same([again.status, again.headers['idempotent-replayed'], again.body.id], [201, 'true', first.body.id], again.text)
  const other = await ask({ amount: '1.00' }, s.business.token, 'till-req-1')
  t.same([other.status, other.body.code], [422, 'IDEMPOTENCY_KEY_REUSED'], 'another body with the key is still refused as such')
  const fresh = await ask({}, s.business.token, 'till-req-2')
  t.same([fresh.status, fresh.body.code], [422, 'ACCOUNT_FROZEN'], 'a new request into the frozen account is refused')
  // and not before the checks of who may: another business's retry with the key is not told the request exists
  const other2 = await registerBusiness(ctx, s.code, { tradingName: 'Other shop', sector: 'cafes-pubs', postcode: 'BS1 4DJ' })
  t.equal((await ask({}, other2.token, 'till-req-1')).status, 404)
})

t.test('paid at most once: twelve attempts at once from three payers give one 201 and 409s', async (t) => {
  const { ctx, s, ask, pay } = await setup(t)
  const others = [await registerMember(ctx, s.code), await registerMember(ctx, s.code)]
  for (const o of others) await issue(ctx, s.code, o.accountId, '100.00')
  const payers = [s.member, ...others]
  for (let round = 0; round < 3; round++) {
    const r = await ask()
    const results = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      const who = payers[i % 3]
      return await pay(r.body.id, who.token, who.accountId)
    }))
    const statuses = results.map(x => x.status).sort()
    t.equal(statuses.filter(x => x === 201).length, 1, `round ${round}: one payment`)
    t.equal(statuses.filter(x => x === 409).length, 11, `round ${round}: eleven conflicts`)
    t.same(results.filter(x => x.status === 409).map(x => x.body.code), Array(11).fill('REQUEST_PAID'), 'each says it was paid')
  }
  const total = (await Promise.all(payers.map(async p => Number(await balance(ctx, p.accountId))))).reduce((a, b) => a + b, 0)
  t.equal(total.toFixed(2), (300 - 3 * 12.6).toFixed(2), 'three payments in all, not more')
  t.equal(await balance(ctx, s.business.accountId), (3 * (12.6 - 0.13)).toFixed(2))
})

t.test('expiry by the injected clock: an expired request is refused with 409 saying so, and swept', async (t) => {
  let now = Date.now()
  const { ctx, s, ask, pay } = await setup(t, () => new Date(now))
  const r = await ask({ expiresInSeconds: 60 })
  t.equal(Date.parse(r.body.expiresAt) - now, 60_000)
  const live = await ask({ expiresInSeconds: 3600 })
  now += 61_000
  const seen = await ctx.call('GET', `/v1/payment-requests/${r.body.id}`, { token: s.member.token })
  t.equal(seen.body.status, 'expired', 'expired the moment its time passes, before any sweep')
  const refused = await pay(r.body.id)
  t.equal(refused.status, 409)
  t.equal(refused.body.code, 'REQUEST_EXPIRED')
  t.match(refused.body.detail, /expired/)
  t.equal(await balance(ctx, s.member.accountId), '100.00', 'nothing was taken')
  const row = await ctx.app.pool.query('SELECT status FROM payment_request WHERE id = $1', [r.body.id])
  t.equal(row.rows[0].status, 'expired', 'the refused attempt wrote it expired')

  const third = await ask({ expiresInSeconds: 1 })
  now += 2000
  t.equal(await ctx.app.services.requests.expireDue(), 1, 'the sweep writes the one due')
  t.equal(await ctx.app.services.requests.expireDue(), 0, 'and only once')
  const expiredEvents = (await ctx.app.pool.query(`SELECT account_id, data->>'requestId' AS id FROM event WHERE type = 'request.expired' ORDER BY id`)).rows
  t.same(expiredEvents.map(e => e.id), [r.body.id, third.body.id], 'one request.expired each, by the refused attempt and by the sweep')
  t.same(expiredEvents.map(e => e.account_id), [s.business.accountId, s.business.accountId], 'on the payee\'s account')
  t.equal((await ctx.app.pool.query('SELECT status FROM payment_request WHERE id = $1', [third.body.id])).rows[0].status, 'expired')
  const list = await ctx.call('GET', `/v1/accounts/${s.business.accountId}/payment-requests?status=expired`, { token: s.business.token })
  t.same(list.body.items.map((x: { id: string }) => x.id).sort(), [r.body.id, third.body.id].sort())
  const pending = await ctx.call('GET', `/v1/accounts/${s.business.accountId}/payment-requests?status=pending`, { token: s.business.token })
  t.same(pending.body.items.map((x: { id: string }) => x.id), [live.body.id])
  t.equal((await ask({ expiresInSeconds: 7 * 24 * 3600 + 1 })).status, 422, 'at most 7 days')
})

t.test('cancelled and declined requests answer 409 saying which; who may cancel and decline', async (t) => {
  const { ctx, s, ask, pay } = await setup(t)
  const other = await registerMember(ctx, s.code)
  const a = await ask({ fromAccount: s.member.accountId })
  t.equal((await ctx.call('POST', `/v1/payment-requests/${a.body.id}/cancel`, { token: s.member.token })).status, 403, 'a payer may not cancel')
  const c = await ctx.call('POST', `/v1/payment-requests/${a.body.id}/cancel`, { token: s.business.token })
  t.equal(c.status, 200)
  t.equal(c.body.status, 'cancelled')
  t.equal((await ctx.call('POST', `/v1/payment-requests/${a.body.id}/cancel`, { token: s.business.token })).status, 200, 'cancelling again answers it again')
  const p1 = await pay(a.body.id)
  t.equal(p1.status, 409)
  t.equal(p1.body.code, 'REQUEST_CANCELLED')
  t.equal((await ctx.call('POST', `/v1/payment-requests/${a.body.id}/decline`, { token: s.member.token })).body.code, 'REQUEST_CANCELLED')

  // an open request cannot be declined: a stranger who saw the QR code must not close it for the customer
  const open = await ask()
  const refused = await ctx.call('POST', `/v1/payment-requests/${open.body.id}/decline`, { token: other.token })
  t.equal(refused.status, 403, 'nobody declines an open request')
  t.equal(refused.body.code, 'FORBIDDEN')
  t.equal((await ctx.call('GET', `/v1/payment-requests/${open.body.id}`, { token: s.business.token })).body.status, 'pending', 'and it stays pending')
  t.equal((await pay(open.body.id)).status, 201, 'for the customer who pays it')

  const b = await ask({ fromAccount: s.member.accountId })
  const own = await ctx.call('POST', `/v1/payment-requests/${b.body.id}/decline`, { token: s.business.token })
  t.equal(own.status, 422, 'the payee does not decline its own request')
  t.equal(own.body.code, 'OWN_REQUEST')
  const d = await ctx.call('POST', `/v1/payment-requests/${b.body.id}/decline`, { token: s.member.token })
  t.equal(d.status, 200)
  t.equal(d.body.status, 'declined')
  const p2 = await pay(b.body.id)
  t.equal(p2.status, 409)
  t.equal(p2.body.code, 'REQUEST_DECLINED')
  t.equal((await ctx.call('POST', `/v1/payment-requests/${b.body.id}/cancel`, { token: s.business.token })).body.code, 'REQUEST_DECLINED')

  const paid = await ask()
  t.equal((await pay(paid.body.id)).status, 201)
  const late = await ctx.call('POST', `/v1/payment-requests/${paid.body.id}/cancel`, { token: s.business.token })
  t.equal(late.status, 409)
  t.equal(late.body.code, 'REQUEST_PAID', 'a paid request cannot be cancelled')
})

t.test('attacks: another currency, anonymous, researchers, the payee paying itself, someone else\'s account, amount tampering', async (t) => {
  const { ctx, s, ask, pay } = await setup(t)
  const r = await ask()
  const id = r.body.id as string
  const oth = await ctx.call('POST', '/v1/currencies', { token: ctx.issuerToken, body: { code: 'OTH', name: 'Other Pound' } })
  t.equal(oth.status, 201)
  const stranger = await registerMember(ctx, 'OTH')
  const strangerShop = await registerBusiness(ctx, 'OTH', { tradingName: 'Elsewhere', sector: 'retail', postcode: 'BS2 0AA' })
  await issue(ctx, 'OTH', stranger.accountId, '50.00')

  for (const [what, res] of [
    ['GET', await ctx.call('GET', `/v1/payment-requests/${id}`, { token: stranger.token })],
    ['qr.svg', await ctx.call('GET', `/v1/payment-requests/${id}/qr.svg`, { token: stranger.token })],
    ['pay', await pay(id, stranger.token, stranger.accountId)],
    ['decline', await ctx.call('POST', `/v1/payment-requests/${id}/decline`, { token: stranger.token })],
    ['cancel', await ctx.call('POST', `/v1/payment-requests/${id}/cancel`, { token: strangerShop.token })],
  ] as const) {
    t.equal(res.status, 404, `another currency's participant: ${what} → 404`)
    t.equal(res.body.code, 'PAYMENT_REQUEST_NOT_FOUND')
  }
  const unknown = await ctx.call('GET', '/v1/payment-requests/0190a000-0000-7000-8000-000000000000', { token: s.member.token })
  t.equal(unknown.status, 404, 'an unknown id answers the same')
  t.equal((await ctx.call('GET', `/v1/payment-requests/${id}`, {})).status, 401, 'anonymous')
  t.equal((await ctx.call('POST', `/v1/payment-requests/${id}/payments`, { key: k('a'), body: { fromAccount: s.member.accountId, channel: 'app' } })).status, 401)
  const researcher = `r-${k('x')}`
  await ctx.call('POST', `/v1/currencies/${s.code}/researchers`, { token: ctx.issuerToken, body: { name: 'R', username: researcher, password: 'staff-password' } })
  t.equal((await ctx.call('GET', `/v1/payment-requests/${id}`, { token: await ctx.token(researcher, 'staff-password') })).status, 403, 'researchers by role')

  // the payee cannot pay itself, from its own account or through an addressed request to itself
  const self = await pay(id, s.business.token, s.business.accountId)
  t.equal(self.status, 422)
  t.equal(self.body.code, 'OWN_REQUEST')
  const selfAsk = await ask({ fromAccount: s.business.accountId })
  t.equal(selfAsk.body.code, 'OWN_REQUEST')
  // a member cannot pay from someone else's account
  const other = await registerMember(ctx, s.code)
  const theft = await pay(id, other.token, s.member.accountId)
  t.equal(theft.status, 404, 'another member\'s account is not found for this payer')
  t.equal(await balance(ctx, s.member.accountId), '100.00')
  // the payer cannot name the amount or the payee
  const tamper = await pay(id, s.member.token, s.member.accountId, k('t'), { amount: '0.01' })
  t.equal(tamper.status, 422)
  t.equal(tamper.body.errors[0].pointer, '/amount')
  const redirect = await pay(id, s.member.token, s.member.accountId, k('t'), { toAccount: other.accountId })
  t.equal(redirect.status, 422)
  // only a business asks, for its own account, in its own currency
  t.equal((await ask({}, s.member.token)).status, 403, 'a member does not ask')
  t.equal((await ask({}, ctx.issuerToken)).status, 403, 'an issuer does not ask')
  const forOther = await ask({ toAccount: s.member.accountId })
  t.equal(forOther.status, 404, 'a business asks only into its own account')
  t.equal((await ctx.call('POST', `/v1/currencies/${s.code}/payment-requests`, {
    token: strangerShop.token, key: k('x'), body: { toAccount: strangerShop.accountId, amount: '1.00' },
  })).status, 404, 'another currency\'s business')
  t.equal((await ask({ toAccount: s.currency.systemAccounts.fees })).status, 404, 'never into a system account')
  t.equal((await ask({ amount: '1.001' })).body.code, 'INVALID_AMOUNT')
  t.equal((await ask({ amount: '0' })).body.code, 'INVALID_AMOUNT')
  t.equal((await ask({ reference: 'a\u0000b' })).status, 422)
  // still payable after all that, once
  const ok = await pay(id)
  t.equal(ok.status, 201)
  t.equal(ok.body.amount, '12.60')
})

t.test('a request addressed to one account: only its owner pays or declines; refused payments leave it pending', async (t) => {
  const { ctx, s, ask, pay } = await setup(t)
  const other = await registerMember(ctx, s.code)
  await issue(ctx, s.code, other.accountId, '5.00')
  const r = await ask({ fromAccount: other.accountId })
  t.equal(r.status, 201)
  t.equal(r.body.fromAccount, other.accountId)
  const wrong = await pay(r.body.id)
  t.equal(wrong.status, 403, 'another member may not pay it')
  t.equal((await ctx.call('POST', `/v1/payment-requests/${r.body.id}/decline`, { token: s.member.token })).status, 403, 'nor decline it')
  const poor = await pay(r.body.id, other.token, other.accountId)
  t.equal(poor.status, 422)
  t.equal(poor.body.code, 'INSUFFICIENT_FUNDS')
  t.equal((await ctx.app.pool.query(`SELECT count(*)::int AS n FROM event WHERE type = 'request.paid'`)).rows[0].n, 0, 'a refused payment has no event')
  const still = await ctx.call('GET', `/v1/payment-requests/${r.body.id}`, { token: other.token })
  t.equal(still.body.status, 'pending', 'a refused payment changes nothing')
  await issue(ctx, s.code, other.accountId, '10.00')
  t.equal((await pay(r.body.id, other.token, other.accountId)).status, 201)
  const mine = await ctx.call('GET', `/v1/accounts/${other.accountId}/payment-requests`, { token: other.token })
  t.same(mine.body.items.map((x: { id: string }) => x.id), [r.body.id], 'the payer lists it too')
  t.equal(mine.body.items[0].payer.name, 'Test Member')
})

t.test('long-poll: a waiting GET answers as soon as the payment commits', async (t) => {
  const { ctx, s, ask, pay } = await setup(t)
  const r = await ask()
  const started = Date.now()
  const waiting = ctx.call('GET', `/v1/payment-requests/${r.body.id}?waitSeconds=20`, { token: s.business.token })
  // the GET is waiting on the request (not sleeping a guess at how long that takes)
  for (const deadline = Date.now() + 10_000; ctx.app.services.requests.waiting() < 1;) {
    if (Date.now() > deadline) throw new Error('the GET never waited')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  t.equal(ctx.app.services.requests.waiting(), 1, 'one long-poll waiting')
  t.equal((await pay(r.body.id)).status, 201)
  const res = await waiting
  t.equal(res.body.status, 'paid')
  t.equal(res.body.payer.name, 'Test Member')
  t.ok(Date.now() - started < 5000, `answered in ${Date.now() - started} ms, not after 20 s`)

  const idle = await ask()
  const t0 = Date.now()
  const timedOut = await ctx.call('GET', `/v1/payment-requests/${idle.body.id}?waitSeconds=1`, { token: s.business.token })
  t.equal(timedOut.body.status, 'pending')
  t.ok(Date.now() - t0 >= 900, 'a pending request is answered after the wait')
  t.equal((await ctx.call('GET', `/v1/payment-requests/${idle.body.id}?waitSeconds=31`, { token: s.business.token })).status, 400, 'at most 30 s')
})

t.test('a request\'s id in upper case: read, its QR code, paid, and a long-poll woken by the payment', async (t) => {
  const { ctx, s, ask, pay } = await setup(t)
  const r = await ask()
  const ID = (r.body.id as string).toUpperCase()
  const read = await ctx.call('GET', `/v1/payment-requests/${ID}`, { token: s.business.token })
  t.equal(read.status, 200)
  t.equal(read.body.id, r.body.id, 'answered with the id as stored')
  t.equal((await ctx.call('GET', `/v1/payment-requests/${ID}/qr.svg`, { token: s.business.token })).status, 200)
  const waiting = ctx.call('GET', `/v1/payment-requests/${ID}?waitSeconds=20`, { token: s.business.token })
  for (const deadline = Date.now() + 10_000; ctx.app.services.requests.waiting() < 1;) {
    if (Date.now() > deadline) throw new Error('the GET never waited')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  const started = Date.now()
  t.equal((await pay(ID)).status, 201)
  const res = await waiting
  t.equal(res.body.status, 'paid')
  t.ok(Date.now() - started < 5000, `woken by the payment in ${Date.now() - started} ms, not after 20 s`)
})

t.test('long-polls per caller: past REQUESTS_WAITERS_PER_CALLER one caller\'s are answered at once, and others still wait', async (t) => {
  const { ctx, s, ask, pay } = await setup(t, undefined, { REQUESTS_WAITERS_PER_CALLER: 2 })
  const r = await ask()
  const poll = (token: string) => ctx.call('GET', `/v1/payment-requests/${r.body.id as string}?waitSeconds=20`, { token })
  const waitingFor = async (n: number) => {
    for (const deadline = Date.now() + 10_000; ctx.app.services.requests.waiting() < n;) {
      if (Date.now() > deadline) throw new Error(`${n} long-polls never waited`)
      await new Promise(resolve => setTimeout(resolve, 5))
    }
  }
  const held = [poll(s.business.token), poll(s.business.token)]
  await waitingFor(2)
  const t0 = Date.now()
  const third = await poll(s.business.token)
  t.equal(third.body.status, 'pending', 'the caller\'s third is answered at once, as it stands')
  t.ok(Date.now() - t0 < 5000, `in ${Date.now() - t0} ms, not after 20 s`)
  t.equal(ctx.app.services.requests.waiting(), 2)
  const members = poll(s.member.token)
  await waitingFor(3)
  t.pass('another caller\'s long-poll waits')
  t.equal((await pay(r.body.id)).status, 201)
  t.same((await Promise.all([...held, members])).map(x => x.body.status), ['paid', 'paid', 'paid'])
})

t.test('lists both ways with cursor pagination; QR codes as SVG and PNG; API keys need requests:write', async (t) => {
  const { ctx, s, ask, pay } = await setup(t)
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await ask({ amount: `${i + 1}.00` })).body.id)
  await pay(ids[1])
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const q: string = cursor == null ? '' : `&cursor=${cursor}`
    const page = await ctx.call('GET', `/v1/accounts/${s.business.accountId}/payment-requests?limit=2${q}`, { token: s.business.token })
    t.equal(page.status, 200)
    t.ok(page.body.items.length <= 2)
    seen.push(...page.body.items.map((x: { id: string }) => x.id))
    cursor = page.body.nextCursor
  } while (cursor != null)
  t.same(seen, [...ids].reverse(), 'every request once, newest first')
  const paidList = await ctx.call('GET', `/v1/accounts/${s.member.accountId}/payment-requests?status=paid`, { token: s.member.token })
  t.same(paidList.body.items.map((x: { id: string }) => x.id), [ids[1]], 'the payer sees the one it paid')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.business.accountId}/payment-requests`, { token: s.member.token })).status, 404, 'not another\'s account')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.business.accountId}/payment-requests?cursor=bad`, { token: s.business.token })).status, 400)

  const svg = await ctx.call('GET', `/v1/payment-requests/${ids[0]}/qr.svg`, { token: s.member.token })
  t.equal(svg.status, 200)
  t.match(svg.headers['content-type'], /^image\/svg\+xml/)
  t.match(svg.text, /^<svg[^>]*viewBox/)
  t.notMatch(svg.text, /<script/i)
  const png = await ctx.app.inject({ method: 'GET', url: `/v1/payment-requests/${ids[0]}/qr.png`, headers: { authorization: `Bearer ${s.member.token}` } })
  t.equal(png.statusCode, 200)
  t.equal(png.headers['content-type'], 'image/png')
  t.same([...png.rawPayload.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG')
  // without PUBLIC_URL links are made from the Host header: only a host name (or IP literal) and port are taken
  const withHost = async (host: string, what: string) => await ctx.app.inject({ method: 'GET', url: `/v1/payment-requests/${ids[0]}/${what}`, headers: { authorization: `Bearer ${s.member.token}`, host } })
  for (const [host, why] of [['evil.example"><script>alert(1)</script>', 'markup'], ['a'.repeat(2400), 'too long for a QR code'], ['a b', 'a space']]) {
    for (const what of ['qr.png', 'qr.svg', '?waitSeconds=0']) {
      const r = await withHost(host, what)
      t.equal(r.statusCode, 400, `a Host with ${why}: ${what} answers 400`)
      t.equal(r.json().code, 'BAD_REQUEST')
    }
  }
  for (const host of ['pay.example.org', 'pay.example.org:8443', '127.0.0.1:3000', '[::1]:3000', 'circulate_api:3000']) {
    const r = await withHost(host, '?waitSeconds=0')
    t.equal(r.statusCode, 200, host)
    t.equal(r.json().payUrl, `http://${host}/pay/${ids[0]}`, `${host}: the link is made from it`)
  }
  // paying answers the transfer, with no link: any Host will do
  const open = await ask()
  const paidAnyHost = await ctx.app.inject({
    method: 'POST', url: `/v1/payment-requests/${open.body.id as string}/payments`, payload: { fromAccount: s.member.accountId, channel: 'till' },
    headers: { authorization: `Bearer ${s.member.token}`, 'idempotency-key': 'any-host', host: 'a b' },
  })
  t.equal(paidAnyHost.statusCode, 201, 'a payment through a Host that could not make a link')

  const mk = async (scopes: string[]) => {
    const key = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: `till-${k('k')}`, scopes } })
    t.equal(key.status, 201, key.text)
    return (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: key.body.key } })).body.accessToken as string
  }
  const till = await mk(['requests:write'])
  const viaKey = await ask({}, till)
  t.equal(viaKey.status, 201, 'an API key with requests:write asks')
  t.equal((await ctx.call('GET', `/v1/payment-requests/${viaKey.body.id}?waitSeconds=0`, { token: till })).status, 200, 'and reads')
  t.equal((await ctx.call('POST', `/v1/payment-requests/${viaKey.body.id}/cancel`, { token: till })).status, 200, 'and cancels')
  const reader = await mk(['statements:read'])
  t.equal((await ask({}, reader)).status, 403, 'without the scope it may not ask')
})

t.test('behind a trusted proxy the forwarded protocol makes the link, and only http or https does', async (t) => {
  const ctx = await buildTestApp(t, { TRUST_PROXY: true })
  const s = await scenario(ctx)
  const r = await ctx.call('POST', `/v1/currencies/${s.code}/payment-requests`, {
    token: s.business.token, key: 'proxy-req', body: { toAccount: s.business.accountId, amount: '1.00', reference: 'x' },
  })
  t.equal(r.status, 201)
  const get = async (proto: string) => await ctx.app.inject({
    method: 'GET', url: `/v1/payment-requests/${r.body.id as string}`,
    headers: { authorization: `Bearer ${s.member.token}`, host: 'pay.example.org', 'x-forwarded-proto': proto },
  })
  t.equal((await get('https')).json().payUrl, `https://pay.example.org/pay/${r.body.id as string}`, 'https from the proxy')
  for (const proto of ['javascript', 'ftp']) {
    const bad = await get(proto)
    t.equal(bad.statusCode, 400, `${proto}: never put into a link`)
    t.equal(bad.json().code, 'BAD_REQUEST')
  }
})
