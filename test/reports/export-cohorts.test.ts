import t from 'tap'
import { nextHistory, publishedAccounts, type ExportHistory, type ParticipantRow } from '../../src/reports/anonymise.js'

// Accounts that joined between two exports, fewer than K (found by an attacker helper session): kept in a history
// of their own, as the export first did, they stayed blank in every later export, and with exports made often (a
// researcher may start 100 a day) every account that joined between two of them was withheld whole for good, from
// every researcher, and the flows report never counted its margin class as given. They are now published once
// enough alike have joined (src/reports/anonymise.ts, publishedAccounts).
t.test('three members who joined between two exports are published once ten more alike have joined', async (t) => {
  let n = 0
  const row = (start: string): ParticipantRow => ({ id: `00000000-0000-7000-8000-${String(n++).padStart(12, '0')}`, start, status: 'active', kind: 'member', district: 'BS6' })
  const pop: ParticipantRow[] = Array.from({ length: 20 }, () => row('2026-01'))
  let histories = new Map<string, ExportHistory>()
  let exports = 0
  const exportNow = () => {
    const small = new Set<string>()
    const pub = publishedAccounts(pop, ['BS'], histories, small)
    const next = new Map<string, ExportHistory>()
    for (const [id, q] of pub) next.set(id, nextHistory(histories.get(id), q, `export ${exports}`, small.has(id)))
    exports++
    histories = next
    return pub
  }
  exportNow()
  const three = [row('2026-03'), row('2026-03'), row('2026-03')]
  pop.push(...three)
  const second = exportNow()
  t.same(three.map(a => second.get(a.id)!.role), ['', '', ''], 'three who joined between: every field withheld (fewer than 5)')
  const ten = Array.from({ length: 10 }, () => row('2026-03'))
  pop.push(...ten)
  const third = exportNow()
  t.same(ten.map(a => third.get(a.id)!.role), ten.map(() => 'member'), 'the ten who joined since are published')
  t.same(three.map(a => third.get(a.id)!.role), ['member', 'member', 'member'],
    `the three are published with thirteen alike (they are: ${JSON.stringify(three.map(a => third.get(a.id)))})`)
})

// The same with exports made as often as a researcher may: one member joins between each two of 40 exports. Each
// is a cohort of one, given away by its new pseudonym whatever the file says; kept apart, every one would stay
// blank for good. Together with the other small cohorts they are published once five are alike.
t.test('one member joining between each of 40 exports: most are published, the last few wait', async (t) => {
  let n = 0
  const row = (start: string): ParticipantRow => ({ id: `00000000-0000-7000-8000-${String(n++).padStart(12, '0')}`, start, status: 'active', kind: 'member', district: n % 2 === 0 ? 'BS6' : 'BS3' })
  const pop: ParticipantRow[] = Array.from({ length: 400 }, () => row('2026-01'))
  let histories = new Map<string, ExportHistory>()
  let last = new Map<string, import('../../src/reports/anonymise.js').QuasiIdentifiers>()
  const joiners: ParticipantRow[] = []
  for (let e = 0; e < 40; e++) {
    if (e > 0) { const j = row('2026-03'); joiners.push(j); pop.push(j) }
    const small = new Set<string>()
    last = publishedAccounts(pop, ['BS'], histories, small)
    const next = new Map<string, ExportHistory>()
    for (const [id, q] of last) next.set(id, nextHistory(histories.get(id), q, `export ${e}`, small.has(id)))
    histories = next
  }
  const published = joiners.filter(j => last.get(j.id)!.role !== '').length
  t.ok(published >= joiners.length - 4, `${published} of the ${joiners.length} joiners have their role in the last file`)
})
