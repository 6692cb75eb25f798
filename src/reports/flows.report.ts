import type pg from 'pg'
import { perturbDay, pRule, type DayCell, type Rules, type Verdict } from '../domain/disclosure.js'
import { bucketEnd, isoDate, type Bucket } from '../domain/periods.js'
import { isLocal } from '../domain/postcode.js'
import { fromMicros, toMicros, type Stat } from './stat.js'

// Economic payments by payer group x payee group over a range, read from the day buckets that tile it.
// by=sector: a business's sector, "member" for members; by=district: the postcode district of either party.
// Per cell, the accounts described are its payers and payees; an account's own part is the larger of what it
// paid and what it received in the cell (as in the circulation report).
// Besides the range's figures, each cell carries its day cells (value, count, largest account and its part):
// the disclosure layer (src/domain/disclosure.ts, docs/disclosure.md) publishes the range as the sum of its
// perturbed day cells, so that overlapping ranges never difference down to a true value.

export type FlowsBy = 'sector' | 'district'

/** One day of one cell: the day (YYYY-MM-DD), the value, the count, the largest account and its own part. */
export interface FlowDay { day: string, value: string, count: number, top: string, x1: string, n: number, tops: string[] }

export interface FlowFigure {
  payer: string
  payee: string
  volume: Stat
  count: string
  /** own parts of the three largest accounts over the range (for the p% rule), largest first */
  tops: string[]
  days: FlowDay[]
}

const FLOWS_SQL = `
WITH g AS (
  SELECT a.id, p.kind = 'business' AS biz,
         CASE WHEN $4 = 'district' THEN p.district WHEN p.kind = 'member' THEN 'member' ELSE p.sector END AS grp
    FROM account a JOIN participant p ON p.id = a.participant_id
   WHERE a.currency_id = $1
),
c AS (
  SELECT e.start, pg.grp AS payer_grp, qg.grp AS payee_grp, e.payer, e.payee, e.volume, e.n, pg.biz AS payer_biz, qg.biz AS payee_biz
    FROM circ_pair_bucket e JOIN g pg ON pg.id = e.payer JOIN g qg ON qg.id = e.payee
   WHERE e.currency_id = $1 AND e.grain = 'd' AND e.start >= $2::date AND e.start < $3::date
),
-- each account's paid and received per day cell
acct AS (
  SELECT start, payer_grp, payee_grp, account, sum(paid) AS paid, sum(recv) AS recv, bool_or(biz) AS biz
    FROM (SELECT start, payer_grp, payee_grp, payer AS account, volume AS paid, 0 AS recv, payer_biz AS biz FROM c
          UNION ALL
          SELECT start, payer_grp, payee_grp, payee, 0, volume, payee_biz FROM c) s
   GROUP BY 1, 2, 3, 4
),
dr AS (
  SELECT start, payer_grp, payee_grp, account, greatest(paid, recv) AS own,
         row_number() OVER (PARTITION BY start, payer_grp, payee_grp ORDER BY greatest(paid, recv) DESC, account) AS r
    FROM acct
),
dtop AS (
  SELECT start, payer_grp, payee_grp, (array_agg(account ORDER BY r))[1] AS top, max(own) AS x1, count(*) AS n,
         array_agg(own::text ORDER BY r) FILTER (WHERE r <= 3) AS tops
    FROM dr GROUP BY 1, 2, 3
),
dcell AS (
  SELECT c.start, c.payer_grp, c.payee_grp, sum(c.volume) AS volume, sum(c.n) AS n
    FROM c GROUP BY 1, 2, 3
),
days AS (
  SELECT d.payer_grp, d.payee_grp, sum(d.volume)::text AS volume, sum(d.n)::text AS count,
         array_agg(to_char(d.start, 'YYYY-MM-DD') ORDER BY d.start) AS day, array_agg(d.volume::text ORDER BY d.start) AS day_value,
         array_agg(d.n ORDER BY d.start) AS day_count, array_agg(t.top::text ORDER BY d.start) AS day_top,
         array_agg(t.x1::text ORDER BY d.start) AS day_x1, array_agg(t.n ORDER BY d.start) AS day_n,
         array_agg(array_to_string(t.tops, ' ') ORDER BY d.start) AS day_tops
    FROM dcell d JOIN dtop t USING (start, payer_grp, payee_grp)
   GROUP BY 1, 2
),
racct AS (
  SELECT payer_grp, payee_grp, account, greatest(sum(paid), sum(recv)) AS own, bool_or(biz) AS biz,
         row_number() OVER (PARTITION BY payer_grp, payee_grp ORDER BY greatest(sum(paid), sum(recv)) DESC, account) AS r
    FROM acct GROUP BY 1, 2, 3
),
st AS (
  SELECT payer_grp, payee_grp, count(*) AS n, bool_or(biz) AS biz,
         array_agg(own::text ORDER BY r) FILTER (WHERE r <= 3) AS tops
    FROM racct GROUP BY 1, 2
)
SELECT d.payer_grp AS payer, d.payee_grp AS payee, d.volume, d.count, st.n, st.tops, st.biz,
       d.day, d.day_value, d.day_count, d.day_top, d.day_x1, d.day_n, d.day_tops
  FROM days d JOIN st USING (payer_grp, payee_grp)
 ORDER BY 1, 2`

interface Row {
  payer: string, payee: string, volume: string, count: string, n: string, tops: string[], biz: boolean,
  day: string[], day_value: string[], day_count: number[], day_top: string[], day_x1: string[], day_n: string[], day_tops: string[]
}

/** The flows of the range the buckets tile (in order, as tile() gives them). */
export async function flowFigures (pool: Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>, currencyId: string, buckets: Bucket[], by: FlowsBy): Promise<FlowFigure[]> {
  if (buckets.length === 0) return []
  const from = isoDate(buckets[0].start)
  const to = isoDate(bucketEnd(buckets[buckets.length - 1]))
  const r = await pool.query<Row>(FLOWS_SQL, [currencyId, from, to, by])
  return r.rows.map(x => ({
    payer: x.payer,
    payee: x.payee,
    volume: { value: x.volume, n: Number(x.n), max: x.tops[0] ?? '0', biz: x.biz },
    count: x.count,
    tops: x.tops,
    days: x.day.map((day, i) => ({ day, value: x.day_value[i], count: Number(x.day_count[i]), top: x.day_top[i], x1: x.day_x1[i], n: Number(x.day_n[i]), tops: x.day_tops[i].split(' ') })),
  }))
}

/** The postcode area of a district: "BS" for BS6. */
export const areaOf = (district: string): string => district.replace(/[0-9].*$/, '')

/**
 * What a researcher knows of a flows group exactly from elsewhere (the exports' columns, the circulation report):
 * members vs businesses (the exports say nothing of a business's sector); the postcode area and whether the
 * district is local (the exports give no district).
 */
export function marginClass (by: FlowsBy, grp: string, localAreas: readonly string[]): string {
  if (by === 'sector') return grp === 'member' ? 'member' : 'business'
  return `${areaOf(grp)}:${isLocal(grp, localAreas) ? 'local' : 'non-local'}`
}

export interface PublishedFlow { verdict: Verdict | null, value: string, count: string }

/**
 * The flows as published (docs/disclosure.md): each cell is hidden over the range by the threshold and p% rules,
 * and its value and count are the sums of its day cells' perturbed values (src/domain/disclosure.ts perturbDay),
 * so any difference of published ranges is a sum of perturbed day cells, never a true value.
 */
export function publishFlows (key: Buffer, figures: FlowFigure[], by: FlowsBy, localAreas: readonly string[], rules: Rules): PublishedFlow[] {
  const verdicts = figures.map(f => pRule(f.volume.n, toMicros(f.volume.value), f.tops.map(toMicros), rules))
  if (!rules.perturb) return figures.map((f, i) => ({ verdict: verdicts[i], value: f.volume.value, count: f.count }))
  const days = new Map<string, Array<{ i: number, cell: DayCell }>>()
  figures.forEach((f, i) => {
    const group = `${marginClass(by, f.payer, localAreas)}>${marginClass(by, f.payee, localAreas)}`
    for (const d of f.days) {
      const value = toMicros(d.value)
      const cell: DayCell = {
        cell: `flows|${by}|${f.payer}|${f.payee}`, group, day: d.day, value, count: d.count, top: d.top, x1: toMicros(d.x1),
        sensitive: pRule(d.n, value, d.tops.map(toMicros), rules) != null,
      }
      const list = days.get(d.day)
      if (list == null) days.set(d.day, [{ i, cell }]); else list.push({ i, cell })
    }
  })
  const value = figures.map(() => 0n)
  const count = figures.map(() => 0)
  for (const list of days.values()) {
    const p = perturbDay(key, list.map(x => x.cell))
    list.forEach((x, k) => { value[x.i] += p[k].value; count[x.i] += p[k].count })
  }
  return figures.map((_, i) => ({ verdict: verdicts[i], value: fromMicros(value[i]), count: String(count[i]) }))
}
