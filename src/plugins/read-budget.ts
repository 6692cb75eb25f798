import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { RateLimitedError } from '../domain/access.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * preHandler of the expensive reads (reports, research exports, statement CSVs): a caller may have only
     * READS_PER_CALLER of them running at once and as many again waiting for their turn (a page that asks for
     * three reports together still works); one more answers 429 at once instead of queueing for the read pool.
     */
    readBudget: preHandlerAsyncHookHandler
    /** Reads running now, per caller (for tests and health). */
    readsRunning: () => number
  }
}

export interface ReadBudgetOptions {
  /** reports and exports one caller may run at once (and may have waiting) */
  perCaller: number
}

interface Caller { running: number, waiting: Array<() => void> }

// Counters live in this instance's memory: behind a load balancer of n instances a caller may run up to n times
// the budget, and each instance's read pool still bounds what reaches the database. A running read holds its place
// until its response is finished or the client goes away: a streamed export holds it for as long as it streams.
export default fp<ReadBudgetOptions>(async (app, opts) => {
  const callers = new Map<string, Caller>()
  const callerOf = (request: FastifyRequest) => request.principal?.userId ?? `address:${request.ip}`

  const release = (key: string) => {
    const c = callers.get(key)
    if (c == null) return
    const next = c.waiting.shift()
    if (next != null) { next(); return } // the place passes straight to the next in line
    c.running--
    if (c.running <= 0) callers.delete(key)
  }

  app.decorate('readBudget', async function readBudget (request: FastifyRequest, reply: FastifyReply) {
    const key = callerOf(request)
    let c = callers.get(key)
    if (c == null) { c = { running: 0, waiting: [] }; callers.set(key, c) }
    if (c.running >= opts.perCaller) {
      if (c.waiting.length >= opts.perCaller) {
        request.log.info({ caller: key, running: c.running, waiting: c.waiting.length }, 'read budget: refused a report or export past the per-caller limit')
        throw new RateLimitedError(1, `you already have ${c.running} reports or exports running and ${c.waiting.length} waiting (at most ${opts.perCaller} of each); retry when one has finished`)
      }
      const line = c.waiting
      let turn!: () => void
      const gone = await new Promise<boolean>((resolve) => {
        turn = () => { resolve(false) }
        line.push(turn)
        // a client that gives up while waiting leaves the line and takes no place
        reply.raw.once('close', () => { const i = line.indexOf(turn); if (i >= 0) { line.splice(i, 1); resolve(true) } })
      })
      if (gone) return
    } else {
      c.running++
    }
    let held = true
    // 'close' fires once the response is done, whether it finished or the client went away mid-stream
    reply.raw.once('close', () => { if (held) { held = false; release(key) } })
  })
  app.decorate('readsRunning', () => [...callers.values()].reduce((a, c) => a + c.running, 0))
}, { name: 'read-budget', dependencies: ['auth'] })
