import t from 'tap'
import { DAY_MS } from '../../src/domain/periods.js'
import { graphFigures, graphFiguresOf, linkBuckets, merge, numberOf, RECENT_MS, withTail, type GraphAccount, type GraphFigures, type GraphSums } from '../../src/reports/graph-cache.js'
import { cached } from '../../src/reports/report-cache.js'
import { cyclicComponents } from '../../src/reports/graph.js'

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

const micros = (x: string) => BigInt(Math.round(Number(x) * 100)) * 10_000n
const graph = (links: Array<[string, string, string]>) => ({
  payer: links.map(l => numberOf(l[0])), payee: links.map(l => numberOf(l[1])), volume: links.map(l => micros(l[2])), n: links.map(() => 1), size: links.length,
})
const account = (id: string, o: Partial<GraphAccount>): GraphAccount => ({ id, biz: false, local: true, recv: '0', paid: '0', paidLocal: '0', recvMembers: '0', ...o })

t.test('cycle volume with what the disclosure rules need', async (t) => {
  // m1 -> b1 -> b2 -> m1 is a cycle; m2 -> b1 is not on it (m2 received nothing)
  const id = (s: string) => `cyc-${s}`
  const g = graph([[id('m1'), id('b1'), '40.00'], [id('b1'), id('b2'), '30.00'], [id('b2'), id('m1'), '10.00'], [id('m2'), id('b1'), '20.00']])
  const accounts = [
    account(id('m1'), { recv: '10', paid: '40' }), account(id('b1'), { biz: true, recv: '60', paid: '30' }),
    account(id('b2'), { biz: true, recv: '30', paid: '10' }), account(id('m2'), { paid: '20' }),
  ]
  const f = graphFigures(g, accounts)
  t.same(f.cycle, { value: '80.000000', n: 3, max: '40.000000', biz: true })
  // 10 goes round (b2 -> m1 is 10): 30 on three links. Own part: min(paid, received) on cycle links (b1: 30),
  // but never over half the circulation: 15
  t.same(f.circulating, { value: '30.000000', n: 3, max: '15.000000', biz: true })
})

t.test('cycle figures stay exact past what a float64 holds (the bigint paths)', async (t) => {
  // volumes of about 2^60 millionths: float64 sums would round them, so the figures must come from the bigint paths
  const id = (s: string) => `huge-${s}`
  const big = 2n ** 60n
  const g = {
    payer: [numberOf(id('a')), numberOf(id('b')), numberOf(id('b'))],
    payee: [numberOf(id('b')), numberOf(id('a')), numberOf(id('c'))],
    volume: [big + 5n, big + 1n, 7n],
    n: [1, 1, 1],
    size: 3,
  }
  const text = (v: bigint) => `${v / 1_000_000n}.${(v % 1_000_000n).toString().padStart(6, '0')}`
  const accounts = [
    account(id('a'), { recv: text(big + 1n), paid: text(big + 5n) }), account(id('b'), { biz: true, recv: text(big + 5n), paid: text(big + 8n) }),
    account(id('c'), { recv: text(7n) }),
  ]
  const f = graphFigures(g, accounts)
  t.same(f.cycle, { value: text(2n * big + 6n), n: 2, max: text(big + 5n), biz: true }, 'a -> b -> a; b -> c is on no cycle')
  t.same(f.circulating, { value: text(2n * big + 2n), n: 2, max: text(big + 1n), biz: true }, 'the smaller link, twice')
})

t.test('a period whose volumes outgrow float64 keeps no solver (it would be tried and refused on every report)', async (t) => {
  const [a, b] = [numberOf('outgrow-a'), numberOf('outgrow-b')]
  const figures = (v: bigint) => {
    const sums = (paid: bigint, recv: bigint): GraphSums => ({ biz: false, local: true, recv, paid, lp: 0n, r1: 0n })
    return graphFiguresOf({ payer: [a, b], payee: [b, a], volume: [v, v], n: [1, 1], size: 2 }, new Map([[a, sums(v, v)], [b, sums(v, v)]]), 'outgrow') as GraphFigures
  }
  t.equal(figures(5_000_000n).circulating.value, '10.000000')
  t.ok(cached('circulation|outgrow') != null, 'small volumes: the solver is kept')
  t.equal(figures(2n ** 60n).circulating.value, ((2n ** 61n) / 1_000_000n).toString() + '.' + ((2n ** 61n) % 1_000_000n).toString().padStart(6, '0'))
  t.equal(cached('circulation|outgrow'), undefined, 'past 2^53: the bigint method, and no solver kept')
})

t.test('R2 and R3 of the local multiplier, exactly', async (t) => {
  // b (a local business) received 90, all from members, and paid 60 locally: it passes on 60 of its 90 (R2), which
  // is all of each local payment.
  // c1 (local) received 30 and paid 10 locally: it re-spends 10/30 of what reached it; c2 (local) received 30 and
  // paid 45 locally: all of it; x is not local: no part.
  const id = (s: string) => `r3-${s}`
  const g = graph([[id('b'), id('c1'), '30.00'], [id('b'), id('c2'), '30.00'], [id('b'), id('x'), '15.00']])
  const accounts = [
    account(id('b'), { biz: true, recv: '90', recvMembers: '90', paid: '75', paidLocal: '60' }),
    account(id('c1'), { recv: '30', paid: '10', paidLocal: '10' }),
    account(id('c2'), { recv: '30', paid: '45', paidLocal: '45' }),
    account(id('x'), { local: false, recv: '15', paid: '15', paidLocal: '15' }),
  ]
  // 30 x 1 x 1/3 + 30 x 1 x 1 = 40
  t.equal(graphFigures(g, accounts).lmR2, '60')
  t.equal(graphFigures(g, accounts).lmR3, '40')
  // the business passed on less than it paid locally: received 20, paid 60 locally -> 1/3 of each payment
  const less = accounts.map(a => a.id === id('b') ? { ...a, recv: '20', recvMembers: '20' } : a)
  t.equal(graphFigures(g, less).lmR2, '20', 'all of its 20 went on locally')
  t.equal(graphFigures(g, less).lmR3, '13.333333333333333333333333', '40 / 3, to 24 places')
  // only money from members starts the multiplier: half of the 90 came from another business
  const half = accounts.map(a => a.id === id('b') ? { ...a, recvMembers: '45' } : a)
  t.equal(graphFigures(g, half).lmR2, '30', '45 x 60 / 90')
  t.equal(graphFigures(g, half).lmR3, '20', 'half of each local payment traced')
  // a business outside the local areas is not where round 1 is counted
  t.equal(graphFigures(g, accounts.map(a => a.id === id('b') ? { ...a, local: false } : a)).lmR3, '0')
})

t.test('which buckets a period\'s links are read from', async (t) => {
  const today = Date.UTC(2026, 10, 15) // the currency's local day (a civil date)
  const month = (y: number, m: number) => ({ grain: 'm' as const, start: Date.UTC(y, m, 1) })
  const settled = linkBuckets([month(2026, 8)], () => false, today)
  t.same(settled, [month(2026, 8)], 'a month that ended long ago and is not dirty: kept whole')
  const dirty = linkBuckets([month(2026, 8)], () => true, today)
  t.equal(dirty.length, 30, 'a dirty month: its days, so only the changed days are read again')
  t.same([...new Set(dirty.map(b => b.grain))], ['d'], 'all of them days')
  const recent = linkBuckets([month(2026, 9), month(2026, 10)], () => false, today)
  t.equal(recent.length, 31 + 30, `months that ended within ${RECENT_MS / DAY_MS} days, or have not ended: their days`)
})

t.test('the tail on top of a packed prefix: packed while the sums fit in 64 bits, exact when they do not', async (t) => {
  const links = (ls: Array<[number, number, bigint]>) => ({
    payer: Int32Array.from(ls.map(l => l[0])), payee: Int32Array.from(ls.map(l => l[1])), volume: ls.map(l => l[2]), n: Int32Array.from(ls.map(() => 1)),
  })
  const prefix = merge([links([[1, 2, 10n], [2, 3, 20n]])])
  t.ok(prefix.volume instanceof BigInt64Array, 'the prefix is kept packed')
  const byPair = (g: ReturnType<typeof withTail>) => new Map(Array.from({ length: g.size }, (_, i) => [`${g.payer[i]}>${g.payee[i]}`, [g.volume[i], g.n[i]]]))

  const g = withTail(prefix, [links([[2, 3, 5n], [3, 1, 7n], [3, 1, 1n]])])
  t.ok(g.volume instanceof BigInt64Array, 'small sums: packed')
  t.same(byPair(g), new Map([['1>2', [10n, 1]], ['2>3', [25n, 2]], ['3>1', [8n, 2]]]), 'a pair of the prefix added to, a new pair summed')
  t.same(Array.from(prefix.volume), [10n, 20n], 'the kept prefix untouched')

  const top = 2n ** 63n - 1n
  const big = merge([links([[1, 2, top], [2, 3, 1n]])])
  const over = withTail(big, [links([[1, 2, 1n]])])
  t.notOk(over.volume instanceof BigInt64Array, 'a prefix pair past 64 bits: unpacked')
  t.same(byPair(over).get('1>2'), [top + 1n, 2], 'and exact')
  const overNew = withTail(prefix, [links([[4, 5, top], [4, 5, top]])])
  t.notOk(overNew.volume instanceof BigInt64Array, 'a new pair past 64 bits: unpacked')
  t.same(byPair(overNew).get('4>5'), [2n * top, 2], 'and exact')
  t.same(byPair(overNew).get('2>3'), [20n, 1])
})
