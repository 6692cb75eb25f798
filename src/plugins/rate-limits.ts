import rateLimit from '@fastify/rate-limit'
import type { preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { RateLimitedError } from '../domain/access.js'

declare module 'fastify' {
  interface FastifyInstance {
    limits: {
      /** preHandler hooks for money-moving routes: one budget per principal shared by all of them */
      money: preHandlerAsyncHookHandler[]
    }
  }
}

export interface RateLimitsOptions {
  /** money-moving requests per principal per minute; 0 turns the limit off */
  moneyPerMinute: number
}

// Counters live in this instance's memory (an LRU of 5,000 callers): behind a load balancer of n instances a
// caller gets up to n times the limit. Failed logins are throttled in the database instead (auth.service.ts),
// since that limit must hold across instances.
export default fp<RateLimitsOptions>(async (app, opts) => {
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, ctx) =>
      new RateLimitedError(Math.ceil(ctx.ttl / 1000), `too many requests from this caller; retry in ${ctx.after}`),
  })
  const money = opts.moneyPerMinute > 0
    ? [app.rateLimit({
        max: opts.moneyPerMinute,
        timeWindow: 60_000,
        // Runs as a preHandler, so the principal is known: the limit follows the caller, not its address.
        keyGenerator: (request) => request.principal?.userId ?? `address:${request.ip}`,
      })]
    : []
  app.decorate('limits', { money })
  app.addHook('onError', async (_request, reply, err) => {
    if (err instanceof RateLimitedError) void reply.header('retry-after', String(err.retryAfterSeconds))
  })
}, { name: 'rate-limits' })
