import t from 'tap'
import { buildTestApp, scenario } from './helper.js'

// Verified tokens are remembered for a while (plugins/auth.ts) so a busy client does not pay for a signature check
// on every request; a remembered token must still stop working the moment it expires.
t.test('a cached token is refused once it expires', async (t) => {
  // the clock tokens are dated and checked by, moved by the test (no waiting for the token to expire)
  let now = Date.now()
  const ctx = await buildTestApp(t, { TOKEN_CACHE_MS: 60_000, TOKEN_TTL_SECONDS: 300 }, { tokenClock: () => new Date(now) })
  const s = await scenario(ctx)
  const token = s.member.token
  const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp as number
  t.equal(exp, Math.floor(now / 1000) + 300, 'dated by the injected clock')
  const read = async () => await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token })
  t.equal((await read()).status, 200, 'valid, and now cached')
  now = exp * 1000 - 1
  t.equal((await read()).status, 200, 'served from the cache up to its last millisecond')
  now = exp * 1000
  const late = await read()
  t.equal(late.status, 401, 'refused the millisecond it expires, though the cache still holds it')
  t.equal(late.body.code, 'UNAUTHENTICATED')
  t.equal(late.body.detail, 'the token has expired')
  now = exp * 1000 - 1
  t.equal((await read()).status, 200, 'a millisecond earlier it is valid again: the clock decides, not the cache')
})
