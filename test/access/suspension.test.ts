import t from 'tap'
import { buildTestApp, issue, registerMember, scenario } from './fixtures/index.js'

// Closing an account used to leave its login and its reads working. An issuer can now suspend a member's or
// business's login: its tokens and its API keys stop working at once, tokens issued before stay dead after a
// reinstatement, and the audit trail records both.

// Tokens are dated to the second, and a token of the suspension's own second counts as issued before it. Rather than
// wait for the next second, the tests move the clock tokens are dated by (on every instance) a second on.
const tokenClock = () => {
  let ahead = 0
  return { clock: () => new Date(Date.now() + ahead), nextSecond: () => { ahead += 1000 } }
}

t.test('a suspended member\'s tokens stop at once, on every instance; a reinstated member logs in again', async (t) => {
  const time = tokenClock()
  const ctx = await buildTestApp(t, {}, { tokenClock: time.clock })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '20.00')
  // a second instance of the service on the same database, reading the suspended logins on every request
  const other = await buildTestApp(t, { LOGIN_CHECK_MS: 0 }, { db: ctx.db, keys: ctx.keys, tokenClock: time.clock })
  const read = async (c: typeof ctx, token: string) => await c.call('GET', `/v1/accounts/${s.member.accountId}`, { token })
  const before = s.member.token
  t.equal((await read(ctx, before)).status, 200)
  t.equal((await read(other, before)).status, 200, 'the other instance has seen the login')

  const susp = await ctx.call('PUT', `/v1/participants/${s.member.id}/suspension`, { token: ctx.issuerToken, body: { reason: 'reported a stolen phone' } })
  t.equal(susp.status, 200)
  t.match(susp.body, { participantId: s.member.id, suspended: true, suspendedAt: String })
  for (const [name, c] of [['this instance', ctx], ['the other instance', other]] as const) {
    const r = await read(c, before)
    t.equal(r.status, 401, `${name}: the token stops working at once`)
    t.equal(r.body.code, 'UNAUTHENTICATED')
  }
  const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: before, key: 'after-suspension', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
  })
  t.equal(pay.status, 401, 'no payment with it')
  const login = await ctx.call('POST', '/v1/auth/token', { body: { username: s.member.username, password: 'member-password' } })
  t.equal(login.status, 403, 'the right password gets no token')
  t.equal(login.body.code, 'LOGIN_SUSPENDED')
  const wrong = await ctx.call('POST', '/v1/auth/token', { body: { username: s.member.username, password: 'wrong-password' } })
  t.equal(wrong.status, 401, 'a wrong password still says only that, so suspension is no oracle for passwords')
  const view = await ctx.call('GET', `/v1/participants/${s.member.id}`, { token: ctx.issuerToken })
  t.equal(view.body.loginSuspendedAt, susp.body.suspendedAt, 'the issuer sees since when')
  const again = await ctx.call('PUT', `/v1/participants/${s.member.id}/suspension`, { token: ctx.issuerToken, body: { reason: 'twice' } })
  t.equal(again.body.suspendedAt, susp.body.suspendedAt, 'suspending again changes nothing')

  const back = await ctx.call('DELETE', `/v1/participants/${s.member.id}/suspension`, { token: ctx.issuerToken })
  t.same(back.body, { participantId: s.member.id, suspended: false, suspendedAt: null })
  t.equal((await read(ctx, before)).status, 401, 'a token from before the suspension stays dead after the reinstatement')
  t.equal((await read(other, before)).status, 401, 'on the other instance too')
  time.nextSecond()
  const fresh = await ctx.token(s.member.username, 'member-password')
  t.equal((await read(ctx, fresh)).status, 200, 'a new login works')
  t.equal((await read(other, fresh)).status, 200, 'everywhere')

  const trail = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?limit=200`, { token: ctx.issuerToken })).body.items as any[]
  const rows = trail.filter(e => e.action === 'login.suspend' || e.action === 'login.reinstate')
  t.same(rows.map(e => [e.action, e.target, e.outcome]), [['login.suspend', s.member.id, 'success'], ['login.reinstate', s.member.id, 'success']],
    'one row per change (the repeated suspension changed nothing)')
  t.match(rows[0].detail, { reason: 'reported a stolen phone', username: s.member.username })
  t.equal(trail.filter(e => e.action === 'auth.login' && e.errorCode === 'LOGIN_SUSPENDED').length, 1, 'the refused login is audited, once')
})

t.test('a token taken while the suspension was being made stays dead after the reinstatement', async (t) => {
  // The suspension dated the revoked tokens when it began, before it committed: a login that read the row in
  // between (not suspended yet) got a token credited after that date, refused only while the login was suspended,
  // and back in use once it was reinstated.
  const time = tokenClock()
  const ctx = await buildTestApp(t, {}, { tokenClock: time.clock })
  const other = await buildTestApp(t, { LOGIN_CHECK_MS: 0 }, { db: ctx.db, keys: ctx.keys, tokenClock: time.clock })
  const s = await scenario(ctx)
  const read = async (c: typeof ctx, token: string) => (await c.call('GET', `/v1/accounts/${s.member.accountId}`, { token })).status
  // hold the login's row, so the suspension waits before it commits
  const hold = await ctx.app.pool.connect()
  t.teardown(() => { hold.release() })
  await hold.query('BEGIN')
  await hold.query('SELECT 1 FROM app_user WHERE participant_id = $1 FOR UPDATE', [s.member.id])
  const suspending = ctx.call('PUT', `/v1/participants/${s.member.id}/suspension`, { token: ctx.issuerToken, body: { reason: 'reported a stolen phone' } })
  const waiting = async () => (await ctx.app.pool.query(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%app_user%'")).rows[0].n > 0
  for (let i = 0; i < 500 && !await waiting(); i++) await new Promise(resolve => setTimeout(resolve, 10))
  await new Promise(resolve => setTimeout(resolve, 20))
  const taker = await ctx.token(s.member.username, 'member-password')
  await hold.query('COMMIT')
  t.equal((await suspending).status, 200)
  t.equal(await read(ctx, taker), 401, 'refused while suspended')
  const back = await ctx.call('DELETE', `/v1/participants/${s.member.id}/suspension`, { token: ctx.issuerToken })
  t.equal(back.status, 200)
  t.equal(await read(ctx, taker), 401, 'the token taken during the suspension stays dead after the reinstatement')
  t.equal(await read(other, taker), 401, 'on the other instance too')
  time.nextSecond()
  t.equal(await read(ctx, await ctx.token(s.member.username, 'member-password')), 200, 'a new login works')
})

t.test('a suspended business\'s API keys stop at once: their tokens and new exchanges', async (t) => {
  const time = tokenClock()
  const ctx = await buildTestApp(t, {}, { tokenClock: time.clock })
  const s = await scenario(ctx)
  const created = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['statements:read'] } })
  const keyToken = (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: created.body.key } })).body.accessToken as string
  const statement = async () => await ctx.call('GET', `/v1/accounts/${s.business.accountId}/statement`, { token: keyToken })
  t.equal((await statement()).status, 200)
  t.equal((await ctx.call('PUT', `/v1/participants/${s.business.id}/suspension`, { token: ctx.issuerToken, body: { reason: 'business closed' } })).status, 200)
  t.equal((await statement()).status, 401, 'the key\'s token stops at once')
  const exchange = await ctx.call('POST', '/v1/auth/token', { body: { apiKey: created.body.key } })
  t.equal(exchange.status, 403, 'the key gets no new token')
  t.equal(exchange.body.code, 'LOGIN_SUSPENDED')
  t.equal((await ctx.call('DELETE', `/v1/participants/${s.business.id}/suspension`, { token: ctx.issuerToken })).status, 200)
  t.equal((await statement()).status, 401, 'its old token stays dead')
  time.nextSecond()
  const renewed = (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: created.body.key } })).body.accessToken as string
  t.equal((await ctx.call('GET', `/v1/accounts/${s.business.accountId}/statement`, { token: renewed })).status, 200, 'the key itself works again')
})

t.test('who may suspend: an issuer of the participant\'s currency; to anyone else it does not exist', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const other = await registerMember(ctx, s.code)
  t.equal((await ctx.call('POST', '/v1/currencies', { token: ctx.issuerToken, body: { code: 'OTH', name: 'Other Pound' } })).status, 201)
  await ctx.call('POST', '/v1/currencies/OTH/issuers', { token: ctx.issuerToken, body: { name: 'Desk', username: 'oth-desk', password: 'desk-password' } })
  const othIssuer = await ctx.token('oth-desk', 'desk-password')
  const put = async (token: string | null, id = s.member.id) =>
    await ctx.call('PUT', `/v1/participants/${id}/suspension`, { token, body: { reason: 'r' } })
  const unknown = await put(othIssuer, '00000000-0000-7000-8000-000000000000')
  const foreign = await put(othIssuer)
  t.equal(foreign.status, 404, 'an issuer of another currency: 404')
  t.same([foreign.status, foreign.body.code, foreign.body.detail], [unknown.status, unknown.body.code, unknown.body.detail], 'exactly like an unknown id')
  t.equal((await put(other.token)).status, 404, 'another member: 404')
  t.equal((await put(s.member.token)).status, 403, 'the member itself: 403 (it may see itself)')
  t.equal((await put(null)).status, 401)
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })).status, 200, 'none of that suspended anything')
  const bad = await ctx.call('PUT', `/v1/participants/${s.member.id}/suspension`, { token: ctx.issuerToken, body: { reason: '' } })
  t.equal(bad.status, 422, 'a reason is required')
})
