import { createHash } from 'node:crypto'
import type pg from 'pg'
import { bucketEnd, DAY_MS, isoDate, type Bucket } from '../domain/periods.js'
import { accountId, dayLinks, numberOf, periodGraph, type Links } from './graph-cache.js'
import { fromMicros, type Stat } from './stat.js'

// Economic payments by payer group x payee group over a range, read from the day buckets that tile it.
// by=sector: a business's sector, "member" for members; by=district: the postcode district of either party.
// Per cell, the accounts described are its payers and payees; an account's own part is the larger of what it
// paid and what it received in the cell (as in the circulation report).
// Besides the range's figures, each cell carries its day cells (value, count, largest account and its part):
// the disclosure layer (src/domain/disclosure.ts, docs/disclosure.md) publishes the range as the sum of its
// perturbed day cells, so that overlapping ranges never difference down to a true value.
//
// Both come from the payment graph's links (circ_pair_bucket) without reading the range's links each time: the
// range's own figures from its links as src/reports/graph-cache.ts keeps them, the day cells from each day's
// links, kept per settled day (with the accounts' groups they were made with). A report after new payments reads
// today's links, not the year's.

export type FlowsBy = 'sector' | 'district'

/** One day of one cell: the day (YYYY-MM-DD), the value, the count, the largest account and its own part. */
export interface FlowDay { day: string, value: string, count: number, top: string, x1: string }

export interface FlowFigure {
  payer: string
  payee: string
  volume: Stat
  count: string
  /** own parts of the three largest accounts over the range (for the p% rule), largest first */
  tops: string[]
  days: FlowDay[]
}

const GROUPS_SQL = `
SELECT a.id::text AS id, p.kind = 'business' AS biz,
       CASE WHEN $2 = 'district' THEN p.district WHEN p.kind = 'member' THEN 'member' ELSE p.sector END AS grp
  FROM account a JOIN participant p ON p.id = a.participant_id
 WHERE a.currency_id = $1`

interface DayCell { payer: string, payee: string, volume: bigint, n: number, top: string, x1: bigint }
/** Day cells of settled days, by currency, grouping and day; `groups` is the grouping they were made with. */
const dayCache = new Map<string, { version: string, groups: string, cells: DayCell[] }>()
const MAX_DAYS = 20_000

const byAccount = (a: string, b: string) => a < b ? -1 : a > b ? 1 : 0

/** The cells of one day: volume, payments, and the account with the largest own part (paid or received). */
function dayCells (l: Links, group: Map<number, { grp: string, biz: boolean }>): DayCell[] {
  const cells = new Map<string, { payer: string, payee: string, volume: bigint, n: number, own: Map<number, { paid: bigint, recv: bigint }> }>()
  for (let k = 0; k < l.payer.length; k++) {
    const p = group.get(l.payer[k])
    const q = group.get(l.payee[k])
    if (p == null || q == null || p.grp == null || q.grp == null) continue
    const key = `${p.grp}\u0000${q.grp}`
    let c = cells.get(key)
    if (c == null) { c = { payer: p.grp, payee: q.grp, volume: 0n, n: 0, own: new Map() }; cells.set(key, c) }
    c.volume += l.volume[k]; c.n += l.n[k]
    const a = c.own.get(l.payer[k]) ?? { paid: 0n, recv: 0n }; a.paid += l.volume[k]; c.own.set(l.payer[k], a)
    const b = c.own.get(l.payee[k]) ?? { paid: 0n, recv: 0n }; b.recv += l.volume[k]; c.own.set(l.payee[k], b)
  }
  return [...cells.values()].map(c => {
    let top = ''
    let x1 = -1n
    for (const [no, o] of c.own) {
      const own = o.paid > o.recv ? o.paid : o.recv
      const id = accountId(no)
      if (own > x1 || (own === x1 && byAccount(id, top) < 0)) { x1 = own; top = id }
    }
    return { payer: c.payer, payee: c.payee, volume: c.volume, n: c.n, top, x1 }
  })
}

/** The flows of the range the buckets tile (in order, as tile() gives them), in one snapshot. */
export async function flowFigures (pool: pg.Pool, currencyId: string, buckets: Bucket[], by: FlowsBy): Promise<FlowFigure[]> {
  if (buckets.length === 0) return []
  const client = await pool.connect()
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const out = await figures(client, currencyId, buckets, by)
    await client.query('COMMIT')
    return out
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

async function figures (db: pg.PoolClient, currencyId: string, buckets: Bucket[], by: FlowsBy): Promise<FlowFigure[]> {
  const rows = (await db.query<{ id: string, biz: boolean, grp: string | null }>(GROUPS_SQL, [currencyId, by])).rows
  const group = new Map(rows.map(r => [numberOf(r.id), { grp: r.grp as string, biz: r.biz }]))
  // the grouping the cached day cells were made with: a participant who moves or changes sector changes it
  const groups = createHash('sha256').update(rows.map(r => `${r.id} ${r.grp ?? ''} ${r.biz ? 1 : 0}`).sort().join('\n')).digest('base64')

  // the range's own figures, from its links: per cell, each account's paid and received
  const g = await periodGraph(db, currencyId, buckets)
  const cells = new Map<string, { payer: string, payee: string, volume: bigint, n: number, own: Map<number, { paid: bigint, recv: bigint }>, days: FlowDay[] }>()
  for (let e = 0; e < g.size; e++) {
    const p = group.get(g.payer[e])
    const q = group.get(g.payee[e])
    if (p == null || q == null || p.grp == null || q.grp == null) continue
    const key = `${p.grp}\u0000${q.grp}`
    let c = cells.get(key)
    if (c == null) { c = { payer: p.grp, payee: q.grp, volume: 0n, n: 0, own: new Map(), days: [] }; cells.set(key, c) }
    c.volume += g.volume[e]; c.n += g.n[e]
    const a = c.own.get(g.payer[e]) ?? { paid: 0n, recv: 0n }; a.paid += g.volume[e]; c.own.set(g.payer[e], a)
    const b = c.own.get(g.payee[e]) ?? { paid: 0n, recv: 0n }; b.recv += g.volume[e]; c.own.set(g.payee[e], b)
  }

  // the day cells: settled days from memory when made with the same grouping, the rest from their links
  const from = buckets[0].start
  const to = bucketEnd(buckets[buckets.length - 1])
  const days: Bucket[] = []
  for (let d = from; d < to; d += DAY_MS) days.push({ grain: 'd', start: d })
  const key = (d: Bucket) => `${currencyId}|${by}|${isoDate(d.start)}`
  const held = (d: Bucket, version: string) => { const c = dayCache.get(key(d)); return c != null && c.version === version && c.groups === groups }
  const links = await dayLinks(db, currencyId, days, held)
  for (const [i, d] of days.entries()) {
    const { version, links: l } = links[i]
    let dc: DayCell[]
    if (l == null && version != null && held(d, version)) dc = dayCache.get(key(d))!.cells
    else if (l == null) continue
    else {
      dc = dayCells(l, group)
      if (version != null) {
        dayCache.delete(key(d)); dayCache.set(key(d), { version, groups, cells: dc })
        for (const k of dayCache.keys()) { if (dayCache.size <= MAX_DAYS) break; dayCache.delete(k) }
      }
    }
    const day = isoDate(d.start)
    for (const x of dc) cells.get(`${x.payer}\u0000${x.payee}`)?.days.push({ day, value: fromMicros(x.volume), count: x.n, top: x.top, x1: fromMicros(x.x1) })
  }

  return [...cells.values()]
    .filter(c => c.days.length > 0)
    .sort((a, b) => byAccount(a.payer, b.payer) || byAccount(a.payee, b.payee))
    .map(c => {
      const own = [...c.own.entries()].map(([no, o]) => ({ id: accountId(no), own: o.paid > o.recv ? o.paid : o.recv }))
        .sort((a, b) => a.own > b.own ? -1 : a.own < b.own ? 1 : byAccount(a.id, b.id))
      const tops = own.slice(0, 3).map(o => fromMicros(o.own))
      const biz = [...c.own.keys()].some(no => group.get(no)!.biz)
      return {
        payer: c.payer,
        payee: c.payee,
        volume: { value: fromMicros(c.volume), n: own.length, max: tops[0] ?? '0', biz },
        count: String(c.n),
        tops,
        days: c.days,
      }
    })
}
