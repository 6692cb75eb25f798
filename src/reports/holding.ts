import { createHash } from 'node:crypto'
import type pg from 'pg'
import { DAY_MS, isoDate, periodDays, type Period } from '../domain/periods.js'
import { calendarOf, type Calendar } from '../domain/zone.js'
import { ACCOUNTS_SQL } from './account-cache.js'
import { BIGINT_BYTES, cached, forget, keep, MAP_ENTRY_BYTES, OBJECT_BYTES, bigintsBytes, packBigints } from './report-cache.js'
import {
  dayJson, dayOf, dormancyJson, dormancyOf, emptyKind, stateJson, stateOf, Trace,
  type DayJson, type DayPartial, type DormancyBin, type DormancyJson, type Holding, type KindDay, type StateJson, type TraceAccount,
} from './holding-trace.js'
import { fromMicros, toMicros, type Stat } from './stat.js'

// Holding periods, dormancy and flows across the local boundary (docs/metrics.md), kept like the other
// aggregates: the trace (holding-trace.ts) needs every transfer in time order from the start of history, so the
// aggregator replays it once and keeps per-day partial results (circ_holding_day); a report only sums the days of
// its periods. The drain (circ_drain(), migration *_one_report_queue) keeps, per currency, the earliest instant
// the transfers it folds in change (circ_holding_mark). When that instant falls after the end of what this process
// last traced, and nothing has been traced since by anyone (see TraceEnd), the trace continues from its state at
// that end, kept in memory, and reads only the new transfers. Otherwise the replay restarts from the last
// checkpoint of the trace's state at or before the mark's day (one at each month's first day and one at the start
// of the last traced day), so a payment made today replays today only, and a backdated one replays from its month on.
//
// Costs: a continuation reads the transfers after the traced end and rewrites the last day's row (and walks every
// account once for its dormancy profile); a replay from a checkpoint reads the transfers from the checkpoint on
// (an index range scan on (currency_id, created_at, id)), and at each traced day's end walks every account once; a
// checkpoint is one row per account in jsonb. The state kept in memory is one entry per account that has moved,
// counted in the report caches' budget. A report reads one row per traced day of its range (parsed rows are kept
// in the report caches' budget by version) and one dormancy profile per period end.

/** Its own advisory lock, so that a long replay never holds up drains or the reports' caches. */
const HOLDING_LOCK = 7_211_903
const BATCH = 20_000
const DAYS_PER_WRITE = 100
const DAY_NO = (iso: string) => Math.round(Date.parse(`${iso}T00:00:00Z`) / DAY_MS)
const dayIso = (no: number) => isoDate(no * DAY_MS)

interface Query { query: (text: string, values?: unknown[]) => Promise<{ rows: any[] }> }

/**
 * Replays the trace for every currency the drains have marked; returns how many currencies. batch: transfers read
 * per query (tests make it small, so that batches end inside an instant).
 *
 * Why a transfer committed while drains and traces run is traced (perhaps twice) and never missed:
 * - A drain folds transfers in and moves its currency's mark (the earliest instant they change; `version` + 1) in
 *   one transaction, and it can only fold in a transfer that has committed. So once a drain's mark is visible to a
 *   snapshot, so is every transfer that drain folded in, and the mark is at or before each of their instants.
 * - The replay reads the marks, the accounts and the transfers in one snapshot (REPEATABLE READ; its first query
 *   reads the marks). A replay from a checkpoint replays each marked currency from its mark's day over every
 *   transfer the snapshot holds, so every transfer behind a mark it read is traced. A transfer the snapshot holds
 *   that no drain has folded in yet is traced too when it falls after the mark, and again when its drain marks it
 *   later (twice: a replay rewrites the days from its checkpoint, so this only costs time).
 * - A continuation (TraceEnd) holds the trace over some set of transfers, every one at or before its end instant,
 *   with that instant applied whole. It is taken only when the mark is strictly after the end, and then reads the
 *   transfers strictly after the end instant: so every transfer behind the mark is read. A transfer it leaves out
 *   (committed out of order: at or before the end, yet not in the set) has not been folded in by any drain this
 *   snapshot sees, or the mark would be at or before it; its drain's mark will be, so the trace that takes that
 *   mark replays from a checkpoint and counts it. A state is used only by the next replay after the one that kept
 *   it (TraceEnd says how that is proved), so no other replay, in another instance, can have taken such a mark in
 *   between.
 * - The marks are removed after the replay has committed, each only if its `version` is still the one the snapshot
 *   read (READ COMMITTED: a drain holding the row is waited for, then its new version compared). A drain that
 *   committed after the snapshot moved the version, so its mark (the least of the old instant and its own) stays
 *   for the next replay, which sees its transfers (from a checkpoint: the old instant is at or before the end
 *   traced now). A crash between the commit and the removal leaves the marks: a second replay, nothing missed.
 * - Only the replay removes marks, under its lock, so a version cannot go back to a value read earlier.
 * The removal is not done inside the snapshot: under REPEATABLE READ, removing a row a later drain has updated
 * fails with a serialization error instead of leaving it.
 */
export async function traceHolding (pool: pg.Pool, batch = BATCH): Promise<number> {
  if ((await pool.query('SELECT 1 FROM circ_holding_mark LIMIT 1')).rows.length === 0) return 0
  const client = await pool.connect()
  // the lock before the snapshot (a session lock: a transaction's snapshot would be taken while it waits)
  await client.query('SELECT pg_advisory_lock($1)', [HOLDING_LOCK])
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
    let marks: Array<{ currency_id: string, day: string, us: string, version: string }>
    const ends: TraceEnd[] = []
    try {
      marks = (await client.query<{ currency_id: string, day: string, us: string, version: string }>(`
        SELECT m.currency_id::text, circ_local_day(m.at, c.time_zone)::text AS day,
               (extract(epoch FROM m.at) * 1000000)::bigint::text AS us, m.version::text
          FROM circ_holding_mark m JOIN currency c ON c.id = m.currency_id`)).rows
      for (const m of marks) {
        const end = await replay(client, m.currency_id, m.day, BigInt(m.us), batch)
        if (end != null) ends.push(end)
      }
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    }
    // kept only once what they describe has committed (replay() has forgotten the states it started from)
    for (const e of ends) keep(traceEndKey(e.currencyId), e, endBytes(e))
    if (marks.length > 0) {
      await client.query(`DELETE FROM circ_holding_mark m USING unnest($1::uuid[], $2::bigint[]) AS x (c, v)
        WHERE m.currency_id = x.c AND m.version = x.v`, [marks.map(m => m.currency_id), marks.map(m => m.version)])
    }
    return marks.length
  } finally {
    // a connection that cannot unlock is not given back to the pool with the lock held
    const unlocked = await client.query('SELECT pg_advisory_unlock($1)', [HOLDING_LOCK]).then(() => true, () => false)
    client.release(!unlocked)
  }
}

/** What the trace reads: a transfer that is not a reversal and has not been reversed (holding-trace.ts, Tx). */
const TRACED = `t.kind <> 'reversal' AND NOT EXISTS (SELECT 1 FROM transfer r WHERE r.reverses_id = t.id)`
/** Traced transfers after a (created_at, id) position, a batch at a time; or (LIMIT null) all of one instant. */
const transfersSql = (where: string) => `
SELECT t.id::text AS id, t.kind, t.from_account_id::text AS f, t.to_account_id::text AS t, t.amount::text AS amount,
       (extract(epoch FROM t.created_at) * 1000000)::bigint::text AS us, t.created_at::text AS at
  FROM transfer t
 WHERE t.currency_id = $1 AND ${where} AND ${TRACED}
 ORDER BY t.created_at, t.id
 LIMIT $4`
const AFTER_SQL = transfersSql('(t.created_at, t.id) > ($2::timestamptz, $3::uuid)')
const INSTANT_SQL = transfersSql('t.created_at = $2::timestamptz AND t.id >= $3::uuid')
/** The local day of the latest traced transfer (backwards on the (currency_id, created_at, id) index). */
const LAST_SQL = `
SELECT circ_local_day(t.created_at, $2)::text AS day
  FROM transfer t
 WHERE t.currency_id = $1 AND ${TRACED}
 ORDER BY t.created_at DESC, t.id DESC
 LIMIT 1`
interface Row { id: string, kind: string, f: string, t: string, amount: string, us: string, at: string }

/** The local day (civil days since 1970) of an instant in microseconds, for a trace that reads instants in time
 *  order: the day's bounds are kept, so the calendar is asked once a day. */
function dayCutter (cal: Calendar): (us: bigint) => number {
  let lo = 0n; let hi = -1n; let no = 0
  return (us: bigint) => {
    if (us >= lo && us < hi) return no
    const c = cal.civil(Number(us / 1000n) - (us < 0n && us % 1000n !== 0n ? 1 : 0))
    no = Math.round(c / DAY_MS)
    lo = BigInt(cal.instant(c)) * 1000n
    hi = BigInt(cal.instant(c + DAY_MS)) * 1000n
    return no
  }
}

/**
 * Where the trace of a currency ended, kept in this process's memory (the report caches' budget) so that the next
 * replay can continue from it and read only the transfers after it. Valid only while the currency's last traced
 * day row is still the one this replay wrote (`version`: its computed_at, which every write of the row moves). The
 * replay that follows, in another instance, has no valid state of its own (its memory predates that row), so it
 * starts from a checkpoint, which is at or before the last traced day (none is kept after it): it removes that row
 * and writes it again, or leaves it out when its transfers were reversed. The state and the day's partial results
 * are taken over (mutated) by the continuation, so the entry is forgotten when a replay starts and kept again only
 * after it has committed.
 */
interface TraceEnd {
  currencyId: string
  zone: string
  /** the accounts as classified when traced: what the trace needs of an account (a participant's or not, a
   *  business's, local) comes from columns the service never changes once it exists (a participant's kind and
   *  district, the currency's local areas), so a continuation reads only the accounts it has not met */
  accounts: Map<string, TraceAccount>
  state: Map<string, Holding>
  /** the last traced day (civil days since 1970) and its partial results so far */
  dayNo: number
  day: DayPartial
  /** the last traced instant (microseconds; applied whole) and its created_at as read */
  us: bigint
  at: string
  /** computed_at of the last traced day's row as written */
  version: string
}
/** The report cache's key of a currency's TraceEnd (tests stand in for a second instance by swapping it). */
export const traceEndKey = (currencyId: string) => `holding-end|${currencyId}`
/** Replays so far that continued from a kept end, and that started from a checkpoint (or from nothing). */
export const traceCounts = { continued: 0, fromCheckpoint: 0 }
/** an account's holding (a Map entry, its key, an object of three bigints) and its classification */
const endBytes = (e: TraceEnd) => e.state.size * (MAP_ENTRY_BYTES + ID_BYTES + OBJECT_BYTES + 3 * BIGINT_BYTES) +
  e.accounts.size * (MAP_ENTRY_BYTES + ID_BYTES + OBJECT_BYTES) + dayBytes(e.day) + 4 * OBJECT_BYTES
/** the uuid after every other: a continuation reads from after the whole of its end instant */
const LAST_ID = 'ffffffff-ffff-ffff-ffff-ffffffffffff'

/** The accounts a continuation meets for the first time (opened since it was kept). */
const SOME_ACCOUNTS_SQL = `${ACCOUNTS_SQL} AND a.id = ANY ($2::uuid[])`
const traceAccount = (r: any): [string, TraceAccount] => [r.id as string, { part: r.participant_id != null, biz: r.biz as boolean, local: r.local as boolean }]

/** Re-traces one currency to the end of history, its days cut in the currency's time zone: from the state this
 *  process kept at the end of its last trace when the mark (`fromUs`, on local day `fromDay`, ISO date) is after
 *  it and nothing was traced since, else from the last checkpoint at or before `fromDay`. Returns the trace's end,
 *  to be kept once the transaction has committed (null: nothing traced). */
async function replay (db: Query, currencyId: string, fromDay: string, fromUs: bigint, batch: number): Promise<TraceEnd | null> {
  const zone = (await db.query('SELECT time_zone FROM currency WHERE id = $1', [currencyId])).rows[0].time_zone as string
  const cal = calendarOf(zone)
  const prior = cached<TraceEnd>(traceEndKey(currencyId))
  forget(traceEndKey(currencyId))
  let resume: TraceEnd | null = null
  if (prior != null && fromUs > prior.us && prior.zone === zone) {
    const latest = (await db.query(`SELECT day::text AS day, computed_at::text AS v FROM circ_holding_day
      WHERE currency_id = $1 ORDER BY day DESC LIMIT 1`, [currencyId])).rows[0] as { day: string, v: string } | undefined
    if (latest?.day === dayIso(prior.dayNo) && latest.v === prior.version) resume = prior
  }
  if (resume != null) traceCounts.continued++
  else traceCounts.fromCheckpoint++
  // the last traced day: that of the latest transfer traced (a reversal, or a transfer reversed, is not)
  const last = (await db.query(LAST_SQL, [currencyId, zone])).rows[0]?.day as string | undefined
  if (last == null) {
    // nothing left to trace (every transfer reversed): nothing kept, as a replay from nothing would leave it
    await db.query('DELETE FROM circ_holding_day WHERE currency_id = $1', [currencyId])
    await db.query('DELETE FROM circ_holding_checkpoint WHERE currency_id = $1', [currencyId])
    return null
  }
  const lastNo = DAY_NO(last)
  const accounts = resume?.accounts ?? new Map((await db.query(ACCOUNTS_SQL, [currencyId])).rows.map(traceAccount))
  let cp: { day: string, state: StateJson } | undefined
  if (resume == null) {
    // at or before the last traced day too (a checkpoint after it is left from days since reversed), so that the
    // replay traces that day and writes its start, as a replay from nothing does
    cp = (await db.query(`SELECT day::text AS day, state FROM circ_holding_checkpoint
      WHERE currency_id = $1 AND day <= least($2::date, $3::date) ORDER BY day DESC LIMIT 1`, [currencyId, fromDay, last])).rows[0] as { day: string, state: StateJson } | undefined
    // a continuation leaves every row and checkpoint up to its last day as they are: none is after it
    await db.query('DELETE FROM circ_holding_day WHERE currency_id = $1 AND ($2::date IS NULL OR day >= $2::date)', [currencyId, cp?.day ?? null])
    await db.query('DELETE FROM circ_holding_checkpoint WHERE currency_id = $1 AND ($2::date IS NULL OR day > $2::date)', [currencyId, cp?.day ?? null])
  }
  const start = cp?.day ?? null

  const trace = new Trace(accounts, resume != null ? resume.state : cp == null ? undefined : stateOf(cp.state), dayCutter(cal))
  if (resume != null) trace.day = resume.day
  const dayNo = dayCutter(cal)
  const days: Array<[string, DayJson, DormancyJson]> = []
  const checkpoints = new Map<number, StateJson>()
  const flush = async (): Promise<void> => {
    if (days.length > 0) {
      await db.query(`INSERT INTO circ_holding_day (currency_id, day, figures, dormancy)
        SELECT $1, x.d, x.f, x.o FROM unnest($2::date[], $3::jsonb[], $4::jsonb[]) AS x (d, f, o)
        ON CONFLICT (currency_id, day) DO UPDATE SET figures = excluded.figures, dormancy = excluded.dormancy, computed_at = clock_timestamp()`,
      [currencyId, days.map(d => d[0]), days.map(d => JSON.stringify(d[1])), days.map(d => JSON.stringify(d[2]))])
      days.length = 0
    }
    for (const [no, state] of checkpoints) {
      await db.query(`INSERT INTO circ_holding_checkpoint (currency_id, day, state) VALUES ($1, $2, $3)
        ON CONFLICT (currency_id, day) DO UPDATE SET state = excluded.state`, [currencyId, dayIso(no), JSON.stringify(state)])
    }
    checkpoints.clear()
  }
  /** The state at the start of every month's first day after day `from` up to day `next` (nothing is traced between). */
  const monthStarts = (from: number, next: number): void => {
    for (let d = new Date(from * DAY_MS); ;) {
      d = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1))
      const m = Math.round(d.getTime() / DAY_MS)
      if (m > next) break
      checkpoints.set(m, stateJson(trace.state))
    }
  }
  /** The end of traced day `no`; the next traced day is `next` (null: none yet). */
  const endDay = async (no: number, next: number | null): Promise<void> => {
    days.push([dayIso(no), dayJson(trace.takeDay()), dormancyJson(trace.dormancy())])
    if (next != null) monthStarts(no, next)
    if (days.length >= DAYS_PER_WRITE) await flush()
  }

  // from the start of the checkpoint's local day, or after the whole of the end instant a continuation starts from
  let cursor: [string, string] = resume != null
    ? [resume.at, LAST_ID]
    : [start == null ? '-infinity' : new Date(cal.instant(DAY_NO(start) * DAY_MS)).toISOString(), '00000000-0000-0000-0000-000000000000']
  let day: number | null = resume?.dayNo ?? null
  // the day the replay starts in already has its checkpoint (a continuation's: written when it became the last day)
  const startNo = resume != null ? resume.dayNo : start == null ? null : DAY_NO(start)
  let lastUs = resume?.us ?? 0n
  let lastAt = resume?.at ?? ''
  for (;;) {
    let read = (await db.query(AFTER_SQL, [currencyId, ...cursor, batch])).rows as Row[]
    // an instant is applied whole: a batch that ends inside an instant leaves that instant to the next batch, and
    // an instant longer than a batch is read whole
    const full = read.length === batch
    if (full && read[0].us === read[read.length - 1].us) read = (await db.query(INSTANT_SQL, [currencyId, read[0].at, read[0].id, null])).rows as Row[]
    const cut = full && read[0].us !== read[read.length - 1].us ? read.findIndex(r => r.us === read[read.length - 1].us) : read.length
    const rows = read.slice(0, cut)
    if (resume != null) {
      const unknown = [...new Set(rows.flatMap(r => [r.f, r.t]))].filter(id => !accounts.has(id))
      if (unknown.length > 0) for (const r of (await db.query(SOME_ACCOUNTS_SQL, [currencyId, unknown])).rows) accounts.set(...traceAccount(r))
    }
    for (let x = 0; x < rows.length;) {
      let y = x + 1
      while (y < rows.length && rows[y].us === rows[x].us) y++
      const at = BigInt(rows[x].us)
      const no = dayNo(at)
      if (no !== day) {
        if (day != null) await endDay(day, no)
        // from a checkpoint: the month starts between it and the first day traced from it, as a replay from
        // nothing writes them (the days that were traced between have since been reversed)
        else if (startNo != null) monthStarts(startNo, no)
        day = no
        // the start of the last traced day: where the next replay of new transfers begins (unless nothing was
        // traced before it: a replay from nothing is the same, and a replay from nothing writes no such checkpoint)
        if (no === lastNo && no !== startNo && trace.state.size > 0) checkpoints.set(no, stateJson(trace.state))
      }
      trace.applyInstant(rows.slice(x, y).map(r => ({ kind: r.kind, from: r.f, to: r.t, amount: toMicros(r.amount), at })))
      lastUs = at
      lastAt = rows[x].at
      x = y
    }
    if (!full) break
    // the last row taken in the query's order (created_at, id), not in posting order
    cursor = [read[cut - 1].at, read[cut - 1].id]
  }
  // the last day's partial results, before endDay() hands them to its row: a continuation appends to them
  const partial = trace.day
  if (day != null) await endDay(day, null)
  await flush()
  // older starts of a last traced day are superseded; month starts stay (up to the last traced day)
  await db.query(`DELETE FROM circ_holding_checkpoint WHERE currency_id = $1
    AND (day > $2::date OR (day < $2::date AND extract(day FROM day) <> 1))`, [currencyId, last])
  if (day == null) return null
  const version = (await db.query('SELECT computed_at::text AS v FROM circ_holding_day WHERE currency_id = $1 AND day = $2::date',
    [currencyId, dayIso(day)])).rows[0].v as string
  return { currencyId, zone, accounts, state: trace.state, dayNo: day, day: partial, us: lastUs, at: lastAt, version }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading: a report's periods from the days.

/** Measured payments of one payer kind (or all) over a period. */
export interface HoldingKind {
  /** money paid (the weights) */
  weight: string
  /** sum of amount x holding time, in currency x seconds (12 decimals) */
  weighted: string
  count: number
  /** amount-weighted (lower) median of the holding time in whole hours; null when nothing was paid */
  medianHours: string | null
}

export interface HoldingFigures {
  all: HoldingKind
  member: HoldingKind
  business: HoldingKind
  /** participants' balances at the period's end last touched more than 90 days before it */
  dormant: Stat
  /** participants' balances at the period's end, as traced (reversed transfers left out) */
  traced: string
  /** the same two by kind: members' dormant and traced balances, businesses' (traced: the holders of the kind) */
  dormantMember: Stat
  dormantBusiness: Stat
  tracedMember: Stat
  tracedBusiness: Stat
  /** economic payments from local to non-local participants, from non-local to local, issuance to non-local */
  leaving: Stat
  entering: Stat
  issuedNonLocal: Stat
}

const DORMANT_DAYS = 90
/** a uuid string key in a Map */
const ID_BYTES = 96

/** Estimated heap of a parsed day, for the report caches' one budget (report-cache.ts). */
function dayBytes (d: DayPartial): number {
  const pair = MAP_ENTRY_BYTES + 2 * BIGINT_BYTES
  return 6 * OBJECT_BYTES + (d.m.hist.size + d.b.hist.size) * pair +
    (d.leave.size + d.enter.size) * (pair + OBJECT_BYTES + ID_BYTES) + d.issue.size * (MAP_ENTRY_BYTES + BIGINT_BYTES + ID_BYTES)
}

/** Every period's figures (index 0: the whole range, which the others tile), read in the caller's snapshot. */
export async function holdingFigures (db: Query, currencyId: string, all: Period[]): Promise<HoldingFigures[]> {
  // A period asked for twice (a report of one period passes it as the whole range and as itself) is summed once:
  // its kept sum is one entry, and changing it once per copy would add the same new days to it twice
  const span = (p: Period) => `${p.start}|${p.end}`
  const distinct = [...new Map(all.map(p => [span(p), p])).values()]
  if (distinct.length < all.length) {
    const figures = new Map((await holdingFigures(db, currencyId, distinct)).map((f, k) => [span(distinct[k]), f]))
    return all.map(p => figures.get(span(p))!)
  }
  // the days are the currency's local days: a period's are the civil dates its buckets cover
  const days = all.map(periodDays)
  const from = Math.min(...days.map(d => d.start))
  const to = Math.max(...days.map(d => d.end))
  const versions = (await db.query(`SELECT day::text AS day, computed_at::text AS v FROM circ_holding_day
    WHERE currency_id = $1 AND day >= $2::date AND day < $3::date`, [currencyId, isoDate(from), isoDate(to)])).rows as Array<{ day: string, v: string }>
  const key = (day: string) => `holding|${currencyId}|${day}`
  // A period's sum of days is kept under a digest of its days' versions: a warm report, and the settled months of a
  // report after new payments, are not summed again. A period with a new or changed day starts from its kept sum
  // when it can (see Summed: only its latest day changed, or new days came): its base is kept as it is, or has the
  // days that are no longer the latest added; otherwise it is summed again (the whole range from its periods' sums).
  const sumKey = (p: Period) => `holding-sum|${currencyId}|${p.start}|${p.end}`
  // each day's instant parsed once: a report by day over a year has 367 periods of 366 days to pick from
  const dayAt = new Map(versions.map(r => [r, DAY_NO(r.day) * DAY_MS]))
  const inPeriod = (p: Period) => {
    const d = periodDays(p)
    return versions.filter(r => dayAt.get(r)! >= d.start && dayAt.get(r)! < d.end)
  }
  const digest = (rows: Array<{ day: string, v: string }>) => createHash('sha256').update(rows.map(r => `${r.day}@${r.v}`).join('|')).digest('base64')
  // the whole range of a report with several periods is summed from the periods (they tile it), not from its days
  const fromPeriods = (k: number) => k === 0 && all.length > 2
  const summed = all.map(p => {
    const rows = inPeriod(p)
    // the period's latest day: the one a continuation of the trace rewrites, so the one whose partial results are kept
    const latest = rows.reduce<{ day: string, v: string } | null>((a, r) => a == null || r.day > a.day ? r : a, null)
    return { p, rows, latest, digest: digest(rows) }
  })
  const kept: Array<Summed | undefined> = []
  // the days whose partial results change a kept sum (null: summed again, or kept as it is)
  const changes: Array<Array<{ day: string, v: string }> | null> = []
  for (const x of summed) {
    const c = cached<Summed>(sumKey(x.p))
    kept.push(c?.digest === x.digest ? c : undefined)
    changes.push(c == null || c.digest === x.digest ? null : changedDays(c, x.rows))
  }
  const needed = new Set<string>()
  summed.forEach((x, k) => {
    if (kept[k] != null) return
    const days = changes[k] ?? (fromPeriods(k) ? [] : x.rows)
    for (const r of days) needed.add(r.day)
    if (x.latest != null) needed.add(x.latest.day)
  })
  const held = new Map<string, DayPartial>()
  for (const r of versions) {
    if (!needed.has(r.day)) continue
    const c = cached<{ version: string, day: DayPartial }>(key(r.day))
    if (c?.version === r.v) held.set(r.day, c.day)
  }
  const missing = versions.filter(r => needed.has(r.day) && !held.has(r.day))
  if (missing.length > 0) {
    const rows = (await db.query(`SELECT day::text AS day, computed_at::text AS v, figures FROM circ_holding_day
      WHERE currency_id = $1 AND day = ANY ($2::date[])`, [currencyId, missing.map(r => r.day)])).rows as Array<{ day: string, v: string, figures: DayJson }>
    for (const r of rows) {
      const day = dayOf(r.figures)
      held.set(r.day, day)
      keep(key(r.day), { version: r.v, day }, dayBytes(day))
    }
  }
  const partOf = (day: string) => held.get(day)!
  /** keeps period k's sum: `base`, the sum of its days but the latest, and that day's partial results (when the
   *  latest day is in base instead, last is null) */
  const keepSum = (k: number, base: DayPartial, ranks: Ranks | null, last: Summed['last']) => {
    const x = summed[k]
    const s: Summed = { digest: x.digest, versions: new Map(x.rows.map(r => [r.day, r.v])), base, ranks: ranks ?? ranksOf(base), last, kinds: null as unknown as Kinds }
    s.kinds = kindsOf(s)
    kept[k] = s
    keep(sumKey(x.p), s, summedBytes(s))
  }
  summed.forEach((x, k) => {
    if (kept[k] != null) return
    const change = changes[k]
    const latest = x.latest
    if (change != null && latest != null) {
      holdingSumCounts.changed++
      const old = cached<Summed>(sumKey(x.p))!
      const changed = new Set(change.map(r => r.day))
      // what joins the base: the old latest day when it is no longer the latest, and the changed days but the latest
      const into: DayPartial[] = []
      if (old.last != null && old.last.day !== latest.day) into.push(changed.has(old.last.day) ? partOf(old.last.day) : old.last.part)
      for (const r of change) if (r.day !== latest.day && r.day !== old.last?.day) into.push(partOf(r.day))
      // the latest day is in the old base when it is neither the old latest day nor changed (a new day before it)
      const inBase = latest.day !== old.last?.day && !changed.has(latest.day)
      const last = inBase ? null : { day: latest.day, part: partOf(latest.day) }
      if (into.length === 0) keepSum(k, old.base, old.ranks, last)
      else keepSum(k, addedSum(old.base, into), null, last)
    } else if (!fromPeriods(k)) {
      holdingSumCounts.summed++
      const rows = x.rows.filter(r => r !== latest)
      keepSum(k, sumDays(rows.map(r => partOf(r.day))), null, latest == null ? null : { day: latest.day, part: partOf(latest.day) })
    }
  })
  if (fromPeriods(0) && kept[0] == null) {
    holdingSumCounts.summed++
    const latest = summed[0].latest
    // the range's latest day is kept apart when its period keeps it apart (else it is in that period's base)
    const apart = latest != null && kept.some((c, k) => k > 0 && c!.last?.day === latest.day)
    const parts = kept.slice(1).flatMap(c => c!.last == null || (apart && c!.last.day === latest.day) ? [c!.base] : [c!.base, c!.last.part])
    keepSum(0, sumDays(parts), null, apart ? { day: latest.day, part: partOf(latest.day) } : null)
  }
  const biz = new Set((await db.query(`SELECT a.id::text AS id FROM account a JOIN participant p ON p.id = a.participant_id
    WHERE a.currency_id = $1 AND p.kind = 'business'`, [currencyId])).rows.map(r => r.id as string))

  // the latest traced day before each period's end holds the balances at that end
  const ends = (await db.query(`SELECT x.k, d.dormancy FROM unnest($2::int[], $3::date[]) AS x (k, e)
    CROSS JOIN LATERAL (SELECT dormancy FROM circ_holding_day WHERE currency_id = $1 AND day < x.e ORDER BY day DESC LIMIT 1) d`,
  [currencyId, all.map((_, k) => k), days.map(d => isoDate(d.end))])).rows as Array<{ k: number, dormancy: DormancyJson }>
  const profile = new Map(ends.map(r => [r.k, r.dormancy]))

  return all.map((_, k) => figuresOf(kept[k]!, profile.get(k) ?? [], days[k].end, biz))
}

/** A period's days summed, and the payment figures that depend on nothing else (their medians sort the sum's
 *  histogram), kept together under the digest of the period's days. */
interface Summed {
  digest: string
  /** the version of each day summed */
  versions: Map<string, string>
  /** the sum of the period's days but the latest, kept apart in `last` (null: it is in base): a continuation of the
   *  trace rewrites its last day and appends new ones, so after new payments the base stays as it is, or, on a day
   *  that is no longer the latest, has that day added; nothing is ever subtracted */
  base: DayPartial
  /** base's histograms ranked (for the medians) */
  ranks: Ranks
  last: { day: string, part: DayPartial } | null
  kinds: Kinds
  /** the flows' statistics, once a report has asked for them (they depend only on the sum: whether an account is a
   *  business's never changes) */
  flows?: Flows
}
/** A histogram's hours in order, and the weight of each hour and those before it. */
interface Ranked { hours: ArrayLike<bigint>, cum: ArrayLike<bigint> }
interface Ranks { m: Ranked, b: Ranked }
interface Flows { leaving: Stat, entering: Stat, issuedNonLocal: Stat }
/** three Stat objects of two short strings, a number and a boolean */
const FLOWS_BYTES = 3 * (OBJECT_BYTES + 2 * 64)
interface Kinds { all: HoldingKind, member: HoldingKind, business: HoldingKind }
/** three HoldingKind objects of four short strings and a number */
const KINDS_BYTES = 3 * (OBJECT_BYTES + 4 * 64)

/** Sums kept that were changed by their changed days, and sums done from their days (or periods). */
export const holdingSumCounts = { changed: 0, summed: 0 }

/** a day's version in Summed.versions: its ISO date and computed_at */
const VERSION_BYTES = MAP_ENTRY_BYTES + 2 * OBJECT_BYTES
const summedBytes = (x: Summed): number => dayBytes(x.base) + rankedBytes(x.ranks.m) + rankedBytes(x.ranks.b) + KINDS_BYTES + FLOWS_BYTES +
  x.versions.size * VERSION_BYTES + (x.last == null ? 0 : dayBytes(x.last.part))

/** The days of a period (rows: day and version) that are not in the kept sum `c` as they are now, when the kept sum
 *  can be changed by them: each is new, or is the kept latest day, and no day summed has gone (its transfers
 *  reversed). Null: it cannot, the period is summed again. */
function changedDays (c: Summed, rows: Array<{ day: string, v: string }>): Array<{ day: string, v: string }> | null {
  const changed: Array<{ day: string, v: string }> = []
  let still = 0
  for (const r of rows) {
    const v = c.versions.get(r.day)
    if (v != null) still++
    if (v === r.v) continue
    if (v != null && r.day !== c.last?.day) return null
    changed.push(r)
  }
  return still === c.versions.size ? changed : null
}

/** `sum` plus `added`, in new maps (`sum` is kept and may be in use by another report). */
function addedSum (sum: DayPartial, added: DayPartial[]): DayPartial {
  const out: DayPartial = { m: copyKind(sum.m), b: copyKind(sum.b), leave: new Map(sum.leave), enter: new Map(sum.enter), issue: new Map(sum.issue) }
  for (const d of added) {
    sumKind(out.m, d.m); sumKind(out.b, d.b)
    // pairs are replaced, never changed in place: they may be shared with `sum`
    for (const [side, from] of [[out.leave, d.leave], [out.enter, d.enter]] as const) {
      for (const [id, [p, r]] of from) {
        const x = side.get(id)
        side.set(id, x == null ? [p, r] : [x[0] + p, x[1] + r])
      }
    }
    for (const [id, v] of d.issue) out.issue.set(id, (out.issue.get(id) ?? 0n) + v)
  }
  return out
}

const copyKind = (k: KindDay): KindDay => ({ w: k.w, wh: k.wh, n: k.n, hist: new Map(k.hist) })

const rankedBytes = (r: Ranked): number => bigintsBytes(r.hours) + bigintsBytes(r.cum)
const ranksOf = (d: DayPartial): Ranks => ({ m: rankedOf(d.m.hist), b: rankedOf(d.b.hist) })

/** The payment figures of base + last; the medians from the ranked histograms, without merging them. */
function kindsOf ({ base, ranks, last }: Summed): Kinds {
  const l = last?.part
  const lr = l == null ? null : ranksOf(l)
  const sum = (...ks: Array<KindDay | undefined>): KindDay => {
    const out = emptyKind()
    for (const k of ks) if (k != null) { out.w += k.w; out.wh += k.wh; out.n += k.n }
    return out
  }
  const m = lr == null ? [ranks.m] : [ranks.m, lr.m]
  const b = lr == null ? [ranks.b] : [ranks.b, lr.b]
  return {
    all: kindFigures(sum(base.m, base.b, l?.m, l?.b), [...m, ...b]),
    member: kindFigures(sum(base.m, l?.m), m),
    business: kindFigures(sum(base.b, l?.b), b),
  }
}

/** A histogram ranked: its hours packed and sorted natively when they fit in 64 bits (always: hours of
 *  microseconds between two PostgreSQL timestamps), else sorted as they are. */
function rankedOf (hist: Map<bigint, bigint>): Ranked {
  const packed = packBigints([...hist.keys()])
  const hours = packed instanceof BigInt64Array ? packed.sort() : (packed as bigint[]).sort((x, y) => x < y ? -1 : x > y ? 1 : 0)
  const cum: bigint[] = new Array(hours.length)
  let c = 0n
  for (let i = 0; i < hours.length; i++) { c += hist.get(hours[i])!; cum[i] = c }
  return { hours, cum: packBigints(cum) }
}

/** The weight of a ranked histogram's hours up to h. */
function weightTo (r: Ranked, h: bigint): bigint {
  let lo = 0; let hi = r.hours.length
  while (lo < hi) { const mid = (lo + hi) >> 1; if (r.hours[mid] <= h) lo = mid + 1; else hi = mid }
  return lo === 0 ? 0n : r.cum[lo - 1]
}

function sumKind (into: KindDay, k: KindDay): void {
  into.w += k.w; into.wh += k.wh; into.n += k.n
  for (const [h, w] of k.hist) into.hist.set(h, (into.hist.get(h) ?? 0n) + w)
}

function sumDays (parts: DayPartial[]): DayPartial {
  const out: DayPartial = { m: emptyKind(), b: emptyKind(), leave: new Map(), enter: new Map(), issue: new Map() }
  for (const d of parts) {
    sumKind(out.m, d.m); sumKind(out.b, d.b)
    for (const [side, from] of [[out.leave, d.leave], [out.enter, d.enter]] as const) {
      for (const [id, [p, r]] of from) {
        const x = side.get(id)
        if (x == null) side.set(id, [p, r]); else { x[0] += p; x[1] += r }
      }
    }
    for (const [id, v] of d.issue) out.issue.set(id, (out.issue.get(id) ?? 0n) + v)
  }
  return out
}

/** micros x microseconds as currency x seconds, 12 decimals. */
function weighted (v: bigint): string {
  const neg = v < 0n
  const a = neg ? -v : v
  const s = a.toString().padStart(13, '0')
  return `${neg ? '-' : ''}${s.slice(0, s.length - 12)}.${s.slice(s.length - 12)}`
}

/** k's figures; its median from the ranked histograms whose weights together sum to k.w: the amount-weighted
 *  (lower) median, the least hour up to which (all parts together) at least half the weight was held. The weight
 *  up to an hour only grows with the hour, so each part's least such hour is found by bisection, and the median
 *  is the least of them. */
function kindFigures (k: KindDay, parts: Ranked[]): HoldingKind {
  let median: bigint | null = null
  if (k.w > 0n) {
    const enough = (h: bigint) => {
      let w = 0n
      for (const p of parts) w += weightTo(p, h)
      return w * 2n >= k.w
    }
    for (const p of parts) {
      let lo = 0; let hi = p.hours.length
      while (lo < hi) { const mid = (lo + hi) >> 1; if (enough(p.hours[mid])) hi = mid; else lo = mid + 1 }
      if (lo < p.hours.length && (median == null || p.hours[lo] < median)) median = p.hours[lo]
    }
  }
  return { weight: fromMicros(k.w), weighted: weighted(k.wh), count: k.n, medianHours: median == null ? null : String(median) }
}

function figuresOf (s: Summed, dormancy: DormancyJson, end: number, biz: Set<string>): HoldingFigures {
  const { kinds } = s
  s.flows ??= flowsOf(s, biz)
  // untouched for more than 90 days: last movement before the local day 90 days before the end (end: a civil date)
  const cutoff = Math.round(end / DAY_MS) - DORMANT_DAYS
  let total = 0n; let dv = 0n; let dn = 0; let dmax = 0n; let db = false
  // by kind: [members, businesses], traced and dormant
  const kind = () => ({ v: 0n, n: 0, max: 0n })
  const traced = [kind(), kind()]
  const dormant = [kind(), kind()]
  const into = (k: { v: bigint, n: number, max: bigint }, x: DormancyBin) => { k.v += x.sum; k.n += x.n; if (x.max > k.max) k.max = x.max }
  for (const x of dormancyOf(dormancy)) {
    total += x.sum
    into(traced[x.biz ? 1 : 0], x)
    if (x.day >= cutoff) continue
    into(dormant[x.biz ? 1 : 0], x)
    dv += x.sum; dn += x.n
    if (x.max > dmax) dmax = x.max
    if (x.biz) db = true
  }
  const kindStat = (k: { v: bigint, n: number, max: bigint }, biz: boolean): Stat => ({ value: fromMicros(k.v), n: k.n, max: fromMicros(k.max), biz: biz && k.n > 0 })
  return {
    ...kinds,
    dormant: { value: fromMicros(dv), n: dn, max: fromMicros(dmax), biz: db },
    traced: fromMicros(total),
    dormantMember: kindStat(dormant[0], false),
    dormantBusiness: kindStat(dormant[1], true),
    tracedMember: kindStat(traced[0], false),
    tracedBusiness: kindStat(traced[1], true),
    ...s.flows,
  }
}

/** The flows across the local boundary of base + last. */
function flowsOf ({ base, last }: Summed, biz: Set<string>): Flows {
  const l = last?.part
  const sides = (m: Map<string, [bigint, bigint]>, more: Map<string, [bigint, bigint]> | undefined): Stat => {
    let v = 0n; let max = 0n; let n = 0; let b = false
    const one = (id: string, p: bigint, r: bigint) => {
      v += p
      if (p === 0n && r === 0n) return
      n++
      const own = p > r ? p : r
      if (own > max) max = own
      if (biz.has(id)) b = true
    }
    for (const [id, [p, r]] of m) {
      const x = more?.get(id)
      if (x == null) one(id, p, r); else one(id, p + x[0], r + x[1])
    }
    if (more != null) for (const [id, [p, r]] of more) if (!m.has(id)) one(id, p, r)
    return { value: fromMicros(v), n, max: fromMicros(max), biz: b }
  }
  let iv = 0n; let imax = 0n; let ib = false; let ni = 0
  const issued = (id: string, v: bigint) => {
    iv += v
    if (v === 0n) return
    ni++
    if (v > imax) imax = v
    if (biz.has(id)) ib = true
  }
  for (const [id, v] of base.issue) issued(id, v + (l?.issue.get(id) ?? 0n))
  if (l != null) for (const [id, v] of l.issue) if (!base.issue.has(id)) issued(id, v)
  return {
    leaving: sides(base.leave, l?.leave),
    entering: sides(base.enter, l?.enter),
    issuedNonLocal: { value: fromMicros(iv), n: ni, max: fromMicros(imax), biz: ib },
  }
}
