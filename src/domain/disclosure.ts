import { Money } from './money.js'

// Statistical disclosure control for published reports (PRODUCT.md, "Circulation metrics"):
//   threshold rule: a cell that describes fewer than 5 distinct accounts is suppressed;
//   dominance rule: a cell that involves a business and where one account is over 85% of the value is suppressed.
// A cell that describes no account at all is a true zero and is published. System accounts (issuance, fees,
// paper) are not people or firms and are never counted. On top of these primary suppressions, complementary
// suppression hides a second cell wherever a published sum would otherwise give a hidden cell away by
// subtraction (see complement()).

export interface Rules { threshold: number, dominance: Money }
export const RULES: Rules = { threshold: 5, dominance: new Money('0.85') }
/** No suppression at all: for comparing raw figures in tests. */
export const NO_RULES: Rules = { threshold: 0, dominance: new Money(2) }

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
