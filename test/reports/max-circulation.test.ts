import fc from 'fast-check'
import t from 'tap'
import { Money } from '../../src/domain/money.js'
import { Circulation } from '../../src/reports/incremental-circulation.js'
import { maxCirculation } from '../../src/reports/max-circulation.js'
import { fromMicros } from '../../src/reports/stat.js'
import { largestCirculation } from './recompute.js'

// The largest circulation (src/reports/max-circulation.ts) on graphs worked by hand, and against plain cycle
// cancelling (test/reports/recompute.ts) on random graphs: the same total, and a flow that is a circulation.

const micros = (x: number) => BigInt(x) * 1_000_000n

t.test('worked by hand', async (t) => {
  // docs/metrics.md, January: 1 = M1, 2 = M2, 3 = B1, 4 = B2; only 10 goes round M1 -> B1 -> B2 -> M1
  const jan = maxCirculation([1, 2, 3, 4], [3, 3, 4, 1], [40, 20, 30, 10].map(micros))
  t.equal(jan.total, micros(30))
  t.same(jan.flow, [10, 0, 10, 10].map(micros))
  // both months: every cycle passes B2, which pays out 25 at most; 65 in all (see test/reports/metrics.test.ts)
  const both = maxCirculation([1, 2, 3, 4, 1, 4, 1], [3, 3, 4, 1, 4, 3, 2], [40, 20, 30, 10, 10, 15, 5].map(micros))
  t.equal(both.total, micros(65))
  t.equal(maxCirculation([], [], []).total, 0n, 'no links')
  t.equal(maxCirculation([1, 2], [2, 3], [micros(5), micros(5)]).total, 0n, 'a chain carries no circulation')
  t.equal(maxCirculation([1, 2], [2, 1], [micros(5), micros(7)]).total, micros(10), 'a pair of links: the smaller, twice')
  // a long cycle outweighs a short one sharing its bottleneck: 1 -> 2 -> 1 (2 links) or 1 -> 2 -> 3 -> 4 -> 1 (4 links)
  const long = maxCirculation([1, 2, 2, 3, 4], [2, 1, 3, 4, 1], [micros(10), micros(10), micros(10), micros(10), micros(10)])
  t.equal(long.total, micros(40), 'the 10 that can leave 1 goes the long way round')
})

// size 'max': by default fast-check draws at most 10 links (2 * minLength + 10), and three graphs in four then had
// no cycle, so that both solvers answered 0
const Graph = fc.array(fc.record({ u: fc.nat({ max: 6 }), v: fc.nat({ max: 6 }), cents: fc.integer({ min: 1, max: 5_000 }) }), { maxLength: 24, size: 'max' })

t.test('equals cycle cancelling on random graphs, and is a circulation within the links', async (t) => {
  let runs = 0
  let circulating = 0
  fc.assert(fc.property(Graph, (links) => {
    // one link per payer -> payee, as a period's graph has them
    const byPair = new Map<string, { u: number, v: number, c: bigint }>()
    for (const l of links) {
      if (l.u === l.v) continue
      const k = `${l.u} ${l.v}`
      const c = BigInt(l.cents) * 10_000n
      byPair.set(k, { u: l.u, v: l.v, c: (byPair.get(k)?.c ?? 0n) + c })
    }
    const ls = [...byPair.values()]
    const r = maxCirculation(ls.map(l => l.u), ls.map(l => l.v), ls.map(l => l.c))
    const net = new Map<number, bigint>()
    ls.forEach((l, e) => {
      if (r.flow[e] < 0n || r.flow[e] > l.c) throw new Error(`link ${e}: ${r.flow[e]} outside 0..${l.c}`)
      net.set(l.u, (net.get(l.u) ?? 0n) - r.flow[e]); net.set(l.v, (net.get(l.v) ?? 0n) + r.flow[e])
    })
    for (const [v, x] of net) if (x !== 0n) throw new Error(`account ${v} does not balance: ${x}`)
    if (r.flow.reduce((s, f) => s + f, 0n) !== r.total) throw new Error('total is not the sum of the flows')
    const plain = largestCirculation(ls.map(l => ({ from: String(l.u), to: String(l.v), amount: new Money(fromMicros(l.c)) })))
    if (!plain.eq(new Money(fromMicros(r.total)))) throw new Error(`${fromMicros(r.total)} vs cycle cancelling ${plain.toFixed()}`)
    if (r.total > 0n) circulating++
    runs++
  }), { numRuns: 300 })
  t.equal(runs, 300, 'every random graph agreed')
  // the generator's own check: graphs without a cycle compare 0 with 0
  t.ok(circulating > 150, `most random graphs hold a circulation (${circulating} of 300)`)
})

// Changes to a graph: links grown (new payments), shrunk or gone (a late reversal), new links and new accounts.
const Change = fc.array(fc.record({ u: fc.nat({ max: 8 }), v: fc.nat({ max: 8 }), cents: fc.integer({ min: -3_000, max: 3_000 }) }), { maxLength: 8 })

// The kept solver (src/reports/incremental-circulation.ts): from empty, then after each change, the same total as
// a cold start of max-circulation.ts; a change that lowers or removes a link is refused with nothing changed (the
// solver still answers for the links before it), and a new solver takes the links as they are.
t.test('the kept solver agrees with a cold start after every change', async (t) => {
  let runs = 0
  let refused = 0
  let grown = 0
  fc.assert(fc.property(Graph, fc.array(Change, { minLength: 1, maxLength: 5 }), (links, changes) => {
    const byPair = new Map<string, { u: number, v: number, c: bigint }>()
    const apply = (ls: Array<{ u: number, v: number, cents: number }>) => {
      for (const l of ls) {
        const k = `${l.u} ${l.v}`
        const c = (byPair.get(k)?.c ?? 0n) + BigInt(l.cents) * 10_000n
        if (c <= 0n && l.cents < 0) byPair.delete(k); else byPair.set(k, { u: l.u, v: l.v, c })
      }
    }
    const cold = (ls: Array<{ u: number, v: number, c: bigint }>) => maxCirculation(ls.map(l => l.u), ls.map(l => l.v), ls.map(l => l.c)).total
    const give = (s: Circulation, ls: Array<{ u: number, v: number, c: bigint }>) => s.update(ls.map(l => l.u), ls.map(l => l.v), ls.map(l => l.c))
    apply(links)
    let ls = [...byPair.values()]
    let solver = new Circulation()
    if (!give(solver, ls)) throw new Error('a new solver refused the links')
    if (solver.total !== cold(ls)) throw new Error(`from empty ${solver.total} vs cold ${cold(ls)}`)
    for (const change of changes) {
      const before = solver.total
      apply(change)
      ls = [...byPair.values()]
      if (!give(solver, ls)) {
        refused++
        if (solver.total !== before) throw new Error('a refused update changed the total')
        solver = new Circulation()
        if (!give(solver, ls)) throw new Error('a new solver refused the links')
      } else if (change.length > 0) grown++
      if (solver.total !== cold(ls)) throw new Error(`kept ${solver.total} vs cold ${cold(ls)}`)
    }
    runs++
  }), { numRuns: 500 })
  t.equal(runs, 500, 'every chain of changes agreed')
  t.ok(refused > 50, `${refused} changes lowered a link and were refused`)
  t.ok(grown > 50, `${grown} changes were applied to the kept solution`)
})

t.test('the kept solver refuses volumes whose total would not be exact in a float64', async (t) => {
  const s = new Circulation()
  t.ok(s.update([1, 2], [2, 1], [micros(5), micros(7)]))
  t.equal(s.total, micros(10))
  t.notOk(s.update([1, 2], [2, 1], [BigInt(Number.MAX_SAFE_INTEGER), micros(7)]), 'one link too large')
  t.notOk(s.update([1, 2, 3], [2, 1, 1], [micros(5), micros(7), BigInt(Number.MAX_SAFE_INTEGER) - micros(11)]), 'the total too large')
  t.equal(s.total, micros(10), 'and nothing changed')
  t.ok(s.update([1, 2, 2], [2, 1, 2], [micros(6), micros(7), micros(3)]), 'a self-link is a circulation on its own')
  t.equal(s.total, micros(15))
})
