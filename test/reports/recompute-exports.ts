import { Money } from '../../src/domain/money.js'
import type { A, E, RawLedger, T } from './recompute.js'

// The raw ledger as a researcher rebuilds it from the two research exports of one export (circulate dialect),
// and nothing else: what recomputeFrom() needs to recompute the circulation figures. Pseudonyms stand for ids.
// What the exports withhold (anonymise.ts) is taken as the researcher must take it, and docs/research-exports.md
// says which figures that can change.

const KIND: Record<string, string> = {
  DISBURSEMENT: 'issuance', RECLAMATION: 'redemption', STANDARD: 'payment', FEE: 'fee', REVERSAL: 'reversal',
}

export const parseCsv = (csv: string): Array<Record<string, string>> => {
  const [head, ...lines] = csv.trim().split('\n')
  const cols = head.split(',')
  return lines.map(l => { const v = l.split(','); return Object.fromEntries(cols.map((c, i) => [c, v[i] ?? ''])) })
}

/** 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) to microseconds since the epoch */
export const timesetMicros = (s: string): number => {
  const [whole, frac = ''] = s.split('.')
  return Date.parse(`${whole.replace(' ', 'T')}Z`) * 1000 + Number(frac.padEnd(6, '0'))
}

/** 'YYYY-MM' to the first microsecond of that month */
const monthMicros = (m: string): number => Date.parse(`${m}-01T00:00:00Z`) * 1000

export function ledgerFromExports (transfersCsv: string, accountsCsv: string): RawLedger {
  const ts: T[] = parseCsv(transfersCsv).map(r => ({
    id: r.id, kind: KIND[r.transfer_subtype] ?? r.transfer_subtype.toLowerCase(), from: r.source, to: r.target,
    amount: new Money(r.weight), parent: r.parent_id === '' ? null : r.parent_id, reverses: r.reverses_id === '' ? null : r.reverses_id,
    at: timesetMicros(r.timeset),
  }))
  const entries: E[] = ts.flatMap(t => [{ account: t.from, amount: t.amount.neg(), at: t.at }, { account: t.to, amount: t.amount, at: t.at }])
  const first = new Map<string, number>()
  for (const t of ts) for (const a of [t.from, t.to]) first.set(a, Math.min(first.get(a) ?? Infinity, t.at))
  const accounts = new Map<string, A>()
  const accountCreated = new Map<string, number>()
  for (const r of parseCsv(accountsCsv)) {
    const system = r.held_roles === 'ADMIN'
    // a withheld month of joining: the account existed by its first transfer at the latest (a researcher's guess)
    const created = r.start !== '' ? monthMicros(r.start) : first.get(r.id) ?? Infinity
    accounts.set(r.id, {
      id: r.id, participant: system ? null : r.id, system: system ? r.business_type : null,
      status: r.status === 'closed' ? 'closed' : 'active',
      kind: r.held_roles === 'VENDOR' ? 'business' : r.held_roles === 'BENEFICIARY' ? 'member' : null,
      local: r.area_type === 'local', pCreated: system ? null : created,
    })
    accountCreated.set(r.id, created)
  }
  return { ts, accounts, accountCreated, entries }
}
