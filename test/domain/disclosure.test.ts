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

t.test('perturbDay: one value per day cell; each cell moves its own way by at least NOISE_LOW of its largest part, unless it balances or is hidden; margins kept', async (t) => {
  const { balancerNeeds, direction, perturbDay, pRule, RULES, NOISE_LOW, NOISE_HIGH } = await import('../../src/domain/disclosure.js')
  const key = Buffer.alloc(32, 7)
  const M = 1_000_000n
  const LOW = BigInt(Math.round(NOISE_LOW * 1e6))
  let seed = 1
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
  const abs = (x: bigint) => (x < 0n ? -x : x)
  const seen = { own: 0, balancer: 0, hidden: 0 }
  for (let day = 1; day <= 400; day++) {
    const first = rnd(12) // which cells a day has changes from day to day, and with it which directions meet
    const cells = Array.from({ length: 1 + rnd(6) }, (_, k) => {
      const big = rnd(3) === 0
      const value = BigInt(1 + rnd(big ? 20_000 : 500)) * M
      const x1 = value * BigInt((big ? 2 : 20) + rnd(big ? 10 : 81)) / 100n
      const n = big ? 5 + rnd(50) : 1 + rnd(6)
      const rest = n <= 3 ? 0n : value - x1 - x1 * 2n * BigInt(rnd(50)) / 100n
      return {
        cell: `flows|sector|member|s${first + k}`, group: k < 4 ? 'member>business' : `solo${k}`, day: `d${day}`, value, count: 1 + rnd(9),
        top: `a${rnd(4)}`, x1, n, rest: rest > 0n ? rest : 0n, sensitive: pRule(n, value, [x1], RULES) != null, given: true,
      }
    })
    const p = perturbDay(key, cells)
    t.same(perturbDay(key, cells.map(c => ({ ...c }))), p, 'the same cells always get the same values') // deterministic
    for (const g of new Set(cells.map(c => c.group))) {
      const ix = cells.map((c, i) => i).filter(i => cells[i].group === g)
      const before = ix.reduce((a, i) => a + cells[i].value, 0n)
      const after = ix.reduce((a, i) => a + p[i].value, 0n)
      if (before !== after) t.fail(`day ${day} group ${g}: the margin moved`)
      if (ix.length === 1 && (p[ix[0]].value !== cells[ix[0]].value || p[ix[0]].hide != null)) t.fail('a cell alone in its group is its own margin')
      if (ix.length === 1) continue
      const hidden = ix.filter(i => p[i].hide != null)
      // only the side whose noises add up to less moves further than NOISE_HIGH, to bring the group's sum to zero
      const further = new Set<number>()
      if (hidden.length === 1) t.fail(`day ${day}: one cell hidden alone in a group (the group's total would give it back)`)
      for (const i of ix) {
        const c = cells[i]
        const moved = (p[i].value - c.value) * direction(key, c.cell)
        if (moved * 1_000_000n >= abs(c.x1) * LOW - 1_000_000n) seen.own++
        else if (p[i].hide != null) seen.hidden++
        else if (moved <= 0n && c.n >= RULES.threshold && c.rest >= balancerNeeds(-moved, c.x1)) seen.balancer++
        else t.fail(`day ${day}: ${c.cell} moved ${moved} its own way, under ${NOISE_LOW} of ${c.x1}, and is neither a balancer nor hidden`)
        if (moved > 0n && moved * 1_000_000n > abs(c.x1) * BigInt(Math.round(NOISE_HIGH * 1e6)) + 1_000_000n) further.add((p[i].value > c.value) ? 1 : -1)
      }
      if (further.size > 1) t.fail(`day ${day}: cells moved further than NOISE_HIGH up and down`)
    }
    cells.forEach((c, i) => { if (p[i].count < 0) t.fail('a negative count') })
  }
  t.ok(seen.own > 100 && seen.balancer > 5 && seen.hidden > 5, `400 random days checked: ${seen.own} day cells moved their own way, ${seen.balancer} balanced their group, ${seen.hidden} hidden`)
  t.not(perturbDay(Buffer.alloc(32, 8), [
    { cell: 'a', group: 'g', day: 'd', value: 10n * M, count: 1, top: 'x', x1: 10n * M, n: 2, rest: 0n, sensitive: true, given: true },
    { cell: 'b', group: 'g', day: 'd', value: 90n * M, count: 9, top: 'y', x1: 9n * M, n: 9, rest: 60n * M, sensitive: false, given: true },
  ])[0].value, 10n * M, 'a one-payment cell never comes out exact')

  // alone in its group: exact when the exports give it or it passes the rules; hidden otherwise, never perturbed
  const lone = { cell: 'a', group: 'g', day: 'd', value: 10n * M, count: 1, top: 'x', x1: 10n * M, n: 2, rest: 0n, sensitive: true, given: true }
  t.same(perturbDay(Buffer.alloc(32, 8), [lone]), [{ value: 10n * M, count: 1 }], 'given by the exports: as it is')
  t.same(perturbDay(Buffer.alloc(32, 8), [{ ...lone, given: false }]), [{ value: 10n * M, count: 1, hide: 'threshold' }],
    'not given, and two accounts: hidden in every range holding the day')
  t.same(perturbDay(Buffer.alloc(32, 8), [{ ...lone, given: false, n: 9, rest: 5n * M, x1: 2n * M, sensitive: false }]), [{ value: 10n * M, count: 1 }],
    'not given, but it passes the rules on its own: as it is')

  // two cells that go the same way: a large cell takes the balancing noise, two small ones are hidden
  const same = (() => { for (let i = 0; ; i++) { const k = Buffer.alloc(32, i); if (direction(k, 'a') === direction(k, 'b')) return k } })()
  const small = { group: 'g', day: 'd', value: 10n * M, count: 1, top: 'x', x1: 10n * M, n: 1, rest: 0n, sensitive: true, given: true }
  const large = { group: 'g', day: 'd', value: 1000n * M, count: 90, top: 'y', x1: 30n * M, n: 80, rest: 900n * M, sensitive: false, given: true }
  const balanced = perturbDay(same, [{ ...small, cell: 'a' }, { ...large, cell: 'b' }])
  t.ok((balanced[0].value - 10n * M) * direction(same, 'a') >= M, 'the small cell goes its own way')
  t.ok((balanced[1].value - 1000n * M) * direction(same, 'b') < 0n, 'the large one balances against its own')
  t.same(balanced.map(x => x.hide), [undefined, undefined], 'nothing hidden')
  const stuck = perturbDay(same, [{ ...small, cell: 'a' }, { ...small, cell: 'b', top: 'z' }])
  t.same(stuck.map(x => x.hide), ['threshold', 'threshold'], 'no balancer: both hidden in every range containing the day')
  t.equal(stuck[0].value + stuck[1].value, 20n * M, 'the margin kept')
  t.ok(balancerNeeds(M, 10n * M) > 10n * M, 'a balancer leaves far more than the noise it takes')
  t.equal(pRule(4, 100n, [25n, 25n, 25n], RULES)?.reason, 'threshold')
  t.equal(pRule(6, 100n, [50n, 20n, 10n], RULES), null, 'the rest (20) is over 10% of the largest (50)')
  t.equal(pRule(6, 100n, [60n, 20n, 15n], RULES)?.reason, 'dominance', 'the second and third together know the largest within 10%')
  t.equal(pRule(0, 0n, [], RULES), null, 'a true zero')
})

// A currency of whole units publishes its flows rounded to whole units. A noise worked out finer than that was
// rounded away for a day cell whose largest part is a few units (under half a unit of noise), so that day cell
// came out exact. Every noise is now a whole, nonzero number of the currency's minor units.
t.test('perturbDay in whole minor units: every cell of a shared margin moves by at least one unit, and never by a fraction of one', async (t) => {
  const { perturbDay, pRule, RULES } = await import('../../src/domain/disclosure.js')
  const M = 1_000_000n
  let seed = 3
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
  for (const unit of [M, 10_000n]) {
    const magnitudes = new Set<bigint>()
    let moved = 0
    let small = 0
    for (let day = 1; day <= 300; day++) {
      const key = Buffer.alloc(32, day % 7)
      const cells = Array.from({ length: 2 + rnd(4) }, (_, k) => {
        // values of a few minor units: a largest part of 1 to 4 units gets a noise under half a unit before rounding
        const x1 = BigInt(1 + rnd(4)) * unit
        const value = x1 * BigInt(1 + rnd(6))
        const n = 1 + rnd(9)
        return {
          cell: `flows|sector|member|s${k}`, group: 'member>business', day: `d${day}`, value, count: 1 + rnd(5), top: `a${rnd(3)}`,
          x1, n, rest: value - x1 > 0n ? value - x1 : 0n, sensitive: pRule(n, value, [x1], RULES) != null, given: true,
        }
      })
      const p = perturbDay(key, cells, RULES, unit)
      const before = cells.reduce((a, c) => a + c.value, 0n)
      const after = p.reduce((a, x) => a + x.value, 0n)
      if (before !== after) t.fail(`day ${day}: the margin moved (${before} to ${after})`)
      cells.forEach((c, i) => {
        const noise = p[i].value - c.value
        if (noise % unit !== 0n) t.fail(`day ${day}: ${c.cell} moved by ${noise} micros, not a whole number of units of ${unit}`)
        if (noise === 0n) t.fail(`day ${day}: ${c.cell} (largest part ${c.x1}) came out exact`)
        if (p[i].hide == null && p[i].value <= 0n) t.fail(`day ${day}: ${c.cell} published at ${p[i].value}, which says it went down`)
        if (c.x1 <= 3n * unit) magnitudes.add(noise < 0n ? -noise / unit : noise / unit)
        moved++
        if (c.x1 <= 4n * unit) small++
      })
    }
    t.ok(moved >= 600 && small === moved, `unit ${unit} micros: ${moved} day cells of largest part 1-4 units, each moved by a whole, nonzero number of units`)
    // so a researcher who knows a cell's direction (an insider) still cannot take a small day's noise off exactly
    t.ok(magnitudes.has(1n) && magnitudes.has(2n), `unit ${unit} micros: a day cell of largest part 1-3 units moved by ${[...magnitudes].sort().join(', ')} units`)
  }
})
