import t from 'tap'
import { complement, judge, NO_RULES, type Slot } from '../../src/domain/disclosure.js'

t.test('threshold and dominance', async (t) => {
  t.equal(judge({ value: '0', n: 0, max: '0', biz: false }), null, 'a true zero describes nobody and is published')
  t.same(judge({ value: '10', n: 4, max: '3', biz: false }), { reason: 'threshold' }, 'four accounts')
  t.equal(judge({ value: '10', n: 5, max: '3', biz: false }), null, 'five accounts')
  t.same(judge({ value: '100', n: 9, max: '85.01', biz: true }), { reason: 'dominance' }, 'one account over 85% of a business cell')
  t.equal(judge({ value: '100', n: 9, max: '85', biz: true }), null, 'exactly 85% is not over it')
  t.equal(judge({ value: '100', n: 9, max: '99', biz: false }), null, 'dominance is a rule for cells with businesses in them')
  t.equal(judge({ value: '10', n: 1, max: '10', biz: true }, NO_RULES), null, 'no rules: nothing hidden')
})

t.test('complementary suppression hides a second cell where a sum would give the first away', async (t) => {
  const slot = (value: string, n: number, hidden = false): Slot => ({ value, n, verdict: hidden ? { reason: 'threshold' } : null })
  const total = slot('100', 20)
  const months = [slot('7', 2, true), slot('60', 10), slot('33', 8)]
  complement([{ parent: total, children: months }])
  t.same(months.map(m => m.verdict), [{ reason: 'threshold' }, null, { reason: 'threshold', complementary: true }], 'the smaller other month')

  const alone = slot('7', 2, true)
  const parent = slot('7', 2)
  const zero = slot('0', 0)
  complement([{ parent, children: [alone, zero] }])
  t.same(parent.verdict, { reason: 'threshold', complementary: true }, 'the only other part is a true zero: the total itself is hidden')

  const two = [slot('1', 1, true), slot('2', 1, true), slot('50', 9)]
  complement([{ parent: slot('53', 11), children: two }])
  t.equal(two[2].verdict, null, 'two hidden cells cannot be told apart: nothing more to hide')

  // a row and a column that share a cell: hiding spreads until both are safe
  const a = slot('5', 2, true); const b = slot('40', 9); const c = slot('30', 9); const e = slot('20', 9)
  complement([{ parent: null, children: [a, b] }, { parent: null, children: [b, c, e] }])
  t.same([b.verdict?.complementary, e.verdict?.complementary, c.verdict], [true, true, null])
})

t.test('perturbDay: one published value per day cell; sensitive cells move by 10-20% of their largest part; margins kept', async (t) => {
  const { perturbDay, pRule, RULES } = await import('../../src/domain/disclosure.js')
  const key = Buffer.alloc(32, 7)
  const M = 1_000_000n
  let seed = 1
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
  const abs = (x: bigint) => (x < 0n ? -x : x)
  const signs = new Map<string, Set<boolean>>()
  for (let day = 1; day <= 300; day++) {
    const cells = Array.from({ length: 1 + rnd(6) }, (_, k) => {
      const value = BigInt(1 + rnd(500)) * M
      const x1 = value * BigInt(20 + rnd(81)) / 100n
      return { cell: `flows|sector|member|s${k}`, group: k < 4 ? 'member>business' : `solo${k}`, day: `d${day}`, value, count: 1 + rnd(9), top: `a${rnd(4)}`, x1, sensitive: rnd(2) === 0 }
    })
    const p = perturbDay(key, cells)
    t.same(perturbDay(key, cells.map(c => ({ ...c }))), p, 'the same cells always get the same values') // deterministic
    const groups = new Set(cells.map(c => c.group))
    for (const g of groups) {
      const ix = cells.map((c, i) => i).filter(i => cells[i].group === g)
      const before = ix.reduce((a, i) => a + cells[i].value, 0n)
      const after = ix.reduce((a, i) => a + p[i].value, 0n)
      if (before !== after) t.fail(`day ${day} group ${g}: the margin moved`)
      if (ix.length === 1 && p[ix[0]].value !== cells[ix[0]].value) t.fail('a cell alone in its group is its own margin')
      if (ix.length > 1) {
        for (const i of ix) {
          const moved = abs(p[i].value - cells[i].value)
          if (cells[i].sensitive && moved * 10n < cells[i].x1) t.fail(`day ${day}: a sensitive cell moved by ${moved}, under 10% of ${cells[i].x1}`)
        }
      }
    }
    cells.forEach((c, i) => { if (p[i].count < 0) t.fail('a negative count') })
    cells.forEach((c, i) => {
      if (cells.filter(x => x.group === c.group).length > 1 && p[i].value !== c.value) {
        const s = signs.get(c.cell) ?? new Set(); s.add(p[i].value > c.value); signs.set(c.cell, s)
      }
    })
  }
  t.pass('300 random days checked')
  t.not(perturbDay(Buffer.alloc(32, 8), [
    { cell: 'a', group: 'g', day: 'd', value: 10n * M, count: 1, top: 'x', x1: 10n * M, sensitive: true },
    { cell: 'b', group: 'g', day: 'd', value: 90n * M, count: 9, top: 'y', x1: 9n * M, sensitive: false },
  ])[0].value, 10n * M, 'a one-payment cell never comes out exact')
  t.equal(pRule(4, 100n, [25n, 25n, 25n], RULES)?.reason, 'threshold')
  t.equal(pRule(6, 100n, [50n, 20n, 10n], RULES), null, 'the rest (20) is over 10% of the largest (50)')
  t.equal(pRule(6, 100n, [60n, 20n, 15n], RULES)?.reason, 'dominance', 'the second and third together know the largest within 10%')
  t.equal(pRule(0, 0n, [], RULES), null, 'a true zero')
})
