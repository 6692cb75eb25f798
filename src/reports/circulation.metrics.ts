import { cell, complement, firstVerdict, judge, RULES, type Cell, type Rules, type Slot, type Verdict } from '../domain/disclosure.js'
import { Money, roundedText as fmt } from '../domain/money.js'
import { DAY_MS } from '../domain/periods.js'
import type { PeriodFigures } from './circulation.report.js'
import { HOLDING_METRICS, holdingMetrics } from './holding.metrics.js'

// From figures to the published metrics (docs/metrics.md defines each one), with the disclosure rules applied.
// Money figures keep the currency's decimals; shares, rates, velocity, Gini and the multiplier have 4 decimals.

export const METRICS = [
  'supply', 'issued', 'redeemed', 'netIssuance', 'volume', 'count', 'averageSupply', 'velocity', 'velocityAnnualised',
  'respendRate', 'b2bShare', 'm2bShare', 'b2mShare', 'm2mShare', 'redemptionRate', 'activeAccounts', 'activeShare',
  'localityShare', 'gini', 'top10Share', 'localMultiplier', 'cycleShare',
  'circulatingShare', 'cumulativeRedemptionRate',
  ...HOLDING_METRICS,
] as const
export type MetricName = typeof METRICS[number]
export type Metrics = Record<MetricName, Cell>

const RATIO_DP = 4

/** Base cells that can be hidden, and that complementary suppression may have to hide. */
const BASE = ['issued', 'redeemed', 'volume', 'mm', 'mb', 'bm', 'bb', 'respend', 'local', 'lmR1', 'cycle', 'supply',
  'supplyIntegral', 'integralMember', 'integralBusiness', 'holders', 'circulating', 'issuedToDate', 'redeemedToDate'] as const
type Base = typeof BASE[number]
/** Sums over time: the whole range's value is the sum of the periods'. */
const ADDITIVE: Base[] = ['issued', 'redeemed', 'volume', 'mm', 'mb', 'bm', 'bb', 'respend', 'local', 'lmR1', 'supplyIntegral',
  'integralMember', 'integralBusiness']

export function circulationMetrics (figures: PeriodFigures[], decimals: number, rules: Rules = RULES): Metrics[] {
  // index 0 is the whole range, 1..n the periods
  const slots: Array<Record<Base, Slot>> = figures.map(f => Object.fromEntries(BASE.map(b => {
    const s = f[b]
    return [b, { value: s.value, n: s.n, verdict: judge(s, rules) }]
  })) as Record<Base, Slot>)
  const active: Array<Verdict | null> = figures.map(f =>
    f.active > 0 && f.active < rules.threshold ? { reason: 'threshold' } : null)

  complement([
    // the four payer x payee kinds add up to the volume
    ...slots.map(s => ({ parent: s.volume, children: [s.mm, s.mb, s.bm, s.bb] })),
    // members' and businesses' supply integrals add up to the supply integral, with the paper account's (which
    // the exports give, so it counts as known)
    ...slots.map(s => ({ parent: s.supplyIntegral, children: [s.integralMember, s.integralBusiness] })),
    // a sum over the whole range is the sum of its periods (only when there is more than one period)
    ...(figures.length > 2 ? ADDITIVE.map(b => ({ parent: slots[0][b], children: slots.slice(1).map(s => s[b]) })) : []),
    // totals since the start: each period's is the previous period's plus its own flow, and the range's is its
    // last period's
    ...(['issued', 'redeemed'] as const).flatMap(b => {
      const toDate = b === 'issued' ? 'issuedToDate' : 'redeemedToDate'
      return [
        ...slots.slice(2).map((s, i) => ({ parent: s[toDate], children: [slots[i + 1][toDate], s[b]] })),
        { parent: slots[0][toDate], children: [slots[slots.length - 1][toDate]] },
      ]
    }),
  ])

  const holding = holdingMetrics(figures, decimals, rules, k => ({
    volume: slots[k].volume.verdict,
    member: firstVerdict(slots[k].mm.verdict, slots[k].mb.verdict),
    business: firstVerdict(slots[k].bm.verdict, slots[k].bb.verdict),
    supplyIntegral: slots[k].supplyIntegral.verdict,
    integralMember: slots[k].integralMember.verdict,
    integralBusiness: slots[k].integralBusiness.verdict,
    holders: slots[k].holders.verdict,
    active: active[k],
  }))

  return figures.map((f, k) => {
    const v = (b: Base) => slots[k][b].verdict
    const seconds = new Money(f.end - f.start).div(1000)
    const days = new Money(f.end - f.start).div(DAY_MS)
    const V = new Money(f.volume.value)
    // a period of no length has no average: undefined (null) like any other zero denominator, where dividing gave
    // NaN or Infinity, which isZero() lets through and the report published as text
    const avgM = quotient(new Money(f.supplyIntegral.value), seconds)
    const velocity = avgM == null ? null : quotient(V, avgM)
    const annualised = velocity == null ? null : quotient(velocity.times(365), days)
    const R1 = new Money(f.lmR1.value)
    const share = (num: string, b: Base) => cell(ratio(new Money(num), V), firstVerdict(v(b), v('volume')))
    const money = (x: string | Money) => fmt(new Money(x), decimals)
    return {
      supply: cell(money(f.supply.value), v('supply')),
      issued: cell(money(f.issued.value), v('issued')),
      redeemed: cell(money(f.redeemed.value), v('redeemed')),
      netIssuance: cell(money(new Money(f.issued.value).minus(f.redeemed.value)), firstVerdict(v('issued'), v('redeemed'))),
      volume: cell(money(f.volume.value), v('volume')),
      count: cell(f.count, v('volume')),
      averageSupply: cell(avgM == null ? null : money(avgM), v('supplyIntegral')),
      velocity: cell(velocity == null ? null : fmt(velocity, RATIO_DP), firstVerdict(v('volume'), v('supplyIntegral'))),
      velocityAnnualised: cell(annualised == null ? null : fmt(annualised, RATIO_DP), firstVerdict(v('volume'), v('supplyIntegral'))),
      respendRate: cell(ratio(new Money(f.spend), new Money(f.respend.value)), firstVerdict(v('respend'), v('redeemed'))),
      b2bShare: share(f.bb.value, 'bb'),
      m2bShare: share(f.mb.value, 'mb'),
      b2mShare: share(f.bm.value, 'bm'),
      m2mShare: share(f.mm.value, 'mm'),
      redemptionRate: cell(ratio(new Money(f.redeemed.value), new Money(f.issued.value)), firstVerdict(v('redeemed'), v('issued'))),
      activeAccounts: cell(String(f.active), active[k]),
      activeShare: cell(f.open === 0 ? null : fmt(new Money(f.active).div(f.open), RATIO_DP), active[k]),
      localityShare: share(f.local.value, 'local'),
      gini: cell(f.gini == null ? null : fmt(new Money(f.gini), RATIO_DP), v('holders')),
      top10Share: cell(f.top10 == null ? null : fmt(new Money(f.top10), RATIO_DP), v('holders')),
      localMultiplier: cell(R1.isZero() ? null : fmt(R1.plus(f.lmR2).plus(f.lmR3).div(R1), RATIO_DP), v('lmR1')),
      cycleShare: share(f.cycle.value, 'cycle'),
      circulatingShare: share(f.circulating.value, 'circulating'),
      cumulativeRedemptionRate: cell(ratio(new Money(f.redeemedToDate.value), new Money(f.issuedToDate.value)),
        firstVerdict(v('redeemedToDate'), v('issuedToDate'))),
      ...holding[k],
    }
  })
}

/** num / den, or null where that is not a number: a zero denominator, or one that is not finite itself. */
function quotient (num: Money, den: Money): Money | null {
  if (den.isZero() || !den.isFinite() || !num.isFinite()) return null
  return num.div(den)
}

function ratio (num: Money, den: Money): string | null {
  const q = quotient(num, den)
  return q == null ? null : fmt(q, RATIO_DP)
}
