import fc from 'fast-check'
import t from 'tap'
import { comboKey, generalise, K, LADDER, type QuasiIdentifiers } from '../../src/reports/anonymise.js'

// The generaliser on its own: whatever the accounts, every published combination is shared by at least k of
// them (when there are k at all), and what is published of an account is its own value or withheld.

const Account = fc.record({
  start: fc.constantFrom('2025-11', '2025-12', '2026-01'),
  area: fc.constantFrom('BS', 'BA', 'GL'),
  areaType: fc.constantFrom('local', 'non-local'),
  role: fc.constantFrom('member', 'business'),
  status: fc.constantFrom('open', 'open', 'open', 'closed'),
})

t.test('every published combination holds at least k accounts, and nothing published is false', async (t) => {
  let runs = 0
  let fields = 0
  let published = 0
  // size 'max': by default fast-check draws at most 20 accounts (2 * minLength + 10) over 72 combinations, and
  // then two fields in three were withheld, few accounts were published whole, and the donor paths were rare
  fc.assert(fc.property(fc.array(Account, { minLength: K, maxLength: 80, size: 'max' }), fc.integer({ min: 2, max: 6 }), (qs, k) => {
    if (qs.length < k) return
    runs++
    const accounts = qs.map((qi, i) => ({ key: `a${String(i).padStart(3, '0')}`, qi }))
    const out = generalise(accounts, k)
    const sizes = new Map<string, number>()
    for (const a of accounts) {
      const p = out.get(a.key)!
      for (const f of LADDER) if (p[f] !== '' && p[f] !== a.qi[f]) throw new Error(`${a.key}: ${f} published as ${p[f]}, is ${a.qi[f]}`)
      fields += LADDER.length
      published += LADDER.filter(f => p[f] !== '').length
      sizes.set(comboKey(p), (sizes.get(comboKey(p)) ?? 0) + 1)
    }
    for (const [c, n] of sizes) if (n < k) throw new Error(`combination ${c} holds ${n} < ${k}`)
  }), { numRuns: 300 })
  t.ok(runs > 100, `${runs} random sets of accounts`)
  // the generator's own check: where nearly everything is withheld, "nothing published is false" says little
  t.ok(published > fields / 2, `most fields were published (${published} of ${fields})`)
})

t.test('fields are withheld in order, and only as far as needed', async (t) => {
  const q = (start: string, area: string, status = 'open'): QuasiIdentifiers => ({ start, area, areaType: 'local', role: 'member', status })
  const accounts = [
    ...Array.from({ length: 5 }, (_, i) => ({ key: `bs${i}`, qi: q('2026-01', 'BS') })),
    ...Array.from({ length: 3 }, (_, i) => ({ key: `ba${i}`, qi: q('2026-01', 'BA') })),
    ...Array.from({ length: 2 }, (_, i) => ({ key: `gl${i}`, qi: q('2026-01', 'GL') })),
    { key: 'x', qi: q('2026-02', 'BS', 'closed') },
  ]
  const withheldOf = (out: Map<string, QuasiIdentifiers>) => [...out.entries()].filter(([, p]) => p.role === '').map(([k]) => k).sort()
  const out = generalise(accounts.filter(a => a.key !== 'x'), 5)
  t.same(out.get('bs0'), q('2026-01', 'BS'), 'a combination of five is published as it is')
  t.same(out.get('ba0'), q('2026-01', ''), 'three in BA and two in GL: the area is withheld, the rest kept')
  t.same(out.get('gl1'), q('2026-01', ''))
  t.same(withheldOf(out), [], 'nothing else')

  const lone = generalise(accounts, 5)
  const x = { start: '', area: '', areaType: 'local', role: 'member', status: '' }
  t.same(lone.get('x'), x, 'one alone (another month, closed) loses its area, status and month, not what it is')
  t.same(withheldOf(lone), [], 'so no one loses member or business')
  const startless = (out: Map<string, QuasiIdentifiers>) => [...out.entries()].filter(([, p]) => p.start === '').map(([k]) => k).sort()
  t.same(startless(lone), ['bs0', 'bs1', 'bs2', 'bs3', 'bs4', 'x'], 'as no group has one to spare, it takes a whole group with it')
  accounts.push({ key: 'bs5', qi: q('2026-01', 'BS') }, { key: 'bs6', qi: q('2026-01', 'BS') })
  accounts.push({ key: 'bs7', qi: q('2026-01', 'BS') }, { key: 'bs8', qi: q('2026-01', 'BS') })
  const spare = generalise(accounts, 5)
  t.same(startless(spare), ['bs5', 'bs6', 'bs7', 'bs8', 'x'], 'a group with four to spare gives them (the last in key order)')
  t.same(spare.get('bs0'), q('2026-01', 'BS'), 'and keeps the rest')
})
