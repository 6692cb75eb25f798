import t from 'tap'
import { nextHistory, publishedAccounts, type ExportHistory, type ParticipantRow } from '../../src/reports/anonymise.js'

// attack4: docs/disclosure.md says accounts that joined since the last export, when fewer than 5, "stay blank until 5
// of them can be published alike". Their history is then a group of fewer than 5 that no later account can join
// (a history only ever splits), so they stay blank in every later export: with exports made often (a researcher
// may start 100 a day), every account that joins between two of them is withheld whole for good, from every
// researcher, and the flows report never counts its margin class as given.
t.test('attack4: three members who joined between two exports are published once ten more alike have joined', async (t) => {
  let n = 0
  const row = (start: string): ParticipantRow => ({ id: `00000000-0000-7000-8000-${String(n++).padStart(12, '0')}`, start, status: 'active', kind: 'member', district: 'BS6' })
  const pop: ParticipantRow[] = Array.from({ length: 20 }, () => row('2026-01'))
  let histories = new Map<string, ExportHistory>()
  const exportNow = () => {
    const pub = publishedAccounts(pop, ['BS'], histories)
    const next = new Map<string, ExportHistory>()
    for (const [id, q] of pub) next.set(id, nextHistory(histories.get(id), q))
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
