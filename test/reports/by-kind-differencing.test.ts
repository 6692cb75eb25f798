import t from 'tap'
import { Money } from '../../src/domain/money.js'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { createResearcher } from './ledger.js'

// A researcher against the holding figures by participant kind (docs/metrics.md, "By participant kind"): a kind
// with too few accounts has its figures withheld, and the other kind's figures must not give them back by
// arithmetic with the whole. Eight members and one business: in April the business and three members move money,
// five members have not touched theirs since January (dormant at the end of April). Members' dormant balances are
// the whole's (the business is not dormant), so dormantShare = D / T and dormantShareMember = D / T_members give
// T / T_members, and with T (participants' balances, from the published supply) the one business's balance.
t.test('the whole and one kind\'s dormant share do not give away the other kind\'s balances', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  const M = []
  for (let i = 0; i < 8; i++) M.push(await member(ctx, 'BRS', 'BS6 5AB'))
  const B = await business(ctx, 'BRS', 'food', 'BS1 4DJ')
  for (const m of M) await book.ledger.issue('2026-01-01T00:00:00Z', m.accountId, '100')
  for (const m of M) await book.ledger.pay('2026-01-05T12:00:00Z', m.accountId, B.accountId, '10')
  await book.ledger.pay('2026-04-10T12:00:00Z', B.accountId, M[0].accountId, '10')
  await book.ledger.pay('2026-04-11T12:00:00Z', M[0].accountId, M[1].accountId, '5')
  await book.ledger.pay('2026-04-12T12:00:00Z', M[1].accountId, M[2].accountId, '5')
  await createResearcher(ctx.app.pool, book.currencyId, 'res-brs', 'researcher-password')
  const token = await ctx.token('res-brs', 'researcher-password')
  const business$ = (await ctx.app.pool.query('SELECT balance::text AS b FROM account WHERE id = $1', [B.accountId])).rows[0].b

  for (const interval of ['month', 'day']) {
    const r = await ctx.call('GET', `/v1/currencies/BRS/reports/circulation?from=2026-04-01&to=2026-05-01&interval=${interval}`, { token })
    t.equal(r.status, 200)
    for (const [name, m] of [['total', r.body.total.metrics], ...r.body.periods.map((p: any, i: number) => [`period ${i}`, p.metrics])] as Array<[string, any]>) {
      t.match(m.dormantShareBusiness, { value: null, suppressed: true }, `${interval} ${name}: one business holds money`)
      if (m.dormantShare.value != null) {
        t.same(m.dormantShareMember, { value: null, suppressed: true, reason: 'threshold', complementary: true },
          `${interval} ${name}: members' share hidden with it, the whole's published`)
      }
      const whole = m.dormantShare.value
      const members = m.dormantShareMember.value
      const supply = m.supply.value
      if (whole == null || members == null || supply == null || new Money(members).isZero()) continue
      // T_business = T - T_members = T (1 - dormantShare / dormantShareMember), T from supply less the system accounts
      const system = (await ctx.app.pool.query(`SELECT coalesce(sum(balance), 0)::text AS s FROM account WHERE currency_id = $1 AND participant_id IS NULL AND id <> $2`,
        [book.currencyId, book.system.issuance])).rows[0].s
      const T = new Money(supply).minus(system)
      const guess = T.times(new Money(1).minus(new Money(whole).div(members)))
      const err = guess.minus(business$).abs().div(business$)
      t.ok(err.gt(0.1), `${interval} ${name}: the business's balance ${business$} is not recovered within 10% (guess ${guess.toFixed(2)} from dormantShare ${whole}, dormantShareMember ${members}, supply ${supply})`)
    }
  }
})
