// npx tsx scripts/k-anonymity-two-exports.ts [runs] [--without-history]
//
// The accounts export is k-anonymous on its own (src/reports/anonymise.ts), but a researcher may download it
// twice, weeks apart, and the transfers files link the two exports' pseudonyms (the same payments at the same
// microseconds). Between the two, accounts close and new ones join, which changes how each account is generalised:
// an account whose area the first export gave and whose closing the second gives may then fit fewer than K
// accounts of the two files together. This script draws populations like the attack suite's (400 participant
// accounts, 75% members, 85% in seven local districts, four months of joining), generalises them as the export
// does, closes about 3% and adds 40 new accounts, generalises again, and counts the participants an outsider who
// knows their area, locality, role, month and status narrows to fewer than K (and to one) with both files: once
// with each file generalised on its own (as the export was before it kept a history), once as the export is now
// (the second file generalises the accounts of each first-file combination apart, anonymise.ts). Deterministic:
// run r uses seed r.
import { createHash } from 'node:crypto'
import { K, nextHistory, publishedAccounts, type ExportHistory, type ParticipantRow, type QuasiIdentifiers } from '../src/reports/anonymise.js'

const historyMode = !process.argv.includes('--without-history')

const runs = Number(process.argv.find(a => /^\d+$/.test(a)) ?? 20)
const DISTRICTS = ['BS1', 'BS2', 'BS3', 'BS5', 'BS6', 'BS7', 'BS8', 'BA1', 'BA2', 'GL1', 'NP1']
const MONTHS = ['2025-11', '2025-12', '2026-01', '2026-02']

function run (seed: number) {
  let s = seed
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 }
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]
  let n = 0
  const id = () => createHash('sha256').update(`${seed}|${n++}`).digest('hex').slice(0, 32)
  const pop: ParticipantRow[] = []
  for (let i = 0; i < 400; i++) {
    pop.push({ id: id(), start: pick(MONTHS), status: 'open', kind: rnd() < 0.75 ? 'member' : 'business', district: rnd() < 0.85 ? pick(DISTRICTS.slice(0, 7)) : pick(DISTRICTS.slice(7)) })
  }
  const first = publishedAccounts(pop, ['BS'])
  const later = pop.map(p => ({ ...p }))
  for (const p of later) if (rnd() < 0.03) p.status = 'closed'
  for (let i = 0; i < 40; i++) later.push({ id: id(), start: '2026-03', status: 'open', kind: rnd() < 0.75 ? 'member' : 'business', district: pick(DISTRICTS) })
  const histories = new Map<string, ExportHistory>()
  if (historyMode) for (const [id, q] of first) histories.set(id, nextHistory(undefined, q, 'first'))
  const second = publishedAccounts(later, ['BS'], histories)
  const ok = (pub: string, v: string) => pub === '' || pub === v
  const fits = (q: QuasiIdentifiers | undefined, p: ParticipantRow, status: string) => q == null || (
    ok(q.area, p.district!.replace(/\d.*/, '')) && ok(q.areaType, p.district!.startsWith('BS') ? 'local' : 'non-local') &&
    ok(q.role, p.kind!) && ok(q.start, p.start) && ok(q.status, status))
  let alone = 0; let under = 0; let closedUnder = 0
  for (const p of later) {
    // the first file said open of everyone it held (all were open then)
    const c = later.filter(a => fits(second.get(a.id), p, p.status) && fits(first.get(a.id), p, 'open')).length
    if (c < K) { under++; if (p.status === 'closed') closedUnder++ }
    if (c === 1) alone++
  }
  const oneFile = later.filter(p => later.filter(a => fits(second.get(a.id), p, p.status)).length < K).length
  return { oneFile, under, closedUnder, alone }
}

let withUnder = 0; let withAlone = 0; let total = 0; let totalAlone = 0
for (let r = 1; r <= runs; r++) {
  const x = run(r)
  console.log(`run ${r}: the second file alone: ${x.oneFile} under ${K}; both files: ${x.under} under ${K} (${x.closedUnder} of them closed between the two), ${x.alone} singled out`)
  if (x.under > 0) withUnder++
  if (x.alone > 0) withAlone++
  total += x.under; totalAlone += x.alone
}
console.log(`${historyMode ? 'with the export history' : 'each file on its own'}, ${runs} runs: ${withUnder} with someone under ${K} (${total} in all), ${withAlone} with someone singled out (${totalAlone} in all)`)
