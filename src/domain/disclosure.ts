import { createHmac } from 'node:crypto'
import { Money } from './money.js'

// Statistical disclosure control for published reports (the circulation report's rules, docs/metrics.md):
//   threshold rule: a cell that describes fewer than 5 distinct accounts is suppressed;
//   dominance rule: a cell that involves a business and where one account is over 85% of the value is suppressed.
// A cell that describes no account at all is a true zero and is published. System accounts (issuance, fees,
// paper) are not people or firms and are never counted. On top of these primary suppressions, complementary
// suppression hides a second cell wherever a published sum would otherwise give a hidden cell away by
// subtraction (see complement()).

export interface Rules {
  threshold: number
  dominance: Money
  /** p% rule (flows): hidden when what the three largest accounts leave of the value is under p of the largest */
  p: number
  /** publish perturbed values (see perturb()); false only to compare raw figures in tests */
  perturb: boolean
}
export const RULES: Rules = { threshold: 5, dominance: new Money('0.85'), p: 0.10, perturb: true }
/** No suppression and no noise at all: for comparing raw figures in tests. */
export const NO_RULES: Rules = { threshold: 0, dominance: new Money(2), p: 0, perturb: false }

export type Reason = 'threshold' | 'dominance'
export interface Verdict { reason: Reason, complementary?: true }

/** What the rules need of a cell: see src/reports/stat.ts. */
export interface Described { value: string, n: number, max: string, biz: boolean }

export function judge (s: Described, rules: Rules = RULES): Verdict | null {
  if (s.n === 0) return null
  if (s.n < rules.threshold) return { reason: 'threshold' }
  const value = new Money(s.value).abs()
  if (s.biz && !value.isZero() && new Money(s.max).abs().div(value).gt(rules.dominance)) return { reason: 'dominance' }
  return null
}

/** A published cell: its value, or why it is hidden. Never a zero standing in for a hidden value. */
export type Cell =
  | { value: string }
  | { value: null }
  | { value: null, suppressed: true, reason: Reason, complementary?: true }

export function cell (value: string | null, verdict: Verdict | null | undefined): Cell {
  if (verdict != null) {
    return verdict.complementary === true
      ? { value: null, suppressed: true, reason: verdict.reason, complementary: true }
      : { value: null, suppressed: true, reason: verdict.reason }
  }
  return value == null ? { value: null } : { value }
}

/** The first hidden component decides a derived cell (a share is hidden when its numerator or denominator is). */
export const firstVerdict = (...vs: Array<Verdict | null | undefined>): Verdict | null => vs.find(v => v != null) ?? null

/** A cell taking part in complementary suppression. */
export interface Slot { value: string, n: number, verdict: Verdict | null }

/**
 * parent = sum of children. When the parent is null it is taken as known anyway (published elsewhere).
 * If exactly one member of a relation is hidden, the others give it away, so one more is hidden: the smallest
 * published child that describes anyone (least information lost), else the parent. Repeats until nothing changes.
 */
export interface Relation { parent: Slot | null, children: Slot[] }

export function complement (relations: Relation[]): void {
  for (let changed = true; changed;) {
    changed = false
    for (const r of relations) {
      const members = r.parent == null ? r.children : [r.parent, ...r.children]
      const hidden = members.filter(m => m.verdict != null)
      if (hidden.length !== 1) continue
      if (r.parent != null && r.parent.verdict == null && r.children.every(c => c.verdict != null || c.n === 0) && hidden[0] !== r.parent) {
        // every other child is a true zero: the parent equals the hidden child
        r.parent.verdict = { reason: hidden[0].verdict!.reason, complementary: true }
        changed = true
        continue
      }
      const candidates = r.children.filter(c => c.verdict == null && c.n > 0)
        .sort((a, b) => new Money(a.value).abs().cmp(new Money(b.value).abs()))
      const pick = candidates[0] ?? (r.parent != null && r.parent.verdict == null && hidden[0] !== r.parent ? r.parent : null)
      if (pick == null) continue
      pick.verdict = { reason: hidden[0].verdict!.reason, complementary: true }
      changed = true
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Consistent perturbation on a fixed day grid (docs/disclosure.md), for the flows report. A cell over any range
// is published as the sum of its day cells, each moved by a noise that is a pure function of the currency's secret
// and the day cell itself. A day cell therefore has exactly one published value, whatever range it is asked in,
// and every difference of two published ranges is a sum of perturbed day cells: never a true value.
//
// The protection interval rests on one property: a cell's day noises all go the same way (its direction, fixed by
// the secret), each at least NOISE_LOW of the day's largest own part, so over any range they add up, to at least
// NOISE_LOW of the sum of the days' largest parts, hence of the range's largest part. Within the cells of a day
// whose total a researcher knows exactly (perturbDay's margin groups) the noises must add to zero, which needs
// both directions in the group. When every cell of a group has the same direction, one cell has to go the other
// way that day, and that day's noise then works against the rest of its range. Two ways to keep the guarantee:
//   - a balancer: a cell so far from sensitive that day (5 or more accounts, and what its three largest accounts
//     leave is large against the noise it takes) that no range containing that day can fail the rules unless the
//     cell's other days carry enough more noise to pay for it. NOISE_LOW is above p for exactly this: the
//     margin (NOISE_LOW - p) of every other day pays for the balancer's day (see balancerNeeds);
//   - when no cell of the group qualifies, the one that goes against its direction, and a partner from the same
//     group (their sum is all the margin ties together), are hidden in every range containing that day, so no
//     combination of published figures reaches that day cell (publishFlows).

/** noise magnitude, as a share of the day cell's largest own part: uniform in [NOISE_LOW, NOISE_HIGH) */
export const NOISE_LOW = 0.12
export const NOISE_HIGH = 0.17
const PPM = 1_000_000n
const ppm = (x: number): bigint => BigInt(Math.round(x * 1e6))

/** p% rule with a coalition of two: the second and third largest accounts estimate the largest. */
export function pRule (n: number, value: bigint, tops: bigint[], rules: Rules = RULES): Verdict | null {
  if (n === 0) return null
  if (n < rules.threshold) return { reason: 'threshold' }
  const [x1 = 0n, x2 = 0n, x3 = 0n] = tops
  const rest = (value < 0n ? -value : value) - x1 - x2 - x3
  if (x1 > 0n && rest * PPM < x1 * ppm(rules.p)) return { reason: 'dominance' }
  return null
}

export interface DayCell {
  /** what the cell is, without the day: e.g. "flows|sector|member|food" */
  cell: string
  /** its margin group: the cells of a day whose total a researcher can know exactly from elsewhere */
  group: string
  day: string
  /** micros */
  value: bigint
  count: number
  /** the day cell's largest account and its own part (micros) */
  top: string
  x1: bigint
  /** distinct accounts the day cell describes */
  n: number
  /** what the day cell's three largest accounts leave of its value (micros, at least 0) */
  rest: bigint
  /** the day cell fails the threshold or p% rule on its own */
  sensitive: boolean
  /** the exports give the margin class of every account of the day cell (so, alone in its group, its value) */
  given: boolean
}

export interface Perturbed {
  value: bigint
  count: number
  /**
   * the cell must be hidden in every range containing this day: the day's noise had to go against the cell's
   * direction and no balancer could take it (or the cell is the partner of one that did); or the cell is alone in
   * its margin group, fails the rules on its own that day, and the exports do not give it
   */
  hide?: Reason
}

const hmac = (key: Buffer, s: string): Buffer => createHmac('sha256', key).update(s).digest()
const abs = (x: bigint): bigint => (x < 0n ? -x : x)

/**
 * The raw noise of a day cell: NOISE_LOW..NOISE_HIGH of its largest part, with the cell's own fixed sign, rounded
 * up to a whole number of the currency's minor units (`unit`, in micros). Whole units because the published value
 * is rounded to the currency's decimals: a noise under half a unit would be rounded away, and a researcher who
 * knows the true values are whole units would round any finer figure himself. Rounding up keeps every noise at
 * least NOISE_LOW of the largest part (the guarantee) and at least one unit; a day cell of a few units therefore
 * takes more than NOISE_HIGH, which costs a researcher a unit or two.
 */
function raw (key: Buffer, d: DayCell, unit: bigint): { noise: bigint, dc: number } {
  const h = hmac(key, `size|${d.cell}|${d.day}|${d.top}|${d.value}|${d.count}`)
  const u = h.readUInt32BE(0) / 2 ** 32
  const share = BigInt(Math.floor((NOISE_LOW + (NOISE_HIGH - NOISE_LOW) * u) * 1e6))
  const size = abs(d.x1) * share
  // and one unit more on half the days (from the same hash): a cell whose direction a researcher has learnt (an
  // insider's cell) is then still not exact on a small day, where rounding up alone gives one unit every time
  const units = size === 0n ? 0n : (size + PPM * unit - 1n) / (PPM * unit) + BigInt(h[5] & 1)
  return { noise: direction(key, d.cell) * units * unit, dc: (h[4] % 3) - 1 }
}

/** A cell's direction: the same for every day, so its noises add up over any range. */
export const direction = (key: Buffer, cell: string): bigint => (hmac(key, `sign|${cell}`)[0] & 1) === 1 ? 1n : -1n

/**
 * What a cell must leave after its three largest accounts (rest) on a day it takes a balancing noise m against its
 * direction, so that the day can never weaken a protected range. Take a range's days R on which the cell is not
 * alone in its group: F, those on which it balanced, and N, those on which it went its own way (S: the sum of
 * their days' largest parts, x1). The noise over R is at least NOISE_LOW S - sum_F m, and the level to keep is
 * p X1(R) <= p (S + sum_F x1). R fails the threshold rule only if every day has under 5 accounts, so F is empty.
 * It fails the p% rule only if p X1(R) > rest(R); an account's own part over R is at most the sum of its parts
 * over F and over N, so rest(R) >= sum_F rest - X2(N) - X3(N) >= sum_F rest - 2 S, and then
 * (2 + p) S > sum_F (rest - p x1). The noise covers the level once (NOISE_LOW - p) S >= sum_F (m + p x1), which
 * holds day by day when rest >= (2 + p) (m + p x1) / (NOISE_LOW - p) + p x1.
 */
export function balancerNeeds (m: bigint, x1: bigint, rules: Rules = RULES): bigint {
  const p = ppm(rules.p)
  const slack = ppm(NOISE_LOW) - p
  const x = abs(x1)
  return ((2n * PPM + p) * (m * PPM + p * x) + slack * PPM - 1n) / (slack * PPM) + (p * x + PPM - 1n) / PPM
}

/**
 * The published value and count of every cell of one day: a pure function of the secret and the day's cells,
 * so a day cell has one published value whatever range it is asked in. Within each margin group the noises add
 * up to zero (a controlled tabular adjustment, as in the SDC Handbook), so a total known exactly elsewhere gives
 * nothing away, and every cell moves in its own fixed direction by at least NOISE_LOW of its largest part: the
 * side (up or down) whose noises add up to less is moved further, each cell in proportion to its value. If every cell of the group
 * has the same direction, a balancer takes the whole balancing noise against its own direction (the qualifying
 * cell that leaves the most after its three largest accounts); if none qualifies, the cell describing the fewest
 * accounts does, and it and the next fewest are marked to be hidden in every range containing the day (see the
 * comment above). A group of one cell is its own margin: published as it is (it is known exactly elsewhere),
 * unless the exports do not give it and it fails the rules that day: then it is marked to be hidden. `unit` is the
 * currency's minor unit in micros (10^(6 - decimals)): every noise is a whole number of them (see raw).
 */
export function perturbDay (key: Buffer, cells: DayCell[], rules: Rules = RULES, unit = 1n): Perturbed[] {
  const out: Perturbed[] = cells.map(c => ({ value: c.value, count: c.count }))
  const groups = new Map<string, number[]>()
  cells.forEach((c, i) => { const g = groups.get(c.group); if (g == null) groups.set(c.group, [i]); else g.push(i) })
  for (const idx of groups.values()) {
    if (idx.length < 2) {
      // alone in its group: published as it is, which is safe when the exports give it (the group's total is the
      // cell's value, payment by payment) or when it passes the rules on its own; otherwise (the accounts export
      // withholds an account's area or role, for k-anonymity, and the day fails the rules) it is hidden in every
      // range holding the day. Not perturbed: once the exports gave the day (the generalisation changes as
      // accounts join), its noise, and with it the cell's direction, would be known.
      const c = cells[idx[0]]
      if (!c.given && c.sensitive) out[idx[0]].hide = c.n < rules.threshold ? 'threshold' : 'dominance'
      continue
    }
    const r = idx.map(i => raw(key, cells[i], unit))
    const noise = r.map(x => x.noise)
    const hide: Array<Reason | undefined> = idx.map(() => undefined)
    const reason = (j: number): Reason => cells[idx[j]].n < rules.threshold ? 'threshold' : 'dominance'
    // the cells that describe the fewest accounts first (then the smallest): the rules hide such cells in most
    // ranges anyway, so hiding them in every range containing the day costs least. Worked out only when a cell
    // must be hidden (rarely): it takes an HMAC per cell
    const order = (): number[] => {
      const rank = idx.map(i => hmac(key, `rank|${cells[i].cell}`).readUInt32BE(0))
      return idx.map((_, j) => j).sort((x, y) => {
        const a = cells[idx[x]]; const b = cells[idx[y]]
        return a.n - b.n || (a.value < b.value ? -1 : a.value > b.value ? 1 : rank[x] - rank[y])
      })
    }
    if (noise.every(x => x >= 0n) || noise.every(x => x <= 0n)) {
      const total = noise.reduce((a, b) => a + b, 0n)
      // the balancer takes everyone else's noise, against its direction
      let k = -1
      idx.forEach((i, j) => {
        const c = cells[i]
        if (c.n < rules.threshold || c.rest < balancerNeeds(abs(total - noise[j]), c.x1, rules)) return
        if (k < 0 || c.rest > cells[idx[k]].rest) k = j
      })
      if (k < 0) {
        // no balancer: the two first in `order` are hidden in every range containing the day
        const [first, partner] = order()
        k = first
        hide[k] = reason(k)
        hide[partner] = reason(partner)
      }
      noise[k] = -(total - noise[k])
    } else {
      const up = noise.filter(x => x > 0n).reduce((a, b) => a + b, 0n)
      const down = -noise.filter(x => x < 0n).reduce((a, b) => a + b, 0n)
      const weaker = up < down ? 1n : -1n
      // the weaker side's cells move further, each in its own direction, in proportion to their values (so the
      // difference costs every one the same share of its value, not the largest one all of it), in whole units;
      // what rounding leaves goes to the largest
      const side = noise.map((x, k) => k).filter(k => (noise[k] > 0n ? 1n : -1n) === weaker)
      const extra = abs(up - down)
      const sum = side.reduce((a, k) => a + abs(cells[idx[k]].value), 0n)
      let big = side[0]
      let given = 0n
      for (const k of side) {
        const share = sum === 0n ? 0n : extra * abs(cells[idx[k]].value) / sum / unit * unit
        noise[k] += weaker * share
        given += share
        if (cells[idx[k]].value > cells[idx[big]].value) big = k
      }
      noise[big] += weaker * (extra - given)
    }
    // A flow is never negative: a cell published at zero or below that day would say that it went down, and
    // with it its direction on every day, which makes its other small days exact (a noise of one unit, its way).
    // It happens to a cell of a unit or two going down, and to a small cell on the side that takes the balance.
    // Such a cell is hidden in every range containing the day, with a partner (first in `order`) unless another
    // cell of the group already is, so the group's total does not give it back.
    idx.forEach((i, k) => { if (cells[i].value > 0n && cells[i].value + noise[k] <= 0n) hide[k] ??= reason(k) })
    if (hide.filter(h => h != null).length === 1) {
      const partner = order().find(j => hide[j] == null)!
      hide[partner] = reason(partner)
    }
    const dc = r.map(x => x.dc)
    let most = 0
    idx.forEach((i, k) => { if (cells[i].count > cells[idx[most]].count) most = k })
    dc[most] = 0
    dc[most] = -dc.reduce((a, b) => a + b, 0)
    // the cell with the most payments takes the others' count noises; where that would take it below zero (a
    // count cannot be published negative, and clamping it would break the group's total), the others' upward
    // noises give way, from the first, until it does not (each other cell has at least one payment, so its own
    // noise of -1 at most never does)
    for (let k = 0; k < dc.length && cells[idx[most]].count + dc[most] < 0; k++) {
      if (k === most || dc[k] <= 0) continue
      const give = Math.min(dc[k], -(cells[idx[most]].count + dc[most]))
      dc[k] -= give
      dc[most] += give
    }
    idx.forEach((i, k) => {
      out[i] = { value: cells[i].value + noise[k], count: Math.max(0, cells[i].count + dc[k]) }
      if (hide[k] != null) out[i].hide = hide[k]
    })
  }
  return out
}
