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

t.test('perturb: one published value per day cell, moved by 10-20% of its largest part, sign fixed per largest account', async (t) => {
  const { perturb, pRule, RULES } = await import('../../src/domain/disclosure.js')
  const key = Buffer.alloc(32, 7)
  const base = { cell: 'flows|sector|member|food', day: '2026-03-01', value: 50_000_000n, count: 3, top: 'acct-a', x1: 40_000_000n }
  const a = perturb(key, base)
  t.same(perturb(key, { ...base }), a, 'the same cell always gets the same noise')
  t.not(perturb(Buffer.alloc(32, 8), base).value, a.value, 'another secret, another noise')
  const signs = new Set<boolean>()
  for (let i = 0; i < 200; i++) {
    const d = { ...base, day: `2026-03-${String(1 + (i % 28)).padStart(2, '0')}`, value: BigInt(50_000_000 + i), top: `acct-${i % 50}` }
    const p = perturb(key, d)
    const noise = p.value - d.value
    const abs = noise < 0n ? -noise : noise
    if (!(abs >= 4_000_000n && abs < 8_000_000n)) t.fail(`noise ${noise} outside [10%, 20%) of the largest part`)
    if (Math.abs(p.count - d.count) > 1 || p.count < 0) t.fail(`count ${p.count} for ${d.count}`)
    signs.add(noise > 0n)
    const same = perturb(key, { ...d, day: '2026-04-01' })
    if ((same.value > 0n) !== (p.value > 0n) || (same.value - d.value > 0n) !== (noise > 0n)) t.fail('the sign follows the (cell, largest account)')
  }
  t.same([...signs].sort(), [false, true], 'both signs occur')
  t.equal(pRule(4, 100n, [25n, 25n, 25n], RULES)?.reason, 'threshold')
  t.equal(pRule(6, 100n, [50n, 20n, 10n], RULES), null, 'the rest (20) is over 10% of the largest (50)')
  t.equal(pRule(6, 100n, [60n, 20n, 15n], RULES)?.reason, 'dominance', 'the second and third together know the largest within 10%')
  t.equal(pRule(0, 0n, [], RULES), null, 'a true zero')
})
