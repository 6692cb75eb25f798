import t from 'tap'
import { buildTestApp, ISSUER, scenario } from './fixtures/index.js'

// Staff logins could not be stopped: a researcher whose study had ended, or whose password had leaked, kept the
// pseudonymised exports for good, and so did issuer staff who had left. Now an issuer suspends its currency's
// researchers, the platform issuer suspends issuer staff, with the same effect as a participant's suspension:
// no new token, the tokens it has stop at once, on every instance, and stay dead after a reinstatement.

t.test('a researcher is suspended by its currency\'s issuer: its tokens stop everywhere, its login is refused', async (t) => {
  const ctx = await buildTestApp(t)
  const other = await buildTestApp(t, { LOGIN_CHECK_MS: 0 }, { db: ctx.db, keys: ctx.keys })
  const s = await scenario(ctx)
  const made = async (kind: 'researchers' | 'issuers', username: string) => {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/${kind}`, { token: ctx.issuerToken, body: { name: 'Dr Who', username, password: 'staff-password-1' } })
    t.equal(r.status, 201, r.text)
    return r.body.id as string
  }
  const researcher = await made('researchers', 'dr-who')
  const issuerStaff = await made('issuers', 'clerk')
  const issuer = await ctx.token('clerk', 'staff-password-1')
  const study = await ctx.token('dr-who', 'staff-password-1')
  const report = async (c: typeof ctx, token: string) => await c.call('GET', `/v1/currencies/${s.code}/reports/circulation`, { token })
  t.equal((await report(ctx, study)).status, 200, 'before: the researcher reads reports')
  t.equal((await report(other, study)).status, 200, 'on the other instance too')

  const list = await ctx.call('GET', `/v1/currencies/${s.code}/staff`, { token: issuer })
  t.equal(list.status, 200, list.text)
  t.same(list.body.items.map((x: any) => [x.id, x.role, x.username, x.suspended]), [[researcher, 'researcher', 'dr-who', false], [issuerStaff, 'issuer', 'clerk', false]])
  t.same((await ctx.call('GET', `/v1/currencies/${s.code}/staff?role=researcher&limit=1`, { token: issuer })).body.items.map((x: any) => x.id), [researcher])

  const susp = await ctx.call('PUT', `/v1/staff/${researcher}/suspension`, { token: issuer, body: { reason: 'study ended' } })
  t.equal(susp.status, 200, susp.text)
  t.match(susp.body, { userId: researcher, suspended: true, suspendedAt: String })
  for (const [name, c] of [['this instance', ctx], ['the other instance', other]] as const) {
    const r = await report(c, study)
    t.same([r.status, r.body.code], [401, 'UNAUTHENTICATED'], `${name}: the token stops at once`)
  }
  const exp = await ctx.call('GET', `/v1/currencies/${s.code}/exports/transfers`, { token: study })
  t.equal(exp.status, 401, 'no export with it')
  const login = await ctx.call('POST', '/v1/auth/token', { body: { username: 'dr-who', password: 'staff-password-1' } })
  t.same([login.status, login.body.code], [403, 'LOGIN_SUSPENDED'], 'the right password gets no token')
  const again = await ctx.call('PUT', `/v1/staff/${researcher}/suspension`, { token: issuer, body: { reason: 'twice' } })
  t.equal(again.body.suspendedAt, susp.body.suspendedAt, 'suspending again changes nothing')
  const listed = (await ctx.call('GET', `/v1/currencies/${s.code}/staff`, { token: issuer })).body.items[0]
  t.match(listed, { id: researcher, suspended: true, suspendedAt: susp.body.suspendedAt }, 'the list says so')

  const back = await ctx.call('DELETE', `/v1/staff/${researcher}/suspension`, { token: issuer })
  t.same(back.body, { userId: researcher, suspended: false, suspendedAt: null })
  t.equal((await report(ctx, study)).status, 401, 'a token from before the suspension stays dead after the reinstatement')
  // (at once: tokens say when their password was read, to the millisecond)
  t.equal((await report(ctx, await ctx.token('dr-who', 'staff-password-1'))).status, 200, 'a new login works')

  const trail = (await ctx.call('GET', `/v1/currencies/${s.code}/audit?limit=200`, { token: issuer })).body.items as any[]
  const rows = trail.filter(e => e.action === 'login.suspend' || e.action === 'login.reinstate')
  t.same(rows.map(e => [e.action, e.target, e.outcome]), [['login.suspend', researcher, 'success'], ['login.reinstate', researcher, 'success']], 'audited once each')
  t.match(rows[0].detail, { reason: 'study ended', username: 'dr-who' })
})

t.test('who may suspend whom: issuer staff only by the platform issuer, nobody themselves, nothing across currencies', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const o = await scenario(ctx, { code: 'OTH' })
  const staff = async (code: string, kind: 'researchers' | 'issuers', username: string) => {
    const r = await ctx.call('POST', `/v1/currencies/${code}/${kind}`, { token: ctx.issuerToken, body: { name: 'Staff', username, password: 'staff-password-1' } })
    t.equal(r.status, 201, r.text)
    return { id: r.body.id as string, token: await ctx.token(username, 'staff-password-1') }
  }
  const issuerA = await staff(s.code, 'issuers', 'issuer-a')
  const issuerA2 = await staff(s.code, 'issuers', 'issuer-a2')
  const researcherA = await staff(s.code, 'researchers', 'researcher-a')
  const researcherA2 = await staff(s.code, 'researchers', 'researcher-a2')
  const issuerB = await staff(o.code, 'issuers', 'issuer-b')
  const platform = (await ctx.call('POST', '/v1/auth/token', { body: { username: ISSUER.username, password: ISSUER.password } })).body
  const platformId = JSON.parse(Buffer.from(String(platform.accessToken).split('.')[1], 'base64url').toString()).sub as string
  const suspend = async (token: string, id: string) => {
    const r = await ctx.call('PUT', `/v1/staff/${id}/suspension`, { token, body: { reason: 'test' } })
    return [r.status, r.body.code ?? null]
  }
  t.same(await suspend(issuerA.token, issuerA2.id), [403, 'FORBIDDEN'], 'an issuer cannot lock out a colleague')
  t.same(await suspend(issuerA.token, issuerA.id), [403, 'FORBIDDEN'], 'nor itself')
  t.same(await suspend(researcherA.token, researcherA.id), [403, 'FORBIDDEN'], 'a researcher cannot suspend itself')
  t.same(await suspend(researcherA.token, researcherA2.id), [404, 'LOGIN_NOT_FOUND'], 'nor another researcher, which it cannot see')
  t.same(await suspend(issuerB.token, researcherA.id), [404, 'LOGIN_NOT_FOUND'], 'another currency\'s issuer: as an unknown id')
  t.same(await suspend(issuerA.token, s.member.id), [404, 'LOGIN_NOT_FOUND'], 'a participant is suspended by its own route')
  t.same(await suspend(issuerA.token, platformId), [404, 'LOGIN_NOT_FOUND'], 'the platform issuer is no one\'s to suspend')
  t.same(await suspend(ctx.issuerToken, platformId), [403, 'FORBIDDEN'], 'not even its own')
  t.same(await suspend(issuerA.token, researcherA.id), [200, null], 'an issuer suspends its currency\'s researcher')
  t.same(await suspend(ctx.issuerToken, issuerA2.id), [200, null], 'the platform issuer suspends issuer staff')
  t.equal((await ctx.call('GET', `/v1/currencies/${s.code}/staff`, { token: issuerA2.token })).status, 401, 'whose tokens then stop')
  t.equal((await ctx.call('GET', `/v1/currencies/${o.code}/staff`, { token: issuerA.token })).status, 403, 'another currency\'s staff list is not an issuer\'s to read')
  t.equal((await ctx.call('GET', `/v1/currencies/${s.code}/staff`, { token: researcherA2.token })).status, 403, 'nor a researcher\'s')
})
