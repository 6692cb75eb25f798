import { SignJWT } from 'jose'
import t from 'tap'
import { buildTestApp, scenario } from './helper.js'

// Verified tokens are remembered for a while (plugins/auth.ts) so a busy client does not pay for a signature check
// on every request; a remembered token must still stop working the moment it expires.
t.test('a cached token is refused once it expires', async (t) => {
  const ctx = await buildTestApp(t, { TOKEN_CACHE_MS: 60_000 })
  const s = await scenario(ctx)
  const claims = JSON.parse(Buffer.from(s.member.token.split('.')[1], 'base64url').toString()) as Record<string, unknown>
  const exp = Math.floor(Date.now() / 1000) + 5 // room for a slow machine between signing and the first calls
  const token = await new SignJWT({ role: claims.role, cur: claims.cur, pid: claims.pid })
    .setProtectedHeader({ alg: 'EdDSA', kid: ctx.keys.signing.kid }).setSubject(String(claims.sub))
    .setIssuer('circulate').setAudience('circulate-api').setIssuedAt().setExpirationTime(exp)
    .sign(ctx.keys.signing.privateKey)
  const first = await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token })
  t.equal(first.status, 200, 'valid, and now cached')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token })).status, 200, 'served from the cache')
  await new Promise(resolve => setTimeout(resolve, exp * 1000 - Date.now() + 200))
  const late = await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token })
  t.equal(late.status, 401)
  t.equal(late.body.code, 'UNAUTHENTICATED')
})
