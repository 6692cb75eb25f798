import t from 'tap'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { createResearcher } from './ledger.js'

// Two ways a researcher placed pseudonyms in their district and sector, which the exports withhold (an attacker
// helper session): a hidden flows cell was still listed by name, so on a day of one payment the list said which
// two groups traded, and the transfers export said who (with the public directory, a business by name); and a day
// still under way was published, so two reads around one payment said which cell it went into. A hidden cell is
// now left out, and a researcher's flows end at the start of the currency's today.

t.test('a hidden flows cell is not named, and a researcher sees no day still under way', async (t) => {
  const now = new Date('2026-03-15T12:00:00Z')
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 }, { reportClock: () => now })
  const book = await reportBook(ctx)
  const M = await Promise.all([0, 1, 2, 3, 4, 5].map(() => member(ctx, 'BRS', 'BS3 1AA')))
  const arts = await business(ctx, 'BRS', 'arts', 'BS8 4AA')
  for (const m of M) await book.ledger.issue('2026-01-01T00:00:00Z', m.accountId, '100')
  // 7 January: the day's only payment, a member in BS3 to the arts business in BS8
  await book.ledger.pay('2026-01-07T12:00:00Z', M[0].accountId, arts.accountId, '6.50')
  // 9 January and today: the six members pay each other round a ring, enough accounts and no one dominant: published
  const ring = async (at: string) => { for (let i = 0; i < M.length; i++) await book.ledger.pay(at, M[i].accountId, M[(i + 1) % M.length].accountId, '10') }
  await ring('2026-01-09T12:00:00Z')
  await ring('2026-03-15T09:00:00Z')
  await createResearcher(ctx.app.pool, book.currencyId, 'res-flows', 'researcher-password')
  const token = await ctx.token('res-flows', 'researcher-password')
  const flows = async (query: string, as = token) => {
    const r = await ctx.call('GET', `/v1/currencies/BRS/reports/flows?${query}`, { token: as })
    t.equal(r.status, 200, r.text)
    return r.body
  }
  const names = (b: any) => b.cells.map((c: any) => `${c.payer as string}>${c.payee as string}`)

  for (const by of ['district', 'sector']) {
    const day = await flows(`by=${by}&from=2026-01-07&to=2026-01-08`)
    t.same(day.cells, [], `${by}: the one-payment day lists nothing (before: the hidden cell, by name)`)
    const csv = await ctx.call('GET', `/v1/currencies/BRS/reports/flows?by=${by}&from=2026-01-07&to=2026-01-08&format=csv`, { token })
    t.equal(csv.text.trim().split('\n').length, 1, `${by}: nor does its CSV`)
  }
  const ringDay = await flows('by=district&from=2026-01-09&to=2026-01-10')
  t.same(names(ringDay), ['BS3>BS3'], 'a cell that passes the rules is listed')
  t.type(ringDay.cells[0].volume.value, 'string', 'with its value')
  const ringCsv = await ctx.call('GET', '/v1/currencies/BRS/reports/flows?by=district&from=2026-01-09&to=2026-01-10&format=csv', { token })
  const [, row] = ringCsv.text.trim().split('\n').map((l: string) => l.split(','))
  t.same(row.slice(0, 3), ['BS3', 'BS3', ringDay.cells[0].volume.value], 'and in CSV')
  t.same(row.slice(-3), [ringDay.asOfTransfer.id, ringDay.asOfTransfer.createdAt, String(ringDay.definitionsVersion)], 'with what it was computed from')
  const both = await flows('by=sector&from=2026-01-07&to=2026-01-10')
  t.same(names(both), ['member>member'], 'over both days: the member-to-business cell stays hidden, and unnamed')

  const month = await flows('by=district&from=2026-03-01&to=2026-04-01')
  t.equal(month.to, '2026-03-15T00:00:00.000Z', 'the researcher\'s range ends at the start of today')
  t.same(month.cells, [], 'today\'s ring is not in it')
  const today = await flows('by=district&from=2026-03-15&to=2026-03-16')
  t.same([today.from, today.to, today.cells], ['2026-03-15T00:00:00.000Z', '2026-03-15T00:00:00.000Z', []], 'today alone: an empty range')
  const issuer = await flows('by=district&from=2026-03-15&to=2026-03-16', ctx.issuerToken)
  t.same([issuer.to, names(issuer)], ['2026-03-16T00:00:00.000Z', ['BS3>BS3']], 'the issuer, who sees every transfer anyway, sees today')
})

// A transfer takes its transaction's start time (now() in the ledger function), so one that began before local
// midnight and committed just after it lands in the day that has just ended (an attacker helper session): a
// researcher reading that day's flows at 00:00:01 and again at 00:00:02, with the transfers export's times, could
// tell which cell the late payment went into, the very thing a day under way is withheld for. A researcher's day
// is published only once it has been over for RESEARCH_DAY_GRACE_MS (and the app's clock may run ahead of the
// database's by as much, too).
t.test('a day that ended a moment ago is not a researcher\'s yet: a payment still committing may land in it', async (t) => {
  let now = new Date('2026-03-16T00:00:01Z')
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 }, { reportClock: () => now })
  const book = await reportBook(ctx)
  const M = await Promise.all([0, 1, 2, 3, 4, 5].map(() => member(ctx, 'BRS', 'BS3 1AA')))
  for (const m of M) await book.ledger.issue('2026-01-01T00:00:00Z', m.accountId, '100')
  for (let i = 0; i < M.length; i++) await book.ledger.pay('2026-03-15T09:00:00Z', M[i].accountId, M[(i + 1) % M.length].accountId, '10')
  await createResearcher(ctx.app.pool, book.currencyId, 'res-late', 'researcher-password')
  const token = await ctx.token('res-late', 'researcher-password')
  const flows = async () => {
    const r = await ctx.call('GET', '/v1/currencies/BRS/reports/flows?by=district&from=2026-03-01&to=2026-04-01', { token })
    t.equal(r.status, 200, r.text)
    return r.body
  }
  const first = await flows()
  // a payment whose transaction began at 23:59:59.9 commits now: it is dated the 15th
  await book.ledger.pay('2026-03-15T23:59:59.900Z', M[0].accountId, M[1].accountId, '7.00')
  const second = await flows()
  t.same(second.cells, first.cells, 'the two reads a second apart say nothing of the late payment')
  t.equal(first.to, '2026-03-15T00:00:00.000Z', 'at 00:00:01 the 15th is not yet published to a researcher')
  now = new Date('2026-03-16T00:10:00Z')
  const later = await flows()
  t.equal(later.to, '2026-03-16T00:00:00.000Z', 'ten minutes on, it is')
  t.same(later.cells.map((c: any) => `${c.payer as string}>${c.payee as string}`), ['BS3>BS3'], 'with its ring')
})

// With REPORTS_MAX_STALENESS_MS a report may read the aggregates as the background aggregator left them that long
// ago, before a payment that committed just after midnight was folded in: the day is a researcher's only once the
// grace has passed after that too.
t.test('with stale reads allowed, a researcher waits for the staleness too', async (t) => {
  const now = new Date('2026-03-16T00:10:00Z')
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0, REPORTS_MAX_STALENESS_MS: 3_600_000 }, { reportClock: () => now })
  const book = await reportBook(ctx)
  await createResearcher(ctx.app.pool, book.currencyId, 'res-stale', 'researcher-password')
  const token = await ctx.token('res-stale', 'researcher-password')
  const r = await ctx.call('GET', '/v1/currencies/BRS/reports/flows?by=district&from=2026-03-01&to=2026-04-01', { token })
  t.equal(r.status, 200, r.text)
  t.equal(r.body.to, '2026-03-15T00:00:00.000Z', 'ten minutes after midnight, with an hour of staleness allowed, the 15th is not yet published')
})
