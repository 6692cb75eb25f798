import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { generateJwk, keyFromJwk, keySetFromJwks, loadKeySet, publicJwk } from '../../src/auth/keys.js'
import { buildTestApp, issue, ISSUER, mint, PROBLEM, scenario, type TestContext } from './fixtures/index.js'

const platformId = async (ctx: TestContext) => (await ctx.app.prisma.appUser.findUniqueOrThrow({ where: { username: ISSUER.username } })).id

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

async function expect401 (t: Test, ctx: TestContext, url: string, authorization: string, why: string, detail?: RegExp) {
  const r = await ctx.call('GET', url, { headers: { authorization } })
  t.equal(r.status, 401, `${why}: 401`)
  t.match(r.headers['content-type'], PROBLEM, `${why}: problem+json`)
  t.equal(r.body.code, 'UNAUTHENTICATED', `${why}: code`)
  if (detail != null) t.match(r.body.detail, detail, `${why}: says why`)
}

t.test('forged, stale and foreign tokens are refused with 401 problem+json', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const url = `/v1/currencies/${s.code}/transfers`
  const key = ctx.keys.signing
  const sub = await platformId(ctx)

  const good = await mint(key, { sub, role: 'platform_issuer' })
  t.equal((await ctx.call('GET', url, { headers: { authorization: `Bearer ${good}` } })).status, 200, 'control: a well-made token passes')
  t.equal((await ctx.call('GET', url, { headers: { authorization: `bearer ${good}` } })).status, 200, 'the scheme is case-insensitive')

  const [, payload] = good.split('.')
  await expect401(t, ctx, url, `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`, 'alg none, empty signature')
  await expect401(t, ctx, url, `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${payload}.AAAA`, 'alg none with a signature', /algorithm/)

  const pub = ctx.app.tokens.jwks().keys[0]
  for (const [name, secret] of [['the public JWK', JSON.stringify(pub)], ['the raw public key', Buffer.from(String(pub.x), 'base64url')]] as const) {
    const hs = await new SignJWT({ role: 'platform_issuer' }).setProtectedHeader({ alg: 'HS256', kid: key.kid })
      .setSubject(sub).setIssuer('circulate').setAudience('circulate-api').setExpirationTime('5m')
      .sign(typeof secret === 'string' ? new TextEncoder().encode(secret) : secret)
    await expect401(t, ctx, url, `Bearer ${hs}`, `HS256 signed with ${name}`, /algorithm/)
  }

  const now = Math.floor(Date.now() / 1000)
  await expect401(t, ctx, url, `Bearer ${await mint(key, { sub }, { exp: now - 60 })}`, 'expired', /expired/)
  await expect401(t, ctx, url, `Bearer ${await mint(key, { sub }, { nbf: now + 600 })}`, 'not yet valid', /nbf/)
  await expect401(t, ctx, url, `Bearer ${await mint(key, { sub }, { iss: 'someone-else' })}`, 'wrong issuer', /iss/)
  await expect401(t, ctx, url, `Bearer ${await mint(key, { sub }, { aud: 'another-api' })}`, 'wrong audience', /aud/)

  const member = s.member.token.split('.')
  const raised = b64({ ...JSON.parse(Buffer.from(member[1], 'base64url').toString()), role: 'platform_issuer' })
  await expect401(t, ctx, url, `Bearer ${member[0]}.${raised}.${member[2]}`, 'tampered payload', /signature/)

  const stranger = await keyFromJwk(await generateJwk())
  await expect401(t, ctx, url, `Bearer ${await mint(stranger, { sub })}`, 'unknown kid', /key this service knows/)
  await expect401(t, ctx, url, `Bearer ${await mint(stranger, { sub }, { kid: key.kid })}`, 'known kid, other key', /signature/)
  await expect401(t, ctx, url, `Bearer ${await mint(key, { sub, role: 'superuser' })}`, 'a role this service does not have', /role/)

  for (const h of ['Basic cGxhdGZvcm06cGFzcw==', 'Bearer', 'Bearer ', `Bearer ${good} extra`, 'Bearer a.b', `Token ${good}`, 'Bearer aaa.bbb.ccc']) {
    await expect401(t, ctx, url, h, `malformed Authorization "${h.slice(0, 20)}"`)
  }
})

t.test('the token exchange answers with Cache-Control: no-store, for a password and for an API key', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const byPassword = await ctx.call('POST', '/v1/auth/token', { body: { username: s.business.username, password: 'business-password' } })
  t.same([byPassword.status, byPassword.headers['cache-control']], [200, 'no-store'], 'a bearer token is kept by no cache')
  const key = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['payments:write'] } })
  const byKey = await ctx.call('POST', '/v1/auth/token', { body: { apiKey: key.body.key } })
  t.same([byKey.status, byKey.headers['cache-control']], [200, 'no-store'])
})

t.test('a route that needs no token answers a bad one as it answers none; the others still refuse it', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const sub = await platformId(ctx)
  const expired = await mint(ctx.keys.signing, { sub }, { exp: Math.floor(Date.now() / 1000) - 60 })
  for (const h of [`Bearer ${expired}`, 'Bearer aaa.bbb.ccc', 'Basic cGxhdGZvcm06cGFzcw==']) {
    const headers = { authorization: h }
    const login = await ctx.call('POST', '/v1/auth/token', { headers, body: { username: ISSUER.username, password: ISSUER.password } })
    t.equal(login.status, 200, `"${h.slice(0, 16)}": the token exchange still logs in`)
    t.equal((await ctx.call('GET', '/.well-known/jwks.json', { headers })).status, 200, 'the JWKS answers')
    t.equal((await ctx.call('GET', `/v1/currencies/${s.code}`, { headers })).status, 200, 'a currency answers')
    // the pages and the API document: a browser still holding an expired token must get them, not a 401
    for (const url of ['/dashboard', '/dashboard/config.json', '/dashboard/dashboard.js', '/till', '/pages/pay.js', `/pay/${sub}`, '/docs', '/docs/json']) {
      t.equal((await ctx.app.inject({ method: 'GET', url, headers })).statusCode, 200, `"${h.slice(0, 16)}": ${url} answers`)
    }
    await expect401(t, ctx, `/v1/currencies/${s.code}/transfers`, h, `"${h.slice(0, 16)}": a route that needs a token still refuses it`)
  }
})

t.test('a revoked API key gets no token, and tokens it already got stop working', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const k = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['accounts:read'] } })
  const tok = (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: k.body.key } })).body.accessToken as string
  t.equal((await ctx.call('GET', `/v1/accounts/${s.business.accountId}`, { token: tok })).status, 200)
  t.equal((await ctx.call('DELETE', `/v1/api-keys/${k.body.id as string}`, { token: s.business.token })).status, 204)

  const again = await ctx.call('POST', '/v1/auth/token', { body: { apiKey: k.body.key } })
  t.equal(again.status, 401, 'the exchange refuses a revoked key')
  t.match(again.headers['content-type'], PROBLEM)
  t.equal(again.body.code, 'INVALID_CREDENTIALS')
  await expect401(t, ctx, `/v1/accounts/${s.business.accountId}`, `Bearer ${tok}`, 'a token of a revoked key', /revoked/)
})

t.test('key rotation: a token of the previous key verifies while that key is configured, and not after', async (t) => {
  const [fresh, old] = [await generateJwk(), await generateJwk()]
  const oldKey = await keyFromJwk(old)
  const both = await buildTestApp(t, {}, { keys: await keySetFromJwks([fresh, old]) })
  const sub = await platformId(both)
  const byOld = await mint(oldKey, { sub })

  t.equal((await both.call('GET', '/v1/audit', { token: byOld })).status, 200, 'old key still configured: verifies')
  t.equal(JSON.parse(Buffer.from(both.issuerToken.split('.')[0], 'base64url').toString()).kid, fresh.kid, 'the first key signs new tokens')
  t.same(both.app.tokens.jwks().keys.map(k => k.kid), [fresh.kid, old.kid], 'both keys are published')

  const newOnly = await buildTestApp(t, {}, { keys: await keySetFromJwks([fresh]), db: both.db })
  t.equal((await newOnly.call('GET', '/v1/audit', { token: newOnly.issuerToken })).status, 200, 'tokens of the new key verify')
  await expect401(t, newOnly, '/v1/audit', `Bearer ${byOld}`, 'old key removed', /key this service knows/)

  const retired = await buildTestApp(t, {}, { keys: await keySetFromJwks([fresh], [await publicJwk(old)]), db: both.db })
  t.equal((await retired.call('GET', '/v1/audit', { token: byOld })).status, 200, 'old key kept as a retired public key: verifies')
  t.same(retired.app.tokens.jwks().keys.map(k => k.kid), [fresh.kid, old.kid], 'the retired key is still published')
  t.notOk('d' in retired.app.tokens.jwks().keys[1], 'no private part is published')
})

t.test('keys from config: JWT_PRIVATE_KEYS and JWT_RETIRED_PUBLIC_KEYS', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-keys-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const [a, b] = [await generateJwk(), await generateJwk()]
  const set = await loadKeySet(JSON.stringify([a]), dir, JSON.stringify([await publicJwk(b)]))
  t.equal(set.signing.kid, a.kid)
  t.same(set.all.map(k => k.kid), [a.kid, b.kid])
  await t.rejects(loadKeySet(JSON.stringify([a]), dir, JSON.stringify([b])), /public keys only/, 'a private key is refused as a retired key')
  await t.rejects(loadKeySet('not json', dir), /JWT_PRIVATE_KEYS is not valid JSON/)
  const generated = await loadKeySet(undefined, dir)
  t.equal((await loadKeySet(undefined, dir)).signing.kid, generated.signing.kid, 'the generated key is kept in the data folder')
})

t.test('an external identity provider: its tokens verify through its JWKS and map to roles', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = { ...await exportJWK(publicKey), kid: 'idp-1', alg: 'ES256', use: 'sig' }
  let fetches = 0
  const idp = http.createServer((req, res) => {
    fetches++
    if (req.url !== '/jwks') { res.statusCode = 404; res.end(); return }
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>(resolve => idp.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { idp.close() })
  const port = (idp.address() as { port: number }).port
  const ISS = 'https://idp.example'
  const ctx = await buildTestApp(t, { OIDC_JWKS_URL: `http://127.0.0.1:${port}/jwks`, OIDC_ISSUER: ISS, OIDC_AUDIENCE: 'circulate' })
  const s = await scenario(ctx)
  const external = async (claims: Record<string, unknown>, o: { aud?: string, exp?: string, key?: CryptoKey, alg?: string } = {}) =>
    await new SignJWT(claims).setProtectedHeader({ alg: o.alg ?? 'ES256', kid: 'idp-1' }).setSubject(String(claims.sub ?? 'alice'))
      .setIssuer(ISS).setAudience(o.aud ?? 'circulate').setIssuedAt().setExpirationTime(o.exp ?? '5m')
      .sign(o.key ?? privateKey)

  const issuer = await external({ sub: 'alice', role: 'issuer', currency: s.code, preferred_username: 'alice@scheme' })
  t.equal((await ctx.call('GET', `/v1/currencies/${s.code}/transfers`, { token: issuer })).status, 200, 'an external issuer acts for its currency')
  const iss = await ctx.call('POST', `/v1/currencies/${s.code}/issuances`, {
    token: issuer, key: 'oidc-1', body: { toAccount: s.member.accountId, amount: '10.00', sterlingReference: 'bank-oidc' },
  })
  t.equal(iss.status, 201)
  const audit = await ctx.call('GET', `/v1/currencies/${s.code}/audit?action=issuance.create`, { token: ctx.issuerToken })
  t.match(audit.body.items.at(-1), { actorId: 'oidc:alice', actorName: 'alice@scheme', role: 'issuer', outcome: 'success' })
  t.equal((await ctx.call('POST', '/v1/currencies', { token: issuer, body: { code: 'NOPE', name: 'x' } })).status, 403, 'but not as platform issuer')
  // a reset code remembers its maker when that is a login here (suspending it ends the code); an external issuer has none
  const reset = await ctx.call('POST', `/v1/participants/${s.member.id}/password-reset`, { token: issuer })
  t.equal(reset.status, 201, `an external issuer hands out a reset code: ${reset.text}`)
  t.equal((await ctx.app.pool.query('SELECT reset_issued_by FROM app_user WHERE participant_id = $1', [s.member.id])).rows[0].reset_issued_by, null)

  const member = await external({ sub: 'bob', role: 'member', currency: s.code, participant: s.member.id })
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: member })).status, 200, 'an external member reads its account')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.business.accountId}`, { token: member })).status, 404, 'and not another\'s')
  t.equal((await ctx.call('GET', `/v1/currencies/${s.code}/transfers`, { token: ctx.issuerToken })).status, 200, 'the service\'s own tokens still work')

  const url = `/v1/currencies/${s.code}/transfers`
  const other = await generateKeyPair('ES256')
  await expect401(t, ctx, url, `Bearer ${await external({ role: 'issuer', currency: s.code }, { aud: 'elsewhere' })}`, 'external: wrong audience', /aud/)
  await expect401(t, ctx, url, `Bearer ${await external({ role: 'issuer', currency: s.code }, { key: other.privateKey })}`, 'external: signed by another key', /signature/)
  await expect401(t, ctx, url, `Bearer ${await external({ role: 'issuer', currency: s.code }, { exp: '-1m' })}`, 'external: expired', /expired/)
  await expect401(t, ctx, url, `Bearer ${await external({ role: 'admin', currency: s.code })}`, 'external: unknown role', /role/)
  await expect401(t, ctx, url, `Bearer ${await external({ role: 'issuer', currency: 'ZZZ' })}`, 'external: unknown currency', /currency/)
  await expect401(t, ctx, url, `Bearer ${await external({ role: 'member', currency: s.code })}`, 'external: member without participant', /participant/)
  const hs = await new SignJWT({ role: 'platform_issuer' }).setProtectedHeader({ alg: 'HS256', kid: 'idp-1' }).setSubject('eve')
    .setIssuer(ISS).setAudience('circulate').setExpirationTime('5m').sign(new TextEncoder().encode(JSON.stringify(jwk)))
  await expect401(t, ctx, url, `Bearer ${hs}`, 'external: HS256 with the public key', /algorithm/)
  t.ok(fetches >= 1, 'the provider\'s JWKS was fetched over HTTP')
  await issue(ctx, s.code, s.member.accountId, '1.00')
})

t.test('OIDC settings go together', async (t) => {
  const { loadConfig } = await import('../../src/config.js')
  t.throws(() => loadConfig({ OIDC_JWKS_URL: 'http://127.0.0.1:1/jwks' }), /set together/)
  t.throws(() => loadConfig({ OIDC_JWKS_URL: 'http://x/jwks', OIDC_ISSUER: 'circulate', OIDC_AUDIENCE: 'a' }), /must differ/)
  t.ok(loadConfig({ OIDC_JWKS_URL: 'http://x/jwks', OIDC_ISSUER: 'https://idp', OIDC_AUDIENCE: 'a' }))
})
