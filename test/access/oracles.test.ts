import t, { type Test } from 'tap'
import { REQUEST_ID } from '../../src/app.js'
import { listenHost, loadConfig } from '../../src/config.js'
import { buildTestApp, issue, registerMember, scenario } from './fixtures/index.js'

// Anything outside the caller's reach answers exactly like something that does not exist: the status, the code and
// the detail of a refusal must not tell an id of another currency from an id nobody has.
const same = (t: Test, a: { status: number, body: any }, b: { status: number, body: any }, what: string) =>
  t.same([a.status, a.body.code, a.body.detail, a.body.errors], [b.status, b.body.code, b.body.detail, b.body.errors], what)

t.test('another currency\'s transfers and accounts answer like unknown ones', async (t) => {
  const ctx = await buildTestApp(t)
  const a = await scenario(ctx, { code: 'AAA' })
  const b = await scenario(ctx, { code: 'BBB' })
  await issue(ctx, 'AAA', a.member.accountId, '50.00')
  await issue(ctx, 'BBB', b.member.accountId, '50.00')
  await ctx.call('POST', '/v1/currencies/AAA/issuers', { token: ctx.issuerToken, body: { name: 'A desk', username: 'a-desk', password: 'desk-password' } })
  const aIssuer = await ctx.token('a-desk', 'desk-password')
  const unknown = '00000000-0000-7000-8000-00000000abcd'
  const bPayment = (await ctx.call('POST', '/v1/currencies/BBB/payments', {
    token: b.member.token, key: 'b-1', body: { fromAccount: b.member.accountId, toAccount: b.business.accountId, amount: '1.00', channel: 'app' },
  })).body.id as string

  const reverse = async (id: string, token: string) => await ctx.call('POST', `/v1/transfers/${id}/reversal`, { token, key: `r-${id}` })
  same(t, await reverse(bPayment, aIssuer), await reverse(unknown, aIssuer), 'an issuer of AAA reversing a BBB transfer: as if unknown')
  t.equal((await reverse(bPayment, aIssuer)).status, 404)
  const other = await registerMember(ctx, 'BBB')
  same(t, await reverse(bPayment, other.token), await reverse(unknown, other.token), 'a member who is no party: as if unknown')
  t.equal((await reverse(bPayment, b.member.token)).status, 403, 'a party, who can read the transfer, is told it may not reverse it')

  const pay = async (token: string, from: string, to: string, key: string, code = 'AAA') => await ctx.call('POST', `/v1/currencies/${code}/payments`, {
    token, key, body: { fromAccount: from, toAccount: to, amount: '1.00', channel: 'app' },
  })
  same(t, await pay(a.member.token, a.member.accountId, b.business.accountId, 'x-1'), await pay(a.member.token, a.member.accountId, unknown, 'x-2'),
    'a member paying to an account of another currency: as if the account did not exist')
  t.equal((await pay(a.member.token, a.member.accountId, b.business.accountId, 'x-3')).status, 404)
  same(t, await pay(aIssuer, a.member.accountId, b.business.accountId, 'x-4'), await pay(aIssuer, a.member.accountId, unknown, 'x-5'),
    'an issuer of AAA too')
  const issuance = async (to: string, key: string) => await ctx.call('POST', '/v1/currencies/AAA/issuances', {
    token: aIssuer, key, body: { toAccount: to, amount: '1.00', sterlingReference: 'bank' },
  })
  same(t, await issuance(b.member.accountId, 'i-1'), await issuance(unknown, 'i-2'), 'issuing into another currency\'s account: as if unknown')
  const batch = async (to: string, key: string) => (await ctx.call('POST', '/v1/currencies/AAA/transfers/batch', {
    token: a.member.token, body: { items: [{ idempotencyKey: key, fromAccount: a.member.accountId, toAccount: to, amount: '1.00', channel: 'app' }] },
  })).body.items[0]
  const [foreign, none] = [await batch(b.business.accountId, 'bt-1'), await batch(unknown, 'bt-2')]
  t.same([foreign.status, foreign.problem.code, foreign.problem.detail], [none.status, none.problem.code, none.problem.detail], 'a batch item too')
  const atomic = async (to: string, key: string) => await ctx.call('POST', '/v1/currencies/AAA/transfers/batch', {
    token: a.member.token, body: { atomic: true, items: [{ idempotencyKey: key, fromAccount: a.member.accountId, toAccount: to, amount: '1.00', channel: 'app' }] },
  })
  same(t, await atomic(b.business.accountId, 'at-1'), await atomic(unknown, 'at-2'), 'and an atomic batch')

  const platform = await pay(ctx.issuerToken, a.member.accountId, b.business.accountId, 'p-1')
  t.same([platform.status, platform.body.code], [422, 'CURRENCY_MISMATCH'], 'the platform issuer, who sees every currency, is told the real reason')
  t.equal((await ctx.call('GET', `/v1/accounts/${a.member.accountId}`, { token: a.member.token })).body.balance, '50.00', 'nothing moved')
})

t.test('X-Request-Id: a short safe one is kept, anything else replaced', async (t) => {
  const ctx = await buildTestApp(t)
  const probe = async (id: string) => (await ctx.app.inject({ method: 'GET', url: '/v1/currencies/NOPE', headers: { 'x-request-id': id } })).json().requestId as string
  t.equal(await probe('trace-42:abc.DEF_9'), 'trace-42:abc.DEF_9', 'kept, so a trace crosses services')
  for (const bad of ['x'.repeat(129), 'x'.repeat(6033), 'a b', 'a/b', '<script>', 'é', '']) {
    const got = await probe(bad)
    t.not(got, bad, `${JSON.stringify(bad.slice(0, 20))}${bad.length > 20 ? '...' : ''} is not kept`)
    t.match(got, /^[0-9a-f]{8}-[0-9a-f]{4}-/, 'a fresh id instead')
  }
  t.ok(REQUEST_ID.test('x'.repeat(128)) && !REQUEST_ID.test('x'.repeat(129)))
  // what the audit trail keeps is the checked id
  await ctx.app.inject({ method: 'POST', url: '/v1/auth/token', headers: { 'x-request-id': 'y'.repeat(6033) }, payload: { username: 'nobody', password: 'wrong-password' } })
  const rows = await ctx.app.prisma.auditEvent.findMany({ where: { action: 'auth.login', actorName: 'nobody' } })
  t.equal(rows.length, 1)
  t.ok((rows[0].requestId ?? '').length <= 128, `the audit row keeps a short id (${rows[0].requestId?.length})`)
})

t.test('the service listens on this machine only when it runs on its embedded demo database', async (t) => {
  t.equal(listenHost(loadConfig({}), true), '127.0.0.1', 'embedded demo: 127.0.0.1')
  t.equal(listenHost(loadConfig({ DATABASE_URL: 'postgresql://db/x' }), false), '0.0.0.0', 'a real database: every interface')
  t.equal(listenHost(loadConfig({ HOST: '0.0.0.0' }), true), '0.0.0.0', 'HOST decides when set (the Dockerfile sets 0.0.0.0)')
})
