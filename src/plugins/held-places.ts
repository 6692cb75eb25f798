import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { whenClosed } from './client-gone.js'

// A place a request takes in something shared (a report's turn in the read budget, a batch's share of the batch
// line) is held until the request's work is over: its handler has finished (onSend) AND its response is done or
// its client gone ('close'), whichever comes last. Not merely until the client goes away: a report or a batch
// goes on after a hang-up, so a caller that sent requests and hung up at once would otherwise hold any number of
// them. Not merely until the handler is done either: a streamed export goes on until its response is closed.
const HELD = Symbol('places held until the request is done')
type Holding = FastifyRequest & { [HELD]?: Array<() => void> }

/** Calls free() once the request's handler is done and its response is closed, whichever comes last. */
export function holdUntilDone (request: FastifyRequest, reply: FastifyReply, free: () => void): void {
  let ends = 0
  const end = () => { if (++ends === 2) free() }
  const held = (request as Holding)[HELD] ??= []
  held.push(end)
  // at once if the client has gone already (its 'close' has fired, and will not again)
  whenClosed(reply, end)
}

/** The request's handler is done (its work is over); each place goes once its response is closed too. */
export function handlerDone (request: FastifyRequest): void {
  const held = (request as Holding)[HELD]
  if (held == null) return
  ;(request as Holding)[HELD] = undefined
  for (const end of held) end()
}

export default fp(async (app) => {
  // onSend comes once the handler has settled (with its payload, or its error through the error handler; a body
  // that fails to arrive ends there too), also when the client has gone: the end of the work, where 'close' may
  // be long before it
  app.addHook('onSend', async (request, _reply, payload) => { handlerDone(request); return payload })
}, { name: 'held-places' })
