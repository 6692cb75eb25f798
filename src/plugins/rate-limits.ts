import rateLimit, { type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { createRequire } from 'node:module'
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

// With REDIS_URL the counters live in Redis (one fixed window per caller, counted by a Lua script in one round
// trip), so n instances behind a load balancer give exactly the limit. Without it, or while Redis is away, they
// live in this instance's memory (an LRU of 5,000 callers): then n instances give a caller up to n times the limit,
// and no request fails because of it. Failed logins are throttled in the database (auth.service.ts) either way.
export default fp<RateLimitsOptions>(async (app, opts) => {
  await app.register(rateLimit, {
    global: false,
    ...(app.shared.redis != null ? { store: sharedStore(app) } : {}),
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

const LocalStore = createRequire(import.meta.url)('@fastify/rate-limit/store/LocalStore.js') as
  new (continueExceeding: boolean, exponentialBackoff: boolean, cache?: number) => FastifyRateLimitStore & { child: (o: object) => FastifyRateLimitStore }

const WINDOW_LUA = `
  local current = redis.call('INCR', KEYS[1])
  if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
  return {current, ttl}`

type WindowRedis = { circulateWindow: (key: string, windowMs: number) => Promise<[number, number]> }

/** The Redis store, falling back to an in-memory one while Redis is away. */
function sharedStore (app: FastifyInstance): FastifyRateLimitStoreCtor {
  const redis = app.shared.redis!
  if (!('circulateWindow' in redis)) redis.defineCommand('circulateWindow', { numberOfKeys: 1, lua: WINDOW_LUA })
  class Shared {
    private readonly local: FastifyRateLimitStore
    constructor (private readonly prefix = 'rate:', local?: FastifyRateLimitStore) {
      this.local = local ?? new LocalStore(false, false, 5000)
    }

    incr (key: string, cb: (err: Error | null, r?: { current: number, ttl: number }) => void, timeWindow: number, max: number): void {
      if (!app.shared.up()) { this.local.incr(key, cb, timeWindow, max); return }
      ;(redis as unknown as WindowRedis).circulateWindow(this.prefix + key, timeWindow).then(
        ([current, ttl]) => { cb(null, { current: Number(current), ttl: Number(ttl) }) },
        (err: unknown) => { app.shared.degraded('rate limit', err); this.local.incr(key, cb, timeWindow, max) })
    }

    child (o: { timeWindow?: unknown, max?: unknown, groupId?: string }): Shared {
      // one key space per limiter (its window and maximum), so two limiters never share a counter
      return new Shared(`rate:${String(o.groupId ?? '')}${String(o.max)}/${String(o.timeWindow)}:`, (this.local as unknown as { child: (o: object) => FastifyRateLimitStore }).child(o))
    }
  }
  return Shared as unknown as FastifyRateLimitStoreCtor
}
