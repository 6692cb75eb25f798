// The holding-period trace (Mattsson, Luedtke and Takes, "Holding periods: measuring the inverse of money velocity",
// arXiv 2209.01512), under their well-mixed assumption: money that leaves an account is a proportional mix of its
// balance, so every unit in the balance shares one mean arrival time, and an outflow has been held, on average,
// from that mean arrival time until it leaves. docs/metrics.md ("Holding time") defines the figures.
//
// Pure and exact: amounts in millionths, times in microseconds (bigint). The only rounding is the mean arrival
// time, kept as a whole microsecond, rounded down, after each inflow (so both this and any recomputation that
// follows the same rule agree to the last digit). Transfers are applied an instant at a time, in time order; the
// transfers of one instant as simultaneous (applyInstant), so that nothing depends on an order the ledger does not
// record (the legs of one payment share their instant, and ids are random within a millisecond).

export const HOUR_US = 3_600_000_000n
export const DAY_US = 86_400_000_000n

/** What the trace needs of an account: a participant's (member or business), and whether it is local. */
export interface TraceAccount { part: boolean, biz: boolean, local: boolean }

/** One transfer that was not reversed (reversals and reversed transfers are left out of history). */
export interface Tx { kind: string, from: string, to: string, amount: bigint, at: bigint }

/** An account in the trace: balance, mean arrival time of that balance, last movement (-1: none). */
export interface Holding { b: bigint, a: bigint, touch: bigint }

/** The measured payments of one payer kind on one day: weight (amount), weight x holding time, count, and the
 *  weight by whole hours of holding time (for the median). */
export interface KindDay { w: bigint, wh: bigint, n: number, hist: Map<bigint, bigint> }

/** What one day adds to the report: payments by payer kind, and flows across the local boundary by account
 *  (paid, received), so that a period's disclosure statistics can be summed exactly from its days. */
export interface DayPartial {
  m: KindDay
  b: KindDay
  /** local payer -> non-local payee */
  leave: Map<string, [bigint, bigint]>
  /** non-local payer -> local payee */
  enter: Map<string, [bigint, bigint]>
  /** issuance to non-local participants */
  issue: Map<string, bigint>
}

/** Participants' balances at a day's end, grouped by the local day (civil days since 1970: domain/zone.ts) each
 *  was last touched and by kind: biz says whether the bin holds businesses' balances or members'. (Rows traced
 *  before the bins were split by kind mixed the two, biz meaning "any business"; the migration *_holding_by_kind
 *  replays them.) */
export interface DormancyBin { day: number, sum: bigint, n: number, max: bigint, biz: boolean }

export const emptyKind = (): KindDay => ({ w: 0n, wh: 0n, n: 0, hist: new Map() })
export const emptyDay = (): DayPartial => ({ m: emptyKind(), b: emptyKind(), leave: new Map(), enter: new Map(), issue: new Map() })

function add<K> (m: Map<K, bigint>, k: K, v: bigint): void { m.set(k, (m.get(k) ?? 0n) + v) }
function addSide (m: Map<string, [bigint, bigint]>, id: string, side: 0 | 1, v: bigint): void {
  let x = m.get(id)
  if (x == null) { x = [0n, 0n]; m.set(id, x) }
  x[side] += v
}

export class Trace {
  readonly state: Map<string, Holding>
  day: DayPartial = emptyDay()

  /** dayOf: the local day (civil days since 1970) of an instant in microseconds; UTC days unless given */
  constructor (readonly accounts: Map<string, TraceAccount>, state?: Map<string, Holding>,
    readonly dayOf: (us: bigint) => number = us => Number(us / DAY_US) - (us < 0n && us % DAY_US !== 0n ? 1 : 0)) {
    this.state = state ?? new Map()
  }

  private holding (id: string): Holding {
    let s = this.state.get(id)
    if (s == null) { s = { b: 0n, a: 0n, touch: -1n }; this.state.set(id, s) }
    return s
  }

  /**
   * The transfers of one instant (all with the same `at`), taken as simultaneous, so that their order does not
   * matter: every account's outflows leave the balance it had just before the instant (payments are covered
   * first; what that balance does not cover was received and paid on at the same instant, so held for no time),
   * then its inflows arrive.
   */
  applyInstant (ts: Tx[]): void {
    if (ts.length === 0) return
    const at = ts[0].at
    const out = new Map<string, { all: bigint, paid: bigint, n: number }>()
    const inflow = new Map<string, bigint>()
    for (const t of ts) {
      const p = this.accounts.get(t.from)
      const q = this.accounts.get(t.to)
      if (p?.part === true) {
        let o = out.get(t.from)
        if (o == null) { o = { all: 0n, paid: 0n, n: 0 }; out.set(t.from, o) }
        o.all += t.amount
        if (t.kind === 'payment' && q?.part === true) {
          o.paid += t.amount
          o.n++
          if (p.local && !q.local) { addSide(this.day.leave, t.from, 0, t.amount); addSide(this.day.leave, t.to, 1, t.amount) }
          if (!p.local && q.local) { addSide(this.day.enter, t.from, 0, t.amount); addSide(this.day.enter, t.to, 1, t.amount) }
        }
      }
      if (q?.part === true) {
        add(inflow, t.to, t.amount)
        if (t.kind === 'issuance' && !q.local) add(this.day.issue, t.to, t.amount)
      }
    }
    for (const [id, o] of out) {
      const s = this.holding(id)
      if (o.n > 0) {
        const covered = s.b <= 0n ? 0n : s.b < o.paid ? s.b : o.paid
        const k = this.accounts.get(id)!.biz ? this.day.b : this.day.m
        k.w += o.paid
        k.n += o.n
        if (covered > 0n) {
          const h = at - s.a
          k.wh += covered * h
          add(k.hist, h / HOUR_US, covered)
        }
        if (o.paid > covered) add(k.hist, 0n, o.paid - covered)
      }
      // proportional: the mean arrival time of what stays is unchanged
      s.b -= o.all
      s.touch = at
    }
    for (const [id, x] of inflow) {
      const s = this.holding(id)
      const before = s.b > 0n ? s.b : 0n
      const after = s.b + x
      // what arrives first fills a shortfall; only the part above zero arrives now
      if (after > 0n) s.a = (s.a * before + at * (after - before)) / after
      s.b = after
      s.touch = at
    }
  }

  /** The day's partial results so far, and a fresh day. */
  takeDay (): DayPartial {
    const d = this.day
    this.day = emptyDay()
    return d
  }

  /** Participants' balances now, by the day of their last movement and kind (accounts with a zero balance left out). */
  dormancy (): DormancyBin[] {
    const bins = new Map<number, DormancyBin>()
    for (const [id, s] of this.state) {
      if (s.b === 0n || s.touch < 0n) continue
      const a = this.accounts.get(id)
      if (a == null || !a.part) continue
      const day = this.dayOf(s.touch)
      const key = 2 * day + (a.biz ? 1 : 0)
      let x = bins.get(key)
      if (x == null) { x = { day, sum: 0n, n: 0, max: 0n, biz: a.biz }; bins.set(key, x) }
      const abs = s.b < 0n ? -s.b : s.b
      x.sum += s.b
      x.n++
      if (abs > x.max) x.max = abs
    }
    return [...bins.values()].sort((x, y) => x.day - y.day || Number(x.biz) - Number(y.biz))
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Storage forms (jsonb): bigints as decimal strings.

interface KindJson { w: string, wh: string, n: number, h: Array<[string, string]> }
export interface DayJson { m: KindJson, b: KindJson, leave: Array<[string, string, string]>, enter: Array<[string, string, string]>, issue: Array<[string, string]> }
export type DormancyJson = Array<[number, string, number, string, boolean]>
export type StateJson = Record<string, [string, string, string]>

const kindJson = (k: KindDay): KindJson => ({ w: String(k.w), wh: String(k.wh), n: k.n, h: [...k.hist].map(([h, w]) => [String(h), String(w)]) })
const kindOf = (j: KindJson): KindDay => ({ w: BigInt(j.w), wh: BigInt(j.wh), n: j.n, hist: new Map(j.h.map(([h, w]) => [BigInt(h), BigInt(w)])) })
const sidesJson = (m: Map<string, [bigint, bigint]>): Array<[string, string, string]> => [...m].map(([id, [p, r]]) => [id, String(p), String(r)])
const sidesOf = (j: Array<[string, string, string]>): Map<string, [bigint, bigint]> => new Map(j.map(([id, p, r]) => [id, [BigInt(p), BigInt(r)]]))

export const dayJson = (d: DayPartial): DayJson => ({
  m: kindJson(d.m), b: kindJson(d.b), leave: sidesJson(d.leave), enter: sidesJson(d.enter), issue: [...d.issue].map(([id, v]) => [id, String(v)]),
})
export const dayOf = (j: DayJson): DayPartial => ({
  m: kindOf(j.m), b: kindOf(j.b), leave: sidesOf(j.leave), enter: sidesOf(j.enter), issue: new Map(j.issue.map(([id, v]) => [id, BigInt(v)])),
})
export const dormancyJson = (bins: DormancyBin[]): DormancyJson => bins.map(x => [x.day, String(x.sum), x.n, String(x.max), x.biz])
export const dormancyOf = (j: DormancyJson): DormancyBin[] => j.map(([day, sum, n, max, biz]) => ({ day, sum: BigInt(sum), n, max: BigInt(max), biz }))
export const stateJson = (s: Map<string, Holding>): StateJson =>
  Object.fromEntries([...s].map(([id, h]) => [id, [String(h.b), String(h.a), String(h.touch)]]))
export const stateOf = (j: StateJson): Map<string, Holding> =>
  new Map(Object.entries(j).map(([id, [b, a, touch]]) => [id, { b: BigInt(b), a: BigInt(a), touch: BigInt(touch) }]))
