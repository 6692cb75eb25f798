// Rounds 2 and 3 of the local multiplier: a proportional approximation of NEF's LM3 traced through a period's
// payments (docs/metrics.md defines it with a worked example). Round 1 is members' spending at local businesses
// (a per-account sum, account-cache.ts); here each local business passes on locally the share min(1, lp / in) of
// everything it received, so of its round-1 income the part in1 x min(in, lp) / in (round 2), spread over its
// local payees in proportion to what it paid each; each payee re-spends locally the share min(1, lp / in) of that
// (round 3). Exact: ratios are carried to 40 decimals (46 with the amounts' 6) and the sums rounded to 24, far
// below the 12 places a published multiplier could ever be sensitive to.

/** What the rounds need of an account over the period, in millionths (by account number). */
export interface MultiplierSums {
  biz: boolean
  local: boolean
  /** received in economic payments, all payers; r1: of that, from members */
  recv: bigint
  r1: bigint
  /** paid in economic payments to local participants */
  lp: bigint
}

export interface Links { payer: ArrayLike<number>, payee: ArrayLike<number>, volume: ArrayLike<bigint>, size: number }

const RATIO = 10n ** 40n

/** R2 and R3 as decimal strings (24 places at most). */
export function multiplierRounds (g: Links, acc: Map<number, MultiplierSums>): { r2: string, r3: string } {
  const min = (a: bigint, b: bigint) => a < b ? a : b
  const max = (a: bigint, b: bigint) => a > b ? a : b
  const isSource = (b: MultiplierSums | undefined): b is MultiplierSums => b != null && b.biz && b.local && b.r1 > 0n && b.recv > 0n
  let r2 = 0n // millionths x RATIO
  for (const b of acc.values()) if (isSource(b)) r2 += b.r1 * min(b.recv, b.lp) * RATIO / b.recv

  // R3: sum over links b -> c of volume x r1(b) / max(in(b), lp(b)) x min(in(c), lp(c)) / in(c), for a local
  // business b that passed money on and a local payee c that re-spent locally; per payer, payee factors first
  const perPayer = new Map<number, bigint>()
  const payeeShare = new Map<number, bigint>()
  for (let e = 0; e < g.size; e++) {
    const b = acc.get(g.payer[e])
    if (!isSource(b) || b.lp <= 0n) continue
    const c = acc.get(g.payee[e])
    if (c == null || !c.local || c.recv <= 0n || c.lp <= 0n) continue
    let s = payeeShare.get(g.payee[e])
    if (s === undefined) { s = min(c.lp, c.recv) * RATIO / c.recv; payeeShare.set(g.payee[e], s) }
    perPayer.set(g.payer[e], (perPayer.get(g.payer[e]) ?? 0n) + g.volume[e] * s)
  }
  let r3 = 0n
  for (const [no, s] of perPayer) {
    const b = acc.get(no)!
    r3 += s * b.r1 / max(b.recv, b.lp)
  }
  return { r2: scaled(r2, 46, 24), r3: scaled(r3, 46, 24) }
}

/** v / 10^digits (v >= 0) rounded half up to `keep` decimals, as a decimal string without trailing zeros. */
export function scaled (v: bigint, digits: number, keep: number): string {
  const drop = 10n ** BigInt(digits - keep)
  const s = ((v + drop / 2n) / drop).toString().padStart(keep + 1, '0')
  const int = s.slice(0, s.length - keep)
  const frac = s.slice(s.length - keep).replace(/0+$/, '')
  return frac.length === 0 ? int : `${int}.${frac}`
}
