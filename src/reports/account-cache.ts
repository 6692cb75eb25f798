import { isoDate, periodDays, tile, type Bucket, type Day, type Grain, type Period } from '../domain/periods.js'
import { bucketRows, grainLiteral, numberOf, periodPieces, shared, tailKey, underWay, type GraphSums, type Pieces, type SeenVersions, type TailReads } from './graph-cache.js'
import { BIGINT_BYTES, cached, keep, MAP_ENTRY_BYTES, OBJECT_BYTES } from './report-cache.js'
import { tailRows, type Changed, type DrainsSeen } from './tail-rows.js'
import { larger, type Stat } from './stat.js'

// The per-account half of a report period's figures (what PERIOD_SQL in circulation.report.ts computes), kept
// like the links in graph-cache.ts, so that a report after new payments reads today's rows, not the period's.
//
// Every figure of a period is a function of one row per account: its flows over the period's buckets (issued,
// redeemed, payments by kind, locality), its balance change and balance-time integral over them, and its
// opening balance (the balance changes of every bucket before the period). Each of those is a sum over buckets,
// so it splits exactly as the links do (graph-cache.ts, periodPieces): the settled pieces of the period and of
// the time before it are summed once, in the database, and kept in memory under the list of their versions (the
// prefix); the tail (today, dirty buckets) is read on every use and added on top. The figures are then computed
// here from the rows, in exact integer arithmetic (millionths, and 10^-12 for the integral), with the same
// definitions as the SQL they replace; Gini and the top-10% share divide as PostgreSQL's numeric does, digit for
// digit. test/reports/property.test.ts holds the result against a plain recomputation.
//
// Memory: a prefix is one row of COLS bigints per account with any movement (about 500 bytes of heap), kept in the
// report caches' one byte budget (report-cache.ts); what does not fit is summed in the database again.

const SCALE = 12
const ONE = 10n ** BigInt(SCALE)
const TO_MICROS = 10n ** BigInt(SCALE - 6)

// columns of a row: flows over the period, d (balance change), w (sum of the buckets' w_bal), de (sum of d_bal x
// the bucket's end in seconds: with d, the integral to any period end), h (opening balance), hIssued and
// hRedeemed (issued and redeemed before the period: with issued and redeemed, the totals since the start)
const C = { issued: 0, redeemed: 1, paidM: 2, paidB: 3, nPaid: 4, recvM: 5, recvB: 6, paidLl: 7, recvLl: 8, paidLp: 9, d: 10, w: 11, de: 12, h: 13, hIssued: 14, hRedeemed: 15 } as const
const COLS = 16
type Row = bigint[]
const ZERO_ROW: Row = new Array<bigint>(COLS).fill(0n)

/** One account of the currency, as the figures need it (read once per report snapshot). */
export interface AccountInfo {
  no: number
  participantId: string | null
  /** a participant's account or the paper account: money in circulation */
  m: boolean
  biz: boolean
  mem: boolean
  /** the participant's creation, ms; null for system accounts */
  pCreated: number | null
  local: boolean
}

export const ACCOUNTS_SQL = `
SELECT a.id::text AS id, a.participant_id::text AS participant_id, a.participant_id IS NOT NULL OR a.system_kind = 'paper' AS m,
       COALESCE(p.kind = 'business', false) AS biz, COALESCE(p.kind = 'member', false) AS mem,
       -- milliseconds, cut as Date.getTime() cuts (a float8 is parsed as a number; a Date is parsed from text, slowly)
       floor(extract(epoch FROM p.created_at) * 1000)::float8 AS p_created,
       COALESCE(p.district = ANY (c.local_areas) OR regexp_replace(p.district, '[0-9].*$', '') = ANY (c.local_areas), false) AS local
  FROM account a JOIN currency c ON c.id = a.currency_id LEFT JOIN participant p ON p.id = a.participant_id
 WHERE a.currency_id = $1`

interface Query { query: (text: string, values?: unknown[]) => Promise<{ rows: any[] }> }

export async function readAccounts (db: Query, currencyId: string): Promise<AccountInfo[]> {
  const rows = (await db.query(ACCOUNTS_SQL, [currencyId])).rows as Array<{
    id: string, participant_id: string | null, m: boolean, biz: boolean, mem: boolean, p_created: number | null, local: boolean
  }>
  return rows.map(r => ({
    no: numberOf(r.id), participantId: r.participant_id, m: r.m, biz: r.biz, mem: r.mem,
    pCreated: r.p_created, local: r.local,
  }))
}

const SUM_COLUMNS = `sum(r.issued)::text AS issued, sum(r.redeemed)::text AS redeemed, sum(r.paid_m)::text AS paid_m,
       sum(r.paid_b)::text AS paid_b, sum(r.n_paid)::text AS n_paid, sum(r.recv_m)::text AS recv_m,
       sum(r.recv_b)::text AS recv_b, sum(r.paid_ll)::text AS paid_ll, sum(r.recv_ll)::text AS recv_ll,
       sum(r.paid_lp)::text AS paid_lp, sum(r.d_bal)::text AS d, sum(r.w_bal)::text AS w,
       sum(r.d_bal * e.at)::text AS de`
const ROW_COLUMNS = 'r.grain, r.start, r.account_id, r.issued, r.redeemed, r.paid_m, r.paid_b, r.n_paid, r.recv_m, r.recv_b, r.paid_ll, r.recv_ll, r.paid_lp, r.d_bal, r.w_bal'

const MONTHS_BEFORE_SQL = `
SELECT start::text AS start FROM circ_bucket_summary WHERE currency_id = $1 AND grain = 'm' AND start < $2::date
UNION
SELECT start::text FROM circ_dirty WHERE currency_id = $1 AND grain = 'm' AND start < $2::date`

/** A decimal string with at most SCALE decimals as an integer count of 10^-SCALE (exact). */
function fixed (s: string): bigint {
  const dot = s.indexOf('.')
  if (dot < 0) return BigInt(s) * ONE
  const frac = s.slice(dot + 1)
  if (frac.length > SCALE && /[1-9]/.test(frac.slice(SCALE))) throw new Error(`more than ${SCALE} decimals: ${s}`)
  return BigInt(s.slice(0, dot) + frac.slice(0, SCALE).padEnd(SCALE, '0'))
}

/** v x 10^-scale as a decimal string with `dp` decimals (v a multiple of 10^(scale - dp)). */
function text (v: bigint, scale: number, dp: number): string {
  const neg = v < 0n
  let a = neg ? -v : v
  a /= 10n ** BigInt(scale - dp)
  const s = a.toString().padStart(dp + 1, '0')
  const out = dp === 0 ? s : `${s.slice(0, s.length - dp)}.${s.slice(s.length - dp)}`
  return neg && a !== 0n ? `-${out}` : out
}
const money = (v: bigint) => text(v, SCALE, 6)

/** Per-account rows (by account number) over the given period buckets and the buckets before them. */
async function readSums (db: Query, currencyId: string, flows: Bucket[], before: Bucket[]): Promise<Map<number, Row>> {
  const out = new Map<number, Row>()
  if (flows.length === 0 && before.length === 0) return out
  // one row per account and side: f, the period's buckets (every column), or before it (only the balance change)
  const f = bucketRows('circ_account_bucket', `${ROW_COLUMNS}, true AS f`, flows, 2)
  const b = bucketRows('circ_account_bucket', `${ROW_COLUMNS}, false AS f`, before, 2 + f.params.length)
  // each bucket's end (as seconds) computed once per bucket, not per row: with the zone read by a subquery,
  // PostgreSQL cannot inline circ_bucket_end and calls it as a function, microseconds a call, and a day's tail
  // alone has a row per account
  const all = [...new Map([...flows, ...before].map(x => [`${x.grain}${x.start}`, x])).values()]
  const ends = 2 + f.params.length + b.params.length
  const rows = (await db.query(`
    WITH e AS MATERIALIZED (
      SELECT x.grain, x.start, extract(epoch FROM circ_bucket_end(x.start, x.grain, (SELECT time_zone FROM currency WHERE id = $1))) AS at
        FROM unnest($${ends}::text[], $${ends + 1}::date[]) AS x (grain, start))
    SELECT r.account_id::text AS id, r.f, ${SUM_COLUMNS}
      FROM (${[f.sql, b.sql].filter(x => x !== '').join('\n UNION ALL\n')}) r
      JOIN e ON e.grain = r.grain AND e.start = r.start
     GROUP BY 1, 2`, [currencyId, ...f.params, ...b.params, all.map(x => x.grain), all.map(x => isoDate(x.start))])).rows as Array<Record<string, string> & { f: boolean }>
  for (const r of rows) {
    const no = numberOf(r.id)
    let row = out.get(no)
    if (row == null) { row = ZERO_ROW.slice(); out.set(no, row) }
    if (r.f) {
      row[C.issued] = fixed(r.issued); row[C.redeemed] = fixed(r.redeemed); row[C.paidM] = fixed(r.paid_m)
      row[C.paidB] = fixed(r.paid_b); row[C.nPaid] = BigInt(r.n_paid); row[C.recvM] = fixed(r.recv_m)
      row[C.recvB] = fixed(r.recv_b); row[C.paidLl] = fixed(r.paid_ll); row[C.recvLl] = fixed(r.recv_ll)
      row[C.paidLp] = fixed(r.paid_lp); row[C.d] = fixed(r.d); row[C.w] = fixed(r.w); row[C.de] = fixed(r.de)
    } else {
      row[C.h] = fixed(r.d); row[C.hIssued] = fixed(r.issued); row[C.hRedeemed] = fixed(r.redeemed)
    }
  }
  return out
}

/** One account's row of one bucket (tail-rows.ts): the flow columns, d, w and de of a Row (C.issued to C.de). */
const RAW = C.de + 1
const RAW_BYTES = MAP_ENTRY_BYTES + OBJECT_BYTES + RAW * BIGINT_BYTES

/** The account rows of bucket b that drains after `since` wrote, and how many the bucket holds (tail-rows.ts). */
async function accountRowsSince (db: Query, currencyId: string, b: Bucket, since: bigint): Promise<Changed<Row>> {
  const g = grainLiteral(b)
  const res = (await db.query(`
    WITH e AS MATERIALIZED (SELECT extract(epoch FROM circ_bucket_end($2::date, ${g}, (SELECT time_zone FROM currency WHERE id = $1))) AS at)
    SELECT c.n::int AS count, r.account_id::text AS id, r.issued::text AS issued, r.redeemed::text AS redeemed,
           r.paid_m::text AS paid_m, r.paid_b::text AS paid_b, r.n_paid::text AS n_paid, r.recv_m::text AS recv_m,
           r.recv_b::text AS recv_b, r.paid_ll::text AS paid_ll, r.recv_ll::text AS recv_ll, r.paid_lp::text AS paid_lp,
           r.d_bal::text AS d, r.w_bal::text AS w, (r.d_bal * e.at)::text AS de
      FROM (SELECT count(*) AS n FROM circ_account_bucket WHERE currency_id = $1 AND grain = ${g} AND start = $2::date) c
      CROSS JOIN e
      LEFT JOIN circ_account_bucket r ON r.currency_id = $1 AND r.grain = ${g} AND r.start = $2::date AND r.seq > $3`,
  [currencyId, isoDate(b.start), since.toString()])).rows as Array<Record<string, string> & { count: number, id: string | null }>
  const rows: Array<[number, Row]> = []
  for (const r of res) {
    if (r.id == null) continue
    const row = new Array<bigint>(RAW)
    row[C.issued] = fixed(r.issued); row[C.redeemed] = fixed(r.redeemed); row[C.paidM] = fixed(r.paid_m)
    row[C.paidB] = fixed(r.paid_b); row[C.nPaid] = BigInt(r.n_paid); row[C.recvM] = fixed(r.recv_m)
    row[C.recvB] = fixed(r.recv_b); row[C.paidLl] = fixed(r.paid_ll); row[C.recvLl] = fixed(r.recv_ll)
    row[C.paidLp] = fixed(r.paid_lp); row[C.d] = fixed(r.d); row[C.w] = fixed(r.w); row[C.de] = fixed(r.de)
    rows.push([numberOf(r.id), row])
  }
  return { rows, count: res[0]?.count ?? 0 }
}

/** readSums() over the tail's buckets: each still under way (by `today`) brought forward from what the last report
 *  kept (tail-rows.ts), the others (dirty settled buckets) read whole in one query. */
async function tailSums (db: Query, currencyId: string, flows: Bucket[], before: Bucket[], today: Day, drains: DrainsSeen): Promise<Map<number, Row>> {
  const live = (b: Bucket) => underWay(b, today)
  const out = await readSums(db, currencyId, flows.filter(b => !live(b)), before.filter(b => !live(b)))
  const rowOf = (no: number): Row => {
    let row = out.get(no)
    if (row == null) { row = ZERO_ROW.slice(); out.set(no, row) }
    return row
  }
  for (const [bs, f] of [[flows, true], [before, false]] as const) {
    for (const b of bs.filter(live)) {
      const rows = await tailRows('sums', currencyId, b, drains, async since => await accountRowsSince(db, currencyId, b, since), RAW_BYTES)
      for (const [no, raw] of rows) {
        const row = rowOf(no)
        if (f) {
          for (let c = 0; c < RAW; c++) row[c] += raw[c]
        } else {
          row[C.h] += raw[C.d]; row[C.hIssued] += raw[C.issued]; row[C.hRedeemed] += raw[C.redeemed]
        }
      }
    }
  }
  return out
}

/** A prefix's heap: per account a Map entry, an array of COLS slots and its bigints. */
const ROW_BYTES = MAP_ENTRY_BYTES + OBJECT_BYTES + COLS * BIGINT_BYTES

/**
 * Every account's row over period p, as of the caller's snapshot: the settled pieces from memory (summed in the
 * database once per set of versions), the tail read now. flowPieces: the period's own pieces (the graph uses the
 * same); today: the currency's local day (graph-cache.ts, localToday), which the pieces before the period are
 * cut at as the period's were. drains: what the snapshot has seen of the drains (tail-rows.ts, readDrains), when
 * the caller has read it: the tail's buckets still under way are then brought forward from what the last report
 * kept rather than read whole.
 */
export async function periodSums (db: Query, currencyId: string, p: Period, flowPieces: Pieces, today: Day, reads?: TailReads, seen?: SeenVersions,
  drains?: DrainsSeen): Promise<Map<number, Row>> {
  // before the period: every month before the period's month, then the weeks and days of that month up to it
  // (civil dates: the currency's local days)
  const first = periodDays(p).start
  const x = new Date(first)
  const ms: Day = Date.UTC(x.getUTCFullYear(), x.getUTCMonth(), 1)
  const months = (await db.query(MONTHS_BEFORE_SQL, [currencyId, isoDate(ms)])).rows as Array<{ start: string }>
  const before = [...months.map(r => ({ grain: 'm' as Grain, start: Date.parse(`${r.start}T00:00:00Z`) })), ...(ms < first ? tile(ms, first) : [])]
  const beforePieces = await periodPieces(db, currencyId, before, today, seen)

  const key = `sums|${flowPieces.key}#${beforePieces.key}`
  let prefix = cached<Map<number, Row>>(key)
  if (prefix == null) {
    prefix = await readSums(db, currencyId, flowPieces.settled, beforePieces.settled)
    keep(key, prefix, OBJECT_BYTES + prefix.size * ROW_BYTES)
  }
  if (flowPieces.tail.length === 0 && beforePieces.tail.length === 0) return prefix
  // the tail on top, without touching the cached prefix
  const tail = await shared(reads, `sums|${currencyId}|${tailKey(flowPieces.tail)}#${tailKey(beforePieces.tail)}`,
    async () => drains == null
      ? await readSums(db, currencyId, flowPieces.tail, beforePieces.tail)
      : await tailSums(db, currencyId, flowPieces.tail, beforePieces.tail, today, drains))
  if (tail.size === 0) return prefix
  const out = new Map(prefix)
  for (const [no, t] of tail) {
    const pre = prefix.get(no)
    if (pre == null) { out.set(no, t); continue }
    const sum = pre.slice()
    for (let c = 0; c < COLS; c++) sum[c] += t[c]
    out.set(no, sum)
  }
  return out
}

/** The per-account figures of a period (every figure but the graph's and `open`), and what the graph needs. */
export interface AccountFigures {
  issued: Stat, redeemed: Stat, volume: Stat, count: string, mm: Stat, mb: Stat, bm: Stat, bb: Stat, respend: Stat,
  spend: string, local: Stat, lmR1: Stat, issuedToDate: Stat, redeemedToDate: Stat, supply: Stat, supplyIntegral: Stat,
  integralMember: Stat, integralBusiness: Stat, active: number,
  holders: Stat, gini: string | null, top10: string | null
  graph: Map<number, GraphSums>
}

/** One statistic summed over a period's accounts (see accountFigures). */
class Acc {
  v = 0n
  n = 0
  max: bigint | null = null
  biz = false
  add (value: bigint): void { if (value !== 0n) this.v += value }
  /** a participant account that contributes, `own` its part, `biz` a business's */
  see (own: bigint, biz: boolean): void {
    this.n++
    if (this.max === null || own > this.max) this.max = own
    if (biz) this.biz = true
  }

  stat (dp = 6): Stat { return { value: text(this.v, SCALE, dp), n: this.n, max: this.max == null ? '0' : text(this.max, SCALE, dp), biz: this.biz } }
}
const abs = (v: bigint) => v < 0n ? -v : v

/**
 * PERIOD_SQL's figures in code. A statistic sums its value over every account (system accounts included, as the
 * money they hold is in the totals) and describes the participant accounts it counts, the largest of them by
 * their own part. One pass over the accounts, each row's columns and derived sums taken once: this runs for
 * every period a report computes, over every account, and each bigint operation allocates.
 */
export function accountFigures (accounts: AccountInfo[], sums: Map<number, Row>, p: Period): AccountFigures {
  const end = BigInt(p.end / 1000)
  const len = BigInt((p.end - p.start) / 1000)
  const issued = new Acc(); const redeemed = new Acc(); const volume = new Acc()
  const mm = new Acc(); const mb = new Acc(); const bm = new Acc(); const bb = new Acc(); const respend = new Acc()
  const local = new Acc(); const lmR1 = new Acc(); const issuedToDate = new Acc(); const redeemedToDate = new Acc()
  const supply = new Acc(); const supplyIntegral = new Acc(); const integralMember = new Acc(); const integralBusiness = new Acc()
  let count = 0n; let spend = 0n; let active = 0
  const graph = new Map<number, GraphSums>()
  // concentration: participants that existed by the period's end, each with its accounts' closing balance
  const parts = new Map<string, { bal: bigint, biz: boolean }>()

  for (const a of accounts) {
    const r = sums.get(a.no) ?? ZERO_ROW
    const part = a.participantId != null
    const { biz, mem } = a
    const rIssued = r[C.issued]; const rRedeemed = r[C.redeemed]
    const paidM = r[C.paidM]; const paidB = r[C.paidB]; const recvM = r[C.recvM]; const recvB = r[C.recvB]
    const paidLl = r[C.paidLl]; const recvLl = r[C.recvLl]
    const h = r[C.h]; const d = r[C.d]
    const paid = paidM + paidB
    const recv = recvM + recvB
    const bal = h + d
    // the integral: opening x length, plus each bucket's own part and its change held to the period's end
    const integral = h === 0n && d === 0n && r[C.w] === 0n && r[C.de] === 0n ? 0n : h * len + r[C.w] + d * end - r[C.de]
    const toDateIssued = r[C.hIssued] + rIssued
    const toDateRedeemed = r[C.hRedeemed] + rRedeemed

    issued.add(rIssued)
    redeemed.add(rRedeemed)
    volume.add(paid)
    if (mem) { mm.add(paidM); mb.add(paidB); integralMember.add(integral) }
    if (biz) { bm.add(paidM); bb.add(paidB); respend.add(paid + rRedeemed); integralBusiness.add(integral); spend += paid }
    local.add(paidLl)
    if (biz && a.local) lmR1.add(recvM)
    issuedToDate.add(toDateIssued)
    redeemedToDate.add(toDateRedeemed)
    if (a.m) { supply.add(bal); supplyIntegral.add(integral) }

    const nPaid = r[C.nPaid]
    count += nPaid
    if (recv !== 0n || paid !== 0n) {
      graph.set(a.no, { biz, local: a.local, recv: recv / TO_MICROS, paid: paid / TO_MICROS, lp: r[C.paidLp] / TO_MICROS, r1: recvM / TO_MICROS })
    }
    if (!part) continue
    if (nPaid > 0n) active++
    if (rIssued !== 0n) issued.see(abs(rIssued), biz)
    if (rRedeemed !== 0n) redeemed.see(abs(rRedeemed), biz)
    if (paid !== 0n || recv !== 0n) volume.see(larger(paid, recv), biz)
    if (mem && (paidM !== 0n || recvM !== 0n)) mm.see(larger(paidM, recvM), biz)
    if ((mem && paidB !== 0n) || (biz && recvM !== 0n)) mb.see(mem ? paidB : recvM, biz)
    if ((biz && paidM !== 0n) || (mem && recvB !== 0n)) bm.see(biz ? paidM : recvB, biz)
    if (biz && (paidB !== 0n || recvB !== 0n)) bb.see(larger(paidB, recvB), biz)
    if (biz && (paid !== 0n || rRedeemed !== 0n)) respend.see(paid + rRedeemed, biz)
    if (paidLl !== 0n || recvLl !== 0n) local.see(larger(paidLl, recvLl), biz)
    if (biz && a.local && recvM !== 0n) lmR1.see(recvM, biz)
    if (toDateIssued !== 0n) issuedToDate.see(abs(toDateIssued), biz)
    if (toDateRedeemed !== 0n) redeemedToDate.see(abs(toDateRedeemed), biz)
    if (bal !== 0n) supply.see(abs(bal), biz)
    if (integral !== 0n) {
      supplyIntegral.see(abs(integral), biz)
      if (mem) integralMember.see(abs(integral), biz)
      if (biz) integralBusiness.see(abs(integral), biz)
    }
    if (a.pCreated == null || a.pCreated >= p.end) continue
    const q = parts.get(a.participantId!)
    if (q == null) parts.set(a.participantId!, { bal, biz }); else { q.bal += bal; q.biz ||= biz }
  }

  const ranked = [...parts.values()].sort((a, b) => a.bal < b.bal ? -1 : a.bal > b.bal ? 1 : 0)
  let total = 0n; let weighted = 0n; let hn = 0; let hmax: bigint | null = null; let hbiz = false
  ranked.forEach((q, i) => {
    total += q.bal
    weighted += BigInt(i + 1) * q.bal
    if (q.bal !== 0n) { hn++; if (hmax == null || abs(q.bal) > hmax) hmax = abs(q.bal); if (q.biz) hbiz = true }
  })
  const cnt = BigInt(ranked.length)
  let gini: string | null = null
  let top10: string | null = null
  if (ranked.length > 0 && total !== 0n) {
    // 2 x sum(r x bal) / (count x sum(bal)) - (count + 1) / count, each division as numeric divides
    const micros = (v: bigint): Num => ({ v: v / TO_MICROS, scale: 6 })
    const g = sub(div(micros(2n * weighted), micros(cnt * total)), div({ v: cnt + 1n, scale: 0 }, { v: cnt, scale: 0 }))
    gini = numText(g)
    const k = (ranked.length + 9) / 10 | 0 // ceil(count / 10)
    let top = 0n
    for (let i = ranked.length - k; i < ranked.length; i++) top += ranked[i].bal
    top10 = numText(div(micros(top), micros(total)))
  }

  return {
    issued: issued.stat(),
    redeemed: redeemed.stat(),
    volume: volume.stat(),
    count: count.toString(),
    mm: mm.stat(),
    mb: mb.stat(),
    bm: bm.stat(),
    bb: bb.stat(),
    respend: respend.stat(),
    spend: money(spend),
    local: local.stat(),
    // round 1 of the local multiplier: members' spending at local businesses (local-multiplier.ts)
    lmR1: lmR1.stat(),
    issuedToDate: issuedToDate.stat(),
    redeemedToDate: redeemedToDate.stat(),
    supply: supply.stat(),
    supplyIntegral: supplyIntegral.stat(SCALE),
    // the same over members' and over businesses' accounts only (the paper account is neither)
    integralMember: integralMember.stat(SCALE),
    integralBusiness: integralBusiness.stat(SCALE),
    active,
    holders: { value: money(total), n: hn, max: hmax == null ? '0' : money(hmax), biz: hbiz },
    gini,
    top10,
    graph,
  }
}

// PostgreSQL's numeric division, so that Gini and the top-10% share come out as the SQL gave them: the quotient
// is rounded (half away from zero) to the scale numeric_div chooses from its operands (select_div_scale: at least
// 16 significant digits, at least either operand's display scale).
interface Num { v: bigint, scale: number }
const NBASE_DIGITS = 4
function weightAndFirst (x: Num): { weight: number, first: bigint } {
  let a = x.v < 0n ? -x.v : x.v
  if (a === 0n) return { weight: 0, first: 0n }
  const s4 = Math.ceil(x.scale / NBASE_DIGITS) * NBASE_DIGITS
  a *= 10n ** BigInt(s4 - x.scale)
  const n = Math.ceil(a.toString().length / NBASE_DIGITS)
  return { weight: n - 1 - s4 / NBASE_DIGITS, first: a / 10_000n ** BigInt(n - 1) }
}
function div (a: Num, b: Num): Num {
  const wa = weightAndFirst(a)
  const wb = weightAndFirst(b)
  let qweight = wa.weight - wb.weight
  if (wa.first <= wb.first) qweight--
  const scale = Math.min(1000, Math.max(16 - qweight * NBASE_DIGITS, a.scale, b.scale, 0))
  // a / b to `scale` places: (a.v / 10^a.scale) / (b.v / 10^b.scale) x 10^scale
  let num = a.v * 10n ** BigInt(scale + b.scale)
  let den = b.v * 10n ** BigInt(a.scale)
  if (den < 0n) { num = -num; den = -den }
  const neg = num < 0n
  const n = neg ? -num : num
  let q = n / den
  if ((n % den) * 2n >= den) q++
  return { v: neg ? -q : q, scale }
}
function sub (a: Num, b: Num): Num {
  const scale = Math.max(a.scale, b.scale)
  return { v: a.v * 10n ** BigInt(scale - a.scale) - b.v * 10n ** BigInt(scale - b.scale), scale }
}
const numText = (x: Num) => text(x.v, x.scale, x.scale)
