import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { buildTestApp, issue, PROBLEM, registerMember, scenario } from './fixtures/index.js'

// Login attempts are counted before the password is checked, per address and per username, in one statement
// (migration 20261201010000_login_attempts). The throttle reads an injected clock here, so lockouts end when the
// test says, not after sleeping.
const testClock = () => {
  let now = Date.parse('2026-06-01T12:00:00Z')
  return { now: () => new Date(now), advance: (seconds: number) => { now += seconds * 1000 } }
}

t.test('failed logins lock out with 429, doubling each time; other addresses and usernames are unaffected', async (t) => {
  const clock = testClock()
  const ctx = await buildTestApp(t, { LOGIN_MAX_FAILURES: 3, LOGIN_LOCKOUT_SECONDS: 1 }, { loginClock: clock.now })
  const s = await scenario(ctx)
  const other = await registerMember(ctx, s.code)
  const login = async (password: string, remoteAddress = '198.51.100.7', username = s.member.username) =>
    await ctx.call('POST', '/v1/auth/token', { body: { username, password }, remoteAddress })

  for (let i = 1; i <= 3; i++) t.equal((await login('wrong-password')).status, 401, `failure ${i}: 401`)
  const locked = await login('member-password')
  t.equal(locked.status, 429, 'locked out: even the right password is not looked at')
  t.match(locked.headers['content-type'], PROBLEM)
  t.equal(locked.body.code, 'RATE_LIMITED')
  t.equal(locked.headers['retry-after'], '1', 'the first lockout is the base time')
  const key = await ctx.call('POST', '/v1/auth/token', { body: { apiKey: 'circ_' + 'A'.repeat(43) }, remoteAddress: '198.51.100.7' })
  t.equal(key.status, 429, 'API key exchanges from the address are locked out too')
  t.equal((await login('member-password', '198.51.100.8')).status, 429, 'the username is locked out from another address too')
  t.equal((await login('member-password', '198.51.100.8', other.username)).status, 200, 'another user at another address logs in')

  clock.advance(1)
  t.equal((await login('wrong-password')).status, 401, 'after the lockout a failure is answered again')
  const longer = await login('member-password')
  t.equal(longer.status, 429)
  t.equal(longer.headers['retry-after'], '2', 'and the next lockout is twice as long')
  clock.advance(1.5)
  t.equal((await login('member-password')).status, 429, 'half a second before it ends, still locked')
  clock.advance(0.5)
  t.equal((await login('member-password')).status, 200, 'once it ends, the right password works')
  t.equal((await login('wrong-password', '198.51.100.9')).status, 401, 'and the username\'s count started again: a typo is answered')

  const failures = await ctx.app.prisma.auditEvent.count({ where: { action: 'auth.login', outcome: 'failure', actorName: s.member.username } })
  t.equal(failures, 5, 'every checked failure is audited; the locked-out attempts are refused before anything is checked')
})

t.test('200 wrong guesses at once, then the right one: only the allowed few are checked', async (t) => {
  const clock = testClock()
  // a pool that can hold the burst, and a wait for a connection long enough for a busy machine: this test is about
  // the lock's atomicity, not load shedding (a 2 s wait answered 503 to some of the 200 when the machine was loaded)
  const ctx = await buildTestApp(t, { DB_POOL_MAX: 30, DB_ACQUIRE_TIMEOUT_MS: 60000 }, { loginClock: clock.now })
  const s = await scenario(ctx)
  const max = loadConfig({}).LOGIN_MAX_FAILURES
  for (const [what, address] of [['from one address', () => '203.0.113.5'], ['each from its own address', (i: number) => `10.${i >> 8}.${i & 255}.7`]] as const) {
    const guesses = await Promise.all(Array.from({ length: 200 }, async (_, i) => await ctx.call('POST', '/v1/auth/token', {
      body: { username: s.member.username.toUpperCase(), password: `guess-${i}` }, remoteAddress: address(i),
    })))
    const checked = guesses.filter(g => g.status === 401).length
    const seen = JSON.stringify(Object.fromEntries([...new Set(guesses.map(g => `${g.status} ${String(g.body.code)}`))].map(k => [k, guesses.filter(g => `${g.status} ${String(g.body.code)}` === k).length])))
    t.equal(checked, max, `${what}: ${checked} of 200 guesses were checked (LOGIN_MAX_FAILURES is ${max}); answers ${seen}`)
    t.equal(guesses.filter(g => g.status === 429).length, 200 - max, `${what}: the rest are 429`)
    t.same(guesses.filter(g => g.status === 429).map(g => g.body.code), Array(200 - max).fill('RATE_LIMITED'), 'each 429 a rate-limit problem')
    const right = await ctx.call('POST', '/v1/auth/token', { body: { username: s.member.username, password: 'member-password' }, remoteAddress: '198.51.100.200' })
    t.equal(right.status, 429, `${what}: the right password after the lock is 429, from a fresh address too`)
    t.ok(Number(right.headers['retry-after']) >= 1)
    clock.advance(3601) // past the failure window: every count starts again
  }
  const audited = await ctx.app.prisma.auditEvent.count({ where: { action: 'auth.login', outcome: 'failure' } })
  t.equal(audited, 2 * max, 'exactly the checked guesses are in the audit trail')
  t.equal((await ctx.call('POST', '/v1/auth/token', { body: { username: s.member.username, password: 'member-password' } })).status, 200,
    'an hour later the member logs in')
})

t.test('usernames are unique and log in whatever their case', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const reg = async (username: string) => await ctx.call('POST', `/v1/currencies/${s.code}/members`, {
    token: ctx.issuerToken, body: { name: 'Ann', postcode: 'BS6 5AB', username, password: 'ann-password' },
  })
  t.equal((await reg('Ann.Smith')).status, 201)
  const taken = await reg('ann.SMITH')
  t.equal(taken.status, 409, 'the same name in another case is taken')
  t.equal(taken.body.code, 'USERNAME_TAKEN')
  const staff = await ctx.call('POST', `/v1/currencies/${s.code}/researchers`, { token: ctx.issuerToken, body: { name: 'R', username: 'ANN.SMITH', password: 'research-password' } })
  t.equal(staff.status, 409, 'for staff logins too')
  for (const typed of ['Ann.Smith', 'ann.smith', 'ANN.SMITH']) {
    const r = await ctx.call('POST', '/v1/auth/token', { body: { username: typed, password: 'ann-password' } })
    t.equal(r.status, 200, `"${typed}" logs in`)
  }
})

t.test('an unknown API key counts as a failed login', async (t) => {
  const ctx = await buildTestApp(t, { LOGIN_MAX_FAILURES: 2, LOGIN_LOCKOUT_SECONDS: 60 }, { loginClock: testClock().now })
  for (const apiKey of ['circ_' + 'B'.repeat(43), 'not-a-key']) {
    const r = await ctx.call('POST', '/v1/auth/token', { body: { apiKey }, remoteAddress: '192.0.2.1' })
    t.equal(r.status, 401)
    t.equal(r.body.code, 'INVALID_CREDENTIALS')
  }
  const r = await ctx.call('POST', '/v1/auth/token', { body: { apiKey: 'circ_' + 'C'.repeat(43) }, remoteAddress: '192.0.2.1' })
  t.equal(r.status, 429)
  t.equal(r.headers['retry-after'], '60', 'retry after the configured lockout')
})

t.test('IPv6 clients are counted per /64', async (t) => {
  const ctx = await buildTestApp(t, { LOGIN_MAX_FAILURES: 1, LOGIN_LOCKOUT_SECONDS: 60 })
  // a new username each time, so only the address can lock
  let n = 0
  const login = async (remoteAddress: string) => await ctx.call('POST', '/v1/auth/token', { body: { username: `x${n++}`, password: 'y' }, remoteAddress })
  t.equal((await login('2001:db8:1:2::1')).status, 401)
  t.equal((await login('2001:db8:1:2:ffff::9')).status, 429, 'another host of the same /64 is locked out too')
  t.equal((await login('2001:db8:1:3::1')).status, 401, 'the next /64 is not')
})

t.test('behind a proxy (TRUST_PROXY) the address comes from X-Forwarded-For', async (t) => {
  const ctx = await buildTestApp(t, { TRUST_PROXY: true, LOGIN_MAX_FAILURES: 1, LOGIN_LOCKOUT_SECONDS: 60 })
  const from = (ip: string) => ({ 'x-forwarded-for': ip })
  t.equal((await ctx.call('POST', '/v1/auth/token', { body: { username: 'x1', password: 'y' }, headers: from('203.0.113.9') })).status, 401)
  t.equal((await ctx.call('POST', '/v1/auth/token', { body: { username: 'x2', password: 'y' }, headers: from('203.0.113.9') })).status, 429)
  t.equal((await ctx.call('POST', '/v1/auth/token', { body: { username: 'x3', password: 'y' }, headers: from('203.0.113.10') })).status, 401,
    'another client behind the same proxy is not locked out')
  // a client that writes its own X-Forwarded-For: the balancer appends the address it saw, and only that counts
  for (const [i, forged] of ['192.0.2.1', '192.0.2.2', '192.0.2.3'].entries()) {
    const r = await ctx.call('POST', '/v1/auth/token', { body: { username: `y${i}`, password: 'y' }, headers: from(`${forged}, 198.51.100.7`) })
    t.equal(r.status, i === 0 ? 401 : 429, `a forged first entry (${forged}) does not give a fresh budget`)
  }
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

t.test('a username spelt with letters that fold to ASCII elsewhere (İ) is not another way into a locked login', async (t) => {
  const ctx = await buildTestApp(t, { LOGIN_MAX_FAILURES: 2, LOGIN_LOCKOUT_SECONDS: 900 })
  const s = await scenario(ctx)
  t.equal((await ctx.call('POST', `/v1/currencies/${s.code}/members`, {
    token: ctx.issuerToken, body: { name: 'V', postcode: 'BS6 5AB', username: 'victim', password: 'correct-horse' },
  })).status, 201)
  const login = async (username: string, password: string, i: number) =>
    await ctx.call('POST', '/v1/auth/token', { body: { username, password }, remoteAddress: `192.0.2.${i}` })
  t.equal((await login('victim', 'wrong-1', 1)).status, 401)
  t.equal((await login('victim', 'wrong-2', 2)).status, 401)
  t.equal((await login('victim', 'correct-horse', 3)).status, 429, 'the username is locked out')
  // PostgreSQL's lower() folds 'İ' to 'i', JavaScript's to 'i' and a combining dot: the lookup must not find
  // 'victim' under a name whose failures are counted elsewhere
  for (const [i, name] of ['vİctim', 'vİctİm', 'VİCTİM'].entries()) {
    const r = await login(name, 'correct-horse', 10 + i)
    t.equal(r.status, 401, `"${name}" with the right password gets no token`)
    t.equal(r.body.code, 'INVALID_CREDENTIALS')
  }
})
