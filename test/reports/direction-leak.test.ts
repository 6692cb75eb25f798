import t from 'tap'
import { direction } from '../../src/domain/disclosure.js'
import { buildTestApp } from '../helper.js'
import { pinSecret, timeBank } from './fixture.js'

// Found by an attacker helper session. A currency of whole units. A day cell that is the only one on the weaker
// side of its margin group takes all of the group's balancing noise, however small the cell: a cell of 4 units
// next to one whose largest part is 30 units was moved down by 4 to 6 units and published at 0 or below. A flow
// cannot be below zero, so the researcher learnt the cell's direction, which is the same on every day and in every
// range; and in whole units a day cell whose largest part is at most 5 units is moved by one or two units, its
// direction. Such a day now hides the cell (and a partner) in every range containing it (disclosure.ts).
t.test('a flows cell that its noise would take to zero or below is hidden, not published with its direction', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const { book, members, food, retail, token } = await timeBank(ctx, '60')
  // 2026-03-10: four members give an hour each to four food businesses (8 accounts, 4 hours: passes the rules);
  // one member gives 30 hours to a shop, another one hour to each of five shops
  for (let i = 0; i < 4; i++) await book.ledger.pay('2026-03-10T12:00:00Z', members[i].accountId, food[i].accountId, '1')
  await book.ledger.pay('2026-03-10T13:00:00Z', members[4].accountId, retail[0].accountId, '30')
  for (let i = 1; i < 6; i++) await book.ledger.pay('2026-03-10T14:00:00Z', members[5].accountId, retail[i].accountId, '1')
  // 2026-03-11: as in whole-units.test.ts, 2 hours to each food business, 3 to each shop (12 and 18)
  for (let i = 0; i < 6; i++) {
    await book.ledger.pay('2026-03-11T12:00:00Z', members[i].accountId, food[i].accountId, '2')
    await book.ledger.pay('2026-03-11T13:00:00Z', members[i].accountId, retail[i].accountId, '3')
  }
  const cell = (sector: string) => `flows|sector|member|${sector}`
  await pinSecret(ctx, book.currencyId, s => direction(s, cell('food')) === -1n && direction(s, cell('retail')) === 1n)
  const day = async (from: string, to: string) => {
    const r = await ctx.call('GET', `/v1/currencies/HRS/reports/flows?by=sector&from=${from}&to=${to}`, { token })
    t.equal(r.status, 200)
    return new Map<string, string | null>(r.body.cells.map((c: any) => [`${c.payer}>${c.payee}`, c.volume.value]))
  }
  const first = await day('2026-03-10', '2026-03-11')
  const food10 = first.get('member>food')
  t.ok(food10 == null || Number(food10) > 0, `a flow of 4 hours is not published at ${food10} (no flow is below 1 hour): that gives the cell's direction away`)
  // what the researcher does with it: the direction is down, so on 2026-03-11 (largest part 2 hours) the noise is -1
  const second = await day('2026-03-11', '2026-03-12')
  const recovered = Number(second.get('member>food')) + 1
  t.not(food10 != null && Number(food10) <= 0 ? recovered : null, 12, 'the researcher does not recover the 12 hours paid to food on 2026-03-11 exactly')
})
