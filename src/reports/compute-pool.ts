import { Worker, type WorkerOptions } from 'node:worker_threads'
import { DomainError } from '../domain/errors.js'
import { runTask, type TaskName, type Tasks } from './compute-tasks.js'

// Where a report's pure computation runs (docs/architecture.md, "Where report computation runs"). The service has
// one event loop: a report's figures, metrics and CSV computed on it hold up every payment request behind them
// for as long as they take. So the CPU-heavy, pure part of a report (compute-tasks.ts: plain data in, figures out)
// runs on a small pool of worker threads, and the event loop only waits for the answer. The database reads and the
// report caches of what was read stay on the main thread (they share its pools and its one cache budget).
//
// Each worker has its own V8 heap, capped (resourceLimits), so a report cannot take the service's heap with it. A
// worker that dies (out of memory, a crash) fails only the job it was running, as a 503 problem; the next job
// starts a new worker. Jobs are handed out in order, to the first free worker (a job for one worker, below, lets
// those behind it that can run elsewhere go first). With 0 workers the tasks run in the process, as they did
// before (the figures are the same either way: test/reports/compute-pool.test.ts).
//
// A task that keeps state between jobs (the kept circulation solvers: compute-tasks.ts, `circulate`) is run with
// runOn(): every job of one key goes to the same worker, which holds that key's state in its own report cache
// (its budget: a share of the worker's heap, below). A worker that is replaced loses its state; the next job of
// that key starts cold and gives the same answer.

export interface ComputeOptions {
  /** worker threads; 0 runs every task on the event loop */
  workers: number
  /** the old-space limit of each worker's heap, in MB */
  heapMb: number
}

export interface ComputePool {
  run: <K extends TaskName>(task: K, input: Parameters<Tasks[K]>[0]) => Promise<ReturnType<Tasks[K]>>
  /** run(), always on the worker that key falls to (so a task's state kept under that key is found again) */
  runOn: <K extends TaskName>(key: string, task: K, input: Parameters<Tasks[K]>[0], transfer?: ArrayBuffer[]) => Promise<ReturnType<Tasks[K]>>
  /** stops the workers; jobs still waiting or running fail */
  close: () => Promise<void>
  /** the live workers (tests end one to see a job fail cleanly) */
  threads: () => Worker[]
}

interface Job { task: TaskName, input: unknown, transfer?: ArrayBuffer[], at: number | null, resolve: (v: any) => void, reject: (e: unknown) => void }
interface Slot { worker: Worker, job: Job | null }

/** The share of a worker's heap its report cache may hold (the rest is for the documents it renders). */
export const WORKER_CACHE_SHARE = 0.25

/** Which of n workers a key's jobs run on. */
export function slotOf (key: string, n: number): number {
  // FNV-1a: cheap, and spreads periods' keys, which differ only in their last characters
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  return (h >>> 0) % n
}

// the worker's own file: compute.worker.js when built. From the sources (tests, `npm run dev`, scripts under tsx)
// it is compute.worker.ts, and the worker registers tsx's loader first: tsx does not pass its own to workers
const SOURCES = import.meta.url.endsWith('.ts')
const WORKER_URL = new URL(`./compute.worker${SOURCES ? '.ts' : '.js'}`, import.meta.url)
function newWorker (options: WorkerOptions): Worker {
  if (!SOURCES) return new Worker(WORKER_URL, options)
  // tsx is a development dependency: looked up only when running from the sources
  const tsx = import.meta.resolve('tsx/esm/api')
  return new Worker(`import(${JSON.stringify(tsx)}).then(tsx => { tsx.register(); return import(${JSON.stringify(WORKER_URL.href)}) })`, { ...options, eval: true })
}

const unavailable = (why: string) =>
  new DomainError('SERVICE_UNAVAILABLE', `the report could not be computed (${why}); retry shortly`)

export function computePool (o: ComputeOptions): ComputePool {
  if (o.workers <= 0) {
    const inProcess = async <K extends TaskName>(task: K, input: Parameters<Tasks[K]>[0]) => await Promise.resolve(runTask(task, input))
    return { run: inProcess, runOn: async (_key, task, input) => await inProcess(task, input), close: async () => {}, threads: () => [] }
  }
  // by place: a key's jobs go to the worker at slotOf(key); null until a job needs that place
  const slots: Array<Slot | null> = new Array<Slot | null>(o.workers).fill(null)
  const waiting: Job[] = []
  let closed = false

  const start = (at: number): Slot => {
    const worker = newWorker({
      resourceLimits: { maxOldGenerationSizeMb: o.heapMb, maxYoungGenerationSizeMb: Math.min(16, Math.max(1, Math.floor(o.heapMb / 8))) },
      workerData: { cacheBytes: Math.floor(o.heapMb * 1024 * 1024 * WORKER_CACHE_SHARE) },
      // nothing a worker prints is for the service's stdout; the error reaches the job instead
      stdout: false,
      stderr: false,
    })
    const slot: Slot = { worker, job: null }
    worker.on('message', (m: { ok: true, result: unknown } | { ok: false, message: string }) => {
      const job = slot.job
      slot.job = null
      if (!closed) worker.unref()
      if (job != null) {
        if (m.ok) job.resolve(m.result)
        // a task that throws is a bug in it, as it would be on the event loop: the error as it was
        else job.reject(new Error(m.message))
      }
      next()
    })
    // 'error' (out of memory, an uncaught throw) is followed by 'exit'; the job fails on the first of them
    const gone = (why: string) => {
      if (slots[at] === slot) slots[at] = null
      const job = slot.job
      slot.job = null
      job?.reject(unavailable(why))
      next()
    }
    worker.on('error', (err: Error & { code?: string }) => { gone(err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'out of memory' : 'the worker failed') })
    worker.on('exit', () => { gone('the worker stopped') })
    // an idle worker does not keep the process alive (one with a job does, like any pending I/O)
    worker.unref()
    slots[at] = slot
    return slot
  }

  /** A free worker at place `at` (any place when null), started if none is there yet. */
  const free = (at: number | null): Slot | null => {
    if (at != null) {
      const s = slots[at]
      return s == null ? start(at) : s.job == null ? s : null
    }
    const idle = slots.find(s => s != null && s.job == null)
    if (idle != null) return idle
    const empty = slots.indexOf(null)
    return empty >= 0 ? start(empty) : null
  }

  // jobs in order, except that a job waiting for its own worker does not hold up those behind it that can run
  const next = (): void => {
    if (closed) return
    for (let i = 0; i < waiting.length;) {
      const job = waiting[i]
      const slot = free(job.at)
      if (slot == null) { i++; continue }
      waiting.splice(i, 1)
      try {
        slot.worker.postMessage({ task: job.task, input: job.input }, job.transfer)
      } catch (err) {
        // input that cannot be cloned (a bug in the caller): that job fails, the worker stays free
        job.reject(err)
        continue
      }
      slot.job = job
      slot.worker.ref()
    }
  }

  const submit = async (task: TaskName, input: unknown, at: number | null, transfer?: ArrayBuffer[]): Promise<any> => await new Promise((resolve, reject) => {
    if (closed) { reject(unavailable('the service is stopping')); return }
    waiting.push({ task, input, transfer, at, resolve, reject })
    next()
  })

  return {
    run: async (task, input) => await submit(task, input, null),
    runOn: async (key, task, input, transfer) => await submit(task, input, slotOf(key, o.workers), transfer),
    close: async () => {
      closed = true
      for (const job of waiting.splice(0)) job.reject(unavailable('the service is stopping'))
      // referenced until they have stopped, so that close() is waited for
      await Promise.all(slots.map(async s => { if (s == null) return; s.worker.ref(); await s.worker.terminate() }))
    },
    threads: () => slots.flatMap(s => s == null ? [] : [s.worker]),
  }
}
