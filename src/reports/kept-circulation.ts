import { DomainError } from '../domain/errors.js'
import type { ComputePool } from './compute-pool.js'
import { Circulation } from './incremental-circulation.js'
import { maxCirculation } from './max-circulation.js'
import { arrayOf, cached, forget, keep, packBigints } from './report-cache.js'

// The largest circulation of a period's cycle links, from the period's kept solver (incremental-circulation.ts)
// where there is one. The solvers are kept in the report cache of whoever runs this: the process itself, or the
// report worker a period's key always goes to (compute-pool.ts, runOn; the task `circulate` in compute-tasks.ts),
// which takes the largest CPU cost of a report after new payments off the event loop while the next period's
// rows are read.

/** A period's links on cycles: payer and payee account numbers, volumes in millionths. */
export interface CycleLinks { from: ArrayLike<number>, to: ArrayLike<number>, vol: ArrayLike<bigint> }

/** Computes the largest circulation of links, keeping the solver under key (when given) for the next call. */
export type Solve = (key: string | undefined, links: CycleLinks) => bigint | Promise<bigint>

/**
 * The period's kept solver brought up to date, a new one when its links shrank, or max-circulation.ts when the
 * volumes are too large for the solver's float64 to be exact. The total does not depend on where it starts.
 */
export const keptCirculation: Solve = (key, links) => {
  const at = key == null ? undefined : `circulation|${key}`
  let solver = at == null ? undefined : cached<Circulation>(at)
  try {
    if (solver == null || !solver.update(links.from, links.to, links.vol)) {
      solver = new Circulation()
      if (!solver.update(links.from, links.to, links.vol)) {
        // too large for float64: a kept solver would be tried, and refuse, on every report until the links shrink
        if (at != null) forget(at)
        return maxCirculation(links.from, links.to, arrayOf(links.vol)).total
      }
    }
  } catch (err) {
    // an update that failed half way must not be the start of the next one
    if (at != null) forget(at)
    throw err
  }
  if (at != null) keep(at, solver, solver.bytes)
  return solver.total
}

/** A Solve that runs on the report workers (compute-pool.ts): each period's solver on the worker its key falls to,
 *  the links copied once into typed arrays of their own, which are then moved to it rather than cloned. */
export function solveOn (compute: ComputePool): Solve {
  return async (key, links) => {
    if (key == null) return keptCirculation(key, links)
    const from = new Int32Array(links.from)
    const to = new Int32Array(links.to)
    const vol = links.vol instanceof BigInt64Array ? links.vol.slice() : packBigints(arrayOf(links.vol))
    const transfer = vol instanceof BigInt64Array ? [from.buffer, to.buffer, vol.buffer as ArrayBuffer] : [from.buffer, to.buffer]
    try {
      return (await compute.runOn(key, 'circulate', { key, from, to, vol }, transfer)).total
    } catch (err) {
      // the worker died (out of its heap, say, on a period larger than its budget allows) or the pool is closing:
      // solved here from nothing, kept nowhere, as it was before solvers moved to the workers. Every time, were the
      // period too large for a worker: a 503 on every request would be worse
      if (!(err instanceof DomainError && err.code === 'SERVICE_UNAVAILABLE')) throw err
      return keptCirculation(undefined, links)
    }
  }
}
