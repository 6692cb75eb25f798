import t from 'tap'
import { buildTestApp } from '../helper.js'

// Several instances starting at once on a fresh database each make the platform issuer from ISSUER_USERNAME:
// exactly one makes it, and no instance fails to start (one did, in the failover fault test, with a unique
// violation on app_user).
t.test('instances making the platform issuer at once: one makes it, none fails', async (t) => {
  const ctx = await buildTestApp(t, {}, { noIssuer: true })
  t.equal(await ctx.app.services.auth.hasPlatformIssuer(), false, 'none yet: the start warns')
  t.equal(await ctx.app.services.auth.ensurePlatformIssuer(undefined, undefined), false, 'none made without a username and password')
  t.equal(await ctx.app.services.auth.hasPlatformIssuer(), false)
  const made = await Promise.all(Array.from({ length: 4 }, async () =>
    await ctx.app.services.auth.ensurePlatformIssuer('first-issuer', 'first-issuer-password')))
  t.same(made.filter(x => x).length, 1, 'one of four made it; the others were told it exists')
  const n = await ctx.app.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM app_user WHERE role = 'platform_issuer'`)
  t.equal(n.rows[0].n, 1)
  t.equal(await ctx.app.services.auth.ensurePlatformIssuer('another-issuer', 'another-password'), false, 'a later start makes none')
  t.ok((await ctx.token('first-issuer', 'first-issuer-password')).length > 0, 'the issuer made can log in')
  t.equal(await ctx.app.services.auth.hasPlatformIssuer(), true)
})
