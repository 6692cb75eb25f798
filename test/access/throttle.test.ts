import t from 'tap'
import { lockoutSeconds } from '../../src/domain/access.js'
import { loadConfig } from '../../src/config.js'
import { buildTestApp, issue, PROBLEM, scenario } from './fixtures/index.js'

const sleep = async (ms: number) => await new Promise(resolve => setTimeout(resolve, ms))

t.test('lockout grows exponentially after the allowed failures, up to a cap', async (t) => {
  const p = { maxFailures: 5, baseSeconds: 2, maxSeconds: 900 }
  t.same([1, 4, 5, 6, 7, 8, 12, 15, 100].map(n => lockoutSeconds(n, p)), [0, 0, 2, 4, 8, 16, 256, 900, 900])
})

t.test('failed logins from one address lock it out with 429, doubling each time; other addresses are unaffected', async (t) => {
  const ctx = await buildTestApp(t, { LOGIN_MAX_FAILURES: 3, LOGIN_LOCKOUT_SECONDS: 1 })
  const s = await scenario(ctx)
  const login = async (password: string, remoteAddress = '198.51.100.7') =>
    await ctx.call('POST', '/v1/auth/token', { body: { username: s.member.username, password }, remoteAddress })

  for (let i = 1; i <= 3; i++) t.equal((await login('wrong-password')).status, 401, `failure ${i}: 401`)
  const locked = await login('member-password')
  t.equal(locked.status, 429, 'locked out: even the right password is not looked at')
  t.match(locked.headers['content-type'], PROBLEM)
  t.equal(locked.body.code, 'RATE_LIMITED')
  t.equal(locked.headers['retry-after'], '1', 'the first lockout is the base time')
  const key = await ctx.call('POST', '/v1/auth/token', { body: { apiKey: 'circ_' + 'A'.repeat(43) }, remoteAddress: '198.51.100.7' })
  t.equal(key.status, 429, 'API key exchanges from the address are locked out too')
  t.equal((await login('member-password', '198.51.100.8')).status, 200, 'another address logs in')

  await sleep(1100)
  t.equal((await login('wrong-password')).status, 401, 'after the lockout a failure is answered again')
  const longer = await login('member-password')
  t.equal(longer.status, 429)
  t.equal(longer.headers['retry-after'], '2', 'and the next lockout is twice as long')
  await sleep(2100)
  t.equal((await login('member-password')).status, 200, 'once it ends, the right password works')

  const failures = await ctx.app.prisma.auditEvent.count({ where: { action: 'auth.login', outcome: 'failure', clientAddress: '198.51.100.7' } })
  t.equal(failures, 4, 'every failure is audited; the locked-out attempts are refused before they count')
})

t.test('an unknown API key counts as a failed login', async (t) => {
  const ctx = await buildTestApp(t, { LOGIN_MAX_FAILURES: 2, LOGIN_LOCKOUT_SECONDS: 60 })
  for (const apiKey of ['circ_' + 'B'.repeat(43), 'not-a-key']) {
    const r = await ctx.call('POST', '/v1/auth/token', { body: { apiKey }, remoteAddress: '192.0.2.1' })
    t.equal(r.status, 401)
    t.equal(r.body.code, 'INVALID_CREDENTIALS')
  }
  const r = await ctx.call('POST', '/v1/auth/token', { body: { apiKey: 'circ_' + 'C'.repeat(43) }, remoteAddress: '192.0.2.1' })
  t.equal(r.status, 429)
  t.ok(Number(r.headers['retry-after']) > 50, 'retry after the configured lockout')
})

t.test('IPv6 clients are counted per /64', async (t) => {
  const ctx = await buildTestApp(t, { LOGIN_MAX_FAILURES: 1, LOGIN_LOCKOUT_SECONDS: 60 })
  const login = async (remoteAddress: string) => await ctx.call('POST', '/v1/auth/token', { body: { username: 'x', password: 'y' }, remoteAddress })
  t.equal((await login('2001:db8:1:2::1')).status, 401)
  t.equal((await login('2001:db8:1:2:ffff::9')).status, 429, 'another host of the same /64 is locked out too')
  t.equal((await login('2001:db8:1:3::1')).status, 401, 'the next /64 is not')
})

t.test('behind a proxy (TRUST_PROXY) the address comes from X-Forwarded-For', async (t) => {
  const ctx = await buildTestApp(t, { TRUST_PROXY: true, LOGIN_MAX_FAILURES: 1, LOGIN_LOCKOUT_SECONDS: 60 })
  const from = (ip: string) => ({ 'x-forwarded-for': ip })
  t.equal((await ctx.call('POST', '/v1/auth/token', { body: { username: 'x', password: 'y' }, headers: from('203.0.113.9') })).status, 401)
  t.equal((await ctx.call('POST', '/v1/auth/token', { body: { username: 'x', password: 'y' }, headers: from('203.0.113.9') })).status, 429)
  t.equal((await ctx.call('POST', '/v1/auth/token', { body: { username: 'x', password: 'y' }, headers: from('203.0.113.10') })).status, 401,
    'another client behind the same proxy is not locked out')
})

t.test('money-moving routes are limited per principal, one budget across them, with 429 problem+json', async (t) => {
  const ctx = await buildTestApp(t, { RATE_LIMIT_MONEY_PER_MINUTE: 3 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.business.accountId, '50.00') // the platform issuer's 1st
  const pay = async (token: string, key: string) => await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token, key, body: { fromAccount: s.business.accountId, toAccount: s.member.accountId, amount: '1.00', channel: 'till' },
  })
  t.equal((await pay(s.business.token, 'a')).status, 201)
  t.equal((await ctx.call('POST', `/v1/currencies/${s.code}/redemptions`, { token: s.business.token, key: 'b', body: { fromAccount: s.business.accountId, amount: '5.00' } })).status, 201)
  t.equal((await pay(s.business.token, 'c')).status, 201)
  const limited = await pay(s.business.token, 'd')
  t.equal(limited.status, 429, 'the fourth money movement in the minute is refused')
  t.match(limited.headers['content-type'], PROBLEM)
  t.equal(limited.body.code, 'RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) > 0, 'with Retry-After')
  t.equal((await issue(ctx, s.code, s.member.accountId, '1.00')).kind, 'issuance', 'another principal has its own budget')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.business.accountId}`, { token: s.business.token })).status, 200, 'reads are not limited')
})

t.test('the default limits leave room for a benchmark from one principal', async (t) => {
  const c = loadConfig({})
  t.ok(c.RATE_LIMIT_MONEY_PER_MINUTE >= 2000 * 60, `${c.RATE_LIMIT_MONEY_PER_MINUTE}/min ≥ 2,000/s`)
  t.equal(c.LOGIN_MAX_FAILURES, 5)
})
