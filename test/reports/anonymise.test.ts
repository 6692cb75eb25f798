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

// Exports made at different times (docs/disclosure.md): the transfers files link two exports' pseudonyms, so a
// researcher holds, of each account, what every file said. Four exports of a population like the attack
// suite's (400 participant accounts), with accounts closing and joining between them: an outsider who knows a
// participant's area, locality, role, month of joining and status at each export, and whether it existed then,
// must find at least K accounts that every file fits. The exception is inherent: the accounts that joined between
// the same two exports, when fewer than K, are told apart from everyone else by their new pseudonyms in the
// transfers file, whatever the accounts file says. Without the export history (each file generalised on its own,
// as before) the same attack singles people out: that control shows the attack has teeth.
t.test('four exports made apart are k-anonymous together', async (t) => {
  const { marginKnown, nextHistory, publishedAccounts } = await import('../../src/reports/anonymise.js')
  const DISTRICTS = ['BS1', 'BS2', 'BS3', 'BS5', 'BS6', 'BS7', 'BS8', 'BA1', 'BA2', 'GL1', 'NP1']
  const MONTHS = ['2025-11', '2025-12', '2026-01', '2026-02']
  type Row = { id: string, start: string, status: string, kind: string, district: string }
  const area = (d: string) => d.replace(/\d.*/, '')
  const local = (d: string) => d.startsWith('BS') ? 'local' : 'non-local'
  let underWith = 0; let underWithout = 0; let runsWithout = 0; let fewJoined = 0; let fewPublished = 0; let checked = 0
  const fieldsKept = [0, 0]
  for (let seed = 1; seed <= 20; seed++) {
    let s = seed
    const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 }
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]
    let n = 0
    const id = () => `${seed}-${String(n++).padStart(4, '0')}`
    const pop: Row[] = []
    for (let i = 0; i < 400; i++) pop.push({ id: id(), start: pick(MONTHS), status: 'open', kind: rnd() < 0.75 ? 'member' : 'business', district: rnd() < 0.85 ? pick(DISTRICTS.slice(0, 7)) : pick(DISTRICTS.slice(7)) })
    // what each export saw: round 2 after 3% closed and 40 joined, round 3 after 3% more closed and 3 joined,
    // round 4 after 3% more closed and 12 more joined in the same month
    const rounds: Row[][] = [pop.map(p => ({ ...p }))]
    for (const [joining, month] of [[40, '2026-03'], [3, '2026-04'], [12, '2026-04']] as const) {
      const next = rounds[rounds.length - 1].map(p => ({ ...p, status: rnd() < 0.03 ? 'closed' : p.status }))
      for (let i = 0; i < joining; i++) next.push({ id: id(), start: month, status: 'open', kind: rnd() < 0.75 ? 'member' : 'business', district: pick(DISTRICTS) })
      rounds.push(next)
    }
    const files = (withHistory: boolean) => {
      let histories = new Map<string, ReturnType<typeof nextHistory>>()
      return rounds.map((r, i) => {
        const small = new Set<string>()
        const pub = publishedAccounts(r, ['BS'], withHistory ? histories : new Map(), small)
        const next = new Map(histories)
        for (const [k, q] of pub) next.set(k, nextHistory(histories.get(k), q, `export ${i}`, small.has(k)))
        histories = next
        return pub
      })
    }
    const ok = (pub: string, v: string) => pub === '' || pub === v
    const fits = (q: QuasiIdentifiers, p: Row) => ok(q.area, area(p.district)) && ok(q.areaType, local(p.district)) && ok(q.role, p.kind) && ok(q.start, p.start) && ok(q.status, p.status)
    const byId = rounds.map(r => new Map(r.map(p => [p.id, p])))
    const last = rounds[rounds.length - 1]
    const presence = (id: string) => byId.map(m => m.has(id) ? 1 : 0).join('')
    const cohort = new Map<string, number>()
    for (const a of last) cohort.set(presence(a.id), (cohort.get(presence(a.id)) ?? 0) + 1)
    const linkage = (fs: Array<Map<string, QuasiIdentifiers>>) => {
      let under = 0
      for (const target of last) {
        // fewer than K joined between the same two exports: the transfers file tells them apart (see above)
        if (cohort.get(presence(target.id))! < K) continue
        // the accounts present in exactly the files the target was in, whose every row fits the target as it was
        const candidates = last.filter(a => rounds.every((r, i) => {
          const p = byId[i].get(target.id)
          const q = fs[i].get(a.id)
          return p == null ? q == null : q != null && fits(q, p)
        }))
        if (candidates.length < K) under++
      }
      return under
    }
    const withFiles = files(true)
    const withoutFiles = files(false)
    underWith += linkage(withFiles)
    const without = linkage(withoutFiles)
    for (const [i, fs] of [withFiles, withoutFiles].entries()) for (const pub of fs.slice(1)) for (const q of pub.values()) fieldsKept[i] += LADDER.filter(f => q[f] !== '').length
    underWithout += without
    if (without > 0) runsWithout++
    checked += last.length
    // the 3 who joined before the third export: blank in it, too few; published in the fourth with the 12 after them
    const few = rounds[2].filter(p => !byId[1].has(p.id))
    fewJoined += few.length
    fewPublished += few.filter(p => LADDER.some(f => withFiles[3].get(p.id)![f] !== '')).length
    for (const p of few) if (LADDER.some(f => withFiles[2].get(p.id)![f] !== '')) t.fail('fewer than K who joined between two exports are published')
    // the flows report's "given" margin classes (marginKnown) include what an earlier file gave
    const hs = new Map<string, ReturnType<typeof nextHistory>>()
    for (const [k, q] of withFiles[0]) hs.set(k, nextHistory(undefined, q, 'export 0'))
    for (const [k, q] of withFiles[0]) if (q.role !== '' && !marginKnown({ ...q, role: '' }, hs.get(k), 'sector')) t.fail('a role the first file gave is not counted as given')
  }
  t.equal(underWith, 0, `with the export history, nobody of ${checked} participants over 20 populations fits fewer than ${K} accounts of four files (but for the 3 a run who joined between the same two exports)`)
  t.ok(fewPublished > fewJoined / 2, `those 3 are withheld whole in the third file, and ${fewPublished} of ${fewJoined} have a field published in the fourth, once 12 more have joined`)
  t.ok(runsWithout > 0, `without it, the same attack puts ${underWithout} participants under ${K} in ${runsWithout} of 20 populations`)
  t.comment(`what it costs: the second to fourth files publish ${fieldsKept[0]} fields with the history, ${fieldsKept[1]} without`)
})
