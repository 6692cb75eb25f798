import type pg from 'pg'
import { bucketEnd, isoDate, type Bucket } from '../../src/domain/periods.js'
import type { FlowFigure, FlowsBy } from '../../src/reports/flows.report.js'

// The flows report as one plain SQL query over the day links of the range (what src/reports/flows.report.ts
// computed before it kept day cells in memory): the reference the fast one must equal.

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
dtop AS (
  SELECT DISTINCT ON (start, payer_grp, payee_grp) start, payer_grp, payee_grp, account AS top, greatest(paid, recv) AS x1
    FROM acct ORDER BY start, payer_grp, payee_grp, greatest(paid, recv) DESC, account
),
dcell AS (
  SELECT c.start, c.payer_grp, c.payee_grp, sum(c.volume) AS volume, sum(c.n) AS n
    FROM c GROUP BY 1, 2, 3
),
days AS (
  SELECT d.payer_grp, d.payee_grp, sum(d.volume)::text AS volume, sum(d.n)::text AS count,
         array_agg(to_char(d.start, 'YYYY-MM-DD') ORDER BY d.start) AS day, array_agg(d.volume::text ORDER BY d.start) AS day_value,
         array_agg(d.n ORDER BY d.start) AS day_count, array_agg(t.top::text ORDER BY d.start) AS day_top,
         array_agg(t.x1::text ORDER BY d.start) AS day_x1
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
       d.day, d.day_value, d.day_count, d.day_top, d.day_x1
  FROM days d JOIN st USING (payer_grp, payee_grp)
 ORDER BY 1, 2`

interface Row {
  payer: string, payee: string, volume: string, count: string, n: string, tops: string[], biz: boolean,
  day: string[], day_value: string[], day_count: number[], day_top: string[], day_x1: string[]
}

export async function flowsReference (pool: pg.Pool, currencyId: string, buckets: Bucket[], by: FlowsBy): Promise<FlowFigure[]> {
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
    days: x.day.map((day, i) => ({ day, value: x.day_value[i], count: Number(x.day_count[i]), top: x.day_top[i], x1: x.day_x1[i] })),
  }))
}
