import { pairKey } from './graph.js'
import { MAP_ENTRY_BYTES, OBJECT_BYTES } from './report-cache.js'

// The largest circulation of a period's links, kept solved between reports and brought up to date by the change
// alone. max-circulation.ts explains the method (a minimum-cost flow g of what is taken away, by the primal-dual
// method); this is the same method on a residual network that outlives the computation.
//
// Why: after a few new payments, max-circulation.ts's warm start routes only their change, but it rebuilds the
// whole residual network to do it (every link looked up, a bigint per arc, every arc scanned once per phase), and
// at a year's graph that was most of a report's time. Here the network stays built; an update looks at each
// link's volume once, changes the arcs of the links that grew, routes what they added, and each phase's search
// touches only the accounts it reaches.
//
// Amounts are float64, which is exact for integers up to 2^53: every capacity, excess and sum the method forms
// is a sum of the links' volumes, so while their total (in millionths) stays below 2^53 (some 9 billion in the
// currency, over one period's cycle links) every figure is exact. Above that update() says no and the caller
// uses max-circulation.ts, all bigint.
//
// A link's volume only grows while a period takes new payments. When one shrinks or goes (a late reversal, a
// backdated correction), update() says no and the caller starts a new solver: going back would need flow taken
// off paths, and a cold start is simple and rare.

/** Below this (2^53 - 1), a sum of integers is exact in a float64. */
const EXACT = BigInt(Number.MAX_SAFE_INTEGER)
const S = 0
const T = 1
/**
 * How far apart the accounts' potentials may drift before update() says no (and the caller starts a new solver).
 * An account no search reaches has its potential raised by the whole distance to the sink each phase, and that
 * distance includes the spread between the source's and the sink's potentials: a link from such an account to a
 * new one (potential 0) widens the spread by the spread, so it can grow like Fibonacci over updates. Dial's queue
 * walks one bucket per unit of distance, so the searches' cost grows with it, and past 2^32 a bucket is no longer
 * an array element (the search fails). A cold start's potentials are within a few times the accounts' number.
 */
const DRIFT = 2 ** 18

export class Circulation {
  /** account number -> node; nodes 0 and 1 are the source and the sink */
  private readonly node = new Map<number, number>()
  /** pair key -> link number */
  private readonly link = new Map<number, number>()
  /** per link: its arc payer -> payee (-1 for a self-link, a circulation on its own), and its volume */
  private linkArc = new Int32Array(64)
  private linkVol = new Float64Array(64)
  private keyOf = new Float64Array(64)
  /** the link at each place of the last update's input */
  private order = new Int32Array(0)
  private links = 0
  private sumVolume = 0
  private readonly net = new Network()
  /** per node: its arc from the source and to the sink (-1 until needed), and what is left to route */
  private sArc = new Int32Array(64).fill(-1)
  private tArc = new Int32Array(64).fill(-1)
  private excess = new Float64Array(64)
  /** nodes whose source or sink arc the last update opened */
  private opened: number[] = []

  /** The largest circulation of the links last given to update(), in millionths. */
  get total (): bigint {
    let taken = 0
    for (let l = 0; l < this.links; l++) if (this.linkArc[l] >= 0) taken += this.net.cap[this.net.rev[this.linkArc[l]]]
    return BigInt(this.sumVolume - taken)
  }

  /** Bytes held (for the report caches' budget). */
  get bytes (): number {
    return this.net.bytes + this.linkArc.byteLength + this.linkVol.byteLength + this.keyOf.byteLength + this.order.byteLength + this.sArc.byteLength + this.tArc.byteLength +
      this.excess.byteLength + (this.node.size + this.link.size) * MAP_ENTRY_BYTES + 4 * OBJECT_BYTES
  }

  /**
   * Brings the solution to these links (each payer -> payee once; volumes in millionths, a negative one counted as
   * none, as max-circulation.ts does). False, with nothing changed, when a link's volume is lower than last time,
   * a link is gone, a pair comes twice, the potentials have drifted too far apart (DRIFT), or the volumes' total
   * is too large to be exact: then a new solver, or max-circulation.ts.
   */
  update (payer: ArrayLike<number>, payee: ArrayLike<number>, volume: ArrayLike<bigint>): boolean {
    const m = payer.length
    // first every link's change, so that nothing is touched unless all of it can be applied
    const at = new Int32Array(m)
    const vol = new Float64Array(m)
    let known = 0
    // each pair once: a pair given twice is refused (max-circulation.ts takes parallel links as they come)
    const seen = new Uint8Array(this.links)
    const added = new Set<number>()
    // the new total, summed in float64: exact while it stays below 2^53, and at least 2^53 once it does not
    let sum = 0
    for (let e = 0; e < m; e++) {
      const v = volume[e]
      if (v > EXACT) return false
      vol[e] = v > 0n ? Number(v) : 0
      sum += vol[e]
      // the links come in the same order as last time, mostly (a period's merged links are sorted, new ones
      // appended): the link at the same place is tried before the map, whose keys (beyond 2^31) hash slowly
      const key = pairKey(payer[e], payee[e])
      let l: number | undefined = e < this.order.length ? this.order[e] : -1
      if (l < 0 || this.keyOf[l] !== key) l = this.link.get(key)
      if (l === undefined) {
        if (added.has(key)) return false
        added.add(key)
        at[e] = -1
        continue
      }
      if (seen[l] === 1) return false
      seen[l] = 1
      at[e] = l
      known++
      if (vol[e] < this.linkVol[l]) return false
    }
    if (known !== this.links || sum > Number.MAX_SAFE_INTEGER || this.net.spread() > DRIFT + 8 * this.net.n) return false

    const net = this.net
    // what the last update sent from the source and to the sink is on the links now: those arcs start empty
    for (const x of this.opened) {
      for (const a of [this.sArc[x], this.tArc[x]]) if (a >= 0) { net.cap[a] = 0; net.cap[net.rev[a]] = 0 }
    }
    this.opened = []
    const changed: number[] = []
    for (let e = 0; e < m; e++) {
      let l = at[e]
      if (l < 0) { l = this.addLink(payer[e], payee[e]); at[e] = l }
      const d = vol[e] - this.linkVol[l]
      if (d === 0) continue
      this.linkVol[l] = vol[e]
      this.sumVolume += d
      const a = this.linkArc[l]
      if (a < 0) continue
      const u = net.to[net.rev[a]]
      const v = net.to[a]
      // A link whose reduced cost is negative is taken away whole (its arc was full: the solution is optimal), so
      // its growth is too. One whose reduced cost is 0 is itself a shortest way from its payer to its payee (no
      // reduced cost is negative), so its growth may be taken away along it and the solution stays optimal.
      // Otherwise the growth is what its payer has more to route, and its payee less.
      const rc = 1 + net.pot[u] - net.pot[v]
      if (rc <= 0) { net.cap[net.rev[a]] += d; continue }
      net.cap[a] += d
      this.excess[u] += d
      this.excess[v] -= d
      changed.push(u, v)
    }
    // the source feeds every account with something to route, the sink takes from every one short of it; their
    // potentials keep the reduced costs of those arcs non-negative
    let demand = 0
    let potS = -Infinity
    let potT = Infinity
    for (const x of changed) {
      const ex = this.excess[x]
      if (ex === 0) continue
      this.excess[x] = 0
      if (ex > 0) {
        if (this.sArc[x] < 0) this.sArc[x] = net.add(S, x, 0, 0)
        net.cap[this.sArc[x]] = ex
        demand += ex
        if (net.pot[x] > potS) potS = net.pot[x]
      } else {
        if (this.tArc[x] < 0) this.tArc[x] = net.add(x, T, 0, 0)
        net.cap[this.tArc[x]] = -ex
        if (net.pot[x] < potT) potT = net.pot[x]
      }
      this.opened.push(x)
    }
    this.order = at
    if (demand === 0) return true
    net.pot[S] = potS
    net.pot[T] = potT
    // the searches below walk each account's arcs mostly from one run of memory: once enough arcs have been added
    // they are sorted in with the rest, and the arc numbers kept here follow them
    const moved = net.compact()
    if (moved != null) {
      for (let l = 0; l < this.links; l++) if (this.linkArc[l] >= 0) this.linkArc[l] = moved[this.linkArc[l]]
      for (let x = 0; x < net.n; x++) {
        if (this.sArc[x] >= 0) this.sArc[x] = moved[this.sArc[x]]
        if (this.tArc[x] >= 0) this.tArc[x] = moved[this.tArc[x]]
      }
    }
    let sent = 0
    while (sent < demand) {
      if (!net.reprice(S, T)) throw new Error('circulation: net positions cannot be routed (cannot happen)')
      sent += net.maxFlowOnTight(S, T)
    }
    return true
  }

  private nodeOf (account: number): number {
    let x = this.node.get(account)
    if (x === undefined) {
      x = this.net.addNode()
      this.node.set(account, x)
      if (x >= this.sArc.length) {
        this.sArc = grownInt(this.sArc, -1)
        this.tArc = grownInt(this.tArc, -1)
        const ex = new Float64Array(2 * this.excess.length); ex.set(this.excess); this.excess = ex
      }
    }
    return x
  }

  private addLink (payer: number, payee: number): number {
    const l = this.links++
    if (l >= this.linkArc.length) {
      this.linkArc = grownInt(this.linkArc, 0)
      const v = new Float64Array(2 * this.linkVol.length); v.set(this.linkVol); this.linkVol = v
      const k = new Float64Array(2 * this.keyOf.length); k.set(this.keyOf); this.keyOf = k
    }
    const u = this.nodeOf(payer)
    const v = this.nodeOf(payee)
    this.linkArc[l] = u === v ? -1 : this.net.add(u, v, 0, 1)
    this.linkVol[l] = 0
    this.keyOf[l] = pairKey(payer, payee)
    this.link.set(this.keyOf[l], l)
    return l
  }
}

const grownInt = (a: Int32Array<ArrayBuffer>, fill: number): Int32Array<ArrayBuffer> => {
  const b = new Int32Array(2 * a.length).fill(fill)
  b.set(a)
  return b
}

/**
 * A residual network that grows, with float64 capacities and unit-scale costs; arcs a and rev[a] are each other's
 * reverse. Nodes 0 and 1 exist from the start (the source and the sink). The arcs are kept in order of the node
 * they leave (node u's are first[u] to first[u + 1] - 1), so that a search reads a node's arcs from one run of
 * memory: with tens of thousands of links, following a list of arcs scattered over the arrays was most of a
 * search's time. add() appends an arc after the others and onto its node's list of added arcs, which the searches
 * walk after the sorted ones; compact() sorts them in (a counting sort of every arc by the node it leaves) once
 * they are many.
 */
class Network {
  pot = new Float64Array(64)
  n = 2
  to = new Int32Array(256)
  rev = new Int32Array(256)
  cost = new Int8Array(256)
  cap = new Float64Array(256)
  /** per node + 1: where its sorted arcs start (first[n] is `sorted`) */
  private first = new Int32Array(65)
  private arcs = 0
  /** arcs before this are in order of the node they leave */
  private sorted = 0
  /** the arcs added since: a list per node (-1 ends it), until there are enough of them to sort in */
  private extraHead = new Int32Array(64).fill(-1)
  private extraNext = new Int32Array(256)
  // per node, for maxFlowOnTight: the phase its tight arcs were listed in, and where they are in `tight`
  private listed = new Int32Array(64)
  private tightFrom = new Int32Array(64)
  private tightTo = new Int32Array(64)
  private tight = new Int32Array(1024)
  private tightCount = 0
  /** starts at 1 in reprice(), before any listing: a node's `listed` of 0 is never taken as listed */
  private phase = 0

  get bytes (): number {
    return this.pot.byteLength + this.to.byteLength + this.rev.byteLength + this.cost.byteLength + this.cap.byteLength + this.first.byteLength +
      this.extraHead.byteLength + this.extraNext.byteLength +
      this.listed.byteLength + this.tightFrom.byteLength + this.tightTo.byteLength + this.tight.byteLength
  }

  /** The largest difference between two accounts' potentials (the source and the sink aside). */
  spread (): number {
    let lo = Infinity
    let hi = -Infinity
    for (let x = 2; x < this.n; x++) {
      const p = this.pot[x]
      if (p < lo) lo = p
      if (p > hi) hi = p
    }
    return hi > lo ? hi - lo : 0
  }

  addNode (): number {
    const x = this.n++
    if (x + 1 >= this.first.length) this.first = grownInt(this.first, 0)
    this.first[x + 1] = this.first[x]
    if (x >= this.pot.length) {
      const p = new Float64Array(2 * this.pot.length); p.set(this.pot); this.pot = p
      this.extraHead = grownInt(this.extraHead, -1)
      this.listed = grownInt(this.listed, 0)
      this.tightFrom = grownInt(this.tightFrom, 0)
      this.tightTo = grownInt(this.tightTo, 0)
    }
    return x
  }

  /** Adds u -> v and its reverse (empty); returns u -> v's number. */
  add (u: number, v: number, cap: number, cost: number): number {
    const a = this.arcs
    if (a + 2 > this.to.length) {
      this.to = grownInt(this.to, 0)
      this.rev = grownInt(this.rev, 0)
      this.extraNext = grownInt(this.extraNext, 0)
      const c = new Int8Array(2 * this.cost.length); c.set(this.cost); this.cost = c
      const k = new Float64Array(2 * this.cap.length); k.set(this.cap); this.cap = k
    }
    this.to[a] = v; this.cost[a] = cost; this.cap[a] = cap; this.rev[a] = a + 1
    this.to[a + 1] = u; this.cost[a + 1] = -cost; this.cap[a + 1] = 0; this.rev[a + 1] = a
    this.extraNext[a] = this.extraHead[u]; this.extraHead[u] = a
    this.extraNext[a + 1] = this.extraHead[v]; this.extraHead[v] = a + 1
    this.arcs += 2
    return a
  }

  /**
   * Sorts the arcs added since the last sort in with the others, by the node they leave (stable: an account's
   * arcs keep their relative order), once they are more than an eighth of all: a few new links an update are
   * walked from their lists, and sorting every arc in each time cost more than that saved. Returns where each arc
   * went (old number -> new), or null when nothing moved.
   */
  compact (): Int32Array | null {
    if (this.arcs - this.sorted <= this.arcs >> 3) return null
    const m = this.arcs
    const n = this.n
    const first = new Int32Array(n + 1)
    for (let a = 0; a < m; a++) first[this.to[this.rev[a]] + 1]++
    for (let x = 0; x < n; x++) first[x + 1] += first[x]
    const at = first.slice(0, n)
    const moved = new Int32Array(m)
    for (let a = 0; a < m; a++) moved[a] = at[this.to[this.rev[a]]]++
    const to = new Int32Array(this.to.length)
    const rev = new Int32Array(this.rev.length)
    const cost = new Int8Array(this.cost.length)
    const cap = new Float64Array(this.cap.length)
    for (let a = 0; a < m; a++) {
      const b = moved[a]
      to[b] = this.to[a]; rev[b] = moved[this.rev[a]]; cost[b] = this.cost[a]; cap[b] = this.cap[a]
    }
    this.to = to; this.rev = rev; this.cost = cost; this.cap = cap
    this.first = first
    this.sorted = m
    this.extraHead.fill(-1)
    return moved
  }

  /**
   * As max-circulation.ts's Residual.reprice: Dijkstra from s on reduced costs until t is settled, potentials moved
   * by min(distance, distance to t). False when t cannot be reached. Reduced costs here are small non-negative
   * integers (unit costs, integer potentials), so the queue is a list of nodes per distance (Dial's variant): no
   * heap, nothing allocated per node.
   */
  reprice (s: number, t: number): boolean {
    const n = this.n
    const dist = new Float64Array(n).fill(Infinity)
    const done = new Uint8Array(n)
    const buckets: number[][] = [[s]]
    dist[s] = 0
    let found = false
    for (let d = 0; d < buckets.length && !found; d++) {
      const bucket = buckets[d]
      if (bucket === undefined) continue
      // the bucket may grow while it is scanned (arcs of reduced cost 0)
      for (let i = 0; i < bucket.length; i++) {
        const u = bucket[i]
        if (done[u] === 1 || dist[u] !== d) continue
        done[u] = 1
        if (u === t) { found = true; break }
        const pu = this.pot[u]
        // u's sorted arcs, then those added since
        let k = this.first[u]
        const end = this.first[u + 1]
        let extra = this.extraHead[u]
        for (;;) {
          let a: number
          if (k < end) a = k++; else if (extra !== -1) { a = extra; extra = this.extraNext[extra] } else break
          if (this.cap[a] === 0) continue
          const v = this.to[a]
          const nd = d + this.cost[a] + pu - this.pot[v]
          if (nd < dist[v]) {
            dist[v] = nd
            const b = buckets[nd]
            if (b === undefined) buckets[nd] = [v]; else b.push(v)
          }
        }
      }
    }
    if (!found) return false
    const dt = dist[t]
    for (let v = 0; v < n; v++) this.pot[v] += dist[v] < dt ? dist[v] : dt
    this.phase++
    return true
  }

  /** u's arcs of reduced cost 0 (potentials do not change within a phase), listed the first time the phase needs them. */
  private list (u: number): void {
    if (this.listed[u] === this.phase) return
    this.listed[u] = this.phase
    let count = this.tightCount
    this.tightFrom[u] = count
    const pu = this.pot[u]
    let k = this.first[u]
    const end = this.first[u + 1]
    let extra = this.extraHead[u]
    for (;;) {
      let a: number
      if (k < end) a = k++; else if (extra !== -1) { a = extra; extra = this.extraNext[extra] } else break
      if (this.cost[a] + pu - this.pot[this.to[a]] !== 0) continue
      if (count === this.tight.length) { const more = new Int32Array(2 * count); more.set(this.tight); this.tight = more }
      this.tight[count++] = a
    }
    this.tightTo[u] = count
    this.tightCount = count
  }

  /**
   * The largest flow from s to t over arcs of reduced cost 0 (the phase's shortest ways), by shortest augmenting
   * paths with distance labels (the "improved shortest augmenting path" method, as in Ahuja, Magnanti and Orlin's
   * Network Flows, section 7.4): one search backwards from t labels each node with its distance to t, then paths
   * are followed down the labels and a node with no way down is relabelled in place; when no node keeps a label
   * (a gap), s is cut off from t and the phase is over. Dinic's method (max-circulation.ts) searched the whole
   * reachable part of the network again for every few paths, which after a few new payments was most of an
   * update. Touches only the nodes the backward search reaches.
   */
  maxFlowOnTight (s: number, t: number): number {
    const n = this.n
    // reprice() began a new phase: no node's tight arcs are listed yet
    this.tightCount = 0
    // d: distance to t over tight arcs with room (n: none), from a search backwards along the reverses of u's
    // tight arcs (an arc's reverse is tight when it is)
    const d = new Int32Array(n).fill(n)
    const queue = new Int32Array(n)
    let qh = 0
    let qt = 0
    d[t] = 0; queue[qt++] = t
    while (qh < qt) {
      const v = queue[qh++]
      this.list(v)
      for (let i = this.tightFrom[v]; i < this.tightTo[v]; i++) {
        const b = this.tight[i]
        const u = this.to[b]
        if (d[u] !== n || this.cap[this.rev[b]] === 0) continue
        d[u] = d[v] + 1; queue[qt++] = u
      }
    }
    if (d[s] >= n) return 0
    // count: nodes per label, for the gap; cur: where each node's walk over its tight arcs has got to. A node
    // never labelled (n) is never entered, so only the searched ones need their arcs listed
    const count = new Int32Array(n + 1)
    for (let x = 0; x < n; x++) count[d[x]]++
    const cur = new Int32Array(n)
    for (let i = 0; i < qt; i++) { const x = queue[i]; cur[x] = this.tightFrom[x] }
    const pathArc = new Int32Array(n)
    let depth = 0
    let u = s
    let total = 0
    while (d[s] < n) {
      if (u === t) {
        let push = this.cap[pathArc[0]]
        for (let i = 1; i < depth; i++) if (this.cap[pathArc[i]] < push) push = this.cap[pathArc[i]]
        let cut = -1
        for (let i = 0; i < depth; i++) {
          const a = pathArc[i]
          this.cap[a] -= push; this.cap[this.rev[a]] += push
          if (this.cap[a] === 0 && cut < 0) cut = i
        }
        total += push
        // back to the tail of the first arc the path filled
        depth = cut
        u = depth === 0 ? s : this.to[pathArc[depth - 1]]
        continue
      }
      const end = this.tightTo[u]
      const down = d[u] - 1
      let i = cur[u]
      while (i < end) {
        const a = this.tight[i]
        if (this.cap[a] !== 0 && d[this.to[a]] === down) break
        i++
      }
      if (i < end) { cur[u] = i; const a = this.tight[i]; pathArc[depth++] = a; u = this.to[a]; continue }
      // no way down from u: one more than its nearest neighbour with room, and back a step
      let m = n
      for (let k = this.tightFrom[u]; k < end; k++) {
        const a = this.tight[k]
        if (this.cap[a] !== 0 && d[this.to[a]] + 1 < m) m = d[this.to[a]] + 1
      }
      if (--count[d[u]] === 0) break
      d[u] = m; count[m]++
      cur[u] = this.tightFrom[u]
      if (u !== s) { depth--; u = depth === 0 ? s : this.to[pathArc[depth - 1]] }
    }
    return total
  }
}
