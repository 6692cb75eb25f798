import { createHmac } from 'node:crypto'
import { Money } from './money.js'

// Statistical disclosure control for published reports (the product brief's circulation metrics):
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
// Consistent perturbation on a fixed day grid (docs/disclosure.md). A magnitude figure that a researcher can ask
// for over any range (flows) is published as the sum of its day cells, each moved by a noise that is a pure
// function of the currency's secret and the day cell itself. A day cell therefore has exactly one published
// value, whatever range it is asked in, and every difference of two published ranges is a sum of perturbed day
// cells: never a true value. The noise of a day cell is between NOISE_LOW and NOISE_HIGH of its largest account's
// own part, with a sign fixed per (cell, largest account): so a cell one account dominates is moved by at least
// NOISE_LOW of that account's part on every day, and over a range the noise adds up in the same direction instead
// of averaging away (Evans, Zayatz and Slanta's noise for establishment tables, keyed like the cell-key method).

/** noise magnitude, as a share of the day cell's largest own part: uniform in [NOISE_LOW, NOISE_HIGH) */
export const NOISE_LOW = 0.10
export const NOISE_HIGH = 0.20
const PPM = 1_000_000n

/** p% rule with a coalition of two: the second and third largest accounts estimate the largest. */
export function pRule (n: number, value: bigint, tops: bigint[], rules: Rules = RULES): Verdict | null {
  if (n === 0) return null
  if (n < rules.threshold) return { reason: 'threshold' }
  const [x1 = 0n, x2 = 0n, x3 = 0n] = tops
  const rest = (value < 0n ? -value : value) - x1 - x2 - x3
  if (x1 > 0n && rest * PPM < x1 * BigInt(Math.round(rules.p * 1e6))) return { reason: 'dominance' }
  return null
}

export interface DayCell {
  /** what the cell is, without the day: e.g. "flows|sector|member|food" */
  cell: string
  day: string
  /** micros */
  value: bigint
  count: number
  /** the day cell's largest account and its own part (micros) */
  top: string
  x1: bigint
}

export interface Perturbed { value: bigint, count: number }

/** The day cell's published value and count: a pure function of the secret and the cell. */
export function perturb (key: Buffer, d: DayCell): Perturbed {
  const sign = createHmac('sha256', key).update(`sign|${d.cell}|${d.top}`).digest()[0] & 1 ? 1n : -1n
  const h = createHmac('sha256', key).update(`size|${d.cell}|${d.day}|${d.top}|${d.value}|${d.count}`).digest()
  const u = h.readUInt32BE(0) / 2 ** 32
  const ppm = BigInt(Math.floor((NOISE_LOW + (NOISE_HIGH - NOISE_LOW) * u) * 1e6))
  const x1 = d.x1 < 0n ? -d.x1 : d.x1
  // counts move by -1, 0 or +1 a day cell, never below zero
  const dc = (h[4] % 3) - 1
  return { value: d.value + sign * x1 * ppm / PPM, count: Math.max(0, d.count + dc) }
}
