import type pg from 'pg'
import { isoDate, type Bucket, type Day, type Period } from '../domain/periods.js'
import { cyclicComponents } from './graph.js'
import { LM_R3_SQL } from './local-multiplier.sql.js'
import { fromMicros, readStat, statSql, toMicros, type Stat } from './stat.js'

// The circulation report's figures, per period and for the whole range, read from the aggregates only
// (circ_account_bucket, circ_pair_bucket, circ_bucket_graph; see the *_circulation_aggregates migration).
// Rows read: (buckets in the range) x (accounts active in them) for flows, (months of history) x (accounts) for
// balances, and the payment pairs of the range for the whole-range graph figures. Never the transfer table.

export interface PeriodFigures {
  start: Day
  end: Day
  issued: Stat
  redeemed: Stat
  /** economic payments; count is the number of them */
  volume: Stat
  count: string
  /** payer kind x payee kind: member/business */
  mm: Stat
  mb: Stat
  bm: Stat
  bb: Stat
  /** businesses' payments to participants plus their redemptions (S + R_b); spend is S alone */
  respend: Stat
  spend: string
  /** payments with both parties in the local areas */
  local: Stat
  /** money entering businesses (R1); r2, r3: re-spent locally, and again */
  lmR1: Stat
  lmR2: string
  lmR3: string
  /** payments on links inside strongly connected parts of the period's payment graph */
  cycle: Stat
  /** M at the end of the period: participants' and paper balances */
  supply: Stat
  /** time integral of M over the period in currency x seconds; divide by the period's seconds for avg M */
  supplyIntegral: Stat
  /** accounts that made an economic payment; open: participant accounts open in the period */
  active: number
  open: number
  /** concentration of participants' balances at the end: value is their total */
  holders: Stat
  gini: string | null
  top10: string | null
}

interface Tiling { k: number[], grain: string[], start: string[] }

function tiling (periods: Period[]): Tiling {
  const t: Tiling = { k: [], grain: [], start: [] }
  periods.forEach((p, i) => p.buckets.forEach(b => { t.k.push(i + 1); t.grain.push(b.grain); t.start.push(isoDate(b.start)) }))
  return t
}

const FLOW_CELLS = [
  statSql('issued', 'issued', 'issued <> 0', 'abs(issued)'),
  statSql('redeemed', 'redeemed', 'redeemed <> 0', 'abs(redeemed)'),
  statSql('volume', 'paid_m + paid_b', 'paid_m + paid_b <> 0 OR recv_m + recv_b <> 0', 'greatest(paid_m + paid_b, recv_m + recv_b)'),
  statSql('mm', 'CASE WHEN mem THEN paid_m ELSE 0 END', 'mem AND (paid_m <> 0 OR recv_m <> 0)', 'greatest(paid_m, recv_m)'),
  statSql('mb', 'CASE WHEN mem THEN paid_b ELSE 0 END', '(mem AND paid_b <> 0) OR (biz AND recv_m <> 0)', 'CASE WHEN mem THEN paid_b ELSE recv_m END'),
  statSql('bm', 'CASE WHEN biz THEN paid_m ELSE 0 END', '(biz AND paid_m <> 0) OR (mem AND recv_b <> 0)', 'CASE WHEN biz THEN paid_m ELSE recv_b END'),
  statSql('bb', 'CASE WHEN biz THEN paid_b ELSE 0 END', 'biz AND (paid_b <> 0 OR recv_b <> 0)', 'greatest(paid_b, recv_b)'),
  statSql('respend', 'CASE WHEN biz THEN paid_m + paid_b + redeemed ELSE 0 END', 'biz AND (paid_m + paid_b <> 0 OR redeemed <> 0)', 'paid_m + paid_b + redeemed'),
  statSql('local', 'paid_ll', 'paid_ll <> 0 OR recv_ll <> 0', 'greatest(paid_ll, recv_ll)'),
  statSql('lm', 'CASE WHEN biz THEN recv_m + recv_b ELSE 0 END', 'biz AND recv_m + recv_b <> 0', 'recv_m + recv_b'),
  statSql('cycle', 'cyc_paid', 'cyc_paid <> 0 OR cyc_recv <> 0', 'greatest(cyc_paid, cyc_recv)'),
].join(',\n    ')

// $1 currency; $2..$4 the tiling (period k, grain, bucket start); $5, $6 every period's k and end (k = 0: whole range).
// GROUPING SETS sums each account once per period and once over the whole range in one pass.
const FLOW_SQL = `
WITH bk AS (SELECT * FROM unnest($2::int[], $3::text[], $4::date[]) AS b (k, grain, start)),
pa AS (
  SELECT bk.k AS pk, r.account_id,
         sum(r.issued) AS issued, sum(r.redeemed) AS redeemed, sum(r.paid_m) AS paid_m, sum(r.paid_b) AS paid_b,
         sum(r.n_paid) AS n_paid, sum(r.recv_m) AS recv_m, sum(r.recv_b) AS recv_b, sum(r.paid_ll) AS paid_ll,
         sum(r.recv_ll) AS recv_ll, sum(r.paid_lp) AS paid_lp, sum(r.cyc_paid) AS cyc_paid, sum(r.cyc_recv) AS cyc_recv
    FROM bk JOIN circ_account_bucket r ON r.currency_id = $1 AND r.grain = bk.grain AND r.start = bk.start
   GROUP BY GROUPING SETS ((bk.k, r.account_id), (r.account_id))
),
x AS (
  SELECT COALESCE(pa.pk, 0) AS k, pa.*, a.participant_id IS NOT NULL AS part, a.status,
         COALESCE(p.kind = 'business', false) AS biz, COALESCE(p.kind = 'member', false) AS mem
    FROM pa JOIN account a ON a.id = pa.account_id LEFT JOIN participant p ON p.id = a.participant_id
),
agg AS (
  SELECT k,
    ${FLOW_CELLS},
    sum(n_paid)::text AS count,
    sum(CASE WHEN biz THEN paid_m + paid_b ELSE 0 END)::text AS spend,
    sum(CASE WHEN biz AND recv_m + recv_b > 0 THEN LEAST(recv_m + recv_b, paid_lp) ELSE 0 END)::text AS lm_r2,
    count(*) FILTER (WHERE part AND n_paid > 0) AS active,
    count(*) FILTER (WHERE part AND n_paid > 0 AND status = 'closed') AS active_closed
  FROM x GROUP BY k
),
open AS (
  SELECT pe.k, count(a.id) AS open
    FROM unnest($5::int[], $6::timestamptz[]) AS pe (k, e)
    LEFT JOIN account a ON a.currency_id = $1 AND a.participant_id IS NOT NULL AND a.status <> 'closed' AND a.created_at < pe.e
   GROUP BY pe.k
)
SELECT agg.*, open.k AS period, open.open FROM open LEFT JOIN agg ON agg.k = open.k`

// $1 currency; $2..$4 the tiling; $5..$10 boundaries i = 0..n (time, its UTC date, its month's first day, the
// range of month buckets and of day buckets that first count at this boundary); $11 the range's end;
// $12..$14 every period's k, length in seconds and end.
// The balance of an account at boundary i: all month buckets before i's month, plus the day buckets of i's month
// before i. Each bucket row is mapped to the first boundary it counts at and summed cumulatively.
const BALANCE_SQL = `
WITH bk AS (SELECT * FROM unnest($2::int[], $3::text[], $4::date[]) AS b (k, grain, start)),
bnd AS (SELECT * FROM unnest($5::int[], $6::timestamptz[], $7::date[], $8::date[], $9::date[], $10::date[]) AS b (i, e, ed, mf, mlo, dlo)),
per AS (SELECT * FROM unnest($12::int[], $13::numeric[], $14::timestamptz[]) AS p (k, len, e)),
macc AS (
  SELECT a.id AS account_id, a.participant_id, p.created_at AS p_created, COALESCE(p.kind = 'business', false) AS biz
    FROM account a LEFT JOIN participant p ON p.id = a.participant_id
   WHERE a.currency_id = $1 AND (a.participant_id IS NOT NULL OR a.system_kind = 'paper')
),
mrow AS (
  SELECT r.account_id, b.i, sum(r.d_bal) AS s
    FROM bnd b JOIN circ_account_bucket r ON r.currency_id = $1 AND r.grain = 'm' AND r.start >= b.mlo AND r.start < b.mf
   GROUP BY 1, 2
),
drow AS (
  SELECT r.account_id, b.i, sum(r.d_bal) AS s
    FROM bnd b JOIN circ_account_bucket r ON r.currency_id = $1 AND r.grain = 'd' AND r.start >= b.dlo AND r.start < b.ed
   GROUP BY 1, 2
),
bal AS (
  SELECT g.account_id, g.i,
         sum(COALESCE(mr.s, 0)) OVER (PARTITION BY g.account_id ORDER BY g.i)
       + sum(COALESCE(dr.s, 0)) OVER (PARTITION BY g.account_id, g.mf ORDER BY g.i) AS bal
    FROM (SELECT m.account_id, b.i, b.mf FROM macc m CROSS JOIN bnd b) g
    LEFT JOIN mrow mr ON mr.account_id = g.account_id AND mr.i = g.i
    LEFT JOIN drow dr ON dr.account_id = g.account_id AND dr.i = g.i
),
prow AS (
  SELECT bk.k, r.account_id, sum(r.d_bal) AS y,
         sum(r.w_bal + r.d_bal * extract(epoch FROM $11::timestamptz - circ_bucket_end(r.start, r.grain))) AS x
    FROM bk JOIN circ_account_bucket r ON r.currency_id = $1 AND r.grain = bk.grain AND r.start = bk.start
   GROUP BY 1, 2
),
integ AS (
  SELECT per.k, m.account_id, m.participant_id IS NOT NULL AS part, m.biz,
         b0.bal * per.len + COALESCE(pr.x, 0) - extract(epoch FROM $11::timestamptz - per.e) * COALESCE(pr.y, 0) AS v
    FROM per CROSS JOIN macc m
    JOIN bal b0 ON b0.account_id = m.account_id AND b0.i = per.k - 1
    LEFT JOIN prow pr ON pr.k = per.k AND pr.account_id = m.account_id
),
integ_all AS (
  SELECT k, part, biz, v FROM integ
  UNION ALL
  SELECT 0, part, biz, sum(v) FROM integ GROUP BY account_id, part, biz
),
avgm AS (
  SELECT k, ${statSql('integral', 'v', 'v <> 0', 'abs(v)')} FROM integ_all GROUP BY k
),
supply AS (
  SELECT i AS k, ${statSql('supply', 'bal', 'bal <> 0', 'abs(bal)')}
    FROM (SELECT b.i, b.bal, m.participant_id IS NOT NULL AS part, m.biz FROM bal b JOIN macc m USING (account_id)) s
   GROUP BY i
),
pb AS (
  SELECT b.i, m.participant_id, bool_or(m.biz) AS biz, sum(b.bal) AS bal
    FROM bal b JOIN macc m USING (account_id) JOIN bnd ON bnd.i = b.i
   WHERE m.participant_id IS NOT NULL AND m.p_created < bnd.e
   GROUP BY 1, 2
),
ranked AS (
  SELECT i, bal, biz, true AS part, row_number() OVER (PARTITION BY i ORDER BY bal) AS r, count(*) OVER (PARTITION BY i) AS cnt
    FROM pb
),
conc AS (
  SELECT i AS k, ${statSql('holders', 'bal', 'bal <> 0', 'abs(bal)')},
         CASE WHEN sum(bal) <> 0 THEN (2 * sum(r * bal) / (count(*) * sum(bal)) - (count(*) + 1)::numeric / count(*))::text END AS gini,
         CASE WHEN sum(bal) <> 0 THEN (COALESCE(sum(bal) FILTER (WHERE r > cnt - ceil(cnt / 10.0)), 0) / sum(bal))::text END AS top10
    FROM ranked GROUP BY i
)
SELECT 'avgm' AS what, to_jsonb(avgm) AS row FROM avgm
UNION ALL SELECT 'supply', to_jsonb(supply) FROM supply
UNION ALL SELECT 'conc', to_jsonb(conc) FROM conc`

// Pair volumes of a composite period, kept only where the payer also received and the payee also paid in it.
const PAIRS_SQL = `
WITH bk AS (SELECT * FROM unnest($2::text[], $3::date[]) AS b (grain, start)),
acc AS (
  SELECT r.account_id, sum(r.recv_m + r.recv_b) AS inc, sum(r.paid_m + r.paid_b) AS out
    FROM bk JOIN circ_account_bucket r ON r.currency_id = $1 AND r.grain = bk.grain AND r.start = bk.start
   GROUP BY 1
),
e AS (
  SELECT p.payer, p.payee, sum(p.volume) AS volume
    FROM bk JOIN circ_pair_bucket p ON p.currency_id = $1 AND p.grain = bk.grain AND p.start = bk.start
   GROUP BY 1, 2
)
SELECT array_agg(e.payer::text) AS payers, array_agg(e.payee::text) AS payees, array_agg(e.volume::text) AS volumes
  FROM e
  JOIN acc a ON a.account_id = e.payer AND a.inc > 0
  JOIN acc b ON b.account_id = e.payee AND b.out > 0`

const BUSINESSES_SQL = `
SELECT array_agg(a.id::text) AS ids FROM account a JOIN participant p ON p.id = a.participant_id
 WHERE a.currency_id = $1 AND p.kind = 'business'`

const GRAPH_SQL = `
SELECT b.grain, b.start::text, b.lm_r3::text
  FROM unnest($2::text[], $3::date[]) AS x (grain, start)
  JOIN circ_bucket_graph b ON b.currency_id = $1 AND b.grain = x.grain AND b.start = x.start`

const monthFloor = (d: Day): Day => { const x = new Date(d); return Date.UTC(x.getUTCFullYear(), x.getUTCMonth(), 1) }

/** Every figure of every period (index 1..n) and of the whole range (index 0), from the aggregates. */
export async function circulationFigures (pool: pg.Pool, currencyId: string, periods: Period[]): Promise<PeriodFigures[]> {
  const t = tiling(periods)
  const from = periods[0].start
  const to = periods[periods.length - 1].end
  const whole: Period = { start: from, end: to, buckets: periods.flatMap(p => p.buckets) }
  const all = [whole, ...periods]

  // boundaries i = 0..n: the start of every period and the end of the last
  const bounds = [from, ...periods.map(p => p.end)]
  const ed = bounds.map(isoDate)
  const mf = bounds.map(b => isoDate(monthFloor(b)))
  const mlo = mf.map((_, i) => i === 0 ? '-infinity' : mf[i - 1])
  const dlo = bounds.map((b, i) => isoDate(i === 0 ? monthFloor(b) : Math.max(bounds[i - 1], monthFloor(b))))

  const composite = all.map((p, k) => ({ p, k })).filter(x => x.p.buckets.length > 1)
  const single = periods.filter(p => p.buckets.length === 1).map(p => p.buckets[0])

  const [flow, bal, graphs, businesses, ...pairs] = await Promise.all([
    pool.query(FLOW_SQL, [currencyId, t.k, t.grain, t.start, all.map((_, k) => k), all.map(p => new Date(p.end).toISOString())]),
    pool.query<{ what: string, row: Record<string, unknown> }>(BALANCE_SQL, [
      currencyId, t.k, t.grain, t.start,
      bounds.map((_, i) => i), bounds.map(b => new Date(b).toISOString()), ed, mf, mlo, dlo,
      new Date(to).toISOString(),
      periods.map((_, i) => i + 1), periods.map(p => String((p.end - p.start) / 1000)), periods.map(p => new Date(p.end).toISOString()),
    ]),
    pool.query<{ grain: string, start: string, lm_r3: string }>(GRAPH_SQL, [currencyId, single.map(b => b.grain), single.map(b => isoDate(b.start))]),
    composite.length > 0 ? pool.query<{ ids: string[] | null }>(BUSINESSES_SQL, [currencyId]) : null,
    ...composite.flatMap(({ p }) => [
      pool.query<{ payers: string[] | null, payees: string[] | null, volumes: string[] | null }>(PAIRS_SQL, bucketArgs(currencyId, p.buckets)),
      pool.query<{ r3: string }>(LM_R3_SQL, bucketArgs(currencyId, p.buckets)),
    ]),
  ])

  const flows = new Map<number, Record<string, unknown>>(flow.rows.map(r => [Number(r.period), r]))
  const part = (what: string) => new Map<number, Record<string, unknown>>(
    bal.rows.filter(r => r.what === what).map(r => [Number(r.row.k), r.row]))
  const avgm = part('avgm')
  const supply = part('supply')
  const conc = part('conc')
  const r3 = new Map(graphs.rows.map(g => [`${g.grain}:${g.start}`, g.lm_r3]))
  const biz = new Set(businesses?.rows[0].ids ?? [])
  const compositeGraph = new Map<number, { cycle: Stat, r3: string }>()
  composite.forEach(({ k }, j) => {
    const e = pairs[2 * j].rows[0] as { payers: string[] | null, payees: string[] | null, volumes: string[] | null }
    compositeGraph.set(k, {
      cycle: cycleStat(e.payers ?? [], e.payees ?? [], e.volumes ?? [], biz),
      r3: (pairs[2 * j + 1].rows[0] as { r3: string }).r3,
    })
  })

  return all.map((p, k) => {
    const f = flows.get(k) ?? {}
    const end = k === 0 ? periods.length : k
    const b = p.buckets[0]
    return {
      start: p.start,
      end: p.end,
      issued: readStat(f, 'issued'),
      redeemed: readStat(f, 'redeemed'),
      volume: readStat(f, 'volume'),
      count: String(f.count ?? '0'),
      mm: readStat(f, 'mm'),
      mb: readStat(f, 'mb'),
      bm: readStat(f, 'bm'),
      bb: readStat(f, 'bb'),
      respend: readStat(f, 'respend'),
      spend: String(f.spend ?? '0'),
      local: readStat(f, 'local'),
      lmR1: readStat(f, 'lm'),
      lmR2: String(f.lm_r2 ?? '0'),
      lmR3: compositeGraph.get(k)?.r3 ?? r3.get(`${b.grain}:${isoDate(b.start)}`) ?? '0',
      cycle: compositeGraph.get(k)?.cycle ?? readStat(f, 'cycle'),
      supply: readStat(supply.get(end) ?? {}, 'supply'),
      supplyIntegral: readStat(avgm.get(k) ?? {}, 'integral'),
      active: Number(f.active ?? 0),
      open: Number(f.open ?? 0) + Number(f.active_closed ?? 0),
      holders: readStat(conc.get(end) ?? {}, 'holders'),
      gini: (conc.get(end)?.gini as string | null | undefined) ?? null,
      top10: (conc.get(end)?.top10 as string | null | undefined) ?? null,
    }
  })
}

const bucketArgs = (currencyId: string, buckets: Bucket[]) =>
  [currencyId, buckets.map(b => b.grain), buckets.map(b => isoDate(b.start))]

/** Volume on links inside strongly connected components, with what the disclosure rules need of it. */
export function cycleStat (payers: string[], payees: string[], volumes: string[], businesses: Set<string>): Stat {
  const comp = cyclicComponents(payers, payees)
  const paid = new Map<string, bigint>()
  const recv = new Map<string, bigint>()
  let total = 0n
  for (let e = 0; e < payers.length; e++) {
    const c = comp.get(payers[e])
    if (c === undefined || comp.get(payees[e]) !== c) continue
    const v = toMicros(volumes[e])
    total += v
    paid.set(payers[e], (paid.get(payers[e]) ?? 0n) + v)
    recv.set(payees[e], (recv.get(payees[e]) ?? 0n) + v)
  }
  const accounts = new Set([...paid.keys(), ...recv.keys()])
  let max = 0n
  let biz = false
  for (const a of accounts) {
    const own = (paid.get(a) ?? 0n) > (recv.get(a) ?? 0n) ? paid.get(a)! : (recv.get(a) ?? 0n)
    if (own > max) max = own
    if (businesses.has(a)) biz = true
  }
  return { value: fromMicros(total), n: accounts.size, max: fromMicros(max), biz }
}

