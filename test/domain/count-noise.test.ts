import t from 'tap'
import { perturbDay, RULES } from '../../src/domain/disclosure.js'

// Found by an attacker helper session: the count noises of a margin group add up to zero, the cell with the most payments taking the others'.
// In a group of cells of one payment each, the others' +1s could take it below zero; it was published as 0, so the
// group's published counts no longer added up to its total (known exactly from the exports), and a count of 0 was
// published beside a value.
t.test('the published counts of a margin group add up to its true total, and none is below zero', async (t) => {
  const M = 1_000_000n
  let days = 0
  for (let i = 0; i < 300; i++) {
    const key = Buffer.alloc(32, i % 256); key[1] = i >> 8
    const cells = Array.from({ length: 4 }, (_, k) => ({
      cell: `flows|sector|member|s${k}`, group: 'g', day: `d${i}`, value: 3n * M, count: 1, top: `a${k}`, x1: 3n * M, n: 2, rest: 0n, sensitive: true, given: true,
    }))
    const p = perturbDay(key, cells, RULES, M)
    const total = p.reduce((a, x) => a + x.count, 0)
    if (total !== 4) t.fail(`day ${i}: published counts ${p.map(x => x.count).join(', ')} add up to ${total}, not 4`)
    if (p.some(x => x.count < 0)) t.fail(`day ${i}: a count below zero`)
    days++
  }
  t.equal(days, 300)
})
