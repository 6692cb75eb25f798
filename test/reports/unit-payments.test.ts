import t from 'tap'
import { direction } from '../../src/domain/disclosure.js'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { createResearcher } from './ledger.js'

// Found by an attacker helper session: a time bank where every payment is one hour (the transfers export shows
// every amount), so a day cell's value is its count of payments. The value's noise is one or two hours (a day cell
// whose largest part is at most 5 hours), its direction; the count's was -1, 0 or +1 of its own. Together they left
// one candidate on most days: the day cell exactly, and with it the cell's direction, the same on every day and in
// every range. A cell of one-unit payments now has its count moved with its value (disclosure.ts), so the two say
// the same. The researcher here knows the noise's size (one or two hours on such a day) but not its direction,
// and keeps every value it allows that the published count allows too.
t.test('the published value and count of a day of one-hour payments do not give the day cell exactly', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx, 'HRS', ['BS'], { name: 'Hours', decimals: 0, fees: {}, redemptionFee: '0' })
  const members = []
  for (let i = 0; i < 8; i++) members.push(await member(ctx, 'HRS', 'BS6 5AB'))
  const food = []; const retail = []
  for (let i = 0; i < 6; i++) food.push(await business(ctx, 'HRS', 'food', 'BS1 4DJ'))
  for (let i = 0; i < 6; i++) retail.push(await business(ctx, 'HRS', 'retail', 'BS1 4DJ'))
  for (const m of members) await book.ledger.issue('2026-03-01T09:00:00Z', m.accountId, '20')
  // nine days: each, 7 one-hour payments to food businesses and 6 to shops, from different members
  const DAYS = 9
  for (let d = 10; d < 10 + DAYS; d++) {
    for (let i = 0; i < 7; i++) await book.ledger.pay(`2026-03-${d}T12:0${i}:00Z`, members[i].accountId, food[(i + d) % 6].accountId, '1')
    for (let i = 0; i < 6; i++) await book.ledger.pay(`2026-03-${d}T13:0${i}:00Z`, members[i + 1].accountId, retail[(i + d) % 6].accountId, '1')
  }
  // a secret under which the two cells go opposite ways, so both are published (as whole-units.test.ts)
  const cell = (sector: string) => `flows|sector|member|${sector}`
  let secret = Buffer.alloc(32)
  for (let i = 0; ; i++) {
    secret = Buffer.alloc(32, i)
    if (direction(secret, cell('food')) !== direction(secret, cell('retail'))) break
  }
  await ctx.app.pool.query('UPDATE disclosure_key SET secret = $2 WHERE currency_id = $1', [book.currencyId, secret])
  await createResearcher(ctx.app.pool, book.currencyId, 'res-hrs', 'researcher-password')
  const token = await ctx.token('res-hrs', 'researcher-password')
  let exact = 0
  for (let d = 10; d < 10 + DAYS; d++) {
    const r = await ctx.call('GET', `/v1/currencies/HRS/reports/flows?by=sector&from=2026-03-${d}&to=2026-03-${d + 1}`, { token })
    t.equal(r.status, 200)
    const c = r.body.cells.find((x: any) => x.payer === 'member' && x.payee === 'food')
    const v = Number(c.volume.value); const n = Number(c.count.value)
    t.equal(n, v, `2026-03-${d}: the count moved with the value`)
    // one-hour payments: the value is the count
    const candidates = [v - 2, v - 1, v + 1, v + 2].filter(x => x > 0 && Math.abs(x - n) <= 1)
    t.comment(`2026-03-${d}: member>food published ${v} hours in ${n} payments; candidates ${JSON.stringify(candidates)}`)
    if (candidates.length === 1) {
      exact++
      t.equal(candidates[0], 7, `2026-03-${d}: the researcher's one candidate is the truth`)
    }
  }
  t.equal(exact, 0, `of ${DAYS} days, the day cell (7 hours) recovered exactly on ${exact}`)
})
