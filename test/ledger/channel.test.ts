import t from 'tap'
import { balance, buildTestApp, issue, scenario } from '../helper.js'

// The channel sets the receiver's fee, so the payer may not claim one it could not have used: text payments are
// the SMS gateway's, and a member, a business or an API key naming `text` over HTTP is refused on every route that
// takes a channel, with nothing posted. The payment request stays payable. An issuer may still record one.

t.test('text is refused over HTTP to members, businesses and API keys; an issuer may record one', async (t) => {
  const ctx = await buildTestApp(t)
  // text dearer than app, so a claimed text payment would show in the receiver's fee
  const s = await scenario(ctx, { fees: { text: '0.05' } })
  const fees = s.currency.systemAccounts.fees as string
  await issue(ctx, s.code, s.member.accountId, '100.00')
  await issue(ctx, s.code, s.business.accountId, '20.00')
  const unchanged = async () => {
    t.equal(await balance(ctx, s.member.accountId), '100.00', 'the member paid nothing')
    t.equal(await balance(ctx, s.business.accountId), '20.00', 'the business was charged no fee')
    t.equal(await balance(ctx, fees), '0.00', 'the fee account gained nothing')
  }
  const body = { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '10.00', channel: 'text' }

  const single = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'text-1', body })
  t.equal(single.status, 422, single.text)
  t.match(single.headers['content-type'], /^application\/problem\+json/)
  t.equal(single.body.code, 'CHANNEL_RESERVED')
  t.same(single.body.errors.map((e: { pointer: string }) => e.pointer), ['/channel'])
  await unchanged()

  const batch = await ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, {
    token: s.member.token, body: { items: [{ idempotencyKey: 'b-1', ...body, amount: '1.00', channel: 'app' }, { idempotencyKey: 'b-2', ...body }] },
  })
  t.equal(batch.status, 200, batch.text)
  t.same(batch.body.items.map((x: any) => [x.status, x.problem?.code ?? null, x.problem?.errors?.[0]?.pointer ?? null]),
    [[201, null, null], [422, 'CHANNEL_RESERVED', '/items/1/channel']], 'the app item posts, the text item is refused')
  const atomic = await ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, {
    token: s.member.token, body: { atomic: true, items: [{ idempotencyKey: 'a-1', ...body, amount: '1.00', channel: 'app' }, { idempotencyKey: 'a-2', ...body }] },
  })
  t.equal(atomic.status, 422, atomic.text)
  t.equal(await balance(ctx, s.member.accountId), '99.00', 'only the non-atomic batch\'s app item was posted')

  // a business's till key asking for text
  const created = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['payments:write', 'requests:write'] } })
  t.equal(created.status, 201, created.text)
  const keyToken = (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: created.body.key } })).body.accessToken as string
  const byKey = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: keyToken, key: 'text-key', body: { fromAccount: s.business.accountId, toAccount: s.member.accountId, amount: '5.00', channel: 'text' },
  })
  t.equal(byKey.status, 422, byKey.text)
  t.equal(byKey.body.code, 'CHANNEL_RESERVED')
  t.equal(await balance(ctx, s.business.accountId), '20.98', 'the business kept its 20.00 and the app payment less its fee')

  // a payment request paid "by text" is refused and stays pending; paid by app it goes through at app's rate
  const req = await ctx.call('POST', `/v1/currencies/${s.code}/payment-requests`, {
    token: keyToken, key: 'req-1', body: { toAccount: s.business.accountId, amount: '4.00' },
  })
  t.equal(req.status, 201, req.text)
  const byText = await ctx.call('POST', `/v1/payment-requests/${req.body.id as string}/payments`, {
    token: s.member.token, key: 'pr-text', body: { fromAccount: s.member.accountId, channel: 'text' },
  })
  t.equal(byText.status, 422, byText.text)
  t.equal(byText.body.code, 'CHANNEL_RESERVED')
  t.equal((await ctx.call('GET', `/v1/payment-requests/${req.body.id as string}`, { token: s.member.token })).body.status, 'pending')
  const byApp = await ctx.call('POST', `/v1/payment-requests/${req.body.id as string}/payments`, {
    token: s.member.token, key: 'pr-app', body: { fromAccount: s.member.accountId, channel: 'app' },
  })
  t.equal(byApp.status, 201, byApp.text)
  t.equal(byApp.body.related[0].amount, '0.08', 'the payee pays app\'s 2%, not text\'s 5%')

  // the issuer records a text payment by hand, at text's rate
  const byIssuer = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: ctx.issuerToken, key: 'text-issuer', body })
  t.equal(byIssuer.status, 201, byIssuer.text)
  t.equal(byIssuer.body.channel, 'text')
  t.equal(byIssuer.body.related[0].amount, '0.50', 'text\'s 5% of 10.00')
})
