import t from 'tap'
import { buildTestApp, ISSUER, scenario } from './fixtures/index.js'

// GET /v1/auth/me: a client finds its participant and accounts without decoding its token. It tells each caller
// about itself only, and answers an API key's token whatever the key's scopes.

t.test('each token is told who it speaks for, and nothing of anyone else', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const me = async (token?: string) => await ctx.call('GET', '/v1/auth/me', token == null ? {} : { token })

  const member = await me(s.member.token)
  t.equal(member.status, 200, member.text)
  t.same(member.body, {
    role: 'member', username: s.member.username, currency: s.code, participantId: s.member.id, accounts: [s.member.accountId], apiKey: null,
  })
  const participant = await ctx.call('GET', `/v1/participants/${s.member.id}`, { token: s.member.token })
  t.same(member.body.accounts, participant.body.accounts.map((a: { id: string }) => a.id), 'the same accounts as the participant lists')

  t.match((await me(s.business.token)).body, { role: 'business', participantId: s.business.id, accounts: [s.business.accountId] })

  const staff = await ctx.call('POST', `/v1/currencies/${s.code}/researchers`, { token: ctx.issuerToken, body: { name: 'R', username: 'who-researcher', password: 'staff-password-1' } })
  t.equal(staff.status, 201, staff.text)
  t.same((await me(await ctx.token('who-researcher', 'staff-password-1'))).body,
    { role: 'researcher', username: 'who-researcher', currency: s.code, participantId: null, accounts: [], apiKey: null })
  t.same((await me(ctx.issuerToken)).body,
    { role: 'platform_issuer', username: ISSUER.username, currency: null, participantId: null, accounts: [], apiKey: null }, 'the platform issuer belongs to no one currency')

  // an API key with one narrow scope: told its key and scopes, still refused elsewhere
  const created = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['requests:write'] } })
  const keyToken = (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: created.body.key } })).body.accessToken as string
  const byKey = await me(keyToken)
  t.same(byKey.body, {
    role: 'business', username: null, currency: s.code, participantId: s.business.id, accounts: [s.business.accountId],
    apiKey: { id: created.body.id, scopes: ['requests:write'] },
  })
  t.equal((await ctx.call('GET', `/v1/accounts/${s.business.accountId}`, { token: keyToken })).status, 403, 'the route opens nothing else to the key')

  const anonymous = await me()
  t.same([anonymous.status, anonymous.body.code], [401, 'UNAUTHENTICATED'])
  t.equal((await me('not-a-token')).status, 401)
  // a revoked key's token is refused here as everywhere
  t.equal((await ctx.call('DELETE', `/v1/api-keys/${created.body.id as string}`, { token: s.business.token })).status, 204)
  t.equal((await me(keyToken)).status, 401, 'a revoked key\'s token')
})
