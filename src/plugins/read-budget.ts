import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { RateLimitedError } from '../domain/access.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * preHandler of the expensive reads (reports, research exports, statement CSVs): a caller may have only
     * READS_PER_CALLER of them running at once; one more answers 429 at once instead of queueing for the read pool.
     */
    readBudget: preHandlerAsyncHookHandler
    /** Reads running now, per caller (for tests and health). */
    readsRunning: () => number
  }
}

export interface ReadBudgetOptions {
  /** reports and exports one caller may run at once */
  perCaller: number
}

// Counters live in this instance's memory: behind a load balancer of n instances a caller may run up to n times
// the budget, and each instance's read pool still bounds what reaches the database. A running read holds its place
// until its response is finished or the client goes away: a streamed export holds it for as long as it streams.
export default fp<ReadBudgetOptions>(async (app, opts) => {
  const running = new Map<string, number>()
  const callerOf = (request: FastifyRequest) => request.principal?.userId ?? `address:${request.ip}`

  const release = (caller: string) => {
    const n = (running.get(caller) ?? 1) - 1
    if (n <= 0) running.delete(caller)
    else running.set(caller, n)
  }

  app.decorate('readBudget', async function readBudget (request: FastifyRequest, reply: FastifyReply) {
    const caller = callerOf(request)
    const n = running.get(caller) ?? 0
    if (n >= opts.perCaller) {
      request.log.info({ caller, running: n }, 'read budget: refused a report or export past the per-caller limit')
      throw new RateLimitedError(1, `you already have ${n} reports or exports running (at most ${opts.perCaller} at once); retry when one has finished`)
    }
    running.set(caller, n + 1)
    let held = true
    // 'close' fires once the response is done, whether it finished or the client went away mid-stream
    reply.raw.once('close', () => { if (held) { held = false; release(caller) } })
  })
  app.decorate('readsRunning', () => [...running.values()].reduce((a, b) => a + b, 0))
}, { name: 'read-budget', dependencies: ['auth'] })
