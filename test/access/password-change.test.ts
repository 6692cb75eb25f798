import pg from 'pg'
import t from 'tap'
import { verifyPassword } from '../../src/auth/password.js'
import { buildTestApp, issue, scenario } from './fixtures/index.js'

// No login could change its password: one that leaked could only be suspended. POST /v1/auth/password takes the
// current password and a new one; every token of the login from before the change stops working, on every
// instance, to the millisecond (a token's auth_ms), also one taken with the old password a moment before; a wrong
// current password counts as a failed login; a suspended login cannot change its password.

t.test('a member changes its password: its old tokens stop everywhere, the old password no longer logs in', async (t) => {
  const ctx = await buildTestApp(t)
  const other = await buildTestApp(t, { LOGIN_CHECK_MS: 0 }, { db: ctx.db, keys: ctx.keys })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const old = await ctx.token(s.member.username, 'member-password')
  const read = async (c: typeof ctx, token: string) => (await c.call('GET', `/v1/accounts/${s.member.accountId}`, { token })).status
  t.equal(await read(other, old), 200, 'the other instance has seen the login')
  const change = async (body: Record<string, unknown>, token = old) => await ctx.call('POST', '/v1/auth/password', { token, body })

  const wrong = await change({ currentPassword: 'not-the-password', newPassword: 'a-new-password-1' })
  t.same([wrong.status, wrong.body.code, wrong.body.errors?.[0]?.pointer], [422, 'WRONG_PASSWORD', '/currentPassword'], wrong.text)
  const weak = await change({ currentPassword: 'member-password', newPassword: 'password' })
  t.same([weak.status, weak.body.code, weak.body.errors?.[0]?.pointer], [422, 'VALIDATION_FAILED', '/newPassword'], weak.text)
  const short = await change({ currentPassword: 'member-password', newPassword: 'short' })
  t.same([short.status, short.body.code], [422, 'VALIDATION_FAILED'], 'the schema\'s length')
  t.equal(await read(ctx, old), 200, 'refused changes change nothing')

  // whoever else knows the old password logs in just before the change, in the same second as it
  const taker = await ctx.token(s.member.username, 'member-password')
  const ok = await change({ currentPassword: 'member-password', newPassword: 'a-new-password-1' })
  t.equal(ok.status, 204, ok.text)
  t.equal(await read(ctx, old), 401, 'the old token stops at once')
  t.equal(await read(ctx, taker), 401, 'so does a token taken with the old password a moment before')
  t.equal(await read(other, taker), 401, 'everywhere')
  t.equal(await read(other, old), 401, 'on the other instance too')
  const byOld = await ctx.call('POST', '/v1/auth/token', { body: { username: s.member.username, password: 'member-password' } })
  t.equal(byOld.status, 401, 'the old password no longer logs in')
  const fresh = await ctx.token(s.member.username, 'a-new-password-1')
  t.equal(await read(ctx, fresh), 200, 'the new one does, at once')
  t.equal(await read(other, fresh), 200, 'everywhere')

  const trail = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?action=login.password`, { token: ctx.issuerToken })).body.items as any[]
  t.same(trail.map(e => [e.outcome, e.errorCode ?? null]).sort(), [['failure', 'VALIDATION_FAILED'], ['failure', 'VALIDATION_FAILED'], ['failure', 'WRONG_PASSWORD'], ['success', null]].sort(),
    'the change and the refusals are in the audit trail')
  t.notOk(JSON.stringify(trail).includes('a-new-password-1'), 'no password in it')
})

t.test('wrong current passwords count as failed logins; API keys and anonymous callers cannot change one', async (t) => {
  const ctx = await buildTestApp(t, { LOGIN_MAX_FAILURES: 3 })
  const s = await scenario(ctx)
  const body = { currentPassword: 'guess', newPassword: 'a-new-password-1' }
  // the API key's token first: the guesses below lock the client address out of every login, keys' included
  const created = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['payments:write'] } })
  t.equal(created.status, 201)
  const keyToken = (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: created.body.key } })).body.accessToken as string
  for (let i = 0; i < 3; i++) t.equal((await ctx.call('POST', '/v1/auth/password', { token: s.business.token, body })).status, 422, `guess ${i + 1}`)
  const locked = await ctx.call('POST', '/v1/auth/password', { token: s.business.token, body: { ...body, currentPassword: 'business-password' } })
  t.same([locked.status, locked.body.code], [429, 'RATE_LIMITED'], 'past the budget even the right password waits, as at login')
  t.ok(Number(locked.headers['retry-after']) > 0, 'with Retry-After')
  const login = await ctx.call('POST', '/v1/auth/token', { body: { username: s.business.username, password: 'business-password' } })
  t.equal(login.status, 429, 'and the guesses were the login\'s: it is locked out too')

  const anon = await ctx.call('POST', '/v1/auth/password', { body })
  t.equal(anon.status, 401)
  t.equal((await ctx.call('POST', '/v1/auth/password', { token: keyToken, body })).status, 403, 'an API key has no password')
})

t.test('a suspended login cannot change its password, even where the suspension is not seen yet; a business\'s key tokens end with the change', async (t) => {
  const ctx = await buildTestApp(t)
  // an instance that reads the suspended logins only every hour: it still takes the suspended member's token
  const late = await buildTestApp(t, { LOGIN_CHECK_MS: 3_600_000 }, { db: ctx.db, keys: ctx.keys })
  const s = await scenario(ctx)
  const token = await ctx.token(s.member.username, 'member-password')
  t.equal((await late.call('GET', `/v1/accounts/${s.member.accountId}`, { token })).status, 200, 'the late instance has read the logins')
  t.equal((await ctx.call('PUT', `/v1/participants/${s.member.id}/suspension`, { token: ctx.issuerToken, body: { reason: 'stolen phone' } })).status, 200)
  const before = (await ctx.app.pool.query('SELECT password_hash, tokens_revoked_before FROM app_user WHERE participant_id = $1', [s.member.id])).rows[0]
  const r = await late.call('POST', '/v1/auth/password', { token, body: { currentPassword: 'member-password', newPassword: 'a-new-password-1' } })
  t.same([r.status, r.body.code], [403, 'LOGIN_SUSPENDED'], r.text)
  const after = (await ctx.app.pool.query('SELECT password_hash, tokens_revoked_before FROM app_user WHERE participant_id = $1', [s.member.id])).rows[0]
  t.same(after, before, 'the password and the revocation time are as they were')

  // a business: the token it exchanged for its API key ends with the change; the key itself exchanges again
  const created = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['statements:read'] } })
  const exchange = async () => (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: created.body.key } })).body.accessToken as string
  const keyToken = await exchange()
  const statement = async (tok: string) => (await ctx.call('GET', `/v1/accounts/${s.business.accountId}/statement`, { token: tok })).status
  t.equal(await statement(keyToken), 200)
  t.equal((await ctx.call('POST', '/v1/auth/password', { token: s.business.token, body: { currentPassword: 'business-password', newPassword: 'a-new-password-1' } })).status, 204)
  t.equal(await statement(keyToken), 401, 'the key\'s token from before the change ends')
  t.equal(await statement(await exchange()), 200, 'the key, exchanged again, works')
})

t.test('a password change ends the login\'s unused reset code; a code made after it works; other logins\' codes stay', async (t) => {
  // A code handed out to someone posing as the login (or one the login asked for and then did without) used to
  // outlive the change and set a password over the one just chosen, for up to 24 hours.
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const study = await ctx.call('POST', `/v1/currencies/${s.code}/researchers`, { token: ctx.issuerToken, body: { name: 'Study', username: 'dr-who', password: 'staff-password-1' } })
  t.equal(study.status, 201, study.text)
  const give = async (url: string) => {
    const r = await ctx.call('POST', url, { token: ctx.issuerToken })
    t.equal(r.status, 201, r.text)
    return r.body.code as string
  }
  const reset = async (username: string, code: string, newPassword = 'set-by-the-code-1') =>
    await ctx.call('POST', '/v1/auth/password/reset', { body: { username, code, newPassword } })
  const change = async (token: string, currentPassword: string) =>
    await ctx.call('POST', '/v1/auth/password', { token, body: { currentPassword, newPassword: 'a-new-password-1' } })

  const forMember = await give(`/v1/participants/${s.member.id}/password-reset`)
  const forStudy = await give(`/v1/staff/${study.body.id as string}/password-reset`)
  const forBusiness = await give(`/v1/participants/${s.business.id}/password-reset`)

  t.equal((await change(s.member.token, 'member-password')).status, 204, 'a participant changes its password')
  t.equal((await change(await ctx.token('dr-who', 'staff-password-1'), 'staff-password-1')).status, 204, 'a staff login changes its password')
  for (const [who, username, code] of [['the member', s.member.username, forMember], ['the researcher', 'dr-who', forStudy]]) {
    const r = await reset(username, code)
    t.same([r.status, r.body.code], [401, 'INVALID_CREDENTIALS'], `${who}'s code from before the change no longer works: ${r.text}`)
    t.equal((await ctx.call('POST', '/v1/auth/token', { body: { username, password: 'a-new-password-1' } })).status, 200, `${who}'s new password stands`)
  }
  const stored = (await ctx.app.pool.query(
    'SELECT username, reset_code_hash IS NOT NULL AS held FROM app_user WHERE username = ANY($1) ORDER BY username', [[s.member.username, 'dr-who', s.business.username]])).rows
  t.same(stored.map(r => [r.username, r.held]), [[s.member.username, false], [s.business.username, true], ['dr-who', false]].sort(), 'only the changed logins\' codes are gone')
  t.equal((await reset(s.business.username, forBusiness)).status, 204, 'another login\'s code still works')

  const trail = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?action=login.password`, { token: ctx.issuerToken })).body.items as any[]
  t.same(trail.map(e => e.detail?.resetCodesCancelled).sort(), [1, 1], 'each change\'s audit row says it ended a code')

  // a code handed out after the change is the new state of things, and works
  const after = await give(`/v1/participants/${s.member.id}/password-reset`)
  t.equal((await reset(s.member.username, after)).status, 204, 'a code made after the change works')
  t.equal((await ctx.call('POST', '/v1/auth/token', { body: { username: s.member.username, password: 'set-by-the-code-1' } })).status, 200)
  // and a change with no code outstanding says so
  t.equal((await change(await ctx.token(s.member.username, 'set-by-the-code-1'), 'set-by-the-code-1')).status, 204)
  const last = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?action=login.password`, { token: ctx.issuerToken })).body.items as any[]
  t.same(last.map(e => e.detail?.resetCodesCancelled).sort(), [0, 1, 1], 'a change that found no code counts none')
})

t.test('a password change and a reset with a code at the same moment: exactly one succeeds, never the change on the replaced password', async (t) => {
  // The change checked the current password against the hash it read before taking the login's row: a reset that
  // committed in between was then overwritten by the change, made on the strength of the password it replaced.
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const give = async () => (await ctx.call('POST', `/v1/participants/${s.member.id}/password-reset`, { token: ctx.issuerToken })).body.code as string
  const reset = async (code: string, newPassword: string) =>
    await ctx.call('POST', '/v1/auth/password/reset', { body: { username: s.member.username, code, newPassword } })
  const change = async (token: string, currentPassword: string, newPassword: string) =>
    await ctx.call('POST', '/v1/auth/password', { token, body: { currentPassword, newPassword } })
  // read from the stored hash, not by logging in: the losers' passwords would count as failed logins
  const logsIn = async (password: string) => await verifyPassword(password,
    (await ctx.app.pool.query<{ h: string }>('SELECT password_hash AS h FROM app_user WHERE participant_id = $1', [s.member.id])).rows[0].h)

  // The order forced: another transaction holds the login's row; the reset queues for it first, then the change
  // (which has read the old password by then) queues behind it. The row is let go: the reset commits, then the change.
  const holder = new pg.Client({ connectionString: ctx.db.url })
  await holder.connect()
  t.teardown(async () => { await holder.end() })
  const waiters = async (n: number) => {
    for (let i = 0; i < 1000; i++) {
      const { rows } = await ctx.app.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> $1`, [(holder as any).processID])
      if (rows[0].n >= n) return
      await new Promise(resolve => setImmediate(resolve))
    }
    throw new Error(`${n} waiters on the login's row never came`)
  }
  const token = await ctx.token(s.member.username, 'member-password')
  const code = await give()
  await holder.query('BEGIN')
  await holder.query('SELECT 1 FROM app_user WHERE participant_id = $1 FOR UPDATE', [s.member.id])
  const resetting = reset(code, 'set-by-the-code-1')
  await waiters(1)
  const changing = change(token, 'member-password', 'changed-over-it-1')
  await waiters(2)
  await holder.query('COMMIT')
  const [r, c] = await Promise.all([resetting, changing])
  t.equal(r.status, 204, `the reset: ${r.text}`)
  t.same([c.status, c.body.code, c.body.errors?.[0]?.pointer], [422, 'WRONG_PASSWORD', '/currentPassword'], `the change on the replaced password is refused: ${c.text}`)
  t.ok(await logsIn('set-by-the-code-1'), 'the reset\'s password stands')
  t.notOk(await logsIn('changed-over-it-1'), 'the change did not write over it')

  // and at once, as they come: of each pair exactly one succeeds, and its password is the login's
  let current = 'set-by-the-code-1'
  for (let round = 0; round < 5; round++) {
    const [tok, fresh] = [await ctx.token(s.member.username, current), await give()]
    const [byCode, byChange] = await Promise.all([reset(fresh, `reset-round-${round}-x`), change(tok, current, `change-round-${round}-x`)])
    const won = [byCode.status, byChange.status].filter(x => x === 204).length
    t.equal(won, 1, `round ${round}: one of the two succeeds (reset ${byCode.status}, change ${byChange.status})`)
    current = byCode.status === 204 ? `reset-round-${round}-x` : `change-round-${round}-x`
    const other = byCode.status === 204 ? `change-round-${round}-x` : `reset-round-${round}-x`
    t.ok(await logsIn(current), `round ${round}: the winner's password logs in`)
    t.notOk(await logsIn(other), `round ${round}: the loser's does not`)
    t.equal((await ctx.app.pool.query('SELECT reset_code_hash FROM app_user WHERE participant_id = $1', [s.member.id])).rows[0].reset_code_hash, null,
      `round ${round}: no code survives`)
  }
})

t.test('two changes of one password at the same moment: the second, made on the password the first replaced, is refused', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  let current = 'member-password'
  for (let round = 0; round < 4; round++) {
    const tokens = [await ctx.token(s.member.username, current), await ctx.token(s.member.username, current)]
    const both = await Promise.all(tokens.map(async (token, i) =>
      await ctx.call('POST', '/v1/auth/password', { token, body: { currentPassword: current, newPassword: `round-${round}-by-${i}-x` } })))
    const won = both.flatMap((r, i) => r.status === 204 ? [i] : [])
    t.equal(won.length, 1, `round ${round}: one change succeeds (${both.map(r => r.status).join(', ')})`)
    const lost = both.find(r => r.status !== 204)
    t.same([lost?.status, lost?.body.code], [422, 'WRONG_PASSWORD'], `round ${round}: the other is told the password is no longer the one it gave`)
    current = `round-${round}-by-${won[0] ?? 0}-x`
    t.equal((await ctx.call('POST', '/v1/auth/token', { body: { username: s.member.username, password: current } })).status, 200, `round ${round}: the winner's password logs in`)
  }
})

t.test('a revocation older than a lowered TOKEN_TTL_SECONDS still holds after a restart, for tokens signed under the old TTL', async (t) => {
  // An instance read back the revocations over its own TTL only: lowered from a day to 15 minutes across a restart,
  // a token signed under the day, revoked two hours ago (and not expired: it lives until 21 hours from now) worked
  // again on the new instance. The revocation is made two hours old in the database, and the token is signed three
  // hours back on the clock tokens use (its credential read then): nothing waits.
  const threeHoursAgo = () => new Date(Date.now() - 3 * 3600_000)
  const old = await buildTestApp(t, { TOKEN_TTL_SECONDS: 86_400 }, { tokenClock: threeHoursAgo })
  const s = await scenario(old)
  const [u] = (await old.app.pool.query('SELECT id, role, currency_id, username FROM app_user WHERE participant_id = $1', [s.member.id])).rows
  const tokenReadAt = async (authAt: number) => (await old.app.tokens.sign({
    userId: u.id, role: u.role, currencyId: u.currency_id, participantId: s.member.id, username: u.username, authAt,
  })).accessToken
  const revoked = await tokenReadAt(Date.now() - 3 * 3600_000)
  const later = await tokenReadAt(Date.now() - 3600_000)
  // the password changed two hours ago
  await old.app.pool.query("UPDATE app_user SET tokens_revoked_before = now() - interval '2 hours' WHERE id = $1", [u.id])

  const restarted = await buildTestApp(t, { TOKEN_TTL_SECONDS: 900 }, { db: old.db, keys: old.keys })
  const read = async (token: string) => (await restarted.call('GET', `/v1/accounts/${s.member.accountId}`, { token })).status
  t.equal(await read(later), 200, 'a token read after the revocation works: signed under the old TTL, it has not expired')
  t.equal(await read(revoked), 401, 'one read before it stays refused on the instance started with the shorter TTL')
})
