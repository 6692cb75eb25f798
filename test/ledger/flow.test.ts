import t from 'tap'
import { balance, buildTestApp, issue, scenario } from '../helper.js'

// The README's walk-through, end to end: issue 100.00, pay 12.60 by app, replay, reverse, read statements.
t.test('the README flow: issue, pay by app with its fee, replay, reverse, statements', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const fees = s.currency.systemAccounts.fees as string

  await issue(ctx, s.code, s.member.accountId, '100.00')
  t.equal(await balance(ctx, s.member.accountId), '100.00')

  const body = { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '12.60', channel: 'app', reference: 'coffee' }
  const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'pay-1', body })
  t.equal(pay.status, 201)
  t.equal(pay.body.kind, 'payment')
  t.equal(pay.body.amount, '12.60')
  t.equal(pay.body.related.length, 1, 'the fee is a second transfer of the same movement')
  t.match(pay.body.related[0], { kind: 'fee', amount: '0.25', fromAccount: s.business.accountId, toAccount: fees, parentId: pay.body.id })
  t.equal(await balance(ctx, s.member.accountId), '87.40')
  t.equal(await balance(ctx, s.business.accountId), '12.35')
  t.equal(await balance(ctx, fees), '0.25')

  const replay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'pay-1', body })
  t.equal(replay.status, 201)
  t.equal(replay.text, pay.text, 'the replay is byte-identical')
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.equal(await balance(ctx, s.member.accountId), '87.40', 'no second payment')

  const rev = await ctx.call('POST', `/v1/transfers/${pay.body.id}/reversal`, { token: ctx.issuerToken, key: 'rev-1' })
  t.equal(rev.status, 201)
  t.equal(rev.body.kind, 'reversal')
  t.equal(rev.body.reversesId, pay.body.id)
  t.equal(rev.body.related[0].reversesId, pay.body.related[0].id, 'the fee is reversed with its payment')
  t.equal(await balance(ctx, s.member.accountId), '100.00')
  t.equal(await balance(ctx, s.business.accountId), '0.00')
  t.equal(await balance(ctx, fees), '0.00')

  const again = await ctx.call('POST', `/v1/transfers/${pay.body.id}/reversal`, { token: ctx.issuerToken, key: 'rev-2' })
  t.equal(again.status, 422)
  t.equal(again.body.code, 'ALREADY_REVERSED')

  const ms = await ctx.call('GET', `/v1/accounts/${s.member.accountId}/statement`, { token: s.member.token })
  t.equal(ms.status, 200)
  t.same(ms.body.items.map((e: any) => [e.kind, e.amount, e.balanceAfter]),
    [['issuance', '100.00', '100.00'], ['payment', '-12.60', '87.40'], ['reversal', '12.60', '100.00']])
  const bs = await ctx.call('GET', `/v1/accounts/${s.business.accountId}/statement`, { token: s.business.token })
  t.same(bs.body.items.map((e: any) => [e.kind, e.amount, e.balanceAfter]),
    [['payment', '12.60', '12.60'], ['fee', '-0.25', '12.35'], ['reversal', '0.25', '12.60'], ['reversal', '-12.60', '0.00']])

  const csv = await ctx.call('GET', `/v1/accounts/${s.member.accountId}/statement?format=csv`, { token: s.member.token })
  t.equal(csv.status, 200)
  t.match(csv.headers['content-type'], /^text\/csv/)
  t.equal(csv.text.trim().split('\n').length, 4, 'a header and three entries')

  const got = await ctx.call('GET', `/v1/transfers/${pay.body.id}`, { token: s.business.token })
  t.equal(got.status, 200, 'a party reads its transfer')
  t.equal(got.text, pay.text, 'GET gives the same representation as the POST')
})
