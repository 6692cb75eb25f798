import type pg from 'pg'
import { pRule, RULES } from '../src/domain/disclosure.js'
import type { FlowFigure, FlowsBy } from '../src/reports/flows.report.js'
import { marginClass } from '../src/reports/flows.report.js'
import { toMicros } from '../src/reports/stat.js'

// The differencing attack of the attack suite (test/reports/attack.test.ts; scripts/disclosure-secrets.ts runs it
// over many secrets), as a pure function of what the researcher was given: for every range [a, b) of days in a
// window, the published flows cells (micros, or null when hidden; a cell absent from a published report is a true
// zero), and the exact totals per margin group the exports give. For every cell the rules protect over a range,
// it tries every estimate the published figures allow: the range itself, every difference of two published ranges
// that leaves exactly it, every sum of two published ranges that make it up, and the exact group total from the
// exports less the group's other published cells. A cell is recovered when some estimate is within the protection
// level: p of its largest account's part.
//
// The exports give a cell exactly on a day it is alone in its margin group (the group's total is the cell's value,
// payment by payment), as long as they place every account of the cell that day in its group (the accounts
// export withholds some accounts' area or role for k-anonymity); a lone day the exports do not give is public
// only if the cell passes the rules on its own that day. What a range can still protect is the cell over its
// other days: the protection level is p of the largest account's part over those days, and a cell whose other
// days pass the rules (or that has none) is counted as given (exposed()).

export type Published = Map<string, Map<string, bigint | null>>
export const rangeKey = (a: number, b: number): string => `${a}:${b}`

export interface Truth {
  value: bigint
  /** the largest account's part the protection level is taken of */
  x1: bigint
  /** hidden by the rules over the range */
  protected: boolean
  group: string
  /** what the rules protect of it the exports give anyway (see exposed()) */
  byExports?: true
}

export interface AttackResult {
  /** protected (range, cell)s with at least one estimate formed */
  attacked: number
  /** protected (range, cell)s some estimate recovered within the protection level */
  recovered: Array<{ range: string, cell: string, truth: bigint, estimate: bigint, how: string, level: bigint }>
  /** recovered exactly (to the cent) */
  exact: number
  /** protected (range, cell)s whose protected days the exports, or the rules on single days, give anyway */
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
        // a cell alone in its group over the range is attacked too: the exports give it only on the days whose
        // accounts they all place in the group (exposed() judges those)
        if (t.byExports === true) { out.byExports++; continue }
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

/** Per cell ("payer>payee") and day of the window: each account's paid and received in the day cell (micros). */
export type Parts = Map<string, Array<Map<string, { paid: bigint, recv: bigint }>>>

export async function accountParts (pool: pg.Pool, currencyId: string, from: string, W: number, by: FlowsBy): Promise<Parts> {
  const r = await pool.query<{ k: number, cell: string, account: string, paid: string, recv: string }>(`
    WITH g AS (
      SELECT a.id, CASE WHEN $4 = 'district' THEN p.district WHEN p.kind = 'member' THEN 'member' ELSE p.sector END AS grp
        FROM account a JOIN participant p ON p.id = a.participant_id
       WHERE a.currency_id = $1
    ),
    c AS (
      SELECT e.start - $2::date AS k, pg.grp || '>' || qg.grp AS cell, e.payer, e.payee, e.volume
        FROM circ_pair_bucket e JOIN g pg ON pg.id = e.payer JOIN g qg ON qg.id = e.payee
       WHERE e.currency_id = $1 AND e.grain = 'd' AND e.start >= $2::date AND e.start < $2::date + $3::int
    )
    SELECT k, cell, account, sum(paid)::text AS paid, sum(recv)::text AS recv
      FROM (SELECT k, cell, payer AS account, volume AS paid, 0 AS recv FROM c
            UNION ALL SELECT k, cell, payee, 0, volume FROM c) s
     GROUP BY 1, 2, 3`, [currencyId, from, W, by])
  const out: Parts = new Map()
  for (const x of r.rows) {
    let days = out.get(x.cell)
    if (days == null) out.set(x.cell, days = Array.from({ length: W }, () => new Map()))
    days[x.k].set(x.account, { paid: toMicros(x.paid), recv: toMicros(x.recv) })
  }
  return out
}

/**
 * The truth of range [a, b) as the attack judges it: a cell protected over the range is judged over its days in
 * the range that are not public (known[cell][k]: the cell is alone in its group that day, and the exports give it
 * or it passes the rules that day), since a researcher has the others exactly: its level is p of the largest
 * account's part over those days, and it is given when there are none or they pass the rules.
 */
export function exposed (truth: Map<string, Truth>, parts: Parts, known: Map<string, boolean[]>, a: number, b: number): Map<string, Truth> {
  const out = new Map<string, Truth>()
  for (const [cell, t] of truth) {
    const days = parts.get(cell)
    const lone = known.get(cell)
    if (!t.protected || days == null || lone == null) { out.set(cell, t); continue }
    const own = new Map<string, { paid: bigint, recv: bigint }>()
    let value = 0n
    let some = false
    for (let k = a; k < b; k++) {
      if (days[k].size === 0) continue
      if (lone[k]) { some = true; continue }
      for (const [acc, x] of days[k]) {
        const o = own.get(acc) ?? { paid: 0n, recv: 0n }
        o.paid += x.paid; o.recv += x.recv; value += x.paid
        own.set(acc, o)
      }
    }
    if (!some) { out.set(cell, t); continue }
    const tops = [...own.values()].map(o => (o.paid > o.recv ? o.paid : o.recv)).sort((x, y) => (x > y ? -1 : x < y ? 1 : 0))
    const rest = own.size === 0 || pRule(own.size, value, tops.slice(0, 3), RULES) == null
    out.set(cell, rest ? { ...t, byExports: true } : { ...t, x1: tops[0] })
  }
  return out
}
