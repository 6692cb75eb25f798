import t from 'tap'
import { direction } from '../../src/domain/disclosure.js'
import { buildTestApp } from '../helper.js'
import { pinSecret, timeBank } from './fixture.js'

// A researcher of a currency of whole units (a time bank's hours, say) asks for one day's flows by sector. Each of
// the day's two cells has a largest part of 2 units, so its noise (12-17% of that) was under half a unit, and the
// published value, rounded to the currency's whole units, was the true one. docs/disclosure.md, "Small cells".
t.test('a currency of whole units: a day cell of a few units is published with a noise of at least one unit', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const { book, members, food, retail, token } = await timeBank(ctx, '20')
  // 2026-03-10: every member gives 2 hours to a food business and 3 to a shop, each to a different one, so the
  // cells describe 12 accounts and pass the threshold and p% rules
  for (let i = 0; i < 6; i++) {
    await book.ledger.pay('2026-03-10T12:00:00Z', members[i].accountId, food[i].accountId, '2')
    await book.ledger.pay('2026-03-10T13:00:00Z', members[i].accountId, retail[i].accountId, '3')
  }
  // a secret under which the two cells go opposite ways, so both are published (under one that sends them the
  // same way neither can balance the other, and both are hidden: disclosure.ts)
  const cell = (sector: string) => `flows|sector|member|${sector}`
  const secret = await pinSecret(ctx, book.currencyId, s => direction(s, cell('food')) !== direction(s, cell('retail')))

  const r = await ctx.call('GET', '/v1/currencies/HRS/reports/flows?by=sector&from=2026-03-10&to=2026-03-11', { token })
  t.equal(r.status, 200)
  const published = new Map<string, string>(r.body.cells.map((c: any) => [`${c.payer}>${c.payee}`, c.volume.value]))
  const truth = { food: 12, retail: 18 }
  for (const sector of ['food', 'retail'] as const) {
    const v = published.get(`member>${sector}`)
    t.match(v, /^\d+$/, `member>${sector} is published, in whole units (${v})`)
    const noise = Number(v) - truth[sector]
    t.ok(Math.abs(noise) >= 1, `member>${sector}: ${v} published for ${truth[sector]}, a noise of at least one unit`)
    t.equal(Math.sign(noise), Number(direction(secret, cell(sector))), `member>${sector} moved its own way`)
  }
  t.equal(Number(published.get('member>food')) + Number(published.get('member>retail')), 30,
    'the two cells still add up to what members paid businesses that day (the margin)')
  const csv = await ctx.call('GET', '/v1/currencies/HRS/reports/flows?by=sector&from=2026-03-10&to=2026-03-11&format=csv', { token })
  t.equal(csv.status, 200)
  for (const [k, v] of published) t.match(csv.text, new RegExp(`^${k.replace('>', ',')},${v},`, 'm'), `the CSV says the same of ${k}`)
})
