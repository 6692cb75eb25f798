import t from 'tap'
import { cyclicComponents } from '../../src/reports/graph.js'
import { cycleStat } from '../../src/reports/circulation.report.js'

t.test('strongly connected components of a payment graph', async (t) => {
  const c = cyclicComponents(['a', 'b', 'c', 'd', 'e', 'f'], ['b', 'c', 'a', 'a', 'f', 'e'])
  t.equal(c.get('a'), c.get('b')); t.equal(c.get('b'), c.get('c'))
  t.equal(c.get('e'), c.get('f')); t.not(c.get('a'), c.get('e'))
  t.notOk(c.has('d'), 'd only pays into the cycle: a component of its own, not cyclic')
  // a long chain closed into a ring: no recursion to overflow
  const n = 200_000
  const from = Array.from({ length: n }, (_, i) => `n${i}`)
  const to = Array.from({ length: n }, (_, i) => `n${(i + 1) % n}`)
  t.equal(new Set(cyclicComponents(from, to).values()).size, 1, 'one component of 200,000 nodes')
})

t.test('cycle volume with what the disclosure rules need', async (t) => {
  const s = cycleStat(['m1', 'b1', 'b2', 'm2'], ['b1', 'b2', 'm1', 'b1'], ['40.00', '30.00', '10.00', '20.00'], [false, true, true, false], [true, true, false, true])
  t.same(s, { value: '80.000000', n: 3, max: '40.000000', biz: true })
})
