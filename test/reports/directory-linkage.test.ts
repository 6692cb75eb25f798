import t from 'tap'
import { buildTestApp, registerBusiness } from '../helper.js'
import { reportBook } from './fixture.js'

// The accounts export generalises the moment an account joined to its month, and withholds even that where fewer
// than 5 accounts would share it (docs/disclosure.md, "Linkage"): the month is taken to be the most an outsider
// knows. The public business directory, which anyone reads without a token, listed each business under its
// participant id, a uuid v7 whose first 48 bits are the millisecond it registered: the instant of joining of every
// business, to anyone, and with it the match against the first transfers of the transfers export (times to the
// microsecond) that the docs call outside k-anonymity's protection for an attacker who knows a join date.

const msOf = (uuid: string) => parseInt(uuid.replace(/-/g, '').slice(0, 12), 16)

t.test('the public directory does not give the moment a business registered', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  await reportBook(ctx)
  const registered: Array<{ id: string, before: number, after: number }> = []
  for (const [i, sector] of ['food', 'retail', 'services'].entries()) {
    const before = Date.now()
    const b = await registerBusiness(ctx, 'BRS', { tradingName: `Shop ${i}`, sector, postcode: 'BS6 5AB' })
    registered.push({ id: b.id, before, after: Date.now() })
  }
  const dir = await ctx.call('GET', '/v1/currencies/BRS/businesses?limit=2', { token: null })
  t.equal(dir.status, 200)
  const next = await ctx.call('GET', `/v1/currencies/BRS/businesses?limit=2&cursor=${encodeURIComponent(String(dir.body.nextCursor))}`, { token: null })
  const items = [...dir.body.items, ...next.body.items] as Array<{ id: string }>
  t.equal(items.length, 3, 'every business is listed')
  for (const r of registered) {
    const item = items.find(i => i.id === r.id)
    t.ok(item, 'listed under its id')
    const at = msOf(r.id)
    t.notOk(at >= r.before - 60_000 && at <= r.after + 60_000, `the listed id ${r.id} does not carry the time of registration`)
    t.not(r.id[14], '7', 'nor is it a time-ordered (v7) uuid')
  }
})
