import t from 'tap'
import { balance, buildTestApp, issue, registerMember, scenario } from './fixtures/index.js'

// The ledger with real tokens from POST /v1/auth/token: who may move and see what.
t.test('a member pays only from its own account; others cannot see it; a researcher sees no accounts', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const other = await registerMember(ctx, s.code)
  await ctx.call('POST', `/v1/currencies/${s.code}/researchers`, { token: ctx.issuerToken, body: { name: 'R', username: 'researcher', password: 'research-pass' } })
  const researcher = await ctx.token('researcher', 'research-pass')
  await issue(ctx, s.code, s.member.accountId, '20.00')
  await issue(ctx, s.code, other.accountId, '20.00')
  const pay = async (token: string, from: string, key: string) => await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token, key, body: { fromAccount: from, toAccount: s.business.accountId, amount: '5.00', channel: 'app' },
  })

  t.equal((await pay(s.member.token, s.member.accountId, 'own')).status, 201, 'from its own account')
  const theft = await pay(other.token, s.member.accountId, 'theft')
  t.equal(theft.status, 404, 'another member paying from it: not found (its existence is not revealed)')
  t.equal(theft.body.code, 'ACCOUNT_NOT_FOUND')
  t.equal(await balance(ctx, s.member.accountId), '15.00', 'nothing moved')

  const peek = await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: other.token })
  t.equal(peek.status, 404, 'another member reading it: 404')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}/statement`, { token: other.token })).status, 404, 'or its statement')
  t.equal((await ctx.call('GET', `/v1/participants/${s.member.id}`, { token: other.token })).status, 404, 'or its owner')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })).body.balance, '15.00', 'the owner reads it')

  for (const url of [`/v1/accounts/${s.member.accountId}`, `/v1/accounts/${s.member.accountId}/statement`, `/v1/participants/${s.member.id}`]) {
    const r = await ctx.call('GET', url, { token: researcher })
    t.equal(r.status, 403, `researcher: ${url} is 403`)
    t.equal(r.body.code, 'FORBIDDEN')
  }
  t.equal((await pay(researcher, s.member.accountId, 'res')).status, 403, 'a researcher moves no money')
})
