// npx tsx scripts/bench-circulation.ts [links] [runs]
//
// How long the largest circulation (src/reports/max-circulation.ts) takes on a year-sized payment graph, with
// the cycle links found as the report finds them (graph.ts). The graph is synthetic but shaped like the
// benchmark economy of scripts/bench-reports.ts: 1,400 members and 620 businesses; links member -> business
// (most), business -> business (suppliers), business -> member (wages) and member -> member, each with a year's
// volume in millionths. A fixed seed, so runs compare. Each run times the kept solver from nothing
// (src/reports/incremental-circulation.ts, as a period's first report computes it), then adds 100 payments and
// times its update (as the first report after new payments computes it), and checks both against
// max-circulation.ts from nothing on the same graph.
import { performance } from 'node:perf_hooks'
import { cyclicComponentsIx } from '../src/reports/graph.js'
import { Circulation } from '../src/reports/incremental-circulation.js'
import { maxCirculation } from '../src/reports/max-circulation.js'

const LINKS = Number(process.argv[2] ?? 60_000)
const RUNS = Number(process.argv[3] ?? 5)
const MEMBERS = 1_400
const BUSINESSES = 620

let seed = 20261130
/** mulberry32: small, fast, good enough for a benchmark's shape */
const rnd = (): number => {
  seed = (seed + 0x6D2B79F5) | 0
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
  return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296
}
const pick = (n: number, skew: number): number => Math.floor(n * rnd() ** skew) // skew > 1: a few popular ones

const member = (): number => pick(MEMBERS, 1)
const biz = (): number => MEMBERS + pick(BUSINESSES, 2)
const seen = new Set<number>()
const payer: number[] = []
const payee: number[] = []
const volume: bigint[] = []
while (payer.length < LINKS) {
  const r = rnd()
  const [u, v, pounds] = r < 0.7
    ? [member(), biz(), 5 + 400 * rnd()]
    : r < 0.85 ? [biz(), biz(), 50 + 3_000 * rnd()] : r < 0.95 ? [biz(), member(), 200 + 5_000 * rnd()] : [member(), member(), 5 + 100 * rnd()]
  if (u === v || seen.has(u * 4096 + v)) continue
  seen.add(u * 4096 + v)
  payer.push(u); payee.push(v); volume.push(BigInt(Math.round(pounds * 100)) * 10_000n)
}

/** The cycle links of the graph as the report finds them, and their largest circulation by the kept solver. */
function solve (solver: Circulation) {
  const comp = cyclicComponentsIx(payer, payee)
  const from: number[] = []; const to: number[] = []; const vol: bigint[] = []
  for (let e = 0; e < payer.length; e++) {
    const c = comp.get(payer[e])
    if (c !== undefined && comp.get(payee[e]) === c) { from.push(payer[e]); to.push(payee[e]); vol.push(volume[e]) }
  }
  if (!solver.update(from, to, vol)) throw new Error('the kept solver refused the graph')
  return { from, to, vol, total: solver.total }
}

/** The kept solver's total against max-circulation.ts from nothing (outside the timings). */
function check (r: ReturnType<typeof solve>): void {
  if (r.total !== maxCirculation(r.from, r.to, r.vol).total) throw new Error('the kept solver and max-circulation.ts disagree')
}

/** 100 new payments, as the first report after them finds the graph: most on links that exist, some new. */
function pay100 (): void {
  for (let i = 0; i < 100; i++) {
    const u = member()
    const v = biz()
    const at = payer.findIndex((x, e) => x === u && payee[e] === v)
    const amount = BigInt(Math.round((5 + 40 * rnd()) * 100)) * 10_000n
    if (at >= 0) volume[at] += amount; else { payer.push(u); payee.push(v); volume.push(amount); seen.add(u * 4096 + v) }
  }
}

const times: number[] = []
const warmTimes: number[] = []
let out = { links: 0, cycleShare: 0, circulatingShare: 0 }
for (let run = 0; run < RUNS; run++) {
  const solver = new Circulation()
  const t0 = performance.now()
  const first = solve(solver)
  times.push(performance.now() - t0)
  check(first)
  const { from, vol, total } = first
  const all = volume.reduce((s, x) => s + x, 0n)
  const share = (x: bigint): number => Number(x * 10_000n / all) / 10_000
  out = { links: from.length, cycleShare: share(vol.reduce((s, x) => s + x, 0n)), circulatingShare: share(total) }
  // after 100 new payments: the same solver brought up to date
  pay100()
  const t1 = performance.now()
  const after = solve(solver)
  warmTimes.push(performance.now() - t1)
  check(after)
}
const median = (xs: number[]) => Math.round(xs.sort((a, b) => a - b)[xs.length >> 1])
console.log(JSON.stringify({
  links: LINKS, accounts: MEMBERS + BUSINESSES, cycleLinks: out.links, cycleShare: out.cycleShare, circulatingShare: out.circulatingShare,
  medianMs: median(times), maxMs: Math.round(Math.max(...times)), afterPaymentsMedianMs: median(warmTimes), afterPaymentsMaxMs: Math.round(Math.max(...warmTimes)), runs: RUNS,
}))
