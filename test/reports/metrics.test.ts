import t from 'tap'
import { NO_RULES } from '../../src/domain/disclosure.js'
import { reportRange, splitPeriods } from '../../src/domain/periods.js'
import { catchUp } from '../../src/reports/aggregate.js'
import { circulationMetrics } from '../../src/reports/circulation.metrics.js'
import { circulationFigures } from '../../src/reports/circulation.report.js'
import { flowFigures } from '../../src/reports/flows.report.js'
import { tile } from '../../src/domain/periods.js'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { recompute } from './recompute.js'

// Every metric of the circulation report on a small fixed ledger, against values worked out by hand below.
// Parties (local areas: BS): M1 member BS6, M2 member BS3, M3 member BA1 (Bath: not local), B1 business BS1,
// B2 business BS2. All joined on 2025-12-01. Times are midnight UTC. Disclosure rules are off here (five
// accounts cannot pass a threshold of five in every cell); test/reports/suppression.test.ts covers them.
//
// January (31 days)                          February (28 days)
//  E1 Jan  1 issue 100 to M1                  E8  Feb  1 issue 50 to M3
//  E2 Jan  1 issue 100 to M2                  E9  Feb  8 M1 -> B2 10.00, fee 0.10 (B2 -> fees)
//  E3 Jan 11 M1 -> B1 40                      E10 Feb 15 M3 -> B2 20
//  E4 Jan 11 M2 -> B1 20                      E11 Feb 15 B2 -> B1 15
//  E5 Jan 21 B1 -> B2 30                      E12 Feb 15 M1 -> M2 5
//  E6 Jan 21 B2 -> M1 10 (wages)              E13 Feb 22 B1 redeems 20: 19.40 to sterling, fee 0.60
//                                             E14 Feb 22 M2 -> B2 10, reversed on Feb 23 (E15)
// Balances, end of January: M1 70, M2 80, M3 0, B1 30, B2 20 (supply 200).
// Balances, end of February: M1 55, M2 85, M3 30, B1 25, B2 34.90 (supply 229.90 = 200 + 50 - 0.10 - 20).

t.test('circulation metrics on a fixed ledger, worked by hand', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  const M1 = await member(ctx, 'BRS', 'BS6 5AB')
  const M2 = await member(ctx, 'BRS', 'BS3 1AA')
  const M3 = await member(ctx, 'BRS', 'BA1 1AA')
  const B1 = await business(ctx, 'BRS', 'food', 'BS1 4DJ')
  const B2 = await business(ctx, 'BRS', 'retail', 'BS2 0AA')
  const L = book.ledger
  await L.issue('2026-01-01T00:00:00Z', M1.accountId, '100')
  await L.issue('2026-01-01T00:00:00Z', M2.accountId, '100')
  await L.pay('2026-01-11T00:00:00Z', M1.accountId, B1.accountId, '40')
  await L.pay('2026-01-11T00:00:00Z', M2.accountId, B1.accountId, '20')
  await L.pay('2026-01-21T00:00:00Z', B1.accountId, B2.accountId, '30')
  await L.pay('2026-01-21T00:00:00Z', B2.accountId, M1.accountId, '10')
  await L.issue('2026-02-01T00:00:00Z', M3.accountId, '50')
  await L.pay('2026-02-08T00:00:00Z', M1.accountId, B2.accountId, '10', '0.10')
  await L.pay('2026-02-15T00:00:00Z', M3.accountId, B2.accountId, '20')
  await L.pay('2026-02-15T00:00:00Z', B2.accountId, B1.accountId, '15')
  await L.pay('2026-02-15T00:00:00Z', M1.accountId, M2.accountId, '5')
  await L.redeem('2026-02-22T00:00:00Z', B1.accountId, '19.40', '0.60')
  const e14 = await L.pay('2026-02-22T00:00:00Z', M2.accountId, B2.accountId, '10')
  await L.reverse('2026-02-23T00:00:00Z', e14)

  await catchUp(ctx.app.pool)
  const range = reportRange('2026-01-01', '2026-03-01')
  const periods = splitPeriods(range.from, range.to, 'month')
  const [total, jan, feb] = circulationMetrics(await circulationFigures(ctx.app.pool, book.currencyId, periods), 2, NO_RULES)
  const values = (m: Record<string, { value: string | null }>) => Object.fromEntries(Object.entries(m).map(([k, c]) => [k, c.value]))

  t.same(values(jan), {
    supply: '200.00', // 70 + 80 + 0 + 30 + 20
    issued: '200.00', // E1 + E2
    redeemed: '0.00',
    netIssuance: '200.00',
    volume: '100.00', // E3..E6: 40 + 20 + 30 + 10
    count: '4',
    averageSupply: '200.00', // M is 200 from the first instant to the last (payments between participants leave M alone)
    velocity: '0.5000', // 100 / 200
    velocityAnnualised: '5.8871', // 0.5 x 365 / 31 = 5.88709...
    respendRate: '1.0000', // businesses passed on S = 30 (B1 -> B2) + 10 (B2 -> M1) and redeemed nothing: 40 / 40
    b2bShare: '0.3000', // 30 / 100
    m2bShare: '0.6000', // (40 + 20) / 100
    b2mShare: '0.1000', // 10 / 100
    m2mShare: '0.0000',
    redemptionRate: '0.0000', // 0 / 200
    activeAccounts: '4', // M1, M2, B1, B2 paid; M3 did not
    activeShare: '0.8000', // 4 of 5 open accounts
    localityShare: '1.0000', // every January payment is between BS parties
    gini: '0.4200', // sorted 0, 20, 30, 70, 80: 2 x (1x0 + 2x20 + 3x30 + 4x70 + 5x80) / (5 x 200) - 6/5 = 1.62 - 1.2
    top10Share: '0.4000', // the top ceil(5/10) = 1 participant holds 80 of 200
    // R1 = members' spending at local businesses: B1 60 (M1 40, M2 20); B2's 30 came from B1, not from members.
    // B1 received in = 60, paid lp = 30 locally: R2 = 60 x min(60, 30) / 60 = 30; R3: B1 -> B2 carries
    // 30 x 60 / max(60, 30) = 30 of it, and B2 (in 30, lp 10) passes on 10/30: 10. (60 + 30 + 10) / 60
    localMultiplier: '1.6667',
    // graph M1 -> B1, M2 -> B1, B1 -> B2, B2 -> M1: the cycle M1 -> B1 -> B2 -> M1 carries 40 + 30 + 10 = 80 of 100
    cycleShare: '0.8000',
    // but only 10 goes all the way round it (B2 -> M1 is 10): 3 links x 10 = 30 of 100
    circulatingShare: '0.3000',
    cumulativeRedemptionRate: '0.0000', // nothing redeemed yet, 200 issued
    // holding times (well-mixed trace): E3, E4 and E5 pay out money that arrived 10 days earlier; E6 is paid at
    // the instant E5 arrives, when B2 held nothing before it: received and paid on at once, held 0 days. Members
    // 40 x 10 + 20 x 10 over 60; businesses 30 x 10 + 10 x 0 over 40; all 900 money-days over 100
    holdingDays: '9.0000',
    holdingDaysMember: '10.0000',
    holdingDaysBusiness: '7.5000',
    medianHoldingDays: '10.0000', // 10 held 0 h, 90 held 240 h: half the weight (50) is reached at 240 h
    medianHoldingDaysMember: '10.0000',
    medianHoldingDaysBusiness: '10.0000', // 10 at 0 h is less than half of 40
    holdingVelocity: '40.5556', // 365 / 9
    holdingVelocityMember: '36.5000', // 365 / 10
    holdingVelocityBusiness: '48.6667', // 365 / 7.5
    effectiveShare: '0.1452', // 900 money-days / (200 x 31)
    // members held 100 + 100 for 10 days, 60 + 80 for 10, 70 + 80 for 11: 5,050 money-days; businesses 60 for 10
    // days and 30 + 20 for 11: 1,150
    effectiveShareMember: '0.1188', // 600 / 5050
    effectiveShareBusiness: '0.2609', // 300 / 1150
    dormantShare: '0.0000', // nothing is 90 days old yet
    dormantShareMember: '0.0000',
    dormantShareBusiness: '0.0000',
    paymentsPerActive: '1.0000', // 4 / 4
    volumePerActive: '25.00', // 100 / 4
    paidToNonLocal: '0.00',
    paidFromNonLocal: '0.00',
    issuedNonLocal: '0.00',
  })

  t.same(values(feb), {
    supply: '229.90',
    issued: '50.00', // E8
    redeemed: '20.00', // E13, its fee included: the business gave up 20
    netIssuance: '30.00',
    volume: '50.00', // E9 10 + E10 20 + E11 15 + E12 5; E14 was reversed and does not count
    count: '4',
    // M is 250 for 7 days, 249.90 for 14 days (E9's fee left it), 229.90 for 7 days (E13):
    // (1750 + 3498.60 + 1609.30) / 28 = 244.925, rounded half-up
    averageSupply: '244.93',
    velocity: '0.2041', // 50 / 244.925 = 0.20414...
    velocityAnnualised: '2.6612', // x 365 / 28
    respendRate: '0.4286', // S = 15 (B2 -> B1), R_b = 20: 15 / 35
    b2bShare: '0.3000', // 15 / 50
    m2bShare: '0.6000', // (10 + 20) / 50
    b2mShare: '0.0000',
    m2mShare: '0.1000', // 5 / 50
    redemptionRate: '0.4000', // 20 / 50
    activeAccounts: '3', // M1, M3, B2; M2's only payment was reversed
    activeShare: '0.6000',
    localityShare: '0.6000', // all but E10 (M3 is in Bath): 30 / 50
    // sorted 25, 30, 34.90, 55, 85 (sum 229.90): 2 x 834.70 / (5 x 229.90) - 1.2 = 0.25228...
    gini: '0.2523',
    top10Share: '0.3697', // 85 / 229.90
    // R1 = B2's from members: M1 10 + M3 20 = 30 (B1's 15 came from B2). in(B2) = 30, lp(B2) = 15 (to B1):
    // R2 = 30 x 15 / 30 = 15; R3: B2 -> B1 15, but B1 re-spent nothing locally (a redemption is not a payment): 0
    localMultiplier: '1.5000', // (30 + 15) / 30
    cycleShare: '0.0000', // B1 pays nobody in February: no cycle
    circulatingShare: '0.0000',
    cumulativeRedemptionRate: '0.0800', // since the start: 20 redeemed of 250 issued (the month alone: 0.4)
    // mean arrival times (days after Jan 1) at the start of February: M1 (60 x 0 + 10 x 20) / 70 = 2.857142..,
    // M2 0, B1 10, B2 20. E9 (day 38): M1 held 35.142857.. days; at that instant B2's fee leaves its balance of 20
    // from before (19.90 stay, from day 20), then E9's 10 arrives: (19.90 x 20 + 10 x 38) / 29.90 = day 26.020066...
    // E10, E11, E12 share one instant (day 45), each paid from the balance held before it: M3 held its issuance
    // 14 days, B2 held 45 - 26.020066.. = 18.979933.. days, M1 held 42.142857.. days.
    // Members (10 x 35.142857.. + 20 x 14 + 5 x 42.142857..) / 35 = 24.0612; businesses 18.9799;
    // all 1126.841853.. money-days / 50
    holdingDays: '22.5368',
    holdingDaysMember: '24.0612',
    holdingDaysBusiness: '18.9799',
    medianHoldingDays: '18.9583', // by hour: 336 h (20), 455 h (15), 843 h (10), 1011 h (5): 25 of 50 reached at 455 h
    medianHoldingDaysMember: '14.0000', // 20 of 35 at 336 h
    medianHoldingDaysBusiness: '18.9583', // 455 h / 24
    holdingVelocity: '16.1957', // 365 / 22.536837..
    holdingVelocityMember: '15.1696', // 365 / 24.061224..
    holdingVelocityBusiness: '19.2308', // 365 / 18.979933..
    effectiveShare: '0.1643', // 1126.8419 / 6857.90 money-days
    // members: M1 70 x 7 + 60 x 7 + 55 x 14, M2 80 x 14 + 85 x 7 + 75 x 1 + 85 x 6 (E14 and its reversal moved
    // balances for a day), M3 50 x 14 + 30 x 14: 5,100 money-days; businesses B1 910, B2 847.90
    effectiveShareMember: '0.1651', // 842.142857.. / 5100
    effectiveShareBusiness: '0.1620', // 284.698997.. / 1757.90
    dormantShare: '0.0000',
    dormantShareMember: '0.0000',
    dormantShareBusiness: '0.0000',
    paymentsPerActive: '1.3333', // 4 / 3
    volumePerActive: '16.67', // 50 / 3
    paidToNonLocal: '0.00',
    paidFromNonLocal: '20.00', // E10: M3 (Bath) pays B2 (BS2)
    issuedNonLocal: '50.00', // E8 to M3
  })

  // flows over both months (E14 was reversed and is not there)
  const flows = async (by: 'sector' | 'district') => Object.fromEntries((await flowFigures(ctx.app.pool, book.currencyId, tile(range.from, range.to), by))
    .map(f => [`${f.payer} -> ${f.payee}`, [f.volume.value, f.count, f.volume.n]]))
  t.same(await flows('sector'), {
    'food -> retail': ['30.000000', '1', 2], // E5
    'member -> food': ['60.000000', '2', 3], // E3, E4: M1, M2 and B1
    'member -> member': ['5.000000', '1', 2], // E12
    'member -> retail': ['30.000000', '2', 3], // E9, E10
    'retail -> food': ['15.000000', '1', 2], // E11
    'retail -> member': ['10.000000', '1', 2], // E6
  }, 'by sector: value, count and accounts described')
  t.same(await flows('district'), {
    'BA1 -> BS2': ['20.000000', '1', 2], // E10
    'BS1 -> BS2': ['30.000000', '1', 2], // E5
    'BS2 -> BS1': ['15.000000', '1', 2], // E11
    'BS2 -> BS6': ['10.000000', '1', 2], // E6
    'BS3 -> BS1': ['20.000000', '1', 2], // E4
    'BS6 -> BS1': ['40.000000', '1', 2], // E3
    'BS6 -> BS2': ['10.000000', '1', 2], // E9
    'BS6 -> BS3': ['5.000000', '1', 2], // E12
  }, 'by postcode district')

  t.same(values(total), {
    supply: '229.90',
    issued: '250.00',
    redeemed: '20.00',
    netIssuance: '230.00',
    volume: '150.00',
    count: '8',
    averageSupply: '221.32', // (200 x 31 + 6857.90) / 59 = 221.3203...
    velocity: '0.6778', // 150 / 221.3203...
    velocityAnnualised: '4.1929', // x 365 / 59
    respendRate: '0.7333', // S = 40 + 15, R_b = 20: 55 / 75
    b2bShare: '0.3000', // (30 + 15) / 150
    m2bShare: '0.6000', // (60 + 30) / 150
    b2mShare: '0.0667', // 10 / 150
    m2mShare: '0.0333', // 5 / 150
    redemptionRate: '0.0800', // 20 / 250
    activeAccounts: '5',
    activeShare: '1.0000',
    localityShare: '0.8667', // (100 + 30) / 150
    gini: '0.2523',
    top10Share: '0.3697',
    // over both months: from members r1(B1) 60, r1(B2) 30 (R1 = 90); in(B1) 75, in(B2) 60, in(M1) 10;
    // lp(B1) 30, lp(B2) 25, lp(M1) 55. R2 = 60 x 30/75 + 30 x 25/60 = 24 + 12.5 = 36.5. R3, per link b -> c:
    // volume x r1(b) / max(in(b), lp(b)) x min(1, lp(c) / in(c)): B1 -> B2 30 x 60/75 x 25/60 = 10,
    // B2 -> M1 10 x 30/60 x 1 = 5, B2 -> B1 15 x 30/60 x 30/75 = 3; R3 = 18. (90 + 36.5 + 18) / 90 = 1.60555...
    localMultiplier: '1.6056',
    // over both months M1 -> M2 -> B1 -> B2 -> M1 joins M2 to the cycle; only M3 -> B2 (20) lies outside: 130 / 150
    cycleShare: '0.8667',
    // every cycle passes B2, which pays out 25 at most: 15 round B2 -> B1 -> B2 (2 links), 5 round
    // M1 -> M2 -> B1 -> B2 -> M1 (4 links; M1 -> M2 is 5), 5 round M1 -> B1 -> B2 -> M1 (3 links): 30 + 20 + 15 = 65
    circulatingShare: '0.4333', // 65 / 150
    cumulativeRedemptionRate: '0.0800',
    holdingDays: '13.5123', // (900 + 1126.8419) / 150
    holdingDaysMember: '15.1805', // (600 + 842.142857..) / 95
    holdingDaysBusiness: '10.6309', // (300 + 284.698997..) / 55
    medianHoldingDays: '10.0000', // 10 at 0 h, 90 at 240 h: 75 of 150 reached at 240 h
    medianHoldingDaysMember: '10.0000',
    medianHoldingDaysBusiness: '10.0000',
    holdingVelocity: '27.0125', // 365 / 13.5123..
    holdingVelocityMember: '24.0441', // 365 / 15.180451..
    holdingVelocityBusiness: '34.3339', // 365 / 10.630891..
    effectiveShare: '0.1552', // 2026.8419 / 13057.90
    effectiveShareMember: '0.1421', // 1442.142857.. / 10150
    effectiveShareBusiness: '0.2011', // 584.698997.. / 2907.90
    dormantShare: '0.0000',
    dormantShareMember: '0.0000',
    dormantShareBusiness: '0.0000',
    paymentsPerActive: '1.6000', // 8 / 5
    volumePerActive: '30.00', // 150 / 5
    paidToNonLocal: '0.00',
    paidFromNonLocal: '20.00',
    issuedNonLocal: '50.00',
  })

  // dormancy: on 22 May every account was last touched on 15 February (B1 on 22 February, by its redemption);
  // untouched for more than 90 days means last touched before 21 February: all but B1's 25 of 229.90
  const may = reportRange('2026-05-01', '2026-05-22')
  const [late] = circulationMetrics(await circulationFigures(ctx.app.pool, book.currencyId, splitPeriods(may.from, may.to, 'month')), 2, NO_RULES)
  t.equal(late.dormantShare.value, '0.8913', '204.90 / 229.90 untouched for more than 90 days')
  t.equal(late.dormantShareMember.value, '1.0000', 'every member last moved on 15 February: 170 of 170')
  t.equal(late.dormantShareBusiness.value, '0.5826', 'B2\'s 34.90 of 59.90 (B1 redeemed on 22 February)')
  t.equal(late.effectiveShareMember.value, '0.0000', 'nothing paid in May, while members held 170')
  t.equal(late.holdingDays.value, null, 'nothing paid in May: no holding time')
  t.equal(late.paymentsPerActive.value, null, 'no active accounts')
})

t.test('open accounts: counted per period end, an account that joined at the very instant a period ends is not in it', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  const early = await member(ctx, 'BRS', 'BS6 5AB', '2025-12-01T00:00:00Z')
  // January ends (and February starts) at midnight UTC on Feb 1 (London is on GMT): not open in January
  await member(ctx, 'BRS', 'BS3 1AA', '2026-02-01T00:00:00Z')
  await business(ctx, 'BRS', 'food', 'BS1 4DJ', '2026-02-15T12:00:00Z')
  // the end of the range: open in no period
  await member(ctx, 'BRS', 'BS2 0AA', '2026-03-01T00:00:00Z')
  const closed = await member(ctx, 'BRS', 'BS5 0AA', '2025-12-01T00:00:00Z')
  await ctx.app.pool.query(`UPDATE account SET status = 'closed' WHERE id = $1`, [closed.accountId])
  // joined at January's end but, by a posting backdated into January, paid in it; closed since: open in no month
  // (it did not exist in January and was not active in February), but open in the whole range, where it paid
  const backdated = await member(ctx, 'BRS', 'BS5 1AA', '2026-02-01T00:00:00Z')
  await book.ledger.issue('2026-01-05T00:00:00Z', early.accountId, '10')
  await book.ledger.issue('2026-01-10T00:00:00Z', backdated.accountId, '5')
  await book.ledger.pay('2026-01-20T00:00:00Z', backdated.accountId, early.accountId, '2')
  await ctx.app.pool.query(`UPDATE account SET status = 'closed' WHERE id = $1`, [backdated.accountId])
  await catchUp(ctx.app.pool)
  const range = reportRange('2026-01-01', '2026-03-01')
  const [total, jan, feb] = await circulationFigures(ctx.app.pool, book.currencyId, splitPeriods(range.from, range.to, 'month'))
  t.same([jan.open, feb.open, total.open], [1, 3, 4], 'January: the early member; February: and the two that joined on its first instant and mid-month; the range: and the closed one that paid in it')
  const slow = await recompute(ctx.app.pool, book.currencyId, splitPeriods(range.from, range.to, 'month'))
  t.same(slow.map(f => f.open), [total.open, jan.open, feb.open], 'as the plain recomputation counts them')
})
