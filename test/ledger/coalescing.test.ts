import t from 'tap'
import { balance, buildTestApp, issue, scenario } from '../helper.js'
import { ledgerViolations } from '../../support/invariants.js'

// Concurrent single payments are posted together through the batch function (src/ledger/coalescer.ts); each must
// still behave exactly as if it had been posted alone.
t.test('concurrent payments overdrawing one account: exactly as many succeed as the funds allow', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: `over-${i}`, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
  })))
  t.equal(results.filter(r => r.status === 201).length, 10)
  t.equal(results.filter(r => r.status === 422 && r.body.code === 'INSUFFICIENT_FUNDS').length, 40)
  t.equal(await balance(ctx, s.member.accountId), '0.00')
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('the same key sent ten times at once: one payment, the others replay it or are told it is in flight', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const body = { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '2.50', channel: 'app', reference: 'once' }
  const results = await Promise.all(Array.from({ length: 10 }, async () =>
    await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'same', body })))
  const created = results.filter(r => r.status === 201)
  t.not(created.length, 0, 'at least one answer carries the payment')
  t.equal(new Set(created.map(r => r.body.id)).size, 1, 'every 201 is the same transfer')
  t.same(results.filter(r => r.status !== 201).map(r => [r.status, r.body.code]), Array(10 - created.length).fill([409, 'IDEMPOTENCY_IN_FLIGHT']),
    'the rest are 409 in flight')
  t.equal(await balance(ctx, s.member.accountId), '7.50', 'paid once')
})

t.test('with coalescing off (PAYMENT_COALESCE_MAX=0) a payment answers byte for byte the same way', async (t) => {
  const ctx = await buildTestApp(t, { PAYMENT_COALESCE_MAX: 0 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const body = { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.20', channel: 'app', metadata: { till: '3', a: 'b' } }
  const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'alone', body })
  t.equal(pay.status, 201)
  const got = await ctx.call('GET', `/v1/transfers/${pay.body.id}`, { token: s.member.token })
  t.equal(got.text, pay.text)
  const batch = await ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, { token: s.member.token, body: { items: [{ ...body, idempotencyKey: 'alone' }] } })
  t.match(batch.body.items[0], { status: 201, replayed: true })
  t.same(batch.body.items[0].transfer, pay.body, 'the batch replays what the single payment posted')
})
