import t from 'tap'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { createResearcher } from './ledger.js'

// The disclosure rules over tiny ledgers, through the API as a researcher sees it.
// January:  M1 -> M2 10, M2 -> M3 10                three accounts: below the threshold of five
// February: M1..M5 each pay B1 10                   six accounts, but B1 took all of it: dominance
// March:    M1..M5 each pay B1 10 and B2 10         seven accounts, B1 half: published
t.test('cells below the threshold or dominated by one business are suppressed, and say so', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  const M = await Promise.all([1, 2, 3, 4, 5].map(() => member(ctx, 'BRS', 'BS6 5AB')))
  const B1 = await business(ctx, 'BRS', 'food', 'BS1 4DJ')
  const B2 = await business(ctx, 'BRS', 'retail', 'BS2 0AA')
  for (const m of M) await book.ledger.issue('2026-01-01T00:00:00Z', m.accountId, '100')
  await book.ledger.pay('2026-01-10T12:00:00Z', M[0].accountId, M[1].accountId, '10')
  await book.ledger.pay('2026-01-11T12:00:00Z', M[1].accountId, M[2].accountId, '10')
  for (const m of M) await book.ledger.pay('2026-02-10T12:00:00Z', m.accountId, B1.accountId, '10')
  for (const m of M) {
    await book.ledger.pay('2026-03-10T12:00:00Z', m.accountId, B1.accountId, '10')
    await book.ledger.pay('2026-03-11T12:00:00Z', m.accountId, B2.accountId, '10')
  }
  await createResearcher(ctx.app.pool, book.currencyId, 'res-brs', 'researcher-password')
  const token = await ctx.token('res-brs', 'researcher-password')

  const r = await ctx.call('GET', '/v1/currencies/BRS/reports/circulation?from=2026-01-01&to=2026-04-01&interval=month', { token })
  t.equal(r.status, 200)
  const [jan, feb, mar] = r.body.periods.map((p: any) => p.metrics)
  t.same(jan.volume, { value: null, suppressed: true, reason: 'threshold' }, 'three accounts: hidden, not zero')
  t.same(jan.count, { value: null, suppressed: true, reason: 'threshold' }, 'the count goes with its volume')
  t.same(jan.m2mShare, { value: null, suppressed: true, reason: 'threshold' })
  t.same(jan.activeAccounts, { value: null, suppressed: true, reason: 'threshold' }, 'two active accounts')
  t.same(feb.volume, { value: null, suppressed: true, reason: 'dominance' }, 'B1 received all of it')
  t.same(feb.m2bShare, { value: null, suppressed: true, reason: 'dominance' })
  t.same(mar.volume, { value: '100.00' }, 'seven accounts, none over 85%')
  t.same(mar.m2bShare, { value: '1.0000' })
  t.same(mar.b2bShare, { value: '0.0000' }, 'a true zero describes no account and is published')
  t.same(mar.activeAccounts, { value: '5' })
  // by participant kind: the five members' figures are theirs to publish, the two businesses' are not
  t.match(mar.holdingVelocityMember, { value: /^\d+\.\d{4}$/ }, 'members\' holding velocity: five payers, published')
  t.same(mar.dormantShareMember, { value: null, suppressed: true, reason: 'threshold', complementary: true },
    'five members hold money, but their balances would give the two businesses\' away: supply less the members\'')
  t.same(mar.dormantShareBusiness, { value: null, suppressed: true, reason: 'threshold' }, 'two businesses hold money')
  t.same(mar.effectiveShareBusiness, { value: null, suppressed: true, reason: 'threshold' }, 'two businesses\' balances over time')
  t.same(mar.effectiveShareMember, { value: null, suppressed: true, reason: 'threshold', complementary: true },
    'members\' balances over time would give the businesses\' away: average supply less the members\'')
  t.match(mar.effectiveShare, { value: /^\d+\.\d{4}$/ }, 'the whole is still published')
  t.notOk('suppressed' in mar.effectiveShare)
  t.same(r.body.total.metrics.volume, { value: '170.00' }, 'the range as a whole passes both rules')
  t.same(r.body.total.metrics.issued, { value: '500.00' })
  for (const p of r.body.periods) {
    for (const [name, c] of Object.entries(p.metrics) as Array<[string, any]>) {
      if (c.suppressed === true) t.equal(c.value, null, `${name}: a suppressed cell carries no value`)
    }
  }

  const csv = await ctx.call('GET', '/v1/currencies/BRS/reports/circulation?from=2026-01-01&to=2026-04-01&interval=month&format=csv', { token })
  t.equal(csv.status, 200)
  t.match(csv.headers['content-type'], /^text\/csv/)
  const rows = csv.text.trim().split('\n').map(l => l.split(','))
  const col = rows[0].indexOf('volume')
  t.same(rows.map(x => x[0]), ['row', 'period', 'period', 'period', 'total'], 'one row per period and a total row')
  t.same(rows.slice(1).map(x => x[col]), ['suppressed', 'suppressed', '100.00', '170.00'], 'suppressed cells say so in CSV, never 0')

  const flows = await ctx.call('GET', '/v1/currencies/BRS/reports/flows?by=sector&from=2026-01-01&to=2026-04-01', { token })
  t.equal(flows.status, 200)
  // three members (threshold), one food business and one retail business taking all (dominance): all hidden, and a
  // hidden flows cell is left out, not named (docs/disclosure.md, "Which cells are listed")
  t.same(flows.body.cells, [], 'no cell is listed')
  const flowsCsv = await ctx.call('GET', '/v1/currencies/BRS/reports/flows?by=sector&from=2026-01-01&to=2026-04-01&format=csv', { token })
  t.same(flowsCsv.text.trim().split('\n').map((l: string) => l.split(',').slice(0, 4).join(',')), ['payer,payee,volume,count'], 'flows as CSV: the header alone')
})

// January: M1, M2 pay each other (two accounts: hidden). February: M1..M5 pay B1 and B2 alike (published).
// The range's total is published, so January = total - February would give January away: February is hidden too.
t.test('a second cell is hidden where a published total would give a hidden one away', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx, 'CMP')
  const M = await Promise.all([1, 2, 3, 4, 5].map(() => member(ctx, 'CMP', 'BS6 5AB')))
  const B1 = await business(ctx, 'CMP', 'food', 'BS1 4DJ')
  const B2 = await business(ctx, 'CMP', 'retail', 'BS2 0AA')
  for (const m of M) await book.ledger.issue('2026-01-01T00:00:00Z', m.accountId, '100')
  await book.ledger.pay('2026-01-10T12:00:00Z', M[0].accountId, M[1].accountId, '7')
  await book.ledger.pay('2026-01-11T12:00:00Z', M[1].accountId, M[0].accountId, '3')
  for (const m of M) {
    await book.ledger.pay('2026-02-10T12:00:00Z', m.accountId, B1.accountId, '10')
    await book.ledger.pay('2026-02-11T12:00:00Z', m.accountId, B2.accountId, '10')
  }
  const r = await ctx.call('GET', '/v1/currencies/CMP/reports/circulation?from=2026-01-01&to=2026-03-01&interval=month', { token: ctx.issuerToken })
  t.equal(r.status, 200)
  const [jan, feb] = r.body.periods.map((p: any) => p.metrics)
  t.same(jan.volume, { value: null, suppressed: true, reason: 'threshold' })
  t.same(feb.volume, { value: null, suppressed: true, reason: 'threshold', complementary: true }, 'hidden to protect January')
  t.same(r.body.total.metrics.volume, { value: '110.00' })
  // within February, payments were all member -> business: the shares are published
  t.same(feb.m2bShare, { value: null, suppressed: true, reason: 'threshold', complementary: true }, 'a share needs its volume')
})
