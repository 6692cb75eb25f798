import { parentPort, workerData } from 'node:worker_threads'
import { runTask, type TaskName } from './compute-tasks.js'
import { setBudget } from './report-cache.js'

// the report cache of this thread (the kept solvers of `circulate`) holds a share of its heap, not the service's
// whole budget: compute-pool.ts, WORKER_CACHE_SHARE
const { cacheBytes } = workerData as { cacheBytes: number }
setBudget(cacheBytes)

// A report worker (compute-pool.ts): one task at a time, plain data in, the document out. A task that throws
// answers with its message; anything worse (out of memory) ends the thread, and the pool fails the job with a 503.
parentPort!.on('message', (m: { task: TaskName, input: any }) => {
  let answer: { ok: true, result: unknown } | { ok: false, message: string }
  try {
    answer = { ok: true, result: runTask(m.task, m.input) }
  } catch (err) {
    answer = { ok: false, message: err instanceof Error ? err.message : String(err) }
  }
  parentPort!.postMessage(answer)
})
