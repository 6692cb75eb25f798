import t from 'tap'
import { buildTestApp } from '../helper.js'

// What a new currency is made of: its name as it will be shown, and a backing currency that exists.
t.test('a new currency: its name trimmed, its backing a real ISO 4217 code, nothing made when refused', async (t) => {
  const ctx = await buildTestApp(t)
  const create = async (body: Record<string, unknown>) => await ctx.call('POST', '/v1/currencies', { token: ctx.issuerToken, body })

  const zzz = await create({ code: 'ZZB', name: 'Fake Pound', backing: 'ZZZ' })
  t.equal(zzz.status, 422, 'a backing of three capitals that is no currency is refused')
  t.equal(zzz.body.code, 'VALIDATION_FAILED')
  t.match(zzz.body.errors, [{ pointer: '/backing', detail: /ISO 4217/ }])
  t.equal((await ctx.call('GET', '/v1/currencies/ZZB', { token: ctx.issuerToken })).status, 404, 'and nothing was made')

  const blank = await create({ code: 'ZZC', name: '\u3000\u200B' })
  t.equal(blank.status, 422, 'a name that shows nothing is refused')
  t.equal(blank.body.code, 'INVALID_TEXT')

  const ok = await create({ code: 'EUP', name: '  Euro Pound  ', backing: 'EUR' })
  t.equal(ok.status, 201)
  t.equal(ok.body.name, 'Euro Pound', 'the name is stored without its surrounding spaces, as participants\' names are')
  t.equal(ok.body.backing, 'EUR')
  t.equal((await create({ code: 'GBQ', name: 'Default' })).body.backing, 'GBP', 'sterling by default')
})
