import type pg from 'pg'
import { isoDate, isoTime, tile, type Bucket, type Day, type Period } from '../domain/periods.js'
import { graphFigures, periodGraph } from './graph-cache.js'
import { AGGREGATE_LOCK } from './lock.js'
import { readStat, statSql, type Stat } from './stat.js'

// The circulation report's figures, read from the aggregates only (see the *_circulation_aggregates migration),
// never from the transfer table.
//   A period that is one stored bucket (a whole day, ISO week or month) reads that bucket's summary: one row,
//   written by the aggregator (src/reports/aggregate.ts) with periodFigures() below.
//   Any other period (the whole range of a multi-period report, a period clipped by from/to) is computed here:
//   one row per account over the buckets that tile it, the balances before it, and its payment pairs.

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

/** What the queries need: a pool or one client inside a transaction. */
export type Db = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>

interface BucketArrays { m: string[], w: string[], d: string[] }
const byGrain = (buckets: Bucket[]): BucketArrays => ({
  m: buckets.filter(b => b.grain === 'm').map(b => isoDate(b.start)),
  w: buckets.filter(b => b.grain === 'w').map(b => isoDate(b.start)),
  d: buckets.filter(b => b.grain === 'd').map(b => isoDate(b.start)),
})
/** rows of alias r in the buckets given as three arrays of starts from parameter $i on */
const inBuckets = (r: string, i: number) =>
  `${r}.currency_id = $1 AND ((${r}.grain = 'm' AND ${r}.start = ANY ($${i}::date[])) OR ` +
  `(${r}.grain = 'w' AND ${r}.start = ANY ($${i + 1}::date[])) OR (${r}.grain = 'd' AND ${r}.start = ANY ($${i + 2}::date[])))`

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
  statSql('supply', 'CASE WHEN m THEN bal_e ELSE 0 END', 'bal_e <> 0', 'abs(bal_e)'),
  statSql('integral', 'CASE WHEN m THEN integral ELSE 0 END', 'integral <> 0', 'abs(integral)'),
].join(',\n    ')

// $1 currency; $2..$4 the period's buckets (months, weeks, days); $5 the first day of the period's month and
// $6..$8 the buckets that tile [that day, period start): with all months before $5 they give opening balances;
// $9 the period's end; $10 its length in seconds.
// One row per account (a few thousand), however many buckets: the period's flows, its opening and closing
// balance, and the time integral of its balance (opening x length + each change x time left), and what the
// period's payment graph figures need of each account. The graph itself (cycles, R3 of the local multiplier) is
// src/reports/graph-cache.ts: links of settled buckets are kept in memory, so it never re-reads a whole period.
export const PERIOD_SQL = `
WITH acc AS (
  SELECT a.id AS account_id, a.participant_id, a.participant_id IS NOT NULL AS part,
         a.participant_id IS NOT NULL OR a.system_kind = 'paper' AS m,
         COALESCE(p.kind = 'business', false) AS biz, COALESCE(p.kind = 'member', false) AS mem, p.created_at AS p_created,
         COALESCE(p.district = ANY (c.local_areas) OR regexp_replace(p.district, '[0-9].*$', '') = ANY (c.local_areas), false) AS local
    FROM account a JOIN currency c ON c.id = a.currency_id LEFT JOIN participant p ON p.id = a.participant_id
   WHERE a.currency_id = $1
),
fl AS (
  SELECT r.account_id,
         sum(r.issued) AS issued, sum(r.redeemed) AS redeemed, sum(r.paid_m) AS paid_m, sum(r.paid_b) AS paid_b,
         sum(r.n_paid) AS n_paid, sum(r.recv_m) AS recv_m, sum(r.recv_b) AS recv_b, sum(r.paid_ll) AS paid_ll,
         sum(r.recv_ll) AS recv_ll, sum(r.paid_lp) AS paid_lp, sum(r.d_bal) AS d,
         sum(r.w_bal + r.d_bal * extract(epoch FROM $9::timestamptz - circ_bucket_end(r.start, r.grain))) AS x
    FROM circ_account_bucket r
   WHERE ${inBuckets('r', 2)}
   GROUP BY 1
),
h AS (
  SELECT account_id, sum(d_bal) AS bal
    FROM circ_account_bucket r
   WHERE (r.currency_id = $1 AND r.grain = 'm' AND r.start < $5::date) OR (${inBuckets('r', 6)})
   GROUP BY 1
),
x AS (
  SELECT acc.*,
         COALESCE(fl.issued, 0) AS issued, COALESCE(fl.redeemed, 0) AS redeemed, COALESCE(fl.paid_m, 0) AS paid_m,
         COALESCE(fl.paid_b, 0) AS paid_b, COALESCE(fl.n_paid, 0) AS n_paid, COALESCE(fl.recv_m, 0) AS recv_m,
         COALESCE(fl.recv_b, 0) AS recv_b, COALESCE(fl.paid_ll, 0) AS paid_ll, COALESCE(fl.recv_ll, 0) AS recv_ll,
         COALESCE(fl.paid_lp, 0) AS paid_lp,
         COALESCE(h.bal, 0) + COALESCE(fl.d, 0) AS bal_e,
         COALESCE(h.bal, 0) * $10::numeric + COALESCE(fl.x, 0) AS integral
    FROM acc LEFT JOIN fl ON fl.account_id = acc.account_id LEFT JOIN h ON h.account_id = acc.account_id
),
pb AS (
  SELECT participant_id, bool_or(biz) AS biz, sum(bal_e) AS bal
    FROM x WHERE part AND p_created < $9::timestamptz GROUP BY 1
),
ranked AS (
  SELECT bal, biz, true AS part, row_number() OVER (ORDER BY bal) AS r, count(*) OVER () AS cnt FROM pb
),
conc AS (
  SELECT ${statSql('holders', 'bal', 'bal <> 0', 'abs(bal)')},
         CASE WHEN sum(bal) <> 0 THEN (2 * sum(r * bal) / (count(*) * sum(bal)) - (count(*) + 1)::numeric / count(*))::text END AS gini,
         CASE WHEN sum(bal) <> 0 THEN (COALESCE(sum(bal) FILTER (WHERE r > cnt - ceil(cnt / 10.0)), 0) / sum(bal))::text END AS top10
    FROM ranked
),
main AS (
  SELECT ${FLOW_CELLS},
    sum(n_paid)::text AS count,
    sum(CASE WHEN biz THEN paid_m + paid_b ELSE 0 END)::text AS spend,
    sum(CASE WHEN biz AND recv_m + recv_b > 0 THEN LEAST(recv_m + recv_b, paid_lp) ELSE 0 END)::text AS lm_r2,
    count(*) FILTER (WHERE part AND n_paid > 0) AS active
  FROM x
),
-- what the payment graph's figures (src/reports/graph-cache.ts) need of the accounts that paid or received
g AS (
  SELECT array_agg(account_id::text) AS g_ids, array_agg(biz) AS g_biz, array_agg(local) AS g_local,
         array_agg((recv_m + recv_b)::text) AS g_recv, array_agg((paid_m + paid_b)::text) AS g_paid,
         array_agg(paid_lp::text) AS g_lp
    FROM x WHERE recv_m + recv_b <> 0 OR paid_m + paid_b <> 0
)
SELECT * FROM main, conc, g`

const monthStart = (d: Day): Day => { const x = new Date(d); return Date.UTC(x.getUTCFullYear(), x.getUTCMonth(), 1) }

/** Every figure of one period except `open` (which depends on accounts' present status), from its buckets. */
export async function periodFigures (db: Db, currencyId: string, p: Period): Promise<Omit<PeriodFigures, 'open'>> {
  const b = byGrain(p.buckets)
  const ms = monthStart(p.start)
  const h = byGrain(ms < p.start ? tile(ms, p.start) : [])
  const main = (await db.query(PERIOD_SQL, [
    currencyId, b.m, b.w, b.d, isoDate(ms), h.m, h.w, h.d, new Date(p.end).toISOString(), String((p.end - p.start) / 1000),
  ])).rows[0] as Record<string, unknown>
  const g = main as {
    g_ids: string[] | null, g_biz: boolean[] | null, g_local: boolean[] | null, g_recv: string[] | null, g_paid: string[] | null, g_lp: string[] | null
  }
  const graph = graphFigures(await periodGraph(db, currencyId, p.buckets), (g.g_ids ?? []).map((id, i) => ({
    id, biz: g.g_biz![i], local: g.g_local![i], recv: g.g_recv![i], paid: g.g_paid![i], paidLocal: g.g_lp![i],
  })))
  return {
    start: p.start,
    end: p.end,
    issued: readStat(main, 'issued'),
    redeemed: readStat(main, 'redeemed'),
    volume: readStat(main, 'volume'),
    count: String(main.count ?? '0'),
    mm: readStat(main, 'mm'),
    mb: readStat(main, 'mb'),
    bm: readStat(main, 'bm'),
    bb: readStat(main, 'bb'),
    respend: readStat(main, 'respend'),
    spend: String(main.spend ?? '0'),
    local: readStat(main, 'local'),
    lmR1: readStat(main, 'lm'),
    lmR2: String(main.lm_r2 ?? '0'),
    lmR3: graph.lmR3,
    cycle: graph.cycle,
    supply: readStat(main, 'supply'),
    supplyIntegral: readStat(main, 'integral'),
    active: Number(main.active ?? 0),
    holders: readStat(main, 'holders'),
    gini: (main.gini as string | null) ?? null,
    top10: (main.top10 as string | null) ?? null,
  }
}

// Participant accounts open in each period: created before its end and not closed, plus those closed since that
// were active in it. Closed accounts are few, so only their rows are looked up.
const OPEN_SQL = `
SELECT pe.k, count(a.id) AS open
  FROM unnest($2::int[], $3::timestamptz[]) AS pe (k, e)
  LEFT JOIN account a ON a.currency_id = $1 AND a.participant_id IS NOT NULL AND a.status <> 'closed' AND a.created_at < pe.e
 GROUP BY pe.k`
const CLOSED_ACTIVE_SQL = `
SELECT x.k, count(DISTINCT r.account_id) AS n
  FROM unnest($2::int[], $3::text[], $4::date[]) AS x (k, grain, start)
  JOIN circ_account_bucket r ON r.currency_id = $1 AND r.grain = x.grain AND r.start = x.start
   AND r.account_id = ANY ($5::uuid[]) AND r.n_paid > 0
 GROUP BY x.k`

async function openAccounts (db: Db, currencyId: string, all: Period[]): Promise<Map<number, number>> {
  const open = new Map((await db.query<{ k: number, open: string }>(OPEN_SQL,
    [currencyId, all.map((_, k) => k), all.map(p => new Date(p.end).toISOString())])).rows.map(r => [r.k, Number(r.open)]))
  const closed = (await db.query<{ id: string }>(
    `SELECT id FROM account WHERE currency_id = $1 AND participant_id IS NOT NULL AND status = 'closed'`, [currencyId])).rows.map(r => r.id)
  if (closed.length > 0) {
    const withKeys = all.flatMap((p, k) => p.buckets.map(b => ({ k, b })))
    const active = await db.query<{ k: number, n: string }>(CLOSED_ACTIVE_SQL, [currencyId,
      withKeys.map(x => x.k), withKeys.map(x => x.b.grain), withKeys.map(x => isoDate(x.b.start)), closed])
    for (const r of active.rows) open.set(r.k, (open.get(r.k) ?? 0) + Number(r.n))
  }
  return open
}

type Stored = Omit<PeriodFigures, 'open' | 'start' | 'end'>
const periodKey = (p: Period) => `${isoTime(p.start)}/${isoTime(p.end)}`

/**
 * Every figure of the whole range (index 0) and of every period (1..n), in one consistent snapshot of `pool` (the
 * primary's read pool or a replica that has replayed past the catch-up; writer: the primary). Call
 * catchUp() first. A period that is one bucket reads that bucket's summary; any other period reads its cached
 * composite, or is computed and cached for the next report.
 */
export async function circulationFigures (pool: pg.Pool, currencyId: string, periods: Period[], writer: pg.Pool = pool): Promise<PeriodFigures[]> {
  const from = periods[0].start
  const to = periods[periods.length - 1].end
  // the whole range tiled on its own (months where they fit), not as the union of, say, 365 day buckets
  const whole: Period = { start: from, end: to, buckets: tile(from, to) }
  const all = periods.length === 1 ? [periods[0], periods[0]] : [whole, ...periods]
  const computed: Array<{ p: Period, figures: Stored }> = []
  const hits: string[] = []
  let version = '0'
  const out: PeriodFigures[] = []
  const client = await pool.connect()
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    version = (await client.query<{ version: string }>('SELECT version FROM circ_version WHERE currency_id = $1', [currencyId])).rows[0]?.version ?? '0'
    const single = all.map((p, k) => ({ p, k })).filter(x => x.p.buckets.length === 1)
    const summaries = new Map((await client.query<{ k: number, figures: Stored }>(`
      SELECT x.k, s.figures
        FROM unnest($2::int[], $3::text[], $4::date[]) AS x (k, grain, start)
        JOIN circ_bucket_summary s ON s.currency_id = $1 AND s.grain = x.grain AND s.start = x.start`,
    [currencyId, single.map(x => x.k), single.map(x => x.p.buckets[0].grain), single.map(x => isoDate(x.p.buckets[0].start))]))
      .rows.map(r => [r.k, r.figures]))
    const cached = new Map((await client.query<{ key: string, figures: Stored }>(
      'SELECT key, figures FROM circ_composite WHERE currency_id = $1 AND key = ANY ($2) AND figures IS NOT NULL',
      [currencyId, all.filter(p => p.buckets.length > 1).map(periodKey)])).rows.map(r => [r.key, r.figures]))
    const open = await openAccounts(client, currencyId, all)
    for (const [k, p] of all.entries()) {
      let f = summaries.get(k) ?? cached.get(periodKey(p)) ?? computed.find(c => periodKey(c.p) === periodKey(p))?.figures
      if (f != null && p.buckets.length > 1) hits.push(periodKey(p))
      if (f == null) {
        // a composite not cached yet (or made stale by a drain), or a single bucket with no movement at all
        const { start: _s, end: _e, ...figures } = await periodFigures(client, currencyId, p)
        f = figures
        if (p.buckets.length > 1) computed.push({ p, figures })
      }
      out.push({ ...f, start: p.start, end: p.end, open: open.get(k) ?? 0 })
    }
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
  // the cache is written on the primary (writer) when the figures were read on a replica: storeComposite keeps a
  // composite only if the primary's aggregates are still at the version the snapshot read
  for (const c of computed) await storeComposite(writer, currencyId, c.p, c.figures, version)
  if (hits.length > 0) {
    await writer.query(`UPDATE circ_composite SET used_at = now()
      WHERE currency_id = $1 AND key = ANY ($2) AND used_at < now() - interval '1 minute'`, [currencyId, hits])
  }
  return periods.length === 1 ? [out[0], out[1]] : out
}

/**
 * Keeps a computed composite, unless a drain has changed the currency's aggregates since the snapshot it was
 * computed in. The shared advisory lock orders this against drains: a drain that starts later waits, then marks
 * the row stale if it touches the period.
 */
async function storeComposite (pool: pg.Pool, currencyId: string, p: Period, figures: Stored, version: string): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock_shared($1)', [AGGREGATE_LOCK])
    await client.query(`
      INSERT INTO circ_composite (currency_id, key, period, end_at, figures, version, used_at, computed_at)
      SELECT $1, $2, $3, $4, $5, $6, now(), now()
       WHERE COALESCE((SELECT version FROM circ_version WHERE currency_id = $1), 0) = $6
      ON CONFLICT (currency_id, key) DO UPDATE SET
        figures = excluded.figures, version = excluded.version, used_at = now(), computed_at = now()`,
    [currencyId, periodKey(p), JSON.stringify(p), new Date(p.end).toISOString(), JSON.stringify(figures), version])
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

/**
 * Recomputes stale composites that reports asked for in the last 15 minutes, so the next report finds them
 * ready; forgets those nobody asked for in a day. For the background aggregator.
 */
export async function warmComposites (pool: pg.Pool, limit = 20): Promise<number> {
  await pool.query(`DELETE FROM circ_composite WHERE used_at < now() - interval '1 day'`)
  const stale = await pool.query<{ currency_id: string, period: Period }>(`
    SELECT currency_id, period FROM circ_composite
     WHERE figures IS NULL AND used_at > now() - interval '15 minutes' ORDER BY used_at DESC LIMIT $1`, [limit])
  for (const s of stale.rows) {
    const client = await pool.connect()
    let version: string
    let figures: Stored
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      version = (await client.query<{ version: string }>('SELECT version FROM circ_version WHERE currency_id = $1', [s.currency_id])).rows[0]?.version ?? '0'
      const { start: _s, end: _e, ...f } = await periodFigures(client, s.currency_id, s.period)
      figures = f
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release()
    }
    await storeComposite(pool, s.currency_id, s.period, figures, version)
  }
  return stale.rows.length
}
