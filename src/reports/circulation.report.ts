import type pg from 'pg'
import { isoDate, isoTime, periodDays, tile, type Day, type Period } from '../domain/periods.js'
import { accountFigures, periodSums, readAccounts, type AccountInfo } from './account-cache.js'
import { graphFiguresOf, localToday, periodGraph, periodPieces, type SeenVersions, type TailReads } from './graph-cache.js'
import { holdingFigures, type HoldingFigures } from './holding.js'
import type { Solve } from './kept-circulation.js'
import { AGGREGATE_LOCK } from './lock.js'
import { checkZone, ledgerPosition, type LedgerPosition } from './provenance.js'
import type { Stat } from './stat.js'
import { readDrains, type DrainsSeen } from './tail-rows.js'

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
  /** local multiplier: members' spending at local businesses (R1); r2, r3: re-spent locally, and again */
  lmR1: Stat
  lmR2: string
  lmR3: string
  /** payments on links inside strongly connected parts of the period's payment graph */
  cycle: Stat
  /** the largest circulation those links contain (max-circulation.ts) */
  circulating: Stat
  /** issued and redeemed since the currency's start, to the end of the period */
  issuedToDate: Stat
  redeemedToDate: Stat
  /** M at the end of the period: participants' and paper balances */
  supply: Stat
  /** time integral of M over the period in currency x seconds; divide by the period's seconds for avg M */
  supplyIntegral: Stat
  /** the same over members' accounts, and over businesses' (the paper account, in M, is neither) */
  integralMember: Stat
  integralBusiness: Stat
  /** accounts that made an economic payment; open: participant accounts open in the period */
  active: number
  open: number
  /** concentration of participants' balances at the end: value is their total */
  holders: Stat
  gini: string | null
  top10: string | null
  /** holding time, dormancy and flows across the local boundary: from the trace's days (holding.ts), never cached here */
  holding: HoldingFigures
}

/** What the queries need: a pool or one client inside a transaction. */
export type Db = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>

/** What a report's snapshot reads once for all its periods: the currency's accounts, its local day at `now`
 *  (graph-cache.ts, localToday: what is settled and what is still under way), the tails' rows and the buckets'
 *  versions; and what it has seen of the drains, if the caller has read it in this same snapshot (tail-rows.ts,
 *  readDrains: the buckets still under way are then brought forward from what the last report kept rather than
 *  read whole; one read in another snapshot would hand this one rows it must not see). */
export interface Snapshot {
  accounts?: Promise<AccountInfo[]>, now?: number, today?: Promise<Day>, tails?: TailReads, versions?: SeenVersions, drains?: DrainsSeen
  /** where the largest circulation is computed (kept-circulation.ts); by default in the process */
  solve?: Solve
}

type Figures = Omit<PeriodFigures, 'open' | 'holding'>

/**
 * Every figure of one period except `open` (which depends on accounts' present status), from its buckets: one
 * row per account (settled pieces from memory, the tail from the database: account-cache.ts) and the period's
 * payment graph (graph-cache.ts), both as of the caller's snapshot.
 */
export async function periodFigures (db: Db, currencyId: string, p: Period, snapshot: Snapshot = {}): Promise<Figures> {
  return await (await periodReads(db, currencyId, p, snapshot)).figures
}

/**
 * periodFigures() in two steps: done when the period's rows are read (db is free for the next period's reads),
 * with the figures to come (the largest circulation may still be computing on a report worker, snapshot.solve).
 */
export async function periodReads (db: Db, currencyId: string, p: Period, snapshot: Snapshot = {}): Promise<{ figures: Promise<Figures> }> {
  snapshot.accounts ??= readAccounts(db, currencyId)
  snapshot.today ??= localToday(db, currencyId, snapshot.now)
  snapshot.tails ??= new Map()
  snapshot.versions ??= new Map()
  const today = await snapshot.today
  const pieces = await periodPieces(db, currencyId, p.buckets, today, snapshot.versions)
  const sums = await periodSums(db, currencyId, p, pieces, today, snapshot.tails, snapshot.versions, snapshot.drains)
  const { graph: graphAccounts, ...f } = accountFigures(await snapshot.accounts, sums, p)
  const graph = graphFiguresOf(await periodGraph(db, currencyId, p.buckets, undefined, pieces, snapshot.tails, snapshot.drains), graphAccounts,
    `${currencyId}|${periodKey(p)}`, snapshot.solve)
  const figures = Promise.resolve(graph).then(g => ({ start: p.start, end: p.end, ...f, ...g }))
  // the caller awaits it later, perhaps after a read of its own has failed: never an unhandled rejection meanwhile
  figures.catch(() => {})
  return { figures }
}

// Participant accounts open in each period: created before its end and not closed, plus those closed since that
// were created before its end and active in it (a posting backdated before its account's creation must not make
// an account open in a period it did not yet exist in). Closed accounts are few, so only their rows are looked up. The open ones are counted in one
// pass over the accounts, by how many of the periods' (sorted) ends each was created at or after (width_bucket),
// and summed up to each end here, rather than joining every account to every period end (a scan per end).
const OPEN_SQL = `
SELECT width_bucket(a.created_at, $2::timestamptz[]) AS b, count(*) AS n
  FROM account a
 WHERE a.currency_id = $1 AND a.participant_id IS NOT NULL AND a.status <> 'closed'
 GROUP BY 1`
const CLOSED_ACTIVE_SQL = `
SELECT x.k, count(DISTINCT r.account_id) AS n
  FROM unnest($2::int[], $3::text[], $4::date[], $5::timestamptz[]) AS x (k, grain, start, period_end)
  JOIN circ_account_bucket r ON r.currency_id = $1 AND r.grain = x.grain AND r.start = x.start
   AND r.account_id = ANY ($6::uuid[]) AND r.n_paid > 0
  JOIN account a ON a.id = r.account_id AND a.created_at < x.period_end
 GROUP BY x.k`

async function openAccounts (db: Db, currencyId: string, all: Period[]): Promise<Map<number, number>> {
  const ends = [...new Set(all.map(p => p.end))].sort((a, b) => a - b)
  // created[b]: accounts created at or after b of the ends and before the next (b = 0: before the first)
  const created = new Array<number>(ends.length + 1).fill(0)
  for (const r of (await db.query<{ b: number, n: string }>(OPEN_SQL, [currencyId, ends.map(e => new Date(e).toISOString())])).rows) created[r.b] = Number(r.n)
  // open before ends[j]: those of buckets 0..j
  const before = new Map<number, number>()
  let sum = 0
  for (const [j, e] of ends.entries()) { sum += created[j]; before.set(e, sum) }
  const open = new Map(all.map((p, k) => [k, before.get(p.end)!]))
  const closed = (await db.query<{ id: string }>(
    `SELECT id FROM account WHERE currency_id = $1 AND participant_id IS NOT NULL AND status = 'closed'`, [currencyId])).rows.map(r => r.id)
  if (closed.length > 0) {
    const withKeys = all.flatMap((p, k) => p.buckets.map(b => ({ k, b })))
    const active = await db.query<{ k: number, n: string }>(CLOSED_ACTIVE_SQL, [currencyId,
      withKeys.map(x => x.k), withKeys.map(x => x.b.grain), withKeys.map(x => isoDate(x.b.start)),
      withKeys.map(x => new Date(all[x.k].end).toISOString()), closed])
    for (const r of active.rows) open.set(r.k, (open.get(r.k) ?? 0) + Number(r.n))
  }
  return open
}

type Stored = Omit<PeriodFigures, 'open' | 'start' | 'end' | 'holding'>

/**
 * Composites kept per currency, the most recently asked for. Every distinct range a caller asks for keeps one or
 * more, and each is a row every drain of the currency may mark stale, so without a bound a researcher walking
 * through ranges grew the table by the thousands and slowed the drains (which hold the one aggregates lock every
 * currency shares). A scheme's dashboards and regular reports ask for a few dozen ranges; a range pushed out is
 * computed again when next asked for.
 */
export const COMPOSITES_KEPT = 500
/** Kept figures of an older version (before *_holding_by_kind, whose migration marks them all for recomputation,
 *  but an instance of the older version may still write some) lack the kinds' integrals: computed again. */
const current = (f: Stored | undefined): Stored | undefined => f?.integralMember == null ? undefined : f
const periodKey = (p: Period) => `${isoTime(p.start)}/${isoTime(p.end)}`

/**
 * Every figure of the whole range (index 0) and of every period (1..n), in one consistent snapshot of `pool` (the
 * primary's read pool or a replica that has replayed past the catch-up; writer: the primary). Call
 * catchUp() first. A period that is one bucket reads that bucket's summary; any other period reads its cached
 * composite, or is computed and cached for the next report. `read.position` is set to the last transfer the
 * snapshot includes. `now`: the present, whose local day in the currency's zone is still under way (tests inject it).
 * `zone`: the time zone the periods were cut in; when given, a snapshot that finds the currency in another zone
 * (changed since the caller read it, and its first transfers already cut in the new one) keeps nothing and throws
 * ZoneChanged, so figures of periods cut in a zone the buckets are not are never answered nor kept. `solve`: where
 * the largest circulations are computed (kept-circulation.ts, solveOn: the report workers); by default here.
 */
export async function circulationFigures (pool: pg.Pool, currencyId: string, periods: Period[], writer: pg.Pool = pool,
  read: { position?: LedgerPosition | null } = {}, now = Date.now(), zone?: string, solve?: Solve): Promise<PeriodFigures[]> {
  const from = periods[0].start
  const to = periods[periods.length - 1].end
  // the whole range tiled on its own (months where they fit), not as the union of, say, 365 day buckets
  const whole: Period = { start: from, end: to, buckets: tile(periodDays(periods[0]).start, periodDays(periods[periods.length - 1]).end) }
  const all = periods.length === 1 ? [periods[0], periods[0]] : [whole, ...periods]
  const computed: Array<{ p: Period, figures: Stored }> = []
  // single buckets the snapshot finds dirty (a drain since their summary): computed here, kept as their summary
  const summarised: Array<{ p: Period, figures: Stored }> = []
  const hits: string[] = []
  let version = '0'
  const out: PeriodFigures[] = []
  // periods computed here, by key (a period asked for twice is computed once); their figures may still be on their
  // way from a report worker while the next period's rows are read
  const fresh = new Map<string, { p: Period, figures: Promise<Stored> }>()
  const figures: Array<Stored | Promise<Stored>> = []
  let open = new Map<number, number>()
  let holding: HoldingFigures[] = []
  const client = await pool.connect()
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    await checkZone(client, currencyId, zone)
    const drains = await readDrains(client, currencyId)
    version = drains.text
    const single = all.map((p, k) => ({ p, k })).filter(x => x.p.buckets.length === 1)
    const summaries = new Map((await client.query<{ k: number, figures: Stored }>(`
      SELECT x.k, s.figures
        FROM unnest($2::int[], $3::text[], $4::date[]) AS x (k, grain, start)
        JOIN circ_bucket_summary s ON s.currency_id = $1 AND s.grain = x.grain AND s.start = x.start
       WHERE NOT EXISTS (SELECT 1 FROM circ_dirty d WHERE d.currency_id = $1 AND d.grain = x.grain AND d.start = x.start)`,
    [currencyId, single.map(x => x.k), single.map(x => x.p.buckets[0].grain), single.map(x => isoDate(x.p.buckets[0].start))]))
      .rows.map(r => [r.k, r.figures]))
    const cached = new Map((await client.query<{ key: string, figures: Stored }>(
      'SELECT key, figures FROM circ_composite WHERE currency_id = $1 AND key = ANY ($2) AND figures IS NOT NULL',
      [currencyId, all.filter(p => p.buckets.length > 1).map(periodKey)])).rows.map(r => [r.key, r.figures]))
    open = await openAccounts(client, currencyId, all)
    read.position = await ledgerPosition(client, currencyId)
    const snapshot: Snapshot = { now, drains, solve }
    for (const [k, p] of all.entries()) {
      const key = periodKey(p)
      let f: Stored | Promise<Stored> | undefined = current(summaries.get(k)) ?? current(cached.get(key)) ?? fresh.get(key)?.figures
      if (f != null && p.buckets.length > 1) hits.push(key)
      if (f == null) {
        // a composite not cached yet (or made stale by a drain), a dirty bucket, or a bucket with no movement at all
        const ready = (await periodReads(client, currencyId, p, snapshot)).figures.then(({ start: _s, end: _e, ...rest }) => rest)
        ready.catch(() => {})
        fresh.set(key, { p, figures: ready })
        f = ready
      }
      figures.push(f)
    }
    // read while the last periods' circulations are computed
    holding = await holdingFigures(client, currencyId, all)
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
  // the read connection is given back first: a circulation may wait its turn behind another report on its worker
  for (const [k, f] of (await Promise.all(figures)).entries()) {
    out.push({ ...f, start: all[k].start, end: all[k].end, open: open.get(k) ?? 0, holding: holding[k] })
  }
  for (const { p, figures } of fresh.values()) (p.buckets.length > 1 ? computed : summarised).push({ p, figures: await figures })
  // the cache is written on the primary (writer) when the figures were read on a replica: figures are kept only if
  // the primary's aggregates are still at the version the snapshot read
  if (computed.length > 0 || summarised.length > 0) await keepFigures(writer, currencyId, computed, summarised, version)
  if (hits.length > 0) {
    await writer.query(`UPDATE circ_composite SET used_at = now()
      WHERE currency_id = $1 AND key = ANY ($2) AND used_at < now() - interval '1 minute'`, [currencyId, hits])
  }
  return periods.length === 1 ? [out[0], out[1]] : out
}

/**
 * Keeps computed composites, and the summaries of dirty buckets a report computed in its snapshot, unless a
 * drain has changed the currency's aggregates since that snapshot. The shared advisory lock orders this against
 * drains (they take it exclusively): a drain that starts later waits, then marks what it touches stale or dirty
 * again. A summary is written only while its bucket is still dirty (the aggregator may have written it since).
 */
async function keepFigures (pool: pg.Pool, currencyId: string, composites: Array<{ p: Period, figures: Stored }>,
  summaries: Array<{ p: Period, figures: Stored }>, version: string): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock_shared($1)', [AGGREGATE_LOCK])
    const current = (await client.query<{ version: string }>('SELECT version FROM circ_version WHERE currency_id = $1', [currencyId])).rows[0]?.version ?? '0'
    if (current === version) {
      for (const c of composites) {
        await client.query(`
          INSERT INTO circ_composite (currency_id, key, period, end_at, figures, version, used_at, computed_at)
          VALUES ($1, $2, $3, $4, $5, $6, now(), now())
          ON CONFLICT (currency_id, key) DO UPDATE SET
            figures = excluded.figures, version = excluded.version, used_at = now(), computed_at = now()`,
        [currencyId, periodKey(c.p), JSON.stringify(c.p), new Date(c.p.end).toISOString(), JSON.stringify(c.figures), version])
      }
      if (composites.length > 0) {
        // the least recently used beyond the bound go (through circ_composite_recent: the bound's rows, not the table's)
        await client.query(`
          DELETE FROM circ_composite c USING (
            SELECT key FROM circ_composite WHERE currency_id = $1 ORDER BY used_at DESC, key OFFSET $2
          ) old
           WHERE c.currency_id = $1 AND c.key = old.key`, [currencyId, COMPOSITES_KEPT])
      }
      const dirty = summaries.filter(x => x.p.buckets.length === 1)
      if (dirty.length > 0) {
        await client.query(`
          WITH x AS (
            DELETE FROM circ_dirty d USING unnest($2::text[], $3::date[]) AS x (grain, start)
             WHERE d.currency_id = $1 AND d.grain = x.grain AND d.start = x.start
            RETURNING d.grain, d.start
          )
          INSERT INTO circ_bucket_summary (currency_id, grain, start, figures, computed_at)
          SELECT $1, x.grain, x.start, f.figures, now()
            FROM x JOIN unnest($2::text[], $3::date[], $4::jsonb[]) AS f (grain, start, figures) ON f.grain = x.grain AND f.start = x.start
          ON CONFLICT (currency_id, grain, start) DO UPDATE SET figures = excluded.figures, computed_at = excluded.computed_at`,
        [currencyId, dirty.map(x => x.p.buckets[0].grain), dirty.map(x => isoDate(x.p.buckets[0].start)), dirty.map(x => JSON.stringify(x.figures))])
      }
    }
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
 * ready; forgets those nobody asked for in a day. For the background aggregator. Each run takes the currencies in
 * turn (every currency's most recent first, then every currency's second, ...), so one currency's many recent
 * ranges never keep another's from being warmed.
 */
export async function warmComposites (pool: pg.Pool, limit = 20): Promise<number> {
  await pool.query(`DELETE FROM circ_composite WHERE used_at < now() - interval '1 day'`)
  const stale = await pool.query<{ currency_id: string, period: Period }>(`
    SELECT currency_id, period FROM (
      SELECT currency_id, period, used_at, row_number() OVER (PARTITION BY currency_id ORDER BY used_at DESC) AS turn
        FROM circ_composite
       WHERE figures IS NULL AND used_at > now() - interval '15 minutes'
    ) s
     ORDER BY turn, used_at DESC LIMIT $1`, [limit])
  for (const s of stale.rows) {
    const client = await pool.connect()
    let version: string
    let figures: Stored
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      const drains = await readDrains(client, s.currency_id)
      version = drains.text
      const { start: _s, end: _e, ...f } = await periodFigures(client, s.currency_id, s.period, { drains })
      figures = f
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release()
    }
    await keepFigures(pool, s.currency_id, [{ p: s.period, figures }], [], version)
  }
  return stale.rows.length
}
