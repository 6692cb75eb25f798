import { createHash } from 'node:crypto'
import type pg from 'pg'
import { perturbDay, pRule, type DayCell, type Rules, type Verdict } from '../domain/disclosure.js'
import { bucketEnd, DAY_MS, isoDate, type Bucket, type Day } from '../domain/periods.js'
import { areaOf, isLocal } from '../domain/postcode.js'
import { marginKnown, publishedAccounts, type ExportHistory, type ParticipantRow } from './anonymise.js'
import { accountId, dayLinks, numberOf, type Links } from './graph-cache.js'
import { arrayOf, bigintsBytes, cached, keep, OBJECT_BYTES, packBigints } from './report-cache.js'
import { checkZone, ledgerPosition, type LedgerPosition } from './provenance.js'
import { fromMicros, larger, toMicros, type Stat } from './stat.js'

// Economic payments by payer group x payee group over a range, read from the day buckets that tile it.
// by=sector: a business's sector, "member" for members; by=district: the postcode district of either party.
// Per cell, the accounts described are its payers and payees; an account's own part is the larger of what it
// paid and what it received in the cell (as in the circulation report).
// Besides the range's figures, each cell carries its day cells (value, count, largest account and its part):
// the disclosure layer (src/domain/disclosure.ts, docs/disclosure.md) publishes the range as the sum of its
// perturbed day cells, so that overlapping ranges never difference down to a true value.

export type FlowsBy = 'sector' | 'district'

/** One day of one cell: the day (YYYY-MM-DD), the value, the count, the largest account and its own part; given:
 *  the accounts export gives the margin class of every account of the cell that day (docs/disclosure.md). */
export interface FlowDay { day: string, value: string, count: number, top: string, x1: string, n: number, tops: string[], given: boolean }

export interface FlowFigure {
  payer: string
  payee: string
  volume: Stat
  count: string
  /** own parts of the three largest accounts over the range (for the p% rule), largest first */
  tops: string[]
  days: FlowDay[]
}

// The day cells are computed in code from each day's payer -> payee links (circ_pair_bucket, grain d), with the
// same definitions the SQL had: a cell's accounts are ranked by own part, largest first, ties by account id
// (uuid order); its value and count are the links' sums. A settled day's cells (ended before today, not dirty:
// graph-cache.ts dayLinks) are kept in the report caches' byte budget (report-cache.ts) under the day's version
// and a fingerprint of the grouping (every account's group and kind), so a change of sector or district is never
// read from an old entry. What is kept is the true day-cell inputs; the disclosure layer perturbs them afterwards
// as before, so the published values are the same.

const GROUPS_SQL = `
SELECT a.id::text AS id, p.kind = 'business' AS biz,
       CASE WHEN $2 = 'district' THEN p.district WHEN p.kind = 'member' THEN 'member' ELSE p.sector END AS grp,
       to_char(a.created_at AT TIME ZONE c.time_zone, 'YYYY-MM') AS start, a.status, p.kind, p.district, c.local_areas,
       h.history, h.role_known, h.area_known
  FROM account a JOIN participant p ON p.id = a.participant_id JOIN currency c ON c.id = a.currency_id
  LEFT JOIN account_export_history h ON h.currency_id = a.currency_id AND h.account_id = a.id
 WHERE a.currency_id = $1
 ORDER BY a.id`

/** known: the accounts whose margin class (marginClass: role, or area and locality) the accounts exports give. */
interface Groups { grp: Map<number, string | null>, biz: Map<number, boolean>, fingerprint: string, known: Set<number> }

type GroupRow = ParticipantRow & { local_areas: string[], history: string | null, role_known: boolean | null, area_known: boolean | null }

/** The accounts whose margin class the accounts exports give: an export made now (its k-anonymity withholds it
 *  for some), or an earlier one (account_export_history). */
function knownAccounts (rows: GroupRow[], by: FlowsBy): Set<number> {
  if (rows.length === 0) return new Set()
  const h = createHash('sha256').update(`${by}|${rows[0].local_areas.join(',')}\n`)
  for (const r of rows) h.update(`${r.id}|${r.start}|${r.status}|${r.kind ?? ''}|${r.district ?? ''}|${r.history ?? ''}|${r.role_known === true ? 1 : 0}${r.area_known === true ? 1 : 0}\n`)
  const key = `flowsknown|${h.digest('base64url')}`
  const hit = cached<Set<number>>(key)
  if (hit != null) return hit
  const histories = new Map<string, ExportHistory>()
  for (const r of rows) if (r.history != null) histories.set(r.id, { history: r.history, roleKnown: r.role_known === true, areaKnown: r.area_known === true })
  const published = publishedAccounts(rows, rows[0].local_areas, histories)
  const known = new Set<number>()
  for (const r of rows) if (marginKnown(published.get(r.id)!, histories.get(r.id), by)) known.add(numberOf(r.id))
  keep(key, known, OBJECT_BYTES + known.size * 32)
  return known
}

/** A day's cells, true values, flat (one array per field, cell i's accounts at off[i]..off[i+1]): the day figures
 *  of each cell, and the accounts it describes with what each paid and received in it (for the range's ranking). */
export interface DayFlows {
  payer: Array<string | null>, payee: Array<string | null>, value: ArrayLike<bigint>, count: Int32Array, top: Int32Array, x1: ArrayLike<bigint>,
  n: Int32Array, tops: ArrayLike<bigint>, off: Int32Array, account: Int32Array, paid: ArrayLike<bigint>, recv: ArrayLike<bigint>
}

const cellKey = (payer: string | null, payee: string | null) => `${payer ?? '\u0000'}\u0001${payee ?? '\u0000'}`

/** Accounts ranked as the SQL ranked them: own part descending, then account id ascending. */
function rank (accounts: ArrayLike<number>, own: bigint[], idOf: (no: number) => string = accountId): number[] {
  const ix = own.map((_, i) => i)
  return ix.sort((a, b) => own[a] > own[b] ? -1 : own[a] < own[b] ? 1 : idOf(accounts[a]) < idOf(accounts[b]) ? -1 : 1)
}

/** A day's cells from its links. */
function dayCells (l: Links, g: Groups): DayFlows {
  const cells = new Map<string, { payer: string | null, payee: string | null, value: bigint, count: number, acct: Map<number, { paid: bigint, recv: bigint }> }>()
  for (let k = 0; k < l.payer.length; k++) {
    const pg = g.grp.get(l.payer[k])
    const qg = g.grp.get(l.payee[k])
    if (pg === undefined || qg === undefined) continue // not a participant's account
    const key = cellKey(pg, qg)
    let c = cells.get(key)
    if (c == null) { c = { payer: pg, payee: qg, value: 0n, count: 0, acct: new Map() }; cells.set(key, c) }
    c.value += l.volume[k]; c.count += l.n[k]
    const a = c.acct.get(l.payer[k]); if (a == null) c.acct.set(l.payer[k], { paid: l.volume[k], recv: 0n }); else a.paid += l.volume[k]
    const b = c.acct.get(l.payee[k]); if (b == null) c.acct.set(l.payee[k], { paid: 0n, recv: l.volume[k] }); else b.recv += l.volume[k]
  }
  const list = [...cells.values()]
  const rows = list.reduce((s, c) => s + c.acct.size, 0)
  const d = {
    payer: list.map(c => c.payer), payee: list.map(c => c.payee), count: Int32Array.from(list.map(c => c.count)), top: new Int32Array(list.length),
    n: new Int32Array(list.length), off: new Int32Array(list.length + 1), account: new Int32Array(rows),
  }
  const x1: bigint[] = []; const tops: bigint[] = []; const paid: bigint[] = []; const recv: bigint[] = []
  list.forEach((c, i) => {
    const accounts = [...c.acct.keys()]
    const sums = [...c.acct.values()]
    const own = sums.map(x => larger(x.paid, x.recv))
    const order = rank(accounts, own)
    d.top[i] = accounts[order[0]]; x1.push(own[order[0]]); d.n[i] = accounts.length
    // three ranked own parts per cell, zero where the cell has fewer accounts (n says how many are real)
    for (let r = 0; r < 3; r++) tops.push(r < order.length ? own[order[r]] : 0n)
    d.account.set(accounts, d.off[i]); d.off[i + 1] = d.off[i] + accounts.length
    for (const x of sums) { paid.push(x.paid); recv.push(x.recv) }
  })
  return { ...d, value: packBigints(list.map(c => c.value)), x1: packBigints(x1), tops: packBigints(tops), paid: packBigints(paid), recv: packBigints(recv) }
}

const dayFlowsBytes = (d: DayFlows) => 12 * OBJECT_BYTES + 16 * d.payer.length + d.count.byteLength + d.top.byteLength + d.n.byteLength +
  d.off.byteLength + d.account.byteLength + bigintsBytes(d.value) + bigintsBytes(d.x1) + bigintsBytes(d.tops) + bigintsBytes(d.paid) + bigintsBytes(d.recv)

const NO_FLOWS: DayFlows = {
  payer: [], payee: [], value: [], count: new Int32Array(0), top: new Int32Array(0), x1: [], n: new Int32Array(0), tops: [],
  off: new Int32Array(1), account: new Int32Array(0), paid: [], recv: [],
}

/** The flows of the range the buckets tile (in order, as tile() gives them), in one snapshot of the pool;
 *  `read.position` is set to the last transfer that snapshot includes. */
export async function flowFigures (pool: pg.Pool, currencyId: string, buckets: Bucket[], by: FlowsBy, now = Date.now(),
  read: { position?: LedgerPosition | null } = {}): Promise<FlowFigure[]> {
  return flowRange(await flowInputs(pool, currencyId, buckets, by, now, read))
}

/**
 * What a range's flows are computed from, as plain data (a worker thread computes them: compute-tasks.ts): each
 * day's cells (the day's ISO date beside them), the accounts' sums per cell over the range, which accounts are
 * businesses, and the ids of the accounts named (ranking ties go by id).
 */
export interface FlowInputs {
  days: string[], perDay: DayFlows[], rows: Map<string, CellRows>, biz: Map<number, boolean>, known: Set<number>, ids: Map<number, string>
}

/** The range's figures from its inputs (flowInputs): pure, on whichever thread. */
export function flowRange (x: FlowInputs): FlowFigure[] {
  return rangeFigures(x.days, x.perDay, x.rows, x.biz, x.known, no => x.ids.get(no)!)
}

/** flowFigures() but the last, pure step: what the days hold and the accounts' sums, read in one snapshot. `zone`:
 *  the zone the buckets were cut in; a snapshot that finds the currency in another throws ZoneChanged (checkZone). */
export async function flowInputs (pool: pg.Pool, currencyId: string, buckets: Bucket[], by: FlowsBy, now = Date.now(),
  read: { position?: LedgerPosition | null } = {}, zone?: string): Promise<FlowInputs> {
  if (buckets.length === 0) return { days: [], perDay: [], rows: new Map(), biz: new Map(), known: new Set(), ids: new Map() }
  const from = buckets[0].start
  const to = bucketEnd(buckets[buckets.length - 1])
  const days: Bucket[] = []
  for (let d = from; d < to; d += DAY_MS) days.push({ grain: 'd', start: d })
  const client = await pool.connect()
  let perDay: DayFlows[]
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    await checkZone(client, currencyId, zone)
    const groups = (await client.query<GroupRow & { biz: boolean, grp: string | null }>(GROUPS_SQL, [currencyId, by])).rows
    const g: Groups = { grp: new Map(), biz: new Map(), fingerprint: '', known: knownAccounts(groups, by) }
    const h = createHash('sha256')
    for (const r of groups) {
      const no = numberOf(r.id)
      g.grp.set(no, r.grp); g.biz.set(no, r.biz)
      h.update(`${r.id}|${r.biz ? 1 : 0}|${r.grp ?? '\u0000'}\n`)
    }
    g.fingerprint = h.digest('base64url')
    const keyOf = (d: Bucket, version: string) => `flows|${currencyId}|${by}|${g.fingerprint}|${isoDate(d.start)}@${version}`
    // what the cache holds is taken now: another request may evict it before these links are read
    const held = new Map<Day, DayFlows>()
    const links = await dayLinks(client, currencyId, days, (d, version) => {
      const c = cached<DayFlows>(keyOf(d, version))
      if (c != null) held.set(d.start, c)
      return c != null
    }, now)
    read.position = await ledgerPosition(client, currencyId)
    await client.query('COMMIT')
    perDay = links.map((x, i) => {
      if (x.links == null) return held.get(days[i].start) ?? NO_FLOWS
      const cells = dayCells(x.links, g)
      if (x.version != null) keep(keyOf(days[i], x.version), cells, dayFlowsBytes(cells))
      return cells
    })
    // the accounts' sums over the settled days, merged once per set of their versions (as the graph's prefix);
    // the other days (today, dirty ones) added on top on every call
    const settled = createHash('sha256')
    links.forEach((x, i) => { if (x.version != null) settled.update(`${isoDate(days[i].start)}@${x.version}|`) })
    const prefixKey = `flowsrange|${currencyId}|${by}|${g.fingerprint}|${settled.digest('base64url')}`
    let prefix = cached<Map<string, PackedRows>>(prefixKey)
    if (prefix == null) {
      prefix = packRows(accountRows(perDay.filter((_, i) => links[i].version != null), new Map()))
      keep(prefixKey, prefix, [...prefix.values()].reduce((b, r) => b + 3 * OBJECT_BYTES + r.account.byteLength + bigintsBytes(r.paid) + bigintsBytes(r.recv), OBJECT_BYTES))
    }
    const rows = accountRows(perDay.filter((_, i) => links[i].version == null), prefix)
    const ids = new Map<number, string>()
    for (const r of rows.values()) for (let k = 0; k < r.account.length; k++) ids.set(r.account[k], accountId(r.account[k]))
    for (const d of perDay) for (let j = 0; j < d.top.length; j++) ids.set(d.top[j], accountId(d.top[j]))
    return { days: days.map(d => isoDate(d.start)), perDay, rows, biz: g.biz, known: g.known, ids }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

/** Each account's paid and received in a cell over some days. */
export interface CellRows { account: ArrayLike<number>, paid: ArrayLike<bigint>, recv: ArrayLike<bigint> }

/** The accounts' sums per cell over the given days, on top of `base` (which is not changed). */
function accountRows (list: DayFlows[], base: Map<string, CellRows>): Map<string, CellRows> {
  const out = new Map<string, { at: Map<number, number>, account: number[], paid: bigint[], recv: bigint[] }>()
  for (const d of list) {
    for (let j = 0; j < d.payer.length; j++) {
      const key = cellKey(d.payer[j], d.payee[j])
      let c = out.get(key)
      if (c == null) {
        const b = base.get(key)
        c = { at: new Map(), account: b == null ? [] : arrayOf(b.account), paid: b == null ? [] : arrayOf(b.paid), recv: b == null ? [] : arrayOf(b.recv) }
        c.account.forEach((a, i) => c!.at.set(a, i))
        out.set(key, c)
      }
      for (let k = d.off[j]; k < d.off[j + 1]; k++) {
        const a = c.at.get(d.account[k])
        if (a === undefined) { c.at.set(d.account[k], c.account.length); c.account.push(d.account[k]); c.paid.push(d.paid[k]); c.recv.push(d.recv[k]) } else { c.paid[a] += d.paid[k]; c.recv[a] += d.recv[k] }
      }
    }
  }
  const merged = new Map<string, CellRows>(base)
  for (const [key, c] of out) merged.set(key, c)
  return merged
}

interface PackedRows extends CellRows { account: Int32Array }

/** Rows in typed arrays, to be kept. */
const packRows = (rows: Map<string, CellRows>): Map<string, PackedRows> =>
  new Map([...rows].map(([k, r]) => [k, { account: Int32Array.from(r.account), paid: packBigints(Array.from(r.paid)), recv: packBigints(Array.from(r.recv)) }]))

/** The range's cells from its days' cells (sums, the days in order) and its accounts' rows (ranked over the range). */
function rangeFigures (days: string[], perDay: DayFlows[], rows: Map<string, CellRows>, biz: Map<number, boolean>, known: Set<number>,
  idOf: (no: number) => string): FlowFigure[] {
  interface Cell { payer: string | null, payee: string | null, value: bigint, count: number, days: FlowDay[] }
  const cells = new Map<string, Cell>()
  perDay.forEach((d, i) => {
    const day = days[i]
    for (let j = 0; j < d.payer.length; j++) {
      const key = cellKey(d.payer[j], d.payee[j])
      let c = cells.get(key)
      if (c == null) { c = { payer: d.payer[j], payee: d.payee[j], value: 0n, count: 0, days: [] }; cells.set(key, c) }
      c.value += d.value[j]; c.count += d.count[j]
      const tops: string[] = []
      for (let r = 0; r < Math.min(3, d.n[j]); r++) tops.push(fromMicros(d.tops[3 * j + r]))
      let given = true
      for (let k = d.off[j]; k < d.off[j + 1] && given; k++) given = known.has(d.account[k])
      c.days.push({ day, value: fromMicros(d.value[j]), count: d.count[j], top: idOf(d.top[j]), x1: fromMicros(d.x1[j]), n: d.n[j], tops, given })
    }
  })
  // ordered by payer, then payee, as text in the database's C collation (code units), no group last
  const cmp = (a: string | null, b: string | null) => a === b ? 0 : a == null ? 1 : b == null ? -1 : a < b ? -1 : 1
  return [...cells].sort(([, a], [, b]) => cmp(a.payer, b.payer) || cmp(a.payee, b.payee)).map(([key, c]) => {
    const r = rows.get(key)!
    const account = arrayOf(r.account)
    const own = account.map((_, i) => larger(r.paid[i], r.recv[i]))
    const tops = rank(account, own, idOf).slice(0, 3).map(i => fromMicros(own[i]))
    return {
      payer: c.payer as string,
      payee: c.payee as string,
      volume: { value: fromMicros(c.value), n: account.length, max: tops[0] ?? '0', biz: account.some(a => biz.get(a) === true) },
      count: String(c.count),
      tops,
      days: c.days,
    }
  })
}

export { areaOf }

/**
 * What a researcher knows of a flows group exactly from elsewhere (the exports' columns, the circulation report):
 * members vs businesses (the exports say nothing of a business's sector); the postcode area and whether the
 * district is local (the exports give no district).
 */
export function marginClass (by: FlowsBy, grp: string, localAreas: readonly string[]): string {
  if (by === 'sector') return grp === 'member' ? 'member' : 'business'
  return `${areaOf(grp)}:${isLocal(grp, localAreas) ? 'local' : 'non-local'}`
}

export interface PublishedFlow {
  verdict: Verdict | null
  value: string
  count: string
  /** hidden in this range (whatever the rules say) for a day it could not be protected on otherwise: its noise could
   *  not be balanced its own way, or it was alone in its margin group, the exports did not give it, and it failed the
   *  rules on its own */
  unbalanced?: true
}

/**
 * The flows as published (docs/disclosure.md): each cell is hidden over the range by the threshold and p% rules,
 * and its value and count are the sums of its day cells' perturbed values (src/domain/disclosure.ts perturbDay),
 * so any difference of published ranges is a sum of perturbed day cells, never a true value.
 */
export function publishFlows (key: Buffer, figures: FlowFigure[], by: FlowsBy, localAreas: readonly string[], rules: Rules, decimals: number): PublishedFlow[] {
  const verdicts = figures.map(f => pRule(f.volume.n, toMicros(f.volume.value), f.tops.map(toMicros), rules))
  if (!rules.perturb) return figures.map((f, i) => ({ verdict: verdicts[i], value: f.volume.value, count: f.count }))
  const days = new Map<string, Array<{ i: number, cell: DayCell }>>()
  figures.forEach((f, i) => {
    const group = `${marginClass(by, f.payer, localAreas)}>${marginClass(by, f.payee, localAreas)}`
    for (const d of f.days) {
      const value = toMicros(d.value)
      const tops = d.tops.map(toMicros)
      const rest = value - tops.slice(0, 3).reduce((a, b) => a + b, 0n)
      const cell: DayCell = {
        cell: `flows|${by}|${f.payer}|${f.payee}`, group, day: d.day, value, count: d.count, top: d.top, x1: toMicros(d.x1),
        n: d.n, rest: rest > 0n ? rest : 0n, sensitive: pRule(d.n, value, tops, rules) != null, given: d.given,
      }
      const list = days.get(d.day)
      if (list == null) days.set(d.day, [{ i, cell }]); else list.push({ i, cell })
    }
  })
  // the currency's minor unit in micros: the noises are whole units of it (disclosure.ts, raw)
  const unit = 10n ** BigInt(6 - decimals)
  const value = figures.map(() => 0n)
  const count = figures.map(() => 0)
  // a day whose noise could not be balanced without going against a cell's direction hides that cell (and its
  // partner) in every range containing the day, as does a sensitive day the cell had alone in its group and the
  // exports do not give: src/domain/disclosure.ts
  const hidden: Array<Verdict | null> = figures.map(() => null)
  for (const list of days.values()) {
    const p = perturbDay(key, list.map(x => x.cell), rules, unit)
    list.forEach((x, k) => {
      value[x.i] += p[k].value
      count[x.i] += p[k].count
      if (p[k].hide != null) hidden[x.i] ??= { reason: p[k].hide, complementary: true }
    })
  }
  return figures.map((_, i) => {
    const out: PublishedFlow = { verdict: verdicts[i] ?? hidden[i], value: fromMicros(value[i]), count: String(count[i]) }
    if (hidden[i] != null) out.unbalanced = true
    return out
  })
}
