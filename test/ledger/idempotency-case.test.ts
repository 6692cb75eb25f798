import t from 'tap'
import { balance, buildTestApp, issue, scenario } from '../helper.js'

// The path names its currency and ids in either case (a code is looked up in capitals, a uuid is one in either), so
// a retry that writes them in another case is the same request: it replays what the first posted instead of being
// told its key was used for another request (routes/idempotency.ts).
t.test('a retry with the currency code or an id in another case replays', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const body = { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' }
  const first = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'case-1', body })
  t.equal(first.status, 201)
  t.equal(first.headers['idempotent-replayed'], 'false')
  const lower = await ctx.call('POST', `/v1/currencies/${s.code.toLowerCase()}/payments`, { token: s.member.token, key: 'case-1', body })
  t.equal(lower.status, 201, 'the code in small letters is the same currency and the same request')
  t.equal(lower.headers['idempotent-replayed'], 'true')
  t.equal(lower.body.id, first.body.id)
  const item = await ctx.call('POST', `/v1/currencies/${s.code.toLowerCase()}/transfers/batch`, { token: s.member.token, body: { items: [{ ...body, idempotencyKey: 'case-1' }] } })
  t.equal(item.status, 200)
  t.match(item.body.items[0], { status: 201, replayed: true, transfer: { id: first.body.id } }, 'a batch item under the same key replays too')
  t.equal(await balance(ctx, s.member.accountId), '9.00', 'one payment left the member')

  const rev = await ctx.call('POST', `/v1/transfers/${first.body.id as string}/reversal`, { token: ctx.issuerToken, key: 'case-rev' })
  t.equal(rev.status, 201)
  const upper = await ctx.call('POST', `/v1/transfers/${(first.body.id as string).toUpperCase()}/reversal`, { token: ctx.issuerToken, key: 'case-rev' })
  t.equal(upper.status, 201, 'the transfer id in capitals is the same transfer and the same request')
  t.equal(upper.headers['idempotent-replayed'], 'true')
  t.equal(upper.body.id, rev.body.id)
  t.equal(await balance(ctx, s.member.accountId), '10.00', 'reversed once')

  const other = await ctx.call('POST', `/v1/currencies/${s.code.toLowerCase()}/payments`, { token: s.member.token, key: 'case-1', body: { ...body, amount: '2.00' } })
  t.equal(other.status, 422, 'another body under the key is still refused')
  t.equal(other.body.code, 'IDEMPOTENCY_KEY_REUSED')
})
