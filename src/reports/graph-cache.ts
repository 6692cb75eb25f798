import { bucketEnd, DAY_MS, isoDate, type Bucket, type Day } from '../domain/periods.js'
import { calendarOf } from '../domain/zone.js'
import { findKey, PACK, pairKey, tarjan } from './graph.js'
import { multiplierRounds, type MultiplierSums } from './local-multiplier.js'
import { keptCirculation, type Solve } from './kept-circulation.js'
import { arrayOf, BIGINT_BYTES, bigintsBytes, cached, clearReportCache, keep, MAP_ENTRY_BYTES, MAX64, MIN64, OBJECT_BYTES, packBigints } from './report-cache.js'
import { fromMicros, toMicros, type Stat } from './stat.js'
import { tailRows, type Changed, type DrainsSeen } from './tail-rows.js'

// The payment graph of a report period (its payer -> payee links, summed over the period), without reading the
// whole period's links from the database each time.
//
// A period's links are the sum of the links of the buckets that tile it (circ_pair_bucket holds every payment
// in its day, its ISO week and its month). A bucket's links change only when a drained transfer falls in it,
// and then the bucket is in circ_dirty until the aggregator rewrites its summary (circ_bucket_summary,
// computed_at). So a bucket that is not dirty is identified by its summary's computed_at, and its links can be
// kept in memory under that version: they are exactly what the database holds for as long as the version stands.
//
// Per period, the links come from three places:
//   * settled buckets: months and ISO weeks that ended more than RECENT_MS ago and are not dirty, kept whole;
//     every other month or week is taken as its days, so that new payments (which land in today) never make a
//     whole month's links be read again;
//   * the prefix: the sum of all settled buckets and settled days of the period, kept merged under the list of
//     their versions, so while nothing settled changes, a report reuses it as it is;
//   * the tail: today, and any bucket that is dirty, read from the database on every call (today is a day's
//     payments at most; a dirty bucket is one the aggregator has not summarised yet).
// "Today" is the currency's local day (localToday(): buckets are its local days, domain/zone.ts), not the UTC
// date: were a local day still under way taken as settled (in the evening of a zone behind UTC), each summary of
// it after new payments would be a new version, and the next report would merge the whole prefix again.
// New payments land in the tail, so the first report after them reads a day of links, not the period's. When an
// old bucket changes (a late reversal of a payment months ago, a backdated posting), it is read once again and
// the prefixes holding it are merged again: the cost of that is a re-read of one bucket, not of the period.
//
// Everything is checked against versions read in the caller's snapshot, so a cached value is never used for a
// bucket whose links have changed in that snapshot. Memory: bucket links and merged prefixes are kept in typed
// arrays (20 and 28 bytes a link) in the report caches' one byte budget (report-cache.ts), least recently used out
// first; what does not fit is read from the database again.

/** Months and weeks that ended within this long are taken as their days (they may still change). */
export const RECENT_MS = 35 * DAY_MS
/** Above this many buckets, links are read in one scan rather than through the primary key per bucket. */
const MANY_BUCKETS = 40
/** Days whose links dayLinks() reads in one query. */
const DAYS_PER_READ = 31

/** What the queries need: a pool or one client inside a transaction (circulation.report.ts's Db). */
interface Query { query: (text: string, values?: unknown[]) => Promise<{ rows: any[] }> }

/** Links of a bucket: payer -> payee, the volume in millionths and the number of payments. */
export interface Links { payer: Int32Array, payee: Int32Array, volume: ArrayLike<bigint>, n: Int32Array }

const linksBytes = (l: Links) => l.payer.byteLength + l.payee.byteLength + l.n.byteLength + bigintsBytes(l.volume) + 4 * OBJECT_BYTES

/** Accounts of all currencies, numbered in order of first sight (ids never change; accounts are never deleted);
 *  numberOf() gives an account its number (exported for tests). */
const accountNo = new Map<string, number>()
const accountIds: string[] = []
export function numberOf (id: string): number {
  let n = accountNo.get(id)
  if (n === undefined) {
    n = accountIds.length
    if (n >= PACK) throw new Error('graph cache: more accounts than it can number')
    accountNo.set(id, n); accountIds.push(id)
  }
  return n
}

/** Merged links, sorted by their packed key (payer x PACK + payee), so a tail's links are found by bisection. */
export interface Merged { key: Float64Array, payer: Int32Array, payee: Int32Array, volume: ArrayLike<bigint>, n: Int32Array }

const mergedBytes = (m: Merged) => m.key.byteLength + m.payer.byteLength + m.payee.byteLength + m.n.byteLength + bigintsBytes(m.volume) + 5 * OBJECT_BYTES

const bucketKey = (currencyId: string, b: Bucket) => `${currencyId}|${b.grain}|${isoDate(b.start)}`
const linksKey = (k: string) => `links|${k}`
const prefixKeyOf = (k: string) => `graph|${k}`

/** The currency's local day at `now` (a civil date, domain/zone.ts), read in the caller's snapshot: the buckets
 *  that end by it are over, the one holding it is still under way. */
export async function localToday (db: Query, currencyId: string, now = Date.now()): Promise<Day> {
  const zone = (await db.query('SELECT time_zone FROM currency WHERE id = $1', [currencyId])).rows[0]?.time_zone as string | undefined
  return calendarOf(zone ?? 'UTC').civil(now)
}

/** The buckets whose links make up the period: settled months and weeks whole, the rest as days. today: the
 *  currency's local day (localToday). */
export function linkBuckets (buckets: Bucket[], dirty: (b: Bucket) => boolean, today: Day): Bucket[] {
  const out: Bucket[] = []
  for (const b of buckets) {
    const end = bucketEnd(b)
    if (b.grain === 'd' || (end <= today - RECENT_MS && !dirty(b))) { out.push(b); continue }
    for (let d = b.start; d < end; d += DAY_MS) out.push({ grain: 'd', start: d })
  }
  return out
}

const VERSIONS_SQL = `
SELECT x.i::int AS i, s.computed_at::text AS version, (d.start IS NOT NULL) AS dirty
  FROM unnest($2::text[], $3::date[]) WITH ORDINALITY AS x (grain, start, i)
  LEFT JOIN circ_bucket_summary s ON s.currency_id = $1 AND s.grain = x.grain AND s.start = x.start
  LEFT JOIN circ_dirty d ON d.currency_id = $1 AND d.grain = x.grain AND d.start = x.start`

/** The rows of `table` (alias r) in the given buckets, one UNION ALL arm per grain with a constant grain, so each
 *  arm reads one partition through its primary key ($1 is the currency; arrays of starts from $first on). */
export function bucketRows (table: string, columns: string, bs: Bucket[], first: number): { sql: string, params: string[][] } {
  const arms: string[] = []
  const params: string[][] = []
  for (const g of ['m', 'w', 'd'] as const) {
    const starts = bs.filter(b => b.grain === g).map(b => isoDate(b.start))
    if (starts.length === 0) continue
    arms.push(`SELECT ${columns} FROM ${table} r WHERE r.currency_id = $1 AND r.grain = '${g}' AND r.start = ANY ($${first + params.length}::date[])`)
    params.push(starts)
  }
  return { sql: arms.join('\n UNION ALL\n'), params }
}

/** Whether bucket b is still under way on the currency's local day `today` (it ends after it): its rows may change
 *  with every drain, so it is always in a period's tail. */
export const underWay = (b: Bucket, today: Day): boolean => bucketEnd(b) > today

/** A grain as an SQL literal, so a query on one bucket reads one partition through its primary key. */
export const grainLiteral = (b: Bucket): string => b.grain === 'm' ? `'m'` : b.grain === 'w' ? `'w'` : `'d'`

/** A bucket's summary version (null: none yet) and whether it is dirty, as one snapshot read them. */
interface Version { version: string | null, dirty: boolean }

/** Versions one snapshot has read, by bucketKey: the periods of a report share them (the whole range and its
 *  last month both need that month's days). */
export type SeenVersions = Map<string, Version>

/** The versions of bs, and of `more` as well (read in the same query, kept in `seen` for later calls). */
async function versions (db: Query, currencyId: string, bs: Bucket[], seen: SeenVersions = new Map(), more: Bucket[] = []): Promise<Version[]> {
  const ask = [...new Map([...bs, ...more].filter(b => !seen.has(bucketKey(currencyId, b))).map(b => [bucketKey(currencyId, b), b])).values()]
  if (ask.length > 0) {
    const rows = (await db.query(VERSIONS_SQL, [currencyId, ask.map(b => b.grain), ask.map(b => isoDate(b.start))])).rows as
      Array<{ i: number, version: string | null, dirty: boolean }>
    for (const b of ask) seen.set(bucketKey(currencyId, b), { version: null, dirty: false })
    for (const r of rows) seen.set(bucketKey(currencyId, ask[r.i - 1]), { version: r.version, dirty: r.dirty })
  }
  return bs.map(b => seen.get(bucketKey(currencyId, b))!)
}

async function readLinks (db: Query, currencyId: string, bs: Bucket[]): Promise<Links[]> {
  if (bs.length === 0) return []
  const at = new Map(bs.map((b, i) => [`${b.grain}${isoDate(b.start)}`, i]))
  // a few buckets (a tail, a prefix's new pieces) through the primary key; many (the flows report's days) in one scan
  const rows = bs.length <= MANY_BUCKETS
    ? bucketRows('circ_pair_bucket', 'r.grain, r.start, r.payer, r.payee, r.volume, r.n', bs, 2)
    : {
        sql: `SELECT r.grain, r.start, r.payer, r.payee, r.volume, r.n FROM unnest($2::text[], $3::date[]) AS x (grain, start)
          JOIN circ_pair_bucket r ON r.currency_id = $1 AND r.grain = x.grain AND r.start = x.start`,
        params: [bs.map(b => b.grain), bs.map(b => isoDate(b.start))],
      }
  // one row per link, grouped here: arrays aggregated in the database cost more to build and to parse than the rows
  const res = (await db.query(`
    SELECT p.grain::text AS grain, p.start::text AS start, p.payer::text AS payer, p.payee::text AS payee, p.volume::text AS volume, p.n
      FROM (${rows.sql}) p`, [currencyId, ...rows.params])).rows as Array<{ grain: string, start: string, payer: string, payee: string, volume: string, n: number }>
  const parts = bs.map(() => ({ payer: [] as number[], payee: [] as number[], volume: [] as bigint[], n: [] as number[] }))
  let lastKey = ''
  let part = parts[0]
  for (const r of res) {
    const key = r.grain + r.start
    if (key !== lastKey) { part = parts[at.get(key)!]; lastKey = key }
    part.payer.push(numberOf(r.payer)); part.payee.push(numberOf(r.payee)); part.volume.push(toMicros(r.volume)); part.n.push(r.n)
  }
  return parts.map(x => ({ payer: Int32Array.from(x.payer), payee: Int32Array.from(x.payee), volume: packBigints(x.volume), n: Int32Array.from(x.n) }))
}

/** A kept tail link (tail-rows.ts): payer and payee by account number, the volume in millionths, the payments. */
interface TailLink { payer: number, payee: number, volume: bigint, n: number }
const TAIL_LINK_BYTES = MAP_ENTRY_BYTES + OBJECT_BYTES + BIGINT_BYTES

/** The pairs of bucket b that drains after `since` wrote, and how many the bucket holds (tail-rows.ts). */
async function pairsSince (db: Query, currencyId: string, b: Bucket, since: bigint): Promise<Changed<TailLink>> {
  const g = grainLiteral(b)
  const res = (await db.query(`
    SELECT c.n::int AS count, r.payer::text AS payer, r.payee::text AS payee, r.volume::text AS volume, r.n
      FROM (SELECT count(*) AS n FROM circ_pair_bucket WHERE currency_id = $1 AND grain = ${g} AND start = $2::date) c
      LEFT JOIN circ_pair_bucket r ON r.currency_id = $1 AND r.grain = ${g} AND r.start = $2::date AND r.seq > $3`,
  [currencyId, isoDate(b.start), since.toString()])).rows as Array<{ count: number, payer: string | null, payee: string, volume: string, n: number }>
  const rows: Array<[number, TailLink]> = []
  for (const r of res) {
    if (r.payer == null) continue
    const payer = numberOf(r.payer)
    const payee = numberOf(r.payee)
    rows.push([pairKey(payer, payee), { payer, payee, volume: toMicros(r.volume), n: r.n }])
  }
  return { rows, count: res[0]?.count ?? 0 }
}

/** The links of the tail's buckets. With what the snapshot has seen of the drains, each bucket still under way (by
 *  `today`) is brought forward from what the last report kept (tail-rows.ts); the others (dirty settled buckets),
 *  and all of them without it, are read whole in one query. */
async function tailLinks (db: Query, currencyId: string, tail: Bucket[], today: Day, drains?: DrainsSeen): Promise<Links[]> {
  const live = drains == null ? [] : tail.filter(b => underWay(b, today))
  const rest = tail.filter(b => !live.includes(b))
  const read = await readLinks(db, currencyId, rest)
  const out = new Map<Bucket, Links>(rest.map((b, i) => [b, read[i]]))
  for (const b of live) {
    const rows = await tailRows('links', currencyId, b, drains!, async since => await pairsSince(db, currencyId, b, since), TAIL_LINK_BYTES)
    const l: Links = { payer: new Int32Array(rows.size), payee: new Int32Array(rows.size), volume: new Array<bigint>(rows.size), n: new Int32Array(rows.size) }
    let k = 0
    for (const r of rows.values()) { l.payer[k] = r.payer; l.payee[k] = r.payee; (l.volume as bigint[])[k] = r.volume; l.n[k++] = r.n }
    out.set(b, l)
  }
  return tail.map(b => out.get(b)!)
}

/** Links summed by pair, sorted by pair key (exported for tests). */
export function merge (parts: Links[]): Merged {
  const at = new Map<number, number>()
  const volume: bigint[] = []
  const n: number[] = []
  for (const l of parts) {
    for (let k = 0; k < l.payer.length; k++) {
      const key = pairKey(l.payer[k], l.payee[k])
      const i = at.get(key)
      if (i === undefined) { at.set(key, volume.length); volume.push(l.volume[k]); n.push(l.n[k]) } else { volume[i] += l.volume[k]; n[i] += l.n[k] }
    }
  }
  const key = Float64Array.from(at.keys()).sort()
  const m: Merged = { key, payer: new Int32Array(key.length), payee: new Int32Array(key.length), volume: [], n: new Int32Array(key.length) }
  const sorted: bigint[] = new Array<bigint>(key.length)
  for (let j = 0; j < key.length; j++) {
    const i = at.get(key[j])!
    m.payer[j] = Math.floor(key[j] / PACK); m.payee[j] = key[j] % PACK; sorted[j] = volume[i]; m.n[j] = n[i]
  }
  m.volume = packBigints(sorted)
  return m
}

/**
 * Where a period's bucket-kept values (its links here, its accounts' sums in account-cache.ts) come from, as of
 * the caller's snapshot: the settled pieces, with their versions, whose merge callers keep under `key`; and the
 * tail, read on every use.
 */
export interface Pieces { settled: Bucket[], tail: Bucket[], versions: Map<string, string>, key: string, today: Day }

/** The settled pieces and the tail of the period the buckets tile (see the top of this file); today: the
 *  currency's local day (localToday). */
export async function periodPieces (db: Query, currencyId: string, buckets: Bucket[], today: Day, seen: SeenVersions = new Map()): Promise<Pieces> {
  // versions of the period's own buckets first: a dirty month or week is taken as its days. The days of recent
  // ones are taken whatever their versions say, so they are read in the same query
  const recent = linkBuckets(buckets, () => false, today).filter(b => b.grain === 'd')
  const own = await versions(db, currencyId, buckets, seen, recent)
  const dirtyOwn = new Set(buckets.filter((_, i) => own[i].dirty).map(b => bucketKey(currencyId, b)))
  const pieces = linkBuckets(buckets, b => dirtyOwn.has(bucketKey(currencyId, b)), today)
  const all = await versions(db, currencyId, pieces, seen)
  const known = new Map(pieces.map((b, i) => [bucketKey(currencyId, b), all[i]]))

  // buckets and today are civil dates (local days: domain/zone.ts); a bucket that ends after today is under way
  const settled: Bucket[] = []
  const tail: Bucket[] = []
  const settledVersions = new Map<string, string>()
  for (const b of pieces) {
    const v = known.get(bucketKey(currencyId, b))!
    if (v.version == null && !v.dirty) continue // never had a movement
    if (v.dirty || v.version == null || underWay(b, today)) tail.push(b)
    else { settled.push(b); settledVersions.set(bucketKey(currencyId, b), v.version) }
  }
  const key = currencyId + settled.map(b => `|${b.grain}${isoDate(b.start)}@${settledVersions.get(bucketKey(currencyId, b))!}`).join('')
  return { settled, tail, versions: settledVersions, key, today }
}

/** Tail reads of one snapshot, by what they read: the periods of one report share them (after new payments, the
 *  whole range and the month read the same day). What they hold is never changed by a reader. */
export type TailReads = Map<string, Promise<unknown>>

export const tailKey = (bs: Bucket[]): string => bs.map(b => `${b.grain}${isoDate(b.start)}`).join(',')

/** read(), or the same read an earlier period of the snapshot made. */
export async function shared<T> (reads: TailReads | undefined, key: string, read: () => Promise<T>): Promise<T> {
  if (reads == null) return await read()
  let p = reads.get(key) as Promise<T> | undefined
  if (p == null) { p = read(); reads.set(key, p) }
  return await p
}

/** A period's payment graph: each payer -> payee link once, with its volume in millionths. */
export interface PeriodGraph { payer: ArrayLike<number>, payee: ArrayLike<number>, volume: ArrayLike<bigint>, n: ArrayLike<number>, size: number }

/**
 * The links of the period the buckets tile, summed, as of the caller's snapshot (call it inside the report's
 * transaction). `now` decides what counts as today and recent (tests inject it). drains: what the snapshot has
 * seen of the drains (tail-rows.ts, readDrains), when the caller has read it: the buckets still under way are then
 * brought forward rather than read whole.
 */
export async function periodGraph (db: Query, currencyId: string, buckets: Bucket[], now = Date.now(), pieces?: Pieces, reads?: TailReads,
  drains?: DrainsSeen): Promise<PeriodGraph> {
  const { settled, tail, versions: known, key: prefixKey, today } = pieces ?? await periodPieces(db, currencyId, buckets, await localToday(db, currencyId, now))
  // the prefix: every settled piece, merged once per set of versions
  let prefix = cached<Merged>(prefixKeyOf(prefixKey))
  if (prefix == null) {
    const parts = new Map<Bucket, Links>()
    const toRead: Bucket[] = []
    for (const b of settled) {
      const k = bucketKey(currencyId, b)
      const c = cached<{ version: string, links: Links }>(linksKey(k))
      if (c != null && c.version === known.get(k)) parts.set(b, c.links); else toRead.push(b)
    }
    const read = await readLinks(db, currencyId, toRead)
    toRead.forEach((b, i) => {
      parts.set(b, read[i])
      const k = bucketKey(currencyId, b)
      keep(linksKey(k), { version: known.get(k)!, links: read[i] }, linksBytes(read[i]))
    })
    prefix = merge(settled.map(b => parts.get(b)!))
    keep(prefixKeyOf(prefixKey), prefix, mergedBytes(prefix))
  }
  if (tail.length === 0) return { payer: prefix.payer, payee: prefix.payee, volume: prefix.volume, n: prefix.n, size: prefix.payer.length }

  // the tail on top of the prefix
  const fresh = await shared(reads, `links|${currencyId}|${tailKey(tail)}`, async () => await tailLinks(db, currencyId, tail, today, drains))
  return withTail(prefix, fresh)
}

/**
 * The prefix's links with the tail's added, without touching the cached prefix: links the prefix has are added in
 * place, new ones appended. Exported for tests.
 */
export function withTail (prefix: Merged, fresh: Links[]): PeriodGraph {
  const size = prefix.payer.length
  // the prefix's volumes copied as they are kept (packed, usually: a copy of one buffer, not a year of bigints to
  // make and collect again on every report), and unpacked only if a sum outgrows 64 bits
  let volume: bigint[] | BigInt64Array = prefix.volume instanceof BigInt64Array ? prefix.volume.slice() : arrayOf(prefix.volume)
  const count = prefix.n.slice()
  const extra = new Map<number, number>()
  const payerX: number[] = []
  const payeeX: number[] = []
  const volumeX: bigint[] = []
  const countX: number[] = []
  for (const l of fresh) {
    for (let k = 0; k < l.payer.length; k++) {
      const key = pairKey(l.payer[k], l.payee[k])
      const at = findKey(prefix.key, key)
      if (at >= 0) {
        const v = volume[at] + l.volume[k]
        if (volume instanceof BigInt64Array && (v < MIN64 || v > MAX64)) volume = arrayOf(volume)
        volume[at] = v
        count[at] += l.n[k]
        continue
      }
      const i = extra.get(key)
      if (i !== undefined) { volumeX[i] += l.volume[k]; countX[i] += l.n[k]; continue }
      extra.set(key, volumeX.length); payerX.push(l.payer[k]); payeeX.push(l.payee[k]); volumeX.push(l.volume[k]); countX.push(l.n[k])
    }
  }
  const payer = new Int32Array(size + payerX.length); payer.set(prefix.payer); payer.set(payerX, size)
  const payee = new Int32Array(size + payerX.length); payee.set(prefix.payee); payee.set(payeeX, size)
  const n = new Int32Array(size + payerX.length); n.set(count); n.set(countX, size)
  return { payer, payee, volume: appended(volume, volumeX), n, size: payer.length }
}

/** volume followed by more, packed while every value fits in 64 bits. */
function appended (volume: bigint[] | BigInt64Array, more: bigint[]): bigint[] | BigInt64Array {
  if (volume instanceof BigInt64Array && more.every(v => v >= MIN64 && v <= MAX64)) {
    const out = new BigInt64Array(volume.length + more.length)
    out.set(volume)
    for (let i = 0; i < more.length; i++) out[volume.length + i] = more[i]
    return out
  }
  const out = arrayOf(volume)
  for (const v of more) out.push(v)
  return out
}

/**
 * The links of each day, as of the caller's snapshot: a settled day (ended before the currency's local today, not
 * dirty) comes with its version, so a caller may keep what it derives from it; other days are read every time
 * (version null). Days that never had a payment come back empty.
 */
export async function dayLinks (db: Query, currencyId: string, days: Bucket[], keep: (day: Bucket, version: string) => boolean, now = Date.now()):
Promise<Array<{ version: string | null, links: Links | null }>> {
  const v = await versions(db, currencyId, days)
  const today = await localToday(db, currencyId, now)
  const out = days.map((d, i) => ({ version: v[i].dirty || v[i].version == null || d.start + DAY_MS > today ? null : v[i].version, links: null as Links | null }))
  // what the caller already holds needs no reading
  const toRead = days.map((d, i) => ({ d, i })).filter(x => (v[x.i].version != null || v[x.i].dirty) && (out[x.i].version == null || !keep(x.d, out[x.i].version!)))
  // a month of days per query: a year's links in one answer would be a few hundred MB of parsed rows at once
  for (let c = 0; c < toRead.length; c += DAYS_PER_READ) {
    const chunk = toRead.slice(c, c + DAYS_PER_READ)
    const read = await readLinks(db, currencyId, chunk.map(x => x.d))
    chunk.forEach((x, k) => { out[x.i].links = read[k] })
  }
  return out
}

/** What the graph figures need of each account over the period (the circulation report's per-account sums). */
export interface GraphAccount { id: string, biz: boolean, local: boolean, recv: string, paid: string, paidLocal: string, recvMembers?: string }

/**
 * The graph figures of a period (docs/metrics.md), from its links and its accounts' sums: volume on links inside
 * strongly connected parts of the graph, the largest circulation those links contain (max-circulation.ts), each
 * with what the disclosure rules need of it, and rounds 2 and 3 of the local multiplier (local-multiplier.ts).
 */
export function graphFigures (g: PeriodGraph, accounts: GraphAccount[]): GraphFigures {
  const acc = new Map<number, GraphSums>()
  for (const a of accounts) {
    acc.set(numberOf(a.id), {
      biz: a.biz, local: a.local, recv: toMicros(a.recv), paid: toMicros(a.paid), lp: toMicros(a.paidLocal), r1: toMicros(a.recvMembers ?? '0'),
    })
  }
  // the solver in the process answers at once
  return graphFiguresOf(g, acc) as GraphFigures
}

/** An account's GraphAccount sums in millionths, by account number (numberOf). */
export interface GraphSums extends MultiplierSums { paid: bigint }

export interface GraphFigures { cycle: Stat, circulating: Stat, lmR2: string, lmR3: string }

/**
 * graphFigures() over sums already in millionths. `period`: the currency and period these figures are of (any
 * string naming them); when given, the largest circulation starts from where the last computation of the same
 * period ended (kept in the report caches), so after new payments it routes their change rather than the whole
 * graph again. The total does not depend on where it starts. `solve`: where that runs (kept-circulation.ts); the
 * default, in the process, answers at once, and one on a report worker answers with a promise.
 */
export function graphFiguresOf (g: PeriodGraph, acc: Map<number, GraphSums>, period?: string, solve: Solve = keptCirculation): GraphFigures | Promise<GraphFigures> {
  // cycles: only a payer that also received and a payee that also paid can lie on one. Accounts get dense numbers
  // (node) for the arrays below, and the sums are float64 while that is exact: a year's graph has tens of thousands
  // of links, and maps and bigint sums per link were most of these figures' cost
  let top = 0
  for (const no of acc.keys()) if (no > top) top = no
  const sumsOf = new Array<GraphSums | undefined>(top + 1)
  for (const [no, a] of acc) sumsOf[no] = a
  const node = new Int32Array(top + 1).fill(-1)
  const info: GraphSums[] = []
  const nodeOf = (no: number): number => {
    if (node[no] < 0) { node[no] = info.length; info.push(sumsOf[no]!) }
    return node[no]
  }
  const links: number[] = []
  const from = new Int32Array(g.size)
  const to = new Int32Array(g.size)
  for (let e = 0; e < g.size; e++) {
    const p = sumsOf[g.payer[e]]
    const q = sumsOf[g.payee[e]]
    if (p == null || q == null || p.recv <= 0n || q.paid <= 0n) continue
    from[links.length] = nodeOf(g.payer[e])
    to[links.length] = nodeOf(g.payee[e])
    links.push(e)
  }
  const { comp, size } = tarjan(from.subarray(0, links.length), to.subarray(0, links.length), info.length)
  const { onCycle, paid, recv, seen, total, biz } = cycleSums(g, links, from, to, comp, size, info)
  // a circulation runs on cycle links only: every other link carries none of it. Started first: on a report
  // worker (solve) it runs while the figures below and the next period's reads go on here
  const circulating = solve(period, onCycle)
  // awaited below, unless something here throws first: never left an unhandled rejection meanwhile
  if (typeof circulating !== 'bigint') circulating.catch(() => {})
  // both cells describe the accounts on cycle links. Own part: in the cycle volume the larger side; in the
  // circulation what can pass through the account at most: min(paid, received) on cycle links, and never more
  // than half the circulation (each unit going round passes at least two accounts). The largest circulation is
  // unique in total but not in how it is routed, so this bound, not one routing, is what the rules judge
  let max = 0n
  let through = 0n
  let n = 0
  for (let x = 0; x < seen.length; x++) {
    if (seen[x] === 0) continue
    n++
    const p = paid[x]
    const r = recv[x]
    if ((p > r ? p : r) > max) max = p > r ? p : r
    if ((p < r ? p : r) > through) through = p < r ? p : r
  }
  const { r2, r3 } = multiplierRounds(g, acc)
  const figures = (c: bigint): GraphFigures => ({
    cycle: { value: fromMicros(total), n, max: fromMicros(max), biz },
    circulating: { value: fromMicros(c), n, max: fromMicros(through > c / 2n ? c / 2n : through), biz },
    lmR2: r2,
    lmR3: r3,
  })
  return typeof circulating === 'bigint' ? figures(circulating) : circulating.then(figures)
}

/**
 * The links of graphFiguresOf() inside strongly connected components (onCycle, by account number), and over them:
 * each node's paid and received (by the node numbers of from/to), which nodes they touch, the total, and whether a
 * business is among them. Sums are float64 while that is exact (the volumes' sizes below 2^53 in all), else bigint.
 */
function cycleSums (g: PeriodGraph, links: number[], from: Int32Array, to: Int32Array, comp: Int32Array, size: number[], info: GraphSums[]) {
  const cf = new Int32Array(links.length)
  const ct = new Int32Array(links.length)
  // packed when the graph's volumes are (each fits in 64 bits then): what the solver's worker is sent as it is
  const packed = g.volume instanceof BigInt64Array
  const cv: bigint[] | BigInt64Array = packed ? new BigInt64Array(links.length) : new Array<bigint>(links.length)
  let c = 0
  const nodes = info.length
  const paidF = new Float64Array(nodes)
  const recvF = new Float64Array(nodes)
  const seen = new Uint8Array(nodes)
  let totalF = 0
  let sizeF = 0
  let biz = false
  for (let i = 0; i < links.length; i++) {
    const u = from[i]
    const v = to[i]
    if (comp[u] !== comp[v] || size[comp[u]] < 2) continue
    const e = links[i]
    const vol = g.volume[e]
    cf[c] = g.payer[e]; ct[c] = g.payee[e]; cv[c++] = vol
    const f = Number(vol)
    sizeF += f < 0 ? -f : f
    totalF += f
    paidF[u] += f
    recvF[v] += f
    seen[u] = 1; seen[v] = 1
    if (info[u].biz || info[v].biz) biz = true
  }
  const onCycle = { from: cf.subarray(0, c), to: ct.subarray(0, c), vol: cv instanceof BigInt64Array ? cv.subarray(0, c) : cv.slice(0, c) }
  if (sizeF <= Number.MAX_SAFE_INTEGER) {
    return { onCycle, paid: Array.from(paidF, BigInt), recv: Array.from(recvF, BigInt), seen, total: BigInt(totalF), biz }
  }
  const paid = new Array<bigint>(nodes).fill(0n)
  const recv = new Array<bigint>(nodes).fill(0n)
  let total = 0n
  for (let i = 0; i < links.length; i++) {
    const u = from[i]
    const v = to[i]
    if (comp[u] !== comp[v] || size[comp[u]] < 2) continue
    const vol = g.volume[links[i]]
    total += vol; paid[u] += vol; recv[v] += vol
  }
  return { onCycle, paid, recv, seen, total, biz }
}

/** The id of an account number. */
export const accountId = (n: number): string => accountIds[n]

/** For tests: forget everything cached (every report cache: they share report-cache.ts). */
export function clearGraphCache (): void { clearReportCache() }
