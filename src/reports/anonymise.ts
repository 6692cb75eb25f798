// k-anonymity for the accounts export (docs/disclosure.md, "Linkage"). The quasi-identifiers are what someone
// outside the scheme can know of a person or business: where it is (postcode area, local or not: the public
// business directory gives every business's district), whether it is a member or a business, when it joined (a
// neighbour knows), and whether it has closed (a shop that shuts). Every combination of them that the export
// publishes must be shared by at least K participant accounts. They are generalised by local suppression, one
// field at a time in a fixed order: first what no published figure needs (the area), then what fewest figures
// need (status: active share; the month of joining: active share, Gini, top 10%), and last what most need
// (local or not: locality share, multiplier; member or business: the kind shares). Blank means "withheld".

export const K = 5

export interface QuasiIdentifiers {
  /** month of joining, YYYY-MM */
  start: string
  /** postcode area, e.g. BS */
  area: string
  /** local | non-local */
  areaType: string
  /** member | business */
  role: string
  /** open | closed */
  status: string
}

/** The order in which fields are withheld: level L blanks the first L of them. */
export const LADDER: ReadonlyArray<keyof QuasiIdentifiers> = ['area', 'status', 'start', 'areaType', 'role']

const blank = (q: QuasiIdentifiers, level: number): QuasiIdentifiers => {
  const out = { ...q }
  for (const f of LADDER.slice(0, level)) out[f] = ''
  return out
}

export const comboKey = (q: QuasiIdentifiers): string => [q.start, q.area, q.areaType, q.role, q.status].join('|')

/**
 * The published quasi-identifiers of each account (by key), such that every published combination is shared by
 * at least k accounts (if there are k accounts at all). Each account keeps the finest level at which the accounts
 * still pending share its combination with k - 1 others; what is left after the last level (everything withheld)
 * takes donors until it has k too. Deterministic: accounts are taken in key order (the keys are pseudonyms).
 */
export function generalise (accounts: ReadonlyArray<{ key: string, qi: QuasiIdentifiers }>, k = K): Map<string, QuasiIdentifiers> {
  const out = new Map<string, QuasiIdentifiers>()
  const settled: string[][] = []
  let pending = [...accounts].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  for (let level = 0; level <= LADDER.length && pending.length > 0; level++) {
    const byCombo = new Map<string, typeof pending>()
    for (const a of pending) {
      const c = comboKey(blank(a.qi, level))
      let g = byCombo.get(c)
      if (g === undefined) byCombo.set(c, g = [])
      g.push(a)
    }
    pending = []
    for (const g of byCombo.values()) {
      if (g.length >= k || level === LADDER.length) {
        for (const a of g) out.set(a.key, blank(a.qi, level))
        if (g.length >= k) settled.push(g.map(a => a.key))
      }
      if (g.length < k) pending.push(...g)
    }
  }
  // fewer than k accounts left with everything withheld: withhold everything of donors too, first from groups
  // larger than k (they stay at k or more), then whole groups, the smallest first
  const none = blank(accounts[0]?.qi ?? { start: '', area: '', areaType: '', role: '', status: '' }, LADDER.length)
  let short = pending.length === 0 ? 0 : k - pending.length
  settled.sort((a, b) => b.length - a.length)
  for (const g of settled) {
    while (short > 0 && g.length > k) {
      out.set(g.pop()!, none)
      short--
    }
  }
  for (const g of [...settled].reverse()) {
    if (short <= 0) break
    for (const key of g) out.set(key, none)
    short -= g.length
  }
  return out
}
