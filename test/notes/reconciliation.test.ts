import t from 'tap'
import { text } from 'node:stream/consumers'
import { buildTestApp, issue, registerMember, scenario } from '../helper.js'
import { reconciliation } from '../../src/services/notes.service.js'

// The reserve's reconciliation CSV is streamed a page at a time, so a scheme's whole history never sits in memory:
// the pages join into the same file whatever their size, the running total runs on across them, and `at` cuts it.

t.test('the reconciliation streams in pages that join into one file', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const m = await registerMember(ctx, s.code)
  for (const amount of ['10.00', '2.50', '7.25']) await issue(ctx, s.code, s.member.accountId, amount)
  await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'p', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '15.00', channel: 'online' },
  })
  const r = await ctx.call('POST', `/v1/currencies/${s.code}/redemptions`, {
    token: s.business.token, key: 'r', body: { fromAccount: s.business.accountId, amount: '10.00', sterlingReference: '=HYPERLINK("x")' },
  })
  t.equal(r.status, 201, r.text)
  const middle = (await ctx.app.pool.query<{ now: Date }>('SELECT now()')).rows[0].now
  for (const amount of ['1.00', '3.00']) await issue(ctx, s.code, m.accountId, amount)

  const whole = await ctx.call('GET', `/v1/currencies/${s.code}/reserve?format=csv`, { token: ctx.issuerToken })
  t.equal(whole.status, 200)
  const lines = whole.text.trim().split('\n')
  t.equal(lines.length, 1 + 6, 'a header and six sterling movements')
  t.same(lines.slice(1).map(l => l.split(',').slice(-2)), [
    ['10.00', '10.00'], ['2.50', '12.50'], ['7.25', '19.75'], ['-9.70', '10.05'], ['1.00', '11.05'], ['3.00', '14.05'],
  ], 'amounts and the running total')
  t.match(lines[4], /,"'=HYPERLINK\(""x""\)",/, 'a reference that would be a formula is written as text')
  const json = await ctx.call('GET', `/v1/currencies/${s.code}/reserve`, { token: ctx.issuerToken })
  t.equal(json.body.sterlingReserve, '14.05', 'the last running total is the reserve')

  const c = await ctx.app.services.currencies.resolve(s.code)
  for (const page of [1, 2, 5, 6, 7]) {
    t.equal(await text(reconciliation(ctx.app.pool, c, undefined, page)), whole.text, `pages of ${page}: the same file`)
  }
  const cut = (await text(reconciliation(ctx.app.pool, c, middle.getTime(), 2))).trim().split('\n')
  t.equal(cut.length, 1 + 4, '`at` leaves out what was recorded after it')
  t.equal(cut.at(-1)!.split(',').at(-1), '10.05')
  const asOf = await ctx.call('GET', `/v1/currencies/${s.code}/reserve?format=csv&at=${encodeURIComponent(middle.toISOString())}`, { token: ctx.issuerToken })
  t.equal(asOf.text, cut.join('\n') + '\n', 'and the route says the same')
})
