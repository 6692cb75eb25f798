import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { RateLimitedError } from '../domain/access.js'
import { DomainError } from '../domain/errors.js'
import { callerCurrency, participantOrLogin } from '../domain/per-caller.js'
import { CallerQueue } from './caller-queue.js'
import { holdUntilDone } from './held-places.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route keeps a per-caller budget of its own that is entered before any work is done (a batch's line, the
     * read budget), so it takes no place in the caller share; a function decides per request. A route whose own
     * budget is entered only after some work (an event stream, a long-poll) takes a place and gives it back with
     * leaveShare() when it starts to wait.
     */
    ownShare?: boolean | ((request: FastifyRequest) => boolean)
  }
  interface FastifyInstance {
    /** Requests holding a place in the caller share now, and waiting for one, over all callers (tests, health). */
    callerShare: () => { running: number, waiting: number }
  }
}

const PLACE = Symbol('the request\'s place in the caller share')
type Placed = FastifyRequest & { [PLACE]?: () => void }

/**
 * Gives the request's place in its caller's share back before the request ends: for a request that goes on to
 * wait within a per-caller bound of its own (a long-poll while it waits, an event stream once it is open), so
 * that it holds a place while it does work (reads, checks) and none while it only waits. Safe to call twice, or
 * for a request that holds no place.
 */
export function leaveShare (request: FastifyRequest): void {
  const release = (request as Placed)[PLACE]
  ;(request as Placed)[PLACE] = undefined
  release?.()
}

export interface CallerShareOptions {
  /** requests one caller may have running at once (0: no share) */
  running: number
  /** and waiting for their turn; one more answers 429 */
  waiting: number
  /** requests one currency's callers together may have running while another currency's are running or waiting (caller-queue.ts) */
  perCurrency?: number
}

// Every request of a logged-in caller (a participant with all its logins and API keys, or a staff login) takes one
// of its CALLS_PER_CALLER places before anything else is done for it, and holds it until its work is over
// (held-places.ts); more wait their turn in line, up to CALLS_WAITING_PER_CALLER, and one past that is answered
// 429 with its body unread. Without it, one member keeping hundreds of cheap reads in flight took the main pool's
// connections and the event loop's turns from everyone else, and another currency's payments waited behind them.
// A caller's own requests still run side by side up to the limit, and waiting costs no connection. Per instance:
// behind n instances a caller has n times the places (each instance's pool is still protected).
export default fp<CallerShareOptions>(async (app, opts) => {
  if (opts.running <= 0) { app.decorate('callerShare', () => ({ running: 0, waiting: 0 })); return }
  const queue = new CallerQueue(opts.running, opts.waiting, opts.perCurrency)
  app.decorate('callerShare', () => ({ running: queue.runningNow, waiting: queue.waitingNow }))
  app.addHook('onRequest', async (request, reply) => {
    const p = request.principal
    // an open route (a currency, the directory, the token exchange) is open with or without a token
    if (p == null || request.is404 || request.routeOptions.config.public === true) return
    const own = request.routeOptions.config.ownShare
    if (own === true || (typeof own === 'function' && own(request))) return
    const key = participantOrLogin(p)
    const entry = await queue.enter(key, reply, callerCurrency(p))
    if (entry.kind === 'gone') throw new DomainError('BAD_REQUEST', 'the client went away before its request began')
    if (entry.kind === 'refused') {
      request.log.info({ caller: key, running: entry.running, waiting: entry.waiting }, 'caller share: refused a request past the per-caller limit')
      throw new RateLimitedError(1, `you already have ${entry.running} requests running and ${entry.waiting} waiting (at most ${opts.running} and ${opts.waiting}); send the next when one has been answered`)
    }
    ;(request as Placed)[PLACE] = entry.release
    holdUntilDone(request, reply, entry.release)
  })
}, { name: 'caller-share', dependencies: ['auth', 'held-places'] })
