import { cell, complement, firstVerdict, judge, type Cell, type Rules, type Slot, type Verdict } from '../domain/disclosure.js'
import { Money, roundedText as fmt } from '../domain/money.js'
import type { PeriodFigures } from './circulation.report.js'
import type { HoldingKind } from './holding.js'
import type { Stat } from './stat.js'

// The published cells of holding time, dormancy, turnover and flows across the local boundary (docs/metrics.md),
// with the circulation report's disclosure rules: a cell is hidden with the cells it is made of.

export const HOLDING_METRICS = [
  'holdingDays', 'holdingDaysMember', 'holdingDaysBusiness', 'medianHoldingDays', 'medianHoldingDaysMember',
  'medianHoldingDaysBusiness', 'holdingVelocity', 'holdingVelocityMember', 'holdingVelocityBusiness', 'effectiveShare',
  'effectiveShareMember', 'effectiveShareBusiness', 'dormantShare', 'dormantShareMember', 'dormantShareBusiness', 'paymentsPerActive',
  'volumePerActive', 'paidToNonLocal', 'paidFromNonLocal', 'issuedNonLocal',
] as const
export type HoldingMetricName = typeof HOLDING_METRICS[number]

/** For the report's schema (openapi.yaml). */
export const HOLDING_DESCRIPTIONS: Record<HoldingMetricName, string> = {
  holdingDays: 'amount-weighted mean time the money paid in the period had been held by its payer, in days (well-mixed trace through all history; Mattsson, Luedtke and Takes)',
  holdingDaysMember: 'holdingDays of members\' payments',
  holdingDaysBusiness: 'holdingDays of businesses\' payments',
  medianHoldingDays: 'amount-weighted median holding time, in days (holding times in whole hours)',
  medianHoldingDaysMember: 'medianHoldingDays of members\' payments',
  medianHoldingDaysBusiness: 'medianHoldingDays of businesses\' payments',
  holdingVelocity: 'holding-period velocity per year: 365 / holdingDays',
  holdingVelocityMember: 'holdingVelocity of members\' payments: 365 / holdingDaysMember',
  holdingVelocityBusiness: 'holdingVelocity of businesses\' payments: 365 / holdingDaysBusiness',
  effectiveShare: 'share of the money in circulation that effectively circulated: sum of amount x holding time / time integral of supply',
  effectiveShareMember: 'effectiveShare of members\' money: members\' sum of amount x holding time / time integral of members\' balances',
  effectiveShareBusiness: 'effectiveShare of businesses\' money: businesses\' sum of amount x holding time / time integral of businesses\' balances',
  dormantShare: 'share of participants\' balances at the end of the period untouched for more than 90 days',
  dormantShareMember: 'dormantShare of members\' balances',
  dormantShareBusiness: 'dormantShare of businesses\' balances',
  paymentsPerActive: 'count / activeAccounts',
  volumePerActive: 'volume / activeAccounts',
  paidToNonLocal: 'economic payments from local to non-local participants (money leaving the local area)',
  paidFromNonLocal: 'economic payments from non-local to local participants (money entering the local area)',
  issuedNonLocal: 'currency issued to non-local participants',
}

const RATIO_DP = 4
/** `weighted` is money x seconds */
const SECONDS_PER_DAY = 86_400

/** The verdicts of the circulation cells these are derived from, for period k. */
export interface BaseVerdicts {
  volume: Verdict | null
  member: Verdict | null
  business: Verdict | null
  supplyIntegral: Verdict | null
  integralMember: Verdict | null
  integralBusiness: Verdict | null
  holders: Verdict | null
  active: Verdict | null
}

export function holdingMetrics (figures: PeriodFigures[], decimals: number, rules: Rules, base: (k: number) => BaseVerdicts): Array<Record<HoldingMetricName, Cell>> {
  const flows = ['leaving', 'entering', 'issuedNonLocal'] as const
  const stats = [...flows, 'dormant', 'dormantMember', 'dormantBusiness', 'tracedMember', 'tracedBusiness'] as const
  type Name = typeof stats[number]
  const slots: Array<Record<Name, Slot>> = figures.map(f => Object.fromEntries(
    stats.map(b => [b, { value: f.holding[b].value, n: f.holding[b].n, verdict: judge(f.holding[b], rules) }])) as Record<Name, Slot>)
  complement([
    // the whole range's flows are the sums of its periods'
    ...(figures.length > 2 ? flows.map(b => ({ parent: slots[0][b], children: slots.slice(1).map(s => s[b]) })) : []),
    // the dormant balances are members' plus businesses'
    ...slots.map(s => ({ parent: s.dormant, children: [s.dormantMember, s.dormantBusiness] })),
    // and the participants' balances at the end are members' plus businesses': their sum is known (the published
    // supply less the system accounts' balances, which the exports give), so one kind's would give the other's
    // (with the whole's and one kind's dormant share, T_business = T (1 - dormantShare / dormantShareMember))
    ...slots.map(s => ({ parent: null, children: [s.tracedMember, s.tracedBusiness] })),
  ])

  return figures.map((f, k) => {
    const v = base(k)
    const h = f.holding
    const meanDays = (x: HoldingKind) => new Money(x.weight).isZero() ? null : new Money(x.weighted).div(x.weight).div(SECONDS_PER_DAY)
    const days = (x: HoldingKind) => { const d = meanDays(x); return d == null ? null : fmt(d, RATIO_DP) }
    const median = (x: HoldingKind) => x.medianHours == null ? null : fmt(new Money(x.medianHours).div(24), RATIO_DP)
    const mean = meanDays(h.all)
    const velocity = (x: HoldingKind) => { const d = meanDays(x); return d == null || d.isZero() ? null : fmt(new Money(365).div(d), RATIO_DP) }
    const integral = new Money(f.supplyIntegral.value)
    const effective = (x: HoldingKind, over: Stat) => new Money(over.value).isZero() ? null : fmt(new Money(x.weighted).div(over.value), RATIO_DP)
    const dormantOf = (d: Stat, of: Stat) => new Money(of.value).isZero() ? null : fmt(new Money(d.value).div(of.value), RATIO_DP)
    const traced = new Money(h.traced)
    const active = new Money(f.active)
    const money = (x: string) => fmt(new Money(x), decimals)
    return {
      holdingDays: cell(days(h.all), v.volume),
      holdingDaysMember: cell(days(h.member), v.member),
      holdingDaysBusiness: cell(days(h.business), v.business),
      medianHoldingDays: cell(median(h.all), v.volume),
      medianHoldingDaysMember: cell(median(h.member), v.member),
      medianHoldingDaysBusiness: cell(median(h.business), v.business),
      // per year: a year over the mean holding time; undefined when the money paid had been held no time at all
      holdingVelocity: cell(mean == null || mean.isZero() ? null : fmt(new Money(365).div(mean), RATIO_DP), v.volume),
      holdingVelocityMember: cell(velocity(h.member), v.member),
      holdingVelocityBusiness: cell(velocity(h.business), v.business),
      effectiveShare: cell(integral.isZero() ? null : fmt(new Money(h.all.weighted).div(integral), RATIO_DP), firstVerdict(v.volume, v.supplyIntegral)),
      effectiveShareMember: cell(effective(h.member, f.integralMember), firstVerdict(v.member, v.integralMember)),
      effectiveShareBusiness: cell(effective(h.business, f.integralBusiness), firstVerdict(v.business, v.integralBusiness)),
      dormantShare: cell(traced.isZero() ? null : fmt(new Money(h.dormant.value).div(traced), RATIO_DP), firstVerdict(slots[k].dormant.verdict, v.holders)),
      dormantShareMember: cell(dormantOf(h.dormantMember, h.tracedMember), firstVerdict(slots[k].dormantMember.verdict, slots[k].tracedMember.verdict)),
      dormantShareBusiness: cell(dormantOf(h.dormantBusiness, h.tracedBusiness), firstVerdict(slots[k].dormantBusiness.verdict, slots[k].tracedBusiness.verdict)),
      paymentsPerActive: cell(active.isZero() ? null : fmt(new Money(f.count).div(active), RATIO_DP), firstVerdict(v.volume, v.active)),
      volumePerActive: cell(active.isZero() ? null : fmt(new Money(f.volume.value).div(active), decimals), firstVerdict(v.volume, v.active)),
      paidToNonLocal: cell(money(h.leaving.value), slots[k].leaving.verdict),
      paidFromNonLocal: cell(money(h.entering.value), slots[k].entering.verdict),
      issuedNonLocal: cell(money(h.issuedNonLocal.value), slots[k].issuedNonLocal.verdict),
    }
  })
}
