// The largest circulation a payment graph contains: the flow that actually goes round, as multilateral set-off of
// trade credit finds it (every account's obligations netted against each other as far as a closed flow allows).
//
// Given links u -> v with volumes c(e), a circulation is a flow 0 <= f(e) <= c(e) with inflow = outflow at every
// account; we want the largest total sum f(e). Start from f = c and take away g = c - f: f is balanced exactly when
// g carries each account's net position (what it paid minus what it received on these links) from the net payers
// to the net receivers along the links, within their volumes, and the total taken away is sum g(e). So the largest
// circulation is sum c(e) minus a minimum-cost flow of g: supply out(v) - in(v) at net payers, demand at net
// receivers, cost 1 per unit per link. g = c is always feasible, so the whole net position is always routed.
//
// Minimum-cost flow by the primal-dual method: Dijkstra on reduced costs (potentials keep them non-negative) gives
// the current shortest-path length, then a maximum flow (Dinic) along the links of reduced cost 0 sends everything
// that can go at that length. Costs are unit, so the number of phases is at most the number of distinct
// shortest-path lengths (bounded by the accounts, in practice the graph's diameter). All amounts are exact bigint
// (the caller's unit: millionths); nothing is rounded.
//
// Cost per phase: Dijkstra O(E log V) plus Dinic O(V^2 E) worst case (far less in practice: paths are short);
// docs/metrics.md has timings on a year's graph.

/**
 * The largest circulation within the links: each link's part of it (same order) and the total. From nothing each
 * time; the report keeps a solver per period instead (incremental-circulation.ts) and comes here only when the
 * volumes are too large for it, so this is also the reference its tests hold it to.
 */
export function maxCirculation (payer: ArrayLike<number>, payee: ArrayLike<number>, volume: readonly bigint[]):
{ flow: bigint[], total: bigint } {
  const m = payer.length
  // dense node numbers; self-links (an account paying itself) are a circulation on their own
  const ix = new Map<number, number>()
  const id = (x: number): number => {
    let i = ix.get(x)
    if (i === undefined) { i = ix.size; ix.set(x, i) }
    return i
  }
  const from = new Int32Array(m)
  const to = new Int32Array(m)
  for (let e = 0; e < m; e++) { from[e] = id(payer[e]); to[e] = id(payee[e]) }
  const k = ix.size

  const S = k
  const T = k + 1
  const g = new Residual(k + 2, 2 * (m + k))
  // nothing is taken away yet: every link's reduced cost is 1 (all potentials 0), and each account's excess is its
  // net position (out - in)
  const excess = new Array<bigint>(k).fill(0n)
  const arcOf = new Int32Array(m).fill(-1)
  for (let e = 0; e < m; e++) {
    if (from[e] === to[e] || volume[e] <= 0n) continue
    arcOf[e] = g.add(from[e], to[e], volume[e], 1)
    excess[from[e]] += volume[e]
    excess[to[e]] -= volume[e]
  }
  let demand = 0n
  let potS = -Infinity
  let potT = Infinity
  for (let v = 0; v < k; v++) {
    if (excess[v] > 0n) { g.add(S, v, excess[v], 0); demand += excess[v]; potS = Math.max(potS, g.pot[v]) } else if (excess[v] < 0n) { g.add(v, T, -excess[v], 0); potT = Math.min(potT, g.pot[v]) }
  }
  // the source's and sink's arcs have reduced cost >= 0 with these
  g.pot[S] = potS === -Infinity ? 0 : potS
  g.pot[T] = potT === Infinity ? 0 : potT

  let sent = 0n
  while (sent < demand) {
    if (!g.reprice(S, T)) throw new Error('max circulation: net positions cannot be routed (cannot happen)')
    sent += g.maxFlowOnTight(S, T)
  }

  const flow = new Array<bigint>(m)
  let total = 0n
  for (let e = 0; e < m; e++) {
    // a link's part of the circulation is what g did not take away: its volume minus g's flow on it
    flow[e] = arcOf[e] < 0 ? (volume[e] > 0n ? volume[e] : 0n) : volume[e] - g.cap[arcOf[e]]
    total += flow[e]
  }
  return { flow, total }
}

/** A residual network with unit-scale integer costs; arc a and a ^ 1 are each other's reverse. */
class Residual {
  readonly head: Int32Array
  readonly next: Int32Array
  readonly to: Int32Array
  readonly cost: Int32Array
  readonly cap: bigint[]
  /** cap > 0, kept beside cap: the searches test it millions of times, and a bigint comparison is a call */
  readonly open: Uint8Array
  readonly pot: Float64Array
  private arcs = 0

  constructor (readonly n: number, maxArcs: number) {
    this.head = new Int32Array(n).fill(-1)
    this.next = new Int32Array(maxArcs)
    this.to = new Int32Array(maxArcs)
    this.cost = new Int32Array(maxArcs)
    this.cap = new Array<bigint>(maxArcs).fill(0n)
    this.open = new Uint8Array(maxArcs)
    this.pot = new Float64Array(n)
  }

  /** Adds u -> v (empty); returns the reverse arc's number, whose capacity is the flow on u -> v. */
  add (u: number, v: number, cap: bigint, cost: number): number {
    const a = this.arcs
    this.to[a] = v; this.cost[a] = cost; this.cap[a] = cap; this.open[a] = cap > 0n ? 1 : 0; this.next[a] = this.head[u]; this.head[u] = a
    this.to[a + 1] = u; this.cost[a + 1] = -cost; this.cap[a + 1] = 0n; this.open[a + 1] = 0; this.next[a + 1] = this.head[v]; this.head[v] = a + 1
    this.arcs += 2
    return a + 1
  }

  private reduced (u: number, a: number): number { return this.cost[a] + this.pot[u] - this.pot[this.to[a]] }

  /**
   * Dijkstra from s on reduced costs, stopping when t is settled; potentials move by min(distance, distance to t),
   * which keeps every residual arc's reduced cost non-negative. False when t cannot be reached.
   */
  reprice (s: number, t: number): boolean {
    const n = this.n
    const dist = new Float64Array(n).fill(Infinity)
    const done = new Uint8Array(n)
    const heap = new MinHeap()
    dist[s] = 0; heap.push(0, s)
    while (heap.size > 0) {
      const [d, u] = heap.pop()
      if (done[u] === 1 || d > dist[u]) continue
      done[u] = 1
      if (u === t) break
      for (let a = this.head[u]; a !== -1; a = this.next[a]) {
        if (this.open[a] === 0) continue
        const v = this.to[a]
        const nd = d + this.reduced(u, a)
        if (nd < dist[v]) { dist[v] = nd; heap.push(nd, v) }
      }
    }
    if (dist[t] === Infinity) return false
    const dt = dist[t]
    for (let v = 0; v < n; v++) this.pot[v] += Math.min(dist[v], dt)
    return true
  }

  /** Dinic's maximum flow from s to t over arcs with capacity left and reduced cost 0. */
  maxFlowOnTight (s: number, t: number): bigint {
    const n = this.n
    // The potentials do not change in here, so which arcs have reduced cost 0 does not either (an arc and its
    // reverse together): list them once per node, in adjacency order, and let the searches below scan only them
    // instead of every arc on every round (most arcs are not tight; at a year's graph this was most of the time).
    const first = new Int32Array(n + 1)
    let tight = new Int32Array(1024)
    let count = 0
    for (let u = 0; u < n; u++) {
      for (let a = this.head[u]; a !== -1; a = this.next[a]) {
        if (this.cost[a] + this.pot[u] - this.pot[this.to[a]] !== 0) continue
        if (count === tight.length) { const more = new Int32Array(2 * count); more.set(tight); tight = more }
        tight[count++] = a
      }
      first[u + 1] = count
    }
    const level = new Int32Array(n)
    const it = new Int32Array(n)
    const queue = new Int32Array(n)
    const pathArc = new Int32Array(n)
    let total = 0n
    for (;;) {
      level.fill(-1); level[s] = 0
      let qh = 0; let qt = 0
      queue[qt++] = s
      while (qh < qt) {
        const u = queue[qh++]
        // nodes as far from s as t, or farther, lead nowhere on a shortest path to t: the search stops there
        // (the walk below then finds the same paths, without trying those dead ends)
        if (level[t] !== -1 && level[u] >= level[t]) break
        for (let i = first[u]; i < first[u + 1]; i++) {
          const a = tight[i]
          const v = this.to[a]
          if (level[v] !== -1 || this.open[a] === 0) continue
          level[v] = level[u] + 1; queue[qt++] = v
        }
      }
      if (level[t] === -1) return total
      // it[u]: the position in u's tight arcs the walk has got to
      for (let v = 0; v < n; v++) it[v] = first[v]
      // blocking flow: walk forward from s along level arcs; at a dead end, retreat and drop the arc
      let depth = 0
      let u = s
      for (;;) {
        if (u === t) {
          let push = this.cap[pathArc[0]]
          for (let i = 1; i < depth; i++) if (this.cap[pathArc[i]] < push) push = this.cap[pathArc[i]]
          let cut = -1
          for (let i = 0; i < depth; i++) {
            const a = pathArc[i]
            this.cap[a] -= push; this.cap[a ^ 1] += push; this.open[a ^ 1] = 1
            if (this.cap[a] === 0n) { this.open[a] = 0; if (cut < 0) cut = i }
          }
          total += push
          // restart from the first arc that ran dry
          depth = cut
          u = depth === 0 ? s : this.to[pathArc[depth - 1]]
          continue
        }
        let i = it[u]
        const end = first[u + 1]
        while (i < end) {
          const a = tight[i]
          if (this.open[a] === 1 && level[this.to[a]] === level[u] + 1) break
          i++
        }
        it[u] = i
        if (i < end) { const a = tight[i]; pathArc[depth++] = a; u = this.to[a]; continue }
        if (u === s) break
        level[u] = -1 // dead end: nothing more goes through u in this phase
        depth--
        u = depth === 0 ? s : this.to[pathArc[depth - 1]]
        it[u]++
      }
    }
  }
}

/** Binary heap of (key, node), smallest key first. */
class MinHeap {
  private keys: number[] = []
  private vals: number[] = []
  get size (): number { return this.keys.length }
  push (key: number, val: number): void {
    const k = this.keys; const v = this.vals
    let i = k.length
    k.push(key); v.push(val)
    while (i > 0) {
      const p = (i - 1) >> 1
      if (k[p] <= key) break
      k[i] = k[p]; v[i] = v[p]; i = p
    }
    k[i] = key; v[i] = val
  }

  pop (): [number, number] {
    const k = this.keys; const v = this.vals
    const top: [number, number] = [k[0], v[0]]
    const lk = k.pop()!; const lv = v.pop()!
    const n = k.length
    if (n > 0) {
      let i = 0
      for (;;) {
        let c = 2 * i + 1
        if (c >= n) break
        if (c + 1 < n && k[c + 1] < k[c]) c++
        if (k[c] >= lk) break
        k[i] = k[c]; v[i] = v[c]; i = c
      }
      k[i] = lk; v[i] = lv
    }
    return top
  }
}
