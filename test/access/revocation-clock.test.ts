import t, { type Test } from 'tap'
import { decodeJwt } from 'jose'
import { buildTestApp, scenario } from './fixtures/index.js'

// A token said when its credential was read by the clock of the instance that handled the login (Date.now()), and
// a password change or suspension dated the revocation by the clock of the instance that made it: with the clocks
// of two instances apart, a token taken just before the change could survive it. Both are now the database's
// clock. The login instance's clock is put a minute ahead here (only Date.now(), which is what it read, only for
// the login): nothing waits.

const AHEAD_MS = 60_000

/** Runs f with this process's Date.now() a minute ahead, as on an instance whose clock is. */
async function onClockAhead<T> (f: () => Promise<T>): Promise<T> {
  const real = Date.now
  Date.now = () => real() + AHEAD_MS
  try { return await f() } finally { Date.now = real }
}

async function twoInstances (t: Test) {
  const ctx = await buildTestApp(t)
  // the instance the logins go to, reading the revoked logins on every request
  const ahead = await buildTestApp(t, { LOGIN_CHECK_MS: 0 }, { db: ctx.db, keys: ctx.keys })
  const s = await scenario(ctx)
  return { ctx, ahead, s }
}

t.test('a token taken on an instance whose clock is ahead, just before a password change, stops with it', async (t) => {
  const { ctx, ahead, s } = await twoInstances(t)
  const read = async (c: typeof ctx, token: string) => (await c.call('GET', `/v1/accounts/${s.member.accountId}`, { token })).status
  const taker = await onClockAhead(async () => await ahead.token(s.member.username, 'member-password'))
  t.equal(await read(ctx, taker), 200)
  const r = await ctx.call('POST', '/v1/auth/password', { token: s.member.token, body: { currentPassword: 'member-password', newPassword: 'a-new-password-1' } })
  t.equal(r.status, 204, r.text)
  t.equal(await read(ctx, taker), 401, 'refused on the instance that made the change')
  t.equal(await read(ahead, taker), 401, 'and on the one that handed it out')
  const fresh = await onClockAhead(async () => await ahead.token(s.member.username, 'a-new-password-1'))
  t.equal(await read(ctx, fresh), 200, 'a login after the change works, on the same clocks')
})

t.test('a token taken on an instance whose clock is ahead, just before a suspension, stays dead after the reinstatement', async (t) => {
  const { ctx, ahead, s } = await twoInstances(t)
  const read = async (c: typeof ctx, token: string) => (await c.call('GET', `/v1/accounts/${s.member.accountId}`, { token })).status
  const taker = await onClockAhead(async () => await ahead.token(s.member.username, 'member-password'))
  t.equal((await ctx.call('PUT', `/v1/participants/${s.member.id}/suspension`, { token: ctx.issuerToken, body: { reason: 'stolen phone' } })).status, 200)
  t.equal((await ctx.call('DELETE', `/v1/participants/${s.member.id}/suspension`, { token: ctx.issuerToken })).status, 200)
  t.equal(await read(ctx, taker), 401, 'refused after the reinstatement')
  t.equal(await read(ahead, taker), 401, 'on both instances')
  const fresh = await onClockAhead(async () => await ahead.token(s.member.username, 'member-password'))
  t.equal(await read(ctx, fresh), 200, 'a login after the reinstatement works')
})

t.test('an API key\'s token exchanged on an instance whose clock is ahead ends with its business\'s password change', async (t) => {
  const { ctx, ahead, s } = await twoInstances(t)
  const created = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['statements:read'] } })
  t.equal(created.status, 201, created.text)
  const exchange = async () => await onClockAhead(async () =>
    (await ahead.call('POST', '/v1/auth/token', { body: { apiKey: created.body.key } })).body.accessToken as string)
  const keyToken = await exchange()
  const statement = async (token: string) => (await ctx.call('GET', `/v1/accounts/${s.business.accountId}/statement`, { token })).status
  t.equal(await statement(keyToken), 200)
  t.equal((await ctx.call('POST', '/v1/auth/password', { token: s.business.token, body: { currentPassword: 'business-password', newPassword: 'a-new-password-1' } })).status, 204)
  t.equal(await statement(keyToken), 401, 'the key\'s token from before the change ends')
  t.equal(await statement(await exchange()), 200, 'the key, exchanged again, works')
})

t.test('a token whose credential was read in the revocation\'s own millisecond is refused; one a millisecond later is not', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  t.equal((await ctx.call('POST', '/v1/auth/password', { token: s.member.token, body: { currentPassword: 'member-password', newPassword: 'a-new-password-1' } })).status, 204)
  const [u] = (await ctx.app.pool.query(
    `SELECT id, role, currency_id, username, floor(extract(epoch FROM tokens_revoked_before) * 1000)::float8 AS before
       FROM app_user WHERE participant_id = $1`, [s.member.id])).rows
  const readAt = async (authAt: number) => (await ctx.app.tokens.sign({
    userId: u.id, role: u.role, currencyId: u.currency_id, participantId: s.member.id, username: u.username, authAt,
  })).accessToken
  const read = async (token: string) => (await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token })).status
  t.equal(await read(await readAt(u.before)), 401, 'the same millisecond: refused')
  t.equal(await read(await readAt(u.before + 1)), 200, 'the next: accepted')
  // a real login's token says when the database read its credential: after the revocation
  const fresh = await ctx.token(s.member.username, 'a-new-password-1')
  const authMs = decodeJwt(fresh).auth_ms as number
  const dbNow = Number((await ctx.app.pool.query('SELECT floor(extract(epoch FROM now()) * 1000)::float8 AS now')).rows[0].now)
  t.ok(authMs > u.before && authMs <= dbNow, `auth_ms ${authMs} is on the database's clock, between the revocation ${u.before as number} and now ${dbNow}`)
})
