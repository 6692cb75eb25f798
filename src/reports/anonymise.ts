import { createHash } from 'node:crypto'
import { areaOf, isLocal } from '../domain/postcode.js'

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

interface Account { key: string, qi: QuasiIdentifiers }

export const comboKey = (q: QuasiIdentifiers): string => [q.start, q.area, q.areaType, q.role, q.status].join('|')

/**
 * The published quasi-identifiers of each account (by key), such that every published combination is shared by
 * at least k accounts (if there are k accounts at all). Level by level (LADDER), the accounts still pending are
 * grouped by what is left of their combination; a group of k or more is published at that level. A smaller group
 * first takes donors from groups already published whose combination comes to the same at this level (from
 * those with accounts to spare, else whole groups, the smallest first): the donors lose only the fields this
 * level withholds. What is left after the last level takes donors from anywhere. Deterministic: accounts are
 * taken in key order, so the same keys give the same result in every export.
 */
export function generalise (accounts: readonly Account[], k = K): Map<string, QuasiIdentifiers> {
  const out = new Map<string, QuasiIdentifiers>()
  let settled: Account[][] = []
  const settle = (g: Account[], level: number) => {
    for (const a of g) out.set(a.key, blank(a.qi, level))
    settled.push(g)
  }
  let pending = [...accounts].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  for (let level = 0; level <= LADDER.length && pending.length > 0; level++) {
    const byCombo = new Map<string, Account[]>()
    for (const a of pending) {
      const c = comboKey(blank(a.qi, level))
      let g = byCombo.get(c)
      if (g === undefined) byCombo.set(c, g = [])
      g.push(a)
    }
    pending = []
    for (const [c, g] of byCombo) {
      if (g.length < k) {
        const donors = settled.filter(s => comboKey(blank(s[0].qi, level)) === c)
        const need = k - g.length
        if (donors.reduce((n, s) => n + s.length - k, 0) >= need) {
          // accounts to spare: the largest groups give first, and stay at k or more
          donors.sort((a, b) => b.length - a.length)
          for (const s of donors) while (g.length < k && s.length > k) g.push(s.pop()!)
        } else if (donors.reduce((n, s) => n + s.length, 0) >= need) {
          donors.sort((a, b) => a.length - b.length)
          for (const s of donors) {
            if (g.length >= k) break
            g.push(...s)
            settled = settled.filter(x => x !== s)
          }
        }
      }
      if (g.length >= k) settle(g, level)
      else pending.push(...g)
    }
  }
  // fewer than k accounts in all with everything withheld: withhold everything of donors from anywhere too
  if (pending.length > 0) {
    const g = [...pending]
    const all = settled.sort((a, b) => b.length - a.length)
    for (const s of all) while (g.length < k && s.length > k) g.push(s.pop()!)
    for (const s of all.reverse()) { if (g.length >= k) break; g.push(...s.splice(0)) }
    for (const a of g) out.set(a.key, blank(a.qi, LADDER.length))
  }
  return out
}

/** A participant account as the accounts export reads it. */
export interface ParticipantRow { id: string, start: string, status: string, kind: string | null, district: string | null }

/** A frozen account is still open (the reports count it so); only closing is published. */
export const publishedStatus = (s: string): string => s === 'closed' ? 'closed' : 'open'

function quasiIdentifiers (a: ParticipantRow, localAreas: readonly string[]): QuasiIdentifiers {
  return {
    start: a.start,
    area: a.district == null ? '' : areaOf(a.district),
    areaType: a.district == null ? '' : isLocal(a.district, localAreas) ? 'local' : 'non-local',
    role: a.kind ?? '',
    status: publishedStatus(a.status),
  }
}

/**
 * What earlier accounts exports published of an account (table account_export_history): a digest of the sequence
 * of combinations they gave it, and whether some export gave its role, or its area and locality.
 */
export interface ExportHistory { history: string, roleKnown: boolean, areaKnown: boolean }

/**
 * What the accounts export publishes of every participant account (by account id): its quasi-identifiers,
 * generalised. A researcher who downloads the export twice links the two files' pseudonyms through the transfers
 * (the same payments at the same microseconds) and holds, of each account, the sequence of what each file said,
 * and which files it was in. So the accounts of each history (the same sequence so far) are generalised together
 * and apart from the others: within a history every combination published is shared by at least K accounts, so
 * every sequence a researcher can hold is too. An account that closes, say, is published closed only once K
 * accounts of its history can be; until then its status is withheld, with theirs.
 *
 * An account never published with a field has the history of the export it first appeared in (nextHistory): the
 * transfers file tells a researcher which pseudonyms are new in each export, so accounts that joined between the
 * same two exports are told apart from all others whatever the accounts file says. Those in no export yet, and
 * each such cohort of K or more, are generalised on their own. A cohort of fewer than K is given away by its new
 * pseudonyms anyway; generalised on its own it would stay blank for good, so its accounts each take the most
 * specific combination published of K or more new accounts that is true of them, and the rest are generalised
 * together with the other small cohorts. Such accounts (`small`, which the caller passes to nextHistory) keep a
 * history of their own kind, and whenever theirs holds fewer than K they are generalised with the small cohorts
 * again: the files cannot protect them from a researcher who knows when they joined, and do not try to beyond
 * K alike in each file. Keyed by a hash of the id: the same accounts with the same fields are
 * generalised alike in every export, in an order that is not the order of joining (uuid v7 ids are). The flows
 * report reads the same, to know which day cells the exports give (docs/disclosure.md).
 */
export function publishedAccounts (participants: readonly ParticipantRow[], localAreas: readonly string[],
  histories: ReadonlyMap<string, ExportHistory> = new Map(), small: Set<string> = new Set()): Map<string, QuasiIdentifiers> {
  const keys = participants.map(a => createHash('sha256').update(a.id).digest('hex'))
  const parts = new Map<string, Account[]>()
  participants.forEach((a, i) => {
    const h = histories.get(a.id)?.history ?? FRESH
    let part = parts.get(h)
    if (part === undefined) parts.set(h, part = [])
    part.push({ key: keys[i], qi: quasiIdentifiers(a, localAreas) })
  })
  const byKey = new Map<string, QuasiIdentifiers>()
  const pool: Account[] = []
  for (const [h, part] of parts) {
    if ((h === FRESH || h.startsWith(COHORT) || h.startsWith(SMALL)) && part.length < K) pool.push(...part)
    else for (const [k, q] of generalise(part)) byKey.set(k, q)
  }
  // the groups of K or more new accounts, most specific first, that a small cohort's accounts may take
  const sizes = new Map<string, { q: QuasiIdentifiers, n: number }>()
  for (const a of parts.get(FRESH) ?? []) {
    const q = byKey.get(a.key)
    if (q == null) continue
    const e = sizes.get(comboKey(q))
    if (e == null) sizes.set(comboKey(q), { q, n: 1 }); else e.n++
  }
  const groups = [...sizes.values()].filter(g => g.n >= K && LADDER.some(f => g.q[f] !== ''))
    .map(g => ({ q: g.q, fields: LADDER.filter(f => g.q[f] !== '').length, key: comboKey(g.q) }))
    .sort((a, b) => b.fields - a.fields || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  const rest: Account[] = []
  for (const a of pool) {
    const g = groups.find(g => LADDER.every(f => g.q[f] === '' || g.q[f] === a.qi[f]))
    if (g != null) byKey.set(a.key, g.q); else rest.push(a)
  }
  for (const [k, q] of generalise(rest)) byKey.set(k, q)
  const inPool = new Set(pool.map(a => a.key))
  return new Map(participants.map((a, i) => {
    if (inPool.has(keys[i])) small.add(a.id)
    return [a.id, byKey.get(keys[i])!]
  }))
}

/** The history of accounts in no export yet; the prefix of a cohort's (those first in one export, never
 *  published with a field); and of the small cohorts' accounts once published (publishedAccounts). */
const FRESH = ''
const COHORT = 'cohort:'
const SMALL = 'small:'

/**
 * An account's history after export `exportId` published `q` of it; `small`: publishedAccounts generalised it
 * with the small cohorts. A row with every field withheld tells a researcher only that the account exists: an
 * account never published with a field keeps the history of the export it first appeared in (its cohort); one
 * published before keeps its history. A small cohort's account published with a field starts a history of the
 * small kind from what this export gave, so those published alike stay together.
 */
export function nextHistory (prev: ExportHistory | undefined, q: QuasiIdentifiers, exportId: string, small = false): ExportHistory {
  if (LADDER.every(f => q[f] === '')) return prev ?? { history: `${COHORT}${exportId}`, roleKnown: false, areaKnown: false }
  const digest = createHash('sha256').update(`${small ? SMALL : prev?.history ?? ''}\n${comboKey(q)}`).digest('base64url')
  return {
    history: small ? `${SMALL}${digest}` : digest,
    roleKnown: prev?.roleKnown === true || q.role !== '',
    areaKnown: prev?.areaKnown === true || (q.area !== '' && q.areaType !== ''),
  }
}

/** Whether the exports give an account's margin class in the flows by `by` (role; area and locality): the export
 *  as it would be made now, or an earlier one. */
export function marginKnown (q: QuasiIdentifiers, h: ExportHistory | undefined, by: 'sector' | 'district'): boolean {
  return by === 'sector' ? q.role !== '' || h?.roleKnown === true : (q.area !== '' && q.areaType !== '') || h?.areaKnown === true
}
