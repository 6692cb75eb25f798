/** Account numbers are packed two to a JS number, a link's key (payer x 2^26 + payee): exact below 2^53. */
export const PACK = 67_108_864
export const pairKey = (payer: number, payee: number): number => payer * PACK + payee

/** The index of key in the ascending keys, or -1. */
export function findKey (keys: Float64Array, key: number): number {
  let lo = 0; let hi = keys.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    if (keys[mid] < key) lo = mid + 1; else if (keys[mid] > key) hi = mid - 1; else return mid
  }
  return -1
}

// Strongly connected components of a payment graph (Tarjan, iterative so a long chain cannot overflow the
// stack). A payment link payer -> payee lies on a cycle exactly when both ends are in the same component.

/**
 * Component number of every node that sits in a component of two or more nodes (a graph without self-loops
 * has no cycle through a single node). Nodes in trivial components are absent from the map.
 */
export function cyclicComponents (payers: readonly string[], payees: readonly string[]): Map<string, number> {
  const ix = new Map<string, number>()
  const id = (s: string): number => {
    let i = ix.get(s)
    if (i === undefined) { i = ix.size; ix.set(s, i) }
    return i
  }
  const m = payers.length
  const from = new Int32Array(m)
  const to = new Int32Array(m)
  for (let e = 0; e < m; e++) { from[e] = id(payers[e]); to[e] = id(payees[e]) }
  const { comp, size } = tarjan(from, to, ix.size)
  const out = new Map<string, number>()
  for (const [name, i] of ix) if (size[comp[i]] > 1) out.set(name, comp[i])
  return out
}

/** The same for nodes that are numbers (any, not necessarily dense). */
export function cyclicComponentsIx (payers: ArrayLike<number>, payees: ArrayLike<number>): Map<number, number> {
  const ix = new Map<number, number>()
  const id = (s: number): number => {
    let i = ix.get(s)
    if (i === undefined) { i = ix.size; ix.set(s, i) }
    return i
  }
  const m = payers.length
  const from = new Int32Array(m)
  const to = new Int32Array(m)
  for (let e = 0; e < m; e++) { from[e] = id(payers[e]); to[e] = id(payees[e]) }
  const { comp, size } = tarjan(from, to, ix.size)
  const out = new Map<number, number>()
  for (const [name, i] of ix) if (size[comp[i]] > 1) out.set(name, comp[i])
  return out
}

/** Tarjan over nodes 0..n-1: each node's component and each component's size. */
export function tarjan (from: Int32Array, to: Int32Array, n: number): { comp: Int32Array, size: number[] } {
  const m = from.length
  // adjacency in CSR form
  const start = new Int32Array(n + 1)
  for (let e = 0; e < m; e++) start[from[e] + 1]++
  for (let v = 0; v < n; v++) start[v + 1] += start[v]
  const adj = new Int32Array(m)
  const fill = start.slice(0, n)
  for (let e = 0; e < m; e++) adj[fill[from[e]]++] = to[e]

  const index = new Int32Array(n).fill(-1)
  const low = new Int32Array(n)
  const onStack = new Uint8Array(n)
  const comp = new Int32Array(n).fill(-1)
  const stack = new Int32Array(n)
  let sp = 0
  const callV = new Int32Array(n)
  const callE = new Int32Array(n)
  let counter = 0
  let comps = 0
  const size: number[] = []

  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue
    let depth = 0
    callV[0] = root; callE[0] = start[root]
    index[root] = low[root] = counter++
    stack[sp++] = root; onStack[root] = 1
    while (depth >= 0) {
      const v = callV[depth]
      if (callE[depth] < start[v + 1]) {
        const w = adj[callE[depth]++]
        if (index[w] === -1) {
          index[w] = low[w] = counter++
          stack[sp++] = w; onStack[w] = 1
          depth++; callV[depth] = w; callE[depth] = start[w]
        } else if (onStack[w] === 1 && index[w] < low[v]) {
          low[v] = index[w]
        }
        continue
      }
      if (low[v] === index[v]) {
        let k = 0
        let w: number
        do { w = stack[--sp]; onStack[w] = 0; comp[w] = comps; k++ } while (w !== v)
        size.push(k); comps++
      }
      depth--
      if (depth >= 0) { const u = callV[depth]; if (low[v] < low[u]) low[u] = low[v] }
    }
  }

  return { comp, size }
}
