import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { RateLimitedError } from '../domain/access.js'
import { DomainError } from '../domain/errors.js'
import { callerCurrency, participantOrLogin } from '../domain/per-caller.js'
import { clientGone, endWhenStalled } from './client-gone.js'
import { CallerQueue } from './caller-queue.js'
import { holdUntilDone } from './held-places.js'

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
    /** Reads waiting for their turn now (for tests). */
    readsWaiting: () => number
  }
}

export interface ReadBudgetOptions {
  /** reports and exports one caller may run at once (and may have waiting) */
  perCaller: number
  /** and one currency's callers together, while another currency's are running or waiting (caller-queue.ts) */
  perCurrency?: number
  /** a read whose client takes none of its response for this long is ended (client-gone.ts endWhenStalled); 0: never */
  stallMs?: number
  /** and one whose client takes less than this on average over stallMs while the service has more to send */
  minBytesPerSecond?: number
}

// Without REDIS_URL the counters live in this instance's memory: behind a load balancer of n instances a caller may
// run up to n times the budget, and each instance's read pool still bounds what reaches the database. With REDIS_URL
// they live in Redis (two sorted sets of leases per caller: running, and running or waiting), so the budget holds
// across all instances; a waiting read polls for its turn (every 50 ms, not strictly first come first served). A
// lease lives 60 s and is renewed while its read runs, so an instance that dies frees its places within a minute.
// While Redis is away the in-memory budget applies. The currency groups (READS_PER_CURRENCY, caller-queue.ts) are
// this instance's own either way: a read the shared budget lets run still takes its turn in them here, because what
// they share out is this instance's read pool.
//
// A running read holds its place until its work is over (held-places.ts): its handler has finished AND its
// response is done or its client gone; a streamed export holds it for as long as it streams. A read whose client
// went away before its turn does not run at all. A read whose client stops taking its response for READ_STALL_MS
// is ended, so a download nobody reads does not hold its place for as long as the connection stays open.

/** The error a read whose client has gone ends with (nobody receives it; the log says why the read did not run). */
const gone = () => new DomainError('BAD_REQUEST', 'the client went away before its report or export began')

export default fp<ReadBudgetOptions>(async (app, opts) => {
  // without Redis (or while it is away): this instance's own count
  const local = new CallerQueue(opts.perCaller, opts.perCaller, opts.perCurrency)
  // a participant with all its logins and API keys, or a staff login: a business's twenty keys are one caller
  const callerOf = (request: FastifyRequest) => request.principal != null ? participantOrLogin(request.principal) : `address:${request.ip}`

  const redis = app.shared.redis
  if (redis != null && !('circulateReadLease' in redis)) redis.defineCommand('circulateReadLease', { numberOfKeys: 2, lua: LEASE_LUA })
  const lease = redis as unknown as LeaseRedis | null

  /** The shared budget: a place (free it when the read is over), false = refused; null = Redis is away (use the local one). */
  const sharedBudget = async (reply: FastifyReply, key: string): Promise<{ free: () => void } | false | null> => {
    if (lease == null || !app.shared.up()) return null
    const keys = [`reads:run:${key}`, `reads:all:${key}`] as const
    const id = crypto.randomUUID()
    let state: number
    try {
      state = Number(await lease.circulateReadLease(keys[0], keys[1], 'enter', Date.now(), LEASE_MS, id, opts.perCaller))
    } catch (err) { app.shared.degraded('read budget', err); return null }
    if (state < 0) return false
    let done = false
    // renew the lease while the read waits or runs
    const renew = setInterval(() => {
      if (done) { clearInterval(renew); return }
      lease.circulateReadLease(keys[0], keys[1], 'renew', Date.now(), LEASE_MS, id, opts.perCaller).catch(() => {})
    }, LEASE_MS / 3)
    renew.unref()
    const free = () => {
      if (done) return
      done = true
      clearInterval(renew)
      lease.circulateReadLease(keys[0], keys[1], 'leave', Date.now(), LEASE_MS, id, opts.perCaller).catch(() => {})
    }
    while (state === 0 && !clientGone(reply)) {
      await new Promise(resolve => setTimeout(resolve, 50))
      if (clientGone(reply)) break
      try {
        state = Number(await lease.circulateReadLease(keys[0], keys[1], 'try', Date.now(), LEASE_MS, id, opts.perCaller))
      } catch (err) {
        // Redis went away while this read waited: it runs (the read pool still bounds the database)
        app.shared.degraded('read budget', err); state = 1
      }
    }
    if (clientGone(reply)) { free(); throw gone() }
    return { free }
  }

  app.decorate('readBudget', async function readBudget (request: FastifyRequest, reply: FastifyReply) {
    const key = callerOf(request)
    const shared = await sharedBudget(reply, key)
    if (shared === false) {
      request.log.info({ caller: key }, 'read budget: refused a report or export past the per-caller limit (all instances)')
      throw new RateLimitedError(1, `you already have ${opts.perCaller} reports or exports running and ${opts.perCaller} waiting; retry when one has finished`)
    }
    // With a shared place the caller is within its budget on every instance, so here it is too (a caller's reads on
    // one instance are some of its reads on all): this instance's queue then only gives the currency groups' turns.
    const entry = await local.enter(key, reply, request.principal != null ? callerCurrency(request.principal) : 'anonymous')
    if (entry.kind !== 'run') shared?.free()
    if (entry.kind === 'gone') throw gone()
    if (entry.kind === 'refused') {
      request.log.info({ caller: key, running: entry.running, waiting: entry.waiting }, 'read budget: refused a report or export past the per-caller limit')
      throw new RateLimitedError(1, `you already have ${entry.running} reports or exports running and ${entry.waiting} waiting (at most ${opts.perCaller} of each); retry when one has finished`)
    }
    holdUntilDone(request, reply, shared == null ? entry.release : () => { entry.release(); shared.free() })
    // the place is held until the response is sent: a client that stops reading must not hold it for good
    if ((opts.stallMs ?? 0) > 0) endWhenStalled(reply, opts.stallMs!, opts.minBytesPerSecond ?? 0)
  })
  app.decorate('readsRunning', () => local.runningNow)
  app.decorate('readsWaiting', () => local.waitingNow)
}, { name: 'read-budget', dependencies: ['auth', 'held-places'] })

const LEASE_MS = 60_000
type LeaseRedis = { circulateReadLease: (run: string, all: string, op: string, now: number, ttl: number, id: string, per: number) => Promise<number> }

// KEYS: running, running-or-waiting; ARGV: op, now, ttl, id, per caller. Answers 1 run, 0 wait, -1 refused.
const LEASE_LUA = `
  local run, all = KEYS[1], KEYS[2]
  local op, now, ttl, id, per = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
  if op == 'leave' then
    redis.call('ZREM', run, id); redis.call('ZREM', all, id); return 1
  end
  redis.call('ZREMRANGEBYSCORE', run, '-inf', now)
  redis.call('ZREMRANGEBYSCORE', all, '-inf', now)
  if op == 'renew' then
    redis.call('ZADD', run, 'XX', now + ttl, id); redis.call('ZADD', all, 'XX', now + ttl, id)
    redis.call('PEXPIRE', run, ttl); redis.call('PEXPIRE', all, ttl); return 1
  end
  if op == 'enter' then
    if redis.call('ZCARD', all) >= 2 * per then return -1 end
    redis.call('ZADD', all, now + ttl, id); redis.call('PEXPIRE', all, ttl)
  elseif redis.call('ZSCORE', all, id) == false then
    redis.call('ZADD', all, now + ttl, id); redis.call('PEXPIRE', all, ttl)
  end
  if redis.call('ZCARD', run) < per then
    redis.call('ZADD', run, now + ttl, id); redis.call('PEXPIRE', run, ttl); return 1
  end
  return 0`
