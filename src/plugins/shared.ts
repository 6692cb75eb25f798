import fp from 'fastify-plugin'
import { Redis } from 'ioredis'

// What instances behind a load balancer share besides PostgreSQL: with REDIS_URL, a Redis (ioredis) that holds the
// rate-limit counters (plugins/rate-limits.ts), the read budget (plugins/read-budget.ts) and carries revocations
// (API keys, suspended logins) to every instance at once. Without REDIS_URL every instance keeps them in memory,
// as a single process needs.
//
// Redis is never the only thing between a request and its answer: commands time out quickly (REDIS_COMMAND_TIMEOUT_MS)
// and fail at once while the connection is down (no offline queue), and each user falls back to its in-memory
// behaviour, logged once per outage (docs/operations.md "Redis"). No request answers 500 because Redis is away.

/** an API key was revoked; the suspended logins changed; or anything may have (after a gap in the subscription) */
export type RevocationMessage = { kind: 'api-key', id: string } | { kind: 'logins' } | { kind: 'all' }

declare module 'fastify' {
  interface FastifyInstance {
    shared: {
      /** the command connection, or null without REDIS_URL */
      redis: Redis | null
      /** Redis is configured and connected now (else: the in-memory fallback) */
      up: () => boolean
      /** tells every instance (this one included) that a revocation happened; a no-op without Redis */
      publishRevocation: (m: RevocationMessage) => void
      onRevocation: (fn: (m: RevocationMessage) => void) => void
      /** logs the first failure of an outage at warn, the rest at debug (callers use it on every fallback) */
      degraded: (what: string, err: unknown) => void
    }
  }
}

export interface SharedOptions {
  redisUrl?: string
  commandTimeoutMs?: number
  /** key prefix, so several deployments (or test runs) can share one Redis */
  prefix?: string
}

export const CHANNEL = 'revocations'

export default fp<SharedOptions>(async (app, opts) => {
  const handlers: Array<(m: RevocationMessage) => void> = []
  let outage = false
  const degraded = (what: string, err: unknown) => {
    if (!outage) { outage = true; app.log.warn({ err, what }, 'Redis unavailable: falling back to per-instance limits and caches') } else app.log.debug({ err, what }, 'Redis unavailable')
  }
  if (opts.redisUrl == null) {
    app.decorate('shared', {
      redis: null, up: () => false, publishRevocation: () => {}, onRevocation: (fn) => { handlers.push(fn) }, degraded,
    })
    return
  }
  const prefix = opts.prefix ?? 'circulate:'
  const common = {
    keyPrefix: prefix,
    // fail fast while disconnected instead of queueing requests behind a dead server
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs ?? 250,
    connectTimeout: 1000,
    // keep trying to come back, at most every 2 s
    retryStrategy: (times: number) => Math.min(100 * times, 2000),
    lazyConnect: true,
  }
  const redis = new Redis(opts.redisUrl, common)
  const sub = new Redis(opts.redisUrl, { ...common, commandTimeout: undefined, enableOfflineQueue: true })
  redis.on('error', (err) => { degraded('connection', err) })
  sub.on('error', () => {})
  redis.on('ready', () => {
    if (outage) app.log.info('Redis is back: limits and caches are shared again')
    outage = false
  })
  // a connection that never comes up at start is the same as an outage later: start anyway, fall back
  await redis.connect().catch((err: unknown) => { degraded('connect', err) })
  // (pub/sub channels are not prefixed by keyPrefix: name it here)
  const channel = `${prefix}${CHANNEL}`
  sub.on('message', (ch: string, text: string) => {
    if (ch !== channel) return
    let m: RevocationMessage
    try { m = JSON.parse(text) as RevocationMessage } catch { return }
    for (const fn of handlers) fn(m)
  })
  // resubscribes by itself after a reconnect
  void sub.connect().then(async () => await sub.subscribe(channel)).catch(() => {})
  // After a gap in the subscription (Redis restarted, network), revocations may have been missed: the handlers
  // are told to forget everything once the subscriber is back.
  let subscribedOnce = false
  sub.on('ready', () => {
    if (subscribedOnce) for (const fn of handlers) { fn({ kind: 'all' }) }
    subscribedOnce = true
  })

  app.decorate('shared', {
    redis,
    up: () => redis.status === 'ready',
    publishRevocation: (m) => {
      if (redis.status !== 'ready') return
      redis.publish(channel, JSON.stringify(m)).catch((err: unknown) => { degraded('publish', err) })
    },
    onRevocation: (fn) => { handlers.push(fn) },
    degraded,
  })
  app.addHook('onClose', async () => {
    redis.disconnect()
    sub.disconnect()
  })
}, { name: 'shared' })
