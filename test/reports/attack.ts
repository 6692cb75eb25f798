import { pRule, RULES } from '../../src/domain/disclosure.js'
import type { FlowFigure, FlowsBy } from '../../src/reports/flows.report.js'
import { marginClass } from '../../src/reports/flows.report.js'
import { toMicros } from '../../src/reports/stat.js'

// The differencing attack of the attack suite (test/reports/attack.test.ts), as a pure function of what the
// researcher was given: for every range [a, b) of days in a window, the published flows cells (micros, or null
// when hidden; a cell absent from a published report is a true zero), and the exact totals per margin group the
// exports give. For every cell the rules protect over a range, it tries every estimate the published figures
// allow: the range itself, every difference of two published ranges that leaves exactly it, every sum of two
// published ranges that make it up, and the exact group total from the exports less the group's other published
// cells. A cell is recovered when some estimate is within the protection level: p of its largest account's part.

export type Published = Map<string, Map<string, bigint | null>>
export const rangeKey = (a: number, b: number): string => `${a}:${b}`

export interface Truth { value: bigint, x1: bigint, protected: boolean, group: string }

export interface AttackResult {
  /** protected (range, cell)s with at least one estimate formed */
  attacked: number
  /** protected (range, cell)s some estimate recovered within the protection level */
  recovered: Array<{ range: string, cell: string, truth: bigint, estimate: bigint, how: string, level: bigint }>
  /** recovered exactly (to the cent) */
  exact: number
  /** protected (range, cell)s alone in their margin group over the range: the exports give them whole */
  byExports: number
}

/** rounding slack per published figure an estimate adds up: half a cent, in micros */
const SLACK = 5_000n

export function truthOf (figures: FlowFigure[], by: FlowsBy, localAreas: string[]): Map<string, Truth> {
  return new Map(figures.map(f => [`${f.payer}>${f.payee}`, {
    value: toMicros(f.volume.value),
    x1: toMicros(f.tops[0] ?? '0'),
    protected: pRule(f.volume.n, toMicros(f.volume.value), f.tops.map(toMicros), RULES) != null,
    group: `${marginClass(by, f.payer, localAreas)}>${marginClass(by, f.payee, localAreas)}`,
  }]))
}

export function attack (W: number, truth: Map<string, Map<string, Truth>>, published: Published, margins: Map<string, Map<string, bigint>>, p = RULES.p): AttackResult {
  const out: AttackResult = { attacked: 0, recovered: [], exact: 0, byExports: 0 }
  // a published figure: the cell's value, 0 if the report has no such cell, undefined if hidden
  const P = (a: number, b: number, cell: string): bigint | undefined => {
    if (a === b) return 0n
    const r = published.get(rangeKey(a, b))
    if (r == null) return undefined
    if (!r.has(cell)) return 0n
    return r.get(cell) ?? undefined
  }
  const ppm = BigInt(Math.round(p * 1e6))
  for (let a = 0; a < W; a++) {
    for (let b = a + 1; b <= W; b++) {
      const key = rangeKey(a, b)
      const cells = truth.get(key)!
      for (const [cell, t] of cells) {
        if (!t.protected) continue
        const others = [...cells.entries()].filter(([c, x]) => c !== cell && x.group === t.group)
        if (others.length === 0) { out.byExports++; continue }
        const est: Array<{ how: string, v: bigint, terms: number }> = []
        const add = (how: string, terms: number, ...parts: Array<bigint | undefined>) => {
          if (parts.every(x => x !== undefined)) est.push({ how, v: parts.reduce<bigint>((s, x) => s + x!, 0n), terms })
        }
        add('the range', 1, P(a, b, cell))
        for (let x = 0; x < a; x++) { const big = P(x, b, cell); const small = P(x, a, cell); add(`[${x},${b}) - [${x},${a})`, 2, big, small === undefined ? undefined : -small) }
        for (let y = b + 1; y <= W; y++) { const big = P(a, y, cell); const small = P(b, y, cell); add(`[${a},${y}) - [${b},${y})`, 2, big, small === undefined ? undefined : -small) }
        for (let m = a + 1; m < b; m++) add(`[${a},${m}) + [${m},${b})`, 2, P(a, m, cell), P(m, b, cell))
        const margin = margins.get(key)?.get(t.group)
        if (margin !== undefined) {
          const parts = others.map(([c]) => P(a, b, c))
          add('exports margin - other cells', 1 + parts.length, margin, ...parts.map(x => x === undefined ? undefined : -x))
        }
        if (est.length === 0) continue
        out.attacked++
        const level = t.x1 * ppm / 1_000_000n
        const best = est.map(e => ({ ...e, err: e.v > t.value ? e.v - t.value : t.value - e.v }))
          .sort((x, y) => (x.err < y.err ? -1 : x.err > y.err ? 1 : 0))[0]
        if (best.err + SLACK * BigInt(best.terms) < level) out.recovered.push({ range: key, cell, truth: t.value, estimate: best.v, how: best.how, level })
        if (best.err <= SLACK * BigInt(best.terms)) out.exact++
      }
    }
  }
  return out
}
