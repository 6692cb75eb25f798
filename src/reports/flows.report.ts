import type pg from 'pg'
import { isoDate, type Bucket } from '../domain/periods.js'
import type { Stat } from './stat.js'

// Economic payments by payer group x payee group over a range, from the pair buckets that tile it.
// by=sector: a business's sector, "member" for members; by=district: the postcode district of either party.
// Per cell, the accounts described are its payers and payees; an account's own part is the larger of what it
// paid and what it received in the cell (as in the circulation report).

export type FlowsBy = 'sector' | 'district'

export interface FlowFigure { payer: string, payee: string, volume: Stat, count: string }

const FLOWS_SQL = `
WITH bk AS (SELECT * FROM unnest($2::text[], $3::date[]) AS b (grain, start)),
e AS (
  SELECT p.payer, p.payee, sum(p.volume) AS volume, sum(p.n) AS n
    FROM bk JOIN circ_pair_bucket p ON p.currency_id = $1 AND p.grain = bk.grain AND p.start = bk.start
   GROUP BY 1, 2
),
g AS (
  SELECT a.id, p.kind = 'business' AS biz,
         CASE WHEN $4 = 'district' THEN p.district WHEN p.kind = 'member' THEN 'member' ELSE p.sector END AS grp
    FROM account a JOIN participant p ON p.id = a.participant_id
   WHERE a.currency_id = $1
),
c AS (
  SELECT pg.grp AS payer_grp, qg.grp AS payee_grp, e.payer, e.payee, e.volume, e.n, pg.biz AS payer_biz, qg.biz AS payee_biz
    FROM e JOIN g pg ON pg.id = e.payer JOIN g qg ON qg.id = e.payee
),
side AS (
  SELECT payer_grp, payee_grp, payer AS account, sum(volume) AS own, bool_or(payer_biz) AS biz FROM c GROUP BY 1, 2, 3
  UNION ALL
  SELECT payer_grp, payee_grp, payee, sum(volume), bool_or(payee_biz) FROM c GROUP BY 1, 2, 3
),
st AS (
  SELECT payer_grp, payee_grp, count(DISTINCT account) AS n, max(own) AS max, bool_or(biz) AS biz
    FROM side GROUP BY 1, 2
)
SELECT c.payer_grp AS payer, c.payee_grp AS payee, sum(c.volume)::text AS volume, sum(c.n)::text AS count,
       st.n, st.max::text AS max, st.biz
  FROM c JOIN st USING (payer_grp, payee_grp)
 GROUP BY c.payer_grp, c.payee_grp, st.n, st.max, st.biz
 ORDER BY 1, 2`

export async function flowFigures (pool: pg.Pool, currencyId: string, buckets: Bucket[], by: FlowsBy): Promise<FlowFigure[]> {
  const r = await pool.query<{ payer: string, payee: string, volume: string, count: string, n: string, max: string, biz: boolean }>(
    FLOWS_SQL, [currencyId, buckets.map(b => b.grain), buckets.map(b => isoDate(b.start)), by])
  return r.rows.map(x => ({
    payer: x.payer,
    payee: x.payee,
    volume: { value: x.volume, n: Number(x.n), max: x.max, biz: x.biz },
    count: x.count,
  }))
}
