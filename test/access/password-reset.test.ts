import t from 'tap'
import { buildTestApp, registerMember, scenario } from './fixtures/index.js'

// A login that forgot its password had no way back in (only a new login, losing its history's access). Now an
// issuer hands it a one-time code (POST /v1/participants/{id}/password-reset, /v1/staff/{id}/password-reset,
// allowed to whoever may suspend that login), and the login sets a new password with it
// (POST /v1/auth/password/reset): once, within its hours, throttled as a login; every token from before then stops.

/** Hands out a code (POST, no body). */
const code = async (ctx: Awaited<ReturnType<typeof buildTestApp>>, url: string, token: string) => await ctx.call('POST', url, { token })

t.test('a member who forgot its password gets a code from its issuer and sets a new password with it', async (t) => {
  const ctx = await buildTestApp(t)
  const other = await buildTestApp(t, { LOGIN_CHECK_MS: 0 }, { db: ctx.db, keys: ctx.keys })
  const s = await scenario(ctx)
  const old = await ctx.token(s.member.username, 'member-password')
  const read = async (c: typeof ctx, token: string) => (await c.call('GET', `/v1/accounts/${s.member.accountId}`, { token })).status
  t.equal(await read(other, old), 200, 'the other instance has seen the login')
  const reset = async (body: Record<string, unknown>) => await ctx.call('POST', '/v1/auth/password/reset', { body })

  const first = await code(ctx, `/v1/participants/${s.member.id}/password-reset`, ctx.issuerToken)
  t.equal(first.status, 201, first.text)
  t.match(first.body, { username: s.member.username, code: /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/, expiresAt: String })
  t.equal(first.headers['cache-control'], 'no-store', 'the code is kept by no cache')
  const hours = (Date.parse(first.body.expiresAt) - Date.now()) / 3_600_000
  t.ok(hours > 23.9 && hours <= 24, `it works for 24 hours (${hours})`)
  t.equal(await read(ctx, old), 200, 'handing out a code changes nothing yet: the old password and its tokens still work')

  // a second code replaces the first
  const second = await code(ctx, `/v1/participants/${s.member.id}/password-reset`, ctx.issuerToken)
  t.not(second.body.code, first.body.code)
  const stale = await reset({ username: s.member.username, code: first.body.code, newPassword: 'a-new-password-1' })
  t.same([stale.status, stale.body.code], [401, 'INVALID_CREDENTIALS'], 'the replaced code does not work')
  const unknown = await reset({ username: 'nobody-at-all', code: second.body.code, newPassword: 'a-new-password-1' })
  t.same([unknown.status, unknown.body.code, unknown.body.detail], [stale.status, stale.body.code, stale.body.detail], 'an unknown username answers the same')
  const weak = await reset({ username: s.member.username, code: second.body.code, newPassword: 'password1' })
  t.same([weak.status, weak.body.code, weak.body.errors?.[0]?.pointer], [422, 'VALIDATION_FAILED', '/newPassword'], weak.text)

  // typed as a person would: small letters, no hyphens, the username in capitals
  const typed = (second.body.code as string).toLowerCase().replace(/-/g, ' ')
  const ok = await reset({ username: s.member.username.toUpperCase(), code: typed, newPassword: 'a-new-password-1' })
  t.equal(ok.status, 204, ok.text)
  t.equal(await read(ctx, old), 401, 'the old token stops at once')
  t.equal(await read(other, old), 401, 'everywhere')
  t.equal((await ctx.call('POST', '/v1/auth/token', { body: { username: s.member.username, password: 'member-password' } })).status, 401, 'the old password no longer logs in')
  const fresh = await ctx.token(s.member.username, 'a-new-password-1')
  t.equal(await read(ctx, fresh), 200, 'the new one does')
  const again = await reset({ username: s.member.username, code: second.body.code, newPassword: 'a-third-password-1' })
  t.same([again.status, again.body.code], [401, 'INVALID_CREDENTIALS'], 'the code works once')
  t.equal(await read(ctx, fresh), 200, 'and its second use changed nothing')

  const trail = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?limit=100`, { token: ctx.issuerToken })).body.items as any[]
  const rows = trail.filter(e => e.action === 'login.reset_code' || e.action === 'login.password_reset').map(e => [e.action, e.outcome]).sort()
  t.same(rows, [['login.password_reset', 'failure'], ['login.password_reset', 'failure'], ['login.password_reset', 'success'],
    ['login.reset_code', 'success'], ['login.reset_code', 'success']].sort(), 'handing out codes and using them are in the audit trail')
  const text = JSON.stringify(trail)
  t.notOk(text.includes(first.body.code) || text.includes(second.body.code) || text.includes('a-new-password-1'), 'no code or password in it')
  const stored = (await ctx.app.pool.query('SELECT reset_code_hash FROM app_user WHERE participant_id = $1', [s.member.id])).rows[0]
  t.equal(stored.reset_code_hash, null, 'the spent code is gone from the database')
})

t.test('an expired code, a suspended login, and guesses past the login budget', async (t) => {
  const ctx = await buildTestApp(t, { LOGIN_MAX_FAILURES: 3 })
  const s = await scenario(ctx)
  const reset = async (body: Record<string, unknown>) => await ctx.call('POST', '/v1/auth/password/reset', { body })
  const give = async () => (await code(ctx, `/v1/participants/${s.business.id}/password-reset`, ctx.issuerToken)).body.code as string

  // expired: moved back on the database's clock, which set it
  const expired = await give()
  await ctx.app.pool.query(`UPDATE app_user SET reset_expires_at = now() - interval '1 second' WHERE participant_id = $1`, [s.business.id])
  const late = await reset({ username: s.business.username, code: expired, newPassword: 'a-new-password-1' })
  t.same([late.status, late.body.code], [401, 'INVALID_CREDENTIALS'], 'an expired code does not work')

  // suspended: told so, and the code is kept for after the reinstatement
  const kept = await give()
  t.equal((await ctx.call('PUT', `/v1/participants/${s.business.id}/suspension`, { token: ctx.issuerToken, body: { reason: 'checking' } })).status, 200)
  const susp = await reset({ username: s.business.username, code: kept, newPassword: 'a-new-password-1' })
  t.same([susp.status, susp.body.code], [403, 'LOGIN_SUSPENDED'], susp.text)
  t.equal((await ctx.call('DELETE', `/v1/participants/${s.business.id}/suspension`, { token: ctx.issuerToken })).status, 200)

  // two wrong guesses (plus the expired code's) use the budget: then even the right code waits, as a login does
  for (const guess of ['AAAA-AAAA-AAAA-AAAA', 'BBBB-BBBB-BBBB-BBBB']) {
    t.equal((await reset({ username: s.business.username, code: guess, newPassword: 'a-new-password-1' })).status, 401)
  }
  const locked = await reset({ username: s.business.username, code: kept, newPassword: 'a-new-password-1' })
  t.same([locked.status, locked.body.code], [429, 'RATE_LIMITED'], locked.text)
  const login = await ctx.call('POST', '/v1/auth/token', { body: { username: s.business.username, password: 'business-password' } })
  t.equal(login.status, 429, 'the guesses were the login\'s: it is locked out too')
})

t.test('a business\'s reset ends the tokens exchanged for its API keys; the keys stay valid', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const created = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['accounts:read'] } })
  t.equal(created.status, 201)
  const keyToken = async () => (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: created.body.key } })).body.accessToken as string
  const before = await keyToken()
  const read = async (token: string) => (await ctx.call('GET', `/v1/accounts/${s.business.accountId}`, { token })).status
  t.equal(await read(before), 200)
  const c = (await code(ctx, `/v1/participants/${s.business.id}/password-reset`, ctx.issuerToken)).body.code as string
  t.equal((await ctx.call('POST', '/v1/auth/password/reset', { body: { username: s.business.username, code: c, newPassword: 'a-new-password-1' } })).status, 204)
  t.equal(await read(before), 401, 'the key\'s token from before stops')
  t.equal(await read(await keyToken()), 200, 'the key gets a new one')
})

t.test('who may hand out a code: as for suspending that login', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  t.equal((await ctx.call('POST', '/v1/currencies', { token: ctx.issuerToken, body: { code: 'OTH', name: 'Other Pound' } })).status, 201)
  const staff = async (code: string, kind: 'issuers' | 'researchers', username: string) => {
    const r = await ctx.call('POST', `/v1/currencies/${code}/${kind}`, { token: ctx.issuerToken, body: { name: 'Staff', username, password: 'staff-password-1' } })
    t.equal(r.status, 201, r.text)
    return { id: r.body.id as string, token: await ctx.token(username, 'staff-password-1') }
  }
  const clerk = await staff(s.code, 'issuers', 'clerk')
  const colleague = await staff(s.code, 'issuers', 'colleague')
  const study = await staff(s.code, 'researchers', 'dr-who')
  const stranger = await staff('OTH', 'issuers', 'stranger')
  const otherMember = await registerMember(ctx, s.code)
  const status = async (url: string, token: string) => (await code(ctx, url, token)).status
  const member = `/v1/participants/${s.member.id}/password-reset`

  t.equal(await status(member, clerk.token), 201, 'an issuer of the currency')
  t.equal(await status(member, stranger.token), 404, 'an issuer of another currency learns nothing')
  t.equal(await status(member, otherMember.token), 404, 'nor does another member')
  t.equal(await status(member, s.member.token), 403, 'the member itself is told it may not (it changes its own with POST /v1/auth/password)')
  t.equal(await status(member, study.token), 403, 'researchers may not')
  t.equal(await status(`/v1/staff/${study.id}/password-reset`, clerk.token), 201, 'a researcher: by its currency\'s issuer')
  t.equal(await status(`/v1/staff/${study.id}/password-reset`, stranger.token), 404, 'not by another currency\'s')
  t.equal(await status(`/v1/staff/${colleague.id}/password-reset`, clerk.token), 403, 'issuer staff cannot reset each other')
  t.equal(await status(`/v1/staff/${colleague.id}/password-reset`, ctx.issuerToken), 201, 'the platform issuer resets issuer staff')
  const platformId = (await ctx.app.pool.query(`SELECT id FROM app_user WHERE role = 'platform_issuer'`)).rows[0].id as string
  t.equal(await status(`/v1/staff/${platformId}/password-reset`, clerk.token), 404, 'the platform issuer\'s login is no one\'s to reset')
  t.equal(await status(`/v1/staff/${platformId}/password-reset`, ctx.issuerToken), 403, 'not even its own')
  t.equal((await ctx.call('POST', member)).status, 401, 'anonymous')
  const hashes = (await ctx.app.pool.query('SELECT count(*)::int AS n FROM app_user WHERE reset_code_hash IS NOT NULL')).rows[0].n
  t.equal(hashes, 3, 'only the allowed requests made codes')
})

t.test('the codes a staff issuer handed out stop working when that issuer is suspended, and stay dead after', async (t) => {
  // a slow instance (LOGIN_CHECK_MS) still takes the suspended issuer's token for a while
  const ctx = await buildTestApp(t)
  const slow = await buildTestApp(t, { LOGIN_CHECK_MS: 600_000 }, { db: ctx.db, keys: ctx.keys })
  const s = await scenario(ctx)
  const made = await ctx.call('POST', `/v1/currencies/${s.code}/issuers`, { token: ctx.issuerToken, body: { name: 'Clerk', username: 'clerk', password: 'staff-password-1' } })
  t.equal(made.status, 201, made.text)
  const study = await ctx.call('POST', `/v1/currencies/${s.code}/researchers`, { token: ctx.issuerToken, body: { name: 'Study', username: 'dr-who', password: 'staff-password-1' } })
  t.equal(study.status, 201, study.text)
  const clerk = await ctx.token('clerk', 'staff-password-1')
  const other = await registerMember(ctx, s.code)
  const reset = async (username: string, c: string) => await ctx.call('POST', '/v1/auth/password/reset', { body: { username, code: c, newPassword: 'a-new-password-1' } })
  const give = async (c: typeof ctx, url: string, token: string) => {
    const r = await code(c, url, token)
    t.equal(r.status, 201, r.text)
    return r.body.code as string
  }
  const byClerk = await give(ctx, `/v1/participants/${s.member.id}/password-reset`, clerk)
  const forStudy = await give(ctx, `/v1/staff/${study.body.id as string}/password-reset`, clerk)
  const byPlatform = await give(ctx, `/v1/participants/${other.id}/password-reset`, ctx.issuerToken)
  t.equal((await slow.call('GET', `/v1/currencies/${s.code}/staff`, { token: clerk })).status, 200, 'the slow instance has seen the clerk')

  const suspended = await ctx.call('PUT', `/v1/staff/${made.body.id as string}/suspension`, { token: ctx.issuerToken, body: { reason: 'left the scheme' } })
  t.equal(suspended.status, 200, suspended.text)
  for (const [who, username, c] of [['a member', s.member.username, byClerk], ['a researcher', 'dr-who', forStudy]]) {
    const r = await reset(username, c)
    t.same([r.status, r.body.code], [401, 'INVALID_CREDENTIALS'], `${who}'s code from the suspended clerk no longer works: ${r.text}`)
  }
  t.equal((await reset(other.username, byPlatform)).status, 204, 'a code from someone else still works')
  const left = (await ctx.app.pool.query('SELECT count(*)::int AS n FROM app_user WHERE reset_code_hash IS NOT NULL')).rows[0].n
  t.equal(left, 0, 'the clerk\'s codes are gone from the database')
  const trail = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?limit=100`, { token: ctx.issuerToken })).body.items as any[]
  t.match(trail.find(e => e.action === 'login.suspend')?.detail, { username: 'clerk', resetCodesCancelled: 2 }, 'the suspension\'s audit row counts the codes it ended')

  // the instance that has not yet seen the suspension takes the clerk's token, but the code is refused
  const late = await slow.call('POST', `/v1/participants/${s.member.id}/password-reset`, { token: clerk })
  t.same([late.status, late.body?.code], [401, 'UNAUTHENTICATED'], `a suspended issuer makes no code, whatever an instance still believes: ${late.text}`)
  t.equal((await ctx.app.pool.query(`SELECT reset_code_hash FROM app_user WHERE participant_id = $1`, [s.member.id])).rows[0].reset_code_hash, null)

  // reinstated: the old codes stay dead (as its old tokens do); a code it makes with a new token works
  t.equal((await ctx.call('DELETE', `/v1/staff/${made.body.id as string}/suspension`, { token: ctx.issuerToken })).status, 200)
  t.equal((await reset(s.member.username, byClerk)).status, 401, 'a reinstatement does not bring a code back')
  const fresh = await give(ctx, `/v1/participants/${s.member.id}/password-reset`, await ctx.token('clerk', 'staff-password-1'))
  t.equal((await reset(s.member.username, fresh)).status, 204, 'a code made after the reinstatement works')
})
