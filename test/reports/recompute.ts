import type pg from 'pg'
import { Money, roundedText } from '../../src/domain/money.js'
import { isLocal } from '../../src/domain/postcode.js'
import { bucketEnd, isoDate, type Bucket, type Period } from '../../src/domain/periods.js'
import type { PeriodFigures } from '../../src/reports/circulation.report.js'
import type { LedgerPosition } from '../../src/reports/provenance.js'
import type { FlowFigure, FlowsBy } from '../../src/reports/flows.report.js'
import { marginKnown, publishedAccounts, type ParticipantRow } from '../../src/reports/anonymise.js'
import { readHistories } from '../../src/reports/export-history.js'
import type { Stat } from '../../src/reports/stat.js'

// The circulation figures recomputed the plain way: straight from the transfer and entry tables (or from what a
// researcher rebuilds of them out of the research exports), with none of the aggregates, buckets or SQL of src/reports. Written from the definitions in docs/metrics.md, independently of
// the fast path, so that a property test can hold the two against each other.

// Times are microseconds since the epoch (the ledger's precision; exact in a double until the year 2255).
export interface T { id: string, kind: string, from: string, to: string, amount: Money, parent: string | null, reverses: string | null, at: number }
/** participant: the participant the account belongs to (null for system accounts); pCreated: when it joined */
export interface A { id: string, participant: string | null, system: string | null, status: string, kind: string | null, local: boolean, pCreated: number | null }
export interface E { account: string, amount: Money, at: number }
/** What the recomputation reads: the raw ledger (recompute below), or the research exports (recompute-exports.ts). */
export interface RawLedger { ts: T[], accounts: Map<string, A>, accountCreated: Map<string, number>, entries: E[] }

const ZERO = new Money(0)
const key = (m: Money) => m.toFixed()
const micros = (d: Date) => d.getTime() * 1000

/** Figures with every decimal to 12 places (the holding figures' nested ones too), so that exact sums and long
 *  divisions written with different scales compare alike. */
export function normFigures (f: PeriodFigures): Record<string, unknown> {
  // as the published cells round: a value that rounds to zero is zero whatever its sign (a Gini of equal balances
  // divides as numeric does and can come out a few units below zero in the 17th place)
  const d = (x: string | null) => x == null ? null : roundedText(x, 12)
  const deep = (v: unknown): unknown => typeof v === 'string' ? d(v)
    : v != null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deep(x)])) : v
  return Object.fromEntries(Object.entries(f).map(([k, v]) => [k, k === 'holding' ? deep(v)
    : typeof v === 'object' && v != null && 'value' in v ? { ...v, value: d(v.value), max: d(v.max) } : typeof v === 'string' ? d(v) : v]))
}

const DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/
const HAIR = new Money('1e-14')

/**
 * The report's figures and the recomputation's, ready to compare: normFigures of each, after every decimal of the
 * report within 1e-14 of the recomputation's is taken as the recomputation's. The report divides as numeric does
 * (16 or more places, rounded), the recomputation to 60 digits, so a ratio lying a hair from a 12th-place
 * boundary rounds apart on the two sides (PROPERTY_SEED=20261202: a Gini of 0.1520960077655 less a hair, 16 places
 * round it up). A sum of money is exact to the cent on both sides, far above the hair.
 */
export function comparable (fast: PeriodFigures[], slow: PeriodFigures[]): [Array<Record<string, unknown>>, Array<Record<string, unknown>>] {
  const snap = (a: unknown, b: unknown): unknown => {
    if (typeof a === 'string' && typeof b === 'string' && a !== b && DECIMAL.test(a) && DECIMAL.test(b)) return new Money(a).minus(b).abs().lte(HAIR) ? b : a
    if (Array.isArray(a) && Array.isArray(b)) return a.map((x, i) => snap(x, b[i]))
    if (a != null && b != null && typeof a === 'object' && typeof b === 'object') {
      return Object.fromEntries(Object.entries(a).map(([k, x]) => [k, snap(x, (b as Record<string, unknown>)[k])]))
    }
    return a
  }
  return [fast.map((f, i) => normFigures(snap(f, slow[i]) as PeriodFigures)), slow.map(normFigures)]
}

/** upTo: only the transfers up to that ledger position (by time, then id), as a cited report's asOfTransfer says. */
export async function recompute (pool: pg.Pool, currencyId: string, periods: Period[], upTo?: LedgerPosition): Promise<PeriodFigures[]> {
  return recomputeFrom(await readLedger(pool, currencyId, upTo), periods)
}

export async function readLedger (pool: pg.Pool, currencyId: string, upTo?: LedgerPosition): Promise<RawLedger> {
  const cur = (await pool.query<{ local_areas: string[] }>('SELECT local_areas FROM currency WHERE id = $1', [currencyId])).rows[0]
  const cut = upTo == null ? 'true' : '(t.created_at, t.id) <= ($2::timestamptz, $3::uuid)'
  const cutParams = upTo == null ? [] : [upTo.createdAt, upTo.id]
  // times to the microsecond (a Date has milliseconds only)
  const ts: T[] = (await pool.query(`SELECT t.*, (extract(epoch FROM t.created_at) * 1000000)::bigint::text AS us
      FROM transfer t WHERE t.currency_id = $1 AND ${cut}`, [currencyId, ...cutParams])).rows.map(r => ({
    id: r.id, kind: r.kind, from: r.from_account_id, to: r.to_account_id, amount: new Money(r.amount),
    parent: r.parent_id, reverses: r.reverses_id, at: Number(r.us),
  }))
  const accounts = new Map<string, A>((await pool.query(`
    SELECT a.id, a.participant_id, a.system_kind, a.status, p.kind, p.district, p.created_at AS p_created
      FROM account a LEFT JOIN participant p ON p.id = a.participant_id WHERE a.currency_id = $1`, [currencyId])).rows.map(r => [r.id, {
    id: r.id, participant: r.participant_id, system: r.system_kind, status: r.status, kind: r.kind,
    local: r.district != null && isLocal(r.district, cur.local_areas), pCreated: r.p_created == null ? null : micros(r.p_created as Date),
  }]))
  const accountCreated = new Map<string, number>((await pool.query('SELECT id, created_at FROM account WHERE currency_id = $1', [currencyId]))
    .rows.map(r => [r.id, micros(r.created_at as Date)]))
  const entries: E[] = (await pool.query(`SELECT e.account_id, e.amount, e.created_at FROM entry e JOIN transfer t ON t.id = e.transfer_id
    WHERE e.currency_id = $1 AND ${cut}`, [currencyId, ...cutParams]))
    .rows.map(r => ({ account: r.account_id, amount: new Money(r.amount), at: micros(r.created_at as Date) }))
  return { ts, accounts, accountCreated, entries }
}

export function recomputeFrom ({ ts, accounts, accountCreated, entries }: RawLedger, periods: Period[]): PeriodFigures[] {
  const reversed = new Set(ts.filter(t => t.reverses != null).map(t => t.reverses!))
  const byId = new Map(ts.map(t => [t.id, t]))
  const live = ts.filter(t => !reversed.has(t.id) && t.kind !== 'reversal')
  const acct = (id: string) => accounts.get(id)!
  const isPart = (id: string) => acct(id).participant != null
  const payments = live.filter(t => t.kind === 'payment' && isPart(t.from) && isPart(t.to))
  const issuances = live.filter(t => t.kind === 'issuance')
  const redemptions = live.filter(t => t.kind === 'redemption' || (t.kind === 'fee' && t.parent != null && byId.get(t.parent)?.kind === 'redemption'))
  const inM = (id: string) => isPart(id) || acct(id).system === 'paper'

  const entriesOf = new Map<string, E[]>()
  for (const e of entries) { if (!entriesOf.has(e.account)) entriesOf.set(e.account, []); entriesOf.get(e.account)!.push(e) }
  const balanceAt = (id: string, at: number) => (entriesOf.get(id) ?? []).filter(e => e.at < at).reduce((s, e) => s.plus(e.amount), ZERO)

  const all: Period[] = [{ start: periods[0].start, end: periods[periods.length - 1].end, buckets: [] }, ...periods]
  return all.map(p => {
    const [start, end] = [p.start * 1000, p.end * 1000]
    const inP = (t: { at: number }) => t.at >= start && t.at < end
    const pay = payments.filter(inP)
    const sums = (rows: T[], side: 'from' | 'to', pick: (t: T) => boolean = () => true) => {
      const m = new Map<string, Money>()
      for (const t of rows) if (pick(t)) m.set(t[side], (m.get(t[side]) ?? ZERO).plus(t.amount))
      return m
    }
    /** a cell over payments: value = their sum; accounts described = payers and payees; own = larger side */
    const payStat = (rows: T[]): Stat => {
      const paid = sums(rows, 'from')
      const recv = sums(rows, 'to')
      const ids = new Set([...paid.keys(), ...recv.keys()].filter(isPart))
      return stat(rows.reduce((s, t) => s.plus(t.amount), ZERO), ids, a => Money.max(paid.get(a) ?? ZERO, recv.get(a) ?? ZERO))
    }
    const stat = (value: Money, ids: Set<string>, own: (a: string) => Money): Stat => {
      let max = ZERO
      for (const a of ids) if (own(a).abs().gt(max)) max = own(a).abs()
      return { value: key(value), n: ids.size, max: key(max), biz: [...ids].some(a => acct(a).kind === 'business') }
    }
    const kindOf = (id: string) => acct(id).kind
    const group = (pk: string, qk: string) => pay.filter(t => kindOf(t.from) === pk && kindOf(t.to) === qk)

    const issuedBy = sums(issuances.filter(inP), 'to')
    const redeemedBy = sums(redemptions.filter(inP), 'from')
    const sumStat = (by: Map<string, Money>) => stat([...by.values()].reduce((s, v) => s.plus(v), ZERO),
      new Set([...by.keys()].filter(a => isPart(a) && !by.get(a)!.isZero())), a => by.get(a)!)
    const issued = sumStat(issuedBy)
    const redeemed = sumStat(redeemedBy)
    // since the start: everything before the period's end
    const toDate = (t: { at: number }) => t.at < end
    const issuedToDate = sumStat(sums(issuances.filter(toDate), 'to'))
    const redeemedToDate = sumStat(sums(redemptions.filter(toDate), 'from'))

    const paidBy = sums(pay, 'from')
    const recvBy = sums(pay, 'to')
    const businesses = [...accounts.values()].filter(a => a.kind === 'business').map(a => a.id)
    const bizOut = (a: string) => (paidBy.get(a) ?? ZERO).plus(redeemedBy.get(a) ?? ZERO)
    const respendIds = new Set(businesses.filter(a => bizOut(a).gt(0)))
    const respend = stat(businesses.reduce((s, a) => s.plus(bizOut(a)), ZERO), respendIds, bizOut)
    const spend = businesses.reduce((s, a) => s.plus(paidBy.get(a) ?? ZERO), ZERO)

    // local multiplier (an LM3 approximation), traced proportionally inside the period: R1 is what members paid
    // local businesses; each account passes on locally the share min(1, lp / in) of whatever it received
    const lp = sums(pay, 'from', t => acct(t.to).local)
    const inc = (a: string) => recvBy.get(a) ?? ZERO
    const fromMembers = sums(pay, 'to', t => acct(t.from).kind === 'member')
    const r1 = (a: string) => fromMembers.get(a) ?? ZERO
    const localBiz = businesses.filter(a => acct(a).local)
    const earners = new Set(localBiz.filter(a => r1(a).gt(0)))
    const lmR1 = stat([...earners].reduce((s, a) => s.plus(r1(a)), ZERO), earners, r1)
    const passOn = (a: string) => Money.min(1, (lp.get(a) ?? ZERO).div(inc(a)))
    // round 2: of b's round-1 income, the share it passed on locally
    const r2 = (b: string) => r1(b).times(passOn(b))
    const lmR2 = [...earners].reduce((s, b) => s.plus(r2(b)), ZERO)
    let lmR3 = ZERO
    for (const t of pay) {
      const b = t.from; const c = t.to
      if (!earners.has(b) || !acct(c).local || !inc(c).gt(0) || !(lp.get(b) ?? ZERO).gt(0)) continue
      // b's round 2 reaches c in proportion to b's local payments; c passes its share on again
      lmR3 = lmR3.plus(r2(b).times(t.amount).div(lp.get(b)!).times(passOn(c)))
    }

    // cycles: a link u -> v lies on a cycle when u can be reached from v
    const next = new Map<string, Set<string>>()
    for (const t of pay) { if (!next.has(t.from)) next.set(t.from, new Set()); next.get(t.from)!.add(t.to) }
    const reach = (from: string, target: string) => {
      const seen = new Set([from]); const todo = [from]
      while (todo.length > 0) {
        const u = todo.pop()!
        if (u === target) return true
        for (const w of next.get(u) ?? []) if (!seen.has(w)) { seen.add(w); todo.push(w) }
      }
      return false
    }
    const cyc = pay.filter(t => reach(t.to, t.from))
    const circulating = largestCirculation(cyc)
    // the circulation describes the accounts on cycle links; own part: what can pass through an account at most,
    // min(paid, received) on cycle links, and no more than half of it (to the millionth, rounded down)
    const cycPaid = sums(cyc, 'from')
    const cycRecv = sums(cyc, 'to')
    const cycIds = new Set([...cycPaid.keys(), ...cycRecv.keys()])
    const half = circulating.div(2).toDecimalPlaces(6, Money.ROUND_DOWN)
    const through = (a: string) => Money.min(cycPaid.get(a) ?? ZERO, cycRecv.get(a) ?? ZERO, half)

    // balances from the entries themselves
    const mAccounts = [...accounts.values()].filter(a => inM(a.id))
    const balEnd = new Map(mAccounts.map(a => [a.id, balanceAt(a.id, end)]))
    const seconds = (us: number) => new Money(us).div(1_000_000)
    const integral = (id: string) => (entriesOf.get(id) ?? []).filter(e => e.at >= start && e.at < end)
      .reduce((s, e) => s.plus(e.amount.times(seconds(end - e.at))), balanceAt(id, start).times(seconds(end - start)))
    const integrals = new Map(mAccounts.map(a => [a.id, integral(a.id)]))
    const partM = mAccounts.filter(a => a.participant != null).map(a => a.id)
    /** the supply integral over one kind's accounts only */
    const integralOf = (kind: string) => {
      const ids = partM.filter(a => kindOf(a) === kind)
      return stat(ids.reduce((s, a) => s.plus(integrals.get(a)!), ZERO), new Set(ids.filter(a => !integrals.get(a)!.isZero())), a => integrals.get(a)!)
    }

    const pb = new Map<string, { bal: Money, biz: boolean }>()
    for (const a of mAccounts) {
      if (a.participant == null || a.pCreated == null || a.pCreated >= end) continue
      const x = pb.get(a.participant) ?? { bal: ZERO, biz: false }
      pb.set(a.participant, { bal: x.bal.plus(balEnd.get(a.id)!), biz: x.biz || a.kind === 'business' })
    }
    const sorted = [...pb.values()].map(x => x.bal).sort((x, y) => x.cmp(y))
    const total = sorted.reduce((s, v) => s.plus(v), ZERO)
    const n = sorted.length
    const gini = total.isZero() ? null : sorted.reduce((s, v, i) => s.plus(v.times(i + 1)), ZERO).times(2).div(total.times(n)).minus(new Money(n + 1).div(n))
    const top = Math.ceil(n / 10)
    const top10 = total.isZero() ? null : sorted.slice(n - top).reduce((s, v) => s.plus(v), ZERO).div(total)
    const holderIds = [...pb.entries()].filter(([, x]) => !x.bal.isZero())
    let hmax = ZERO
    for (const [, x] of holderIds) if (x.bal.abs().gt(hmax)) hmax = x.bal.abs()

    const activeIds = new Set([...paidBy.keys()].filter(isPart))

    const local = (id: string) => isPart(id) && acct(id).local
    const nonLocalIssued = sums(issuances.filter(inP), 'to', t => isPart(t.to) && !acct(t.to).local)
    const holding = {
      ...holdingOf(start, end),
      leaving: payStat(pay.filter(t => local(t.from) && !local(t.to))),
      entering: payStat(pay.filter(t => !local(t.from) && local(t.to))),
      issuedNonLocal: stat([...nonLocalIssued.values()].reduce((s, v) => s.plus(v), ZERO), new Set(nonLocalIssued.keys()), a => nonLocalIssued.get(a)!),
    }
    const open = [...accounts.values()].filter(a => a.participant != null && accountCreated.get(a.id)! < end &&
      (a.status !== 'closed' || activeIds.has(a.id))).length

    return {
      start: p.start,
      end: p.end,
      issued,
      redeemed,
      volume: payStat(pay),
      count: String(pay.length),
      mm: groupStat(group('member', 'member'), 'member', 'member'),
      mb: groupStat(group('member', 'business'), 'member', 'business'),
      bm: groupStat(group('business', 'member'), 'business', 'member'),
      bb: groupStat(group('business', 'business'), 'business', 'business'),
      respend,
      spend: key(spend),
      local: payStat(pay.filter(t => acct(t.from).local && acct(t.to).local)),
      lmR1,
      lmR2: key(lmR2),
      lmR3: key(lmR3),
      cycle: payStat(cyc),
      circulating: stat(circulating, cycIds, through),
      issuedToDate,
      redeemedToDate,
      supply: stat(mAccounts.reduce((s, a) => s.plus(balEnd.get(a.id)!), ZERO), new Set(partM.filter(a => !balEnd.get(a)!.isZero())), a => balEnd.get(a)!),
      supplyIntegral: stat(mAccounts.reduce((s, a) => s.plus(integrals.get(a.id)!), ZERO), new Set(partM.filter(a => !integrals.get(a)!.isZero())), a => integrals.get(a)!),
      integralMember: integralOf('member'),
      integralBusiness: integralOf('business'),
      active: activeIds.size,
      open,
      holders: { value: key(total), n: holderIds.length, max: key(hmax), biz: holderIds.some(([, x]) => x.biz) },
      gini: gini == null ? null : key(gini),
      top10: top10 == null ? null : key(top10),
      holding,
    }

    /**
     * Holding time under the well-mixed assumption, traced the plain way: every transfer that was not reversed
     * (and no reversal), from the start of history, an instant at a time; the transfers of one instant are
     * simultaneous: an account's outflows leave the balance it had just before (payments covered first, the rest
     * held for no time), then its inflows arrive. Each participant's balance has one mean arrival time, kept in
     * whole microseconds rounded down after each instant's arrivals; a payment between participants in P has been
     * held from that mean arrival time. Dormancy: participants' traced balances at P's end, last touched before
     * end - 90 days.
     */
    function holdingOf (start: number, end: number) {
      const instants = new Map<number, T[]>()
      for (const t of live) { if (!instants.has(t.at)) instants.set(t.at, []); instants.get(t.at)!.push(t) }
      const st = new Map<string, { b: Money, a: Money, touch: Money | null }>()
      const get = (id: string) => { let s = st.get(id); if (s == null) { s = { b: ZERO, a: ZERO, touch: null }; st.set(id, s) } return s }
      const paid: Array<{ kind: string, amount: Money, covered: Money, h: Money, n: number }> = []
      for (const at of [...instants.keys()].sort((x, y) => x - y)) {
        if (at >= end) break
        const group = instants.get(at)!
        const us = new Money(at)
        const payers = new Set(group.filter(t => isPart(t.from)).map(t => t.from))
        for (const id of payers) {
          const s = get(id)
          const mine = group.filter(t => t.from === id)
          const pays = mine.filter(t => t.kind === 'payment' && isPart(t.to))
          const paidNow = pays.reduce((x, t) => x.plus(t.amount), ZERO)
          if (pays.length > 0 && at >= start) {
            // one entry for the account's payments of the instant: they share the balance and the holding time
            paid.push({ kind: kindOf(id)!, amount: paidNow, covered: Money.max(ZERO, Money.min(s.b, paidNow)), h: us.minus(s.a), n: pays.length })
          }
          s.b = s.b.minus(mine.reduce((x, t) => x.plus(t.amount), ZERO)); s.touch = us
        }
        const payees = new Set(group.filter(t => isPart(t.to)).map(t => t.to))
        for (const id of payees) {
          const s = get(id)
          const x = group.filter(t => t.to === id).reduce((v, t) => v.plus(t.amount), ZERO)
          const before = Money.max(ZERO, s.b)
          const after = s.b.plus(x)
          if (after.gt(0)) s.a = s.a.times(before).plus(us.times(after.minus(before))).div(after).floor()
          s.b = after; s.touch = us
        }
      }
      const endUs = new Money(end)
      const HOUR = new Money(3_600_000_000)
      const of = (rows: typeof paid) => {
        const w = rows.reduce((s, r) => s.plus(r.amount), ZERO)
        const bins: Array<[Money, Money]> = []
        for (const r of rows) {
          if (r.covered.gt(0)) bins.push([r.h.div(HOUR).floor(), r.covered])
          if (r.amount.gt(r.covered)) bins.push([ZERO, r.amount.minus(r.covered)])
        }
        bins.sort((x, y) => x[0].cmp(y[0]))
        let cum = ZERO
        let median: string | null = null
        for (const [h, x] of bins) { cum = cum.plus(x); if (cum.times(2).gte(w)) { median = key(h); break } }
        return {
          weight: key(w),
          weighted: key(rows.reduce((s, r) => s.plus(r.covered.times(r.h).div(1_000_000)), ZERO)),
          count: rows.reduce((s, r) => s + r.n, 0),
          medianHours: w.isZero() ? null : median,
        }
      }
      const cut = endUs.minus(new Money(90 * 86_400).times(1_000_000))
      const held = [...st.entries()].filter(([id, s]) => isPart(id) && !s.b.isZero())
      const dormant = held.filter(([, s]) => s.touch!.lt(cut))
      const balances = (rows: typeof held) => stat(rows.reduce((s, [, x]) => s.plus(x.b), ZERO), new Set(rows.map(([id]) => id)), a => st.get(a)!.b)
      const ofKind = (kind: string) => (rows: typeof held) => rows.filter(([id]) => kindOf(id) === kind)
      return {
        all: of(paid),
        member: of(paid.filter(r => r.kind === 'member')),
        business: of(paid.filter(r => r.kind === 'business')),
        dormant: stat(dormant.reduce((s, [, x]) => s.plus(x.b), ZERO), new Set(dormant.map(([id]) => id)), a => st.get(a)!.b),
        traced: key(held.reduce((s, [, x]) => s.plus(x.b), ZERO)),
        dormantMember: balances(ofKind('member')(dormant)),
        dormantBusiness: balances(ofKind('business')(dormant)),
        tracedMember: balances(ofKind('member')(held)),
        tracedBusiness: balances(ofKind('business')(held)),
      }
    }

    /** payer kind x payee kind: an account is described on the side it played; own = what it paid or received */
    function groupStat (rows: T[], pk: string, qk: string): Stat {
      const paid = sums(rows, 'from')
      const recv = sums(rows, 'to')
      const ids = new Set([...paid.keys(), ...recv.keys()])
      const own = (a: string) => pk === qk ? Money.max(paid.get(a) ?? ZERO, recv.get(a) ?? ZERO) : (paid.get(a) ?? recv.get(a) ?? ZERO)
      return stat(rows.reduce((s, t) => s.plus(t.amount), ZERO), ids, own)
    }
  })
}

/**
 * The largest circulation within the payments' links (link volumes summed per payer -> payee), by cycle
 * cancelling (Klein): starting from no flow, while the residual graph has a cycle that gains (forward links with
 * volume left gain +1 per unit, backward links with flow on them -1), push its bottleneck round it. No gaining
 * cycle left means the circulation is the largest. Slow and plain, for small test ledgers.
 */
export function largestCirculation (payments: Array<{ from: string, to: string, amount: Money }>): Money {
  const cap = new Map<string, Money>()
  for (const t of payments) if (t.from !== t.to) cap.set(`${t.from} ${t.to}`, (cap.get(`${t.from} ${t.to}`) ?? ZERO).plus(t.amount))
  const links = [...cap.entries()].map(([k, c]) => ({ u: k.split(' ')[0], v: k.split(' ')[1], c, f: ZERO }))
  const nodes = [...new Set(links.flatMap(l => [l.u, l.v]))]
  for (;;) {
    // residual arcs: [from, to, cost, link, direction]; a gaining cycle is a negative-cost one
    const arcs: Array<{ a: string, b: string, cost: number, l: typeof links[number], fwd: boolean }> = []
    for (const l of links) {
      if (l.f.lt(l.c)) arcs.push({ a: l.u, b: l.v, cost: -1, l, fwd: true })
      if (l.f.gt(0)) arcs.push({ a: l.v, b: l.u, cost: 1, l, fwd: false })
    }
    // Bellman-Ford from a virtual source joined to every node at cost 0
    const dist = new Map(nodes.map(x => [x, 0]))
    const via = new Map<string, typeof arcs[number]>()
    let last: string | null = null
    for (let i = 0; i < nodes.length; i++) {
      last = null
      for (const arc of arcs) {
        if (dist.get(arc.a)! + arc.cost < dist.get(arc.b)!) { dist.set(arc.b, dist.get(arc.a)! + arc.cost); via.set(arc.b, arc); last = arc.b }
      }
      if (last == null) break
    }
    if (last == null) break
    // walk back n steps to be sure to stand on the cycle, then collect it
    let x = last
    for (let i = 0; i < nodes.length; i++) x = via.get(x)!.a
    const cycle: Array<typeof arcs[number]> = []
    let y = x
    do { const arc = via.get(y)!; cycle.push(arc); y = arc.a } while (y !== x)
    const room = (arc: typeof arcs[number]) => arc.fwd ? arc.l.c.minus(arc.l.f) : arc.l.f
    const push = Money.min(...cycle.map(room))
    for (const arc of cycle) arc.l.f = arc.fwd ? arc.l.f.plus(push) : arc.l.f.minus(push)
  }
  return links.reduce((s, l) => s.plus(l.f), ZERO)
}

// The flows report's plain recomputation: every day cell and the range's ranking straight from circ_pair_bucket.
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
dr AS (
  SELECT start, payer_grp, payee_grp, account, greatest(paid, recv) AS own,
         row_number() OVER (PARTITION BY start, payer_grp, payee_grp ORDER BY greatest(paid, recv) DESC, account) AS r
    FROM acct
),
dtop AS (
  SELECT start, payer_grp, payee_grp, (array_agg(account ORDER BY r))[1] AS top, max(own) AS x1, count(*) AS n,
         array_agg(own::text ORDER BY r) FILTER (WHERE r <= 3) AS tops, bool_and(account = ANY ($5::uuid[])) AS given
    FROM dr GROUP BY 1, 2, 3
),
dcell AS (
  SELECT c.start, c.payer_grp, c.payee_grp, sum(c.volume) AS volume, sum(c.n) AS n
    FROM c GROUP BY 1, 2, 3
),
days AS (
  SELECT d.payer_grp, d.payee_grp, sum(d.volume)::text AS volume, sum(d.n)::text AS count,
         array_agg(to_char(d.start, 'YYYY-MM-DD') ORDER BY d.start) AS day, array_agg(d.volume::text ORDER BY d.start) AS day_value,
         array_agg(d.n ORDER BY d.start) AS day_count, array_agg(t.top::text ORDER BY d.start) AS day_top,
         array_agg(t.x1::text ORDER BY d.start) AS day_x1, array_agg(t.n ORDER BY d.start) AS day_n,
         array_agg(array_to_string(t.tops, ' ') ORDER BY d.start) AS day_tops, array_agg(t.given ORDER BY d.start) AS day_given
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
       d.day, d.day_value, d.day_count, d.day_top, d.day_x1, d.day_n, d.day_tops, d.day_given
  FROM days d JOIN st USING (payer_grp, payee_grp)
 ORDER BY 1, 2`

interface Row {
  payer: string, payee: string, volume: string, count: string, n: string, tops: string[], biz: boolean,
  day: string[], day_value: string[], day_count: number[], day_top: string[], day_x1: string[], day_n: string[], day_tops: string[],
  day_given: boolean[]
}

/** The flows as the report computed them in one query before its cache (src/reports/flows.report.ts). */
export async function recomputeFlows (pool: pg.Pool, currencyId: string, buckets: Bucket[], by: FlowsBy): Promise<FlowFigure[]> {
  if (buckets.length === 0) return []
  const from = isoDate(buckets[0].start)
  const to = isoDate(bucketEnd(buckets[buckets.length - 1]))
  // the accounts whose group class (role; area and locality) the accounts export gives, as the export generalises
  const rows = (await pool.query<ParticipantRow & { local_areas: string[] }>(`
    SELECT a.id::text AS id, to_char(a.created_at AT TIME ZONE c.time_zone, 'YYYY-MM') AS start, a.status, p.kind, p.district, c.local_areas
      FROM account a JOIN participant p ON p.id = a.participant_id JOIN currency c ON c.id = a.currency_id WHERE a.currency_id = $1`, [currencyId])).rows
  // and as earlier exports gave them (account_export_history)
  const histories = await readHistories(pool, currencyId)
  const published = publishedAccounts(rows, rows[0]?.local_areas ?? [], histories)
  const known = rows.filter(a => marginKnown(published.get(a.id)!, histories.get(a.id), by)).map(a => a.id)
  const r = await pool.query<Row>(FLOWS_SQL, [currencyId, from, to, by, known])
  return r.rows.map(x => ({
    payer: x.payer,
    payee: x.payee,
    volume: { value: x.volume, n: Number(x.n), max: x.tops[0] ?? '0', biz: x.biz },
    count: x.count,
    tops: x.tops,
    days: x.day.map((day, i) => ({ day, value: x.day_value[i], count: Number(x.day_count[i]), top: x.day_top[i], x1: x.day_x1[i], n: Number(x.day_n[i]), tops: x.day_tops[i].split(' '), given: x.day_given[i] })),
  }))
}
