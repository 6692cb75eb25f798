import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { revocationOf } from '../auth/revocation.js'
import { DomainError } from '../domain/errors.js'
import { callerCurrency } from '../domain/per-caller.js'
import type { EventRow, Subscriber } from '../events/hub.js'
import { leaveShare } from '../plugins/caller-share.js'
import { whenClosed } from '../plugins/client-gone.js'
import { IdParams, problems } from '../schemas/common.js'

// GET /v1/accounts/{id}/events: Server-Sent Events of one account, for its owner (a login, or an API key with
// statements:read) or an issuer of its currency, as its statement is. The events come from the durable log
// (src/events/hub.ts): `Last-Event-ID` (or ?after=) resumes after that id with no gap and no duplicate; without
// either the stream starts with the next event. Heartbeat comments keep proxies open; the stream ends after
// EVENTS_STREAM_MAX_SECONDS (the token may expire; the client reconnects with Last-Event-ID).

const EventId = Type.String({ pattern: '^(0|[1-9][0-9]{0,17})$', maxLength: 18, description: 'an event id: the stream resumes after it' })

export const eventMessage = (r: EventRow): string =>
  `id: ${r.id}\nevent: ${r.type}\ndata: ${JSON.stringify({ id: r.id, type: r.type, accountId: r.accountId, createdAt: r.createdAt, data: r.data })}\n\n`

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { accounts } = app.services
  const ev = app.events
  const o = ev.options

  app.get('/v1/accounts/:id/events', {
    // a stream lasts minutes: it holds a place in the caller share until it is open, and none after
    // (EVENTS_STREAMS_PER_CALLER bounds open streams)
    config: { scope: 'statements:read' },
    schema: {
      tags: ['accounts'],
      summary: 'Live events of an account as Server-Sent Events (owner or issuer): payment.received, payment.sent, request.paid, request.expired, standing_order.failed',
      description: 'Each message has `id:` (the event id, rising), `event:` (its type) and `data:` (JSON: id, type, accountId, ' +
        'createdAt, data). Send `Last-Event-ID` (or `?after=`) to resume after an event: every later event of the account is sent, ' +
        'none twice. Comment lines (`:`) are heartbeats. The stream ends after a while (EVENTS_STREAM_MAX_SECONDS); reconnect with ' +
        'Last-Event-ID. Works across instances (PostgreSQL LISTEN/NOTIFY, then a read of the log by id).',
      params: IdParams,
      querystring: Type.Object({
        after: Type.Optional(EventId),
        maxSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400, description: 'end the stream after this many seconds (at most EVENTS_STREAM_MAX_SECONDS)' })),
      }, { additionalProperties: false }),
      headers: Type.Object({ 'last-event-id': Type.Optional(EventId) }),
      response: {
        200: { description: 'the event stream', content: { 'text/event-stream': { schema: Type.String() } } },
        ...problems(400, 401, 403, 404, 429),
      },
    },
  }, async (request, reply) => {
    const { account } = await accounts.readable(request.principal, request.params.id)
    const p = request.principal!
    const caller = p.apiKeyId ?? p.userId
    // The right to the stream, checked as on every request: a login suspended (or its tokens revoked) or an API
    // key revoked while the stream is open ends it before the next event (both checks are cached: at once on the
    // instance that made the change, within their check interval on the others).
    const revoked = async (): Promise<boolean> => await revocationOf(app.services, p) != null
    // the caller's own limit first: a caller at it is told so, whether or not the instance is full too
    if (ev.perCaller.of(caller) >= o.streamsPerCaller) {
      throw new DomainError('RATE_LIMITED', `at most ${o.streamsPerCaller} event streams per caller at once; close one first`)
    }
    if (ev.streams.size >= o.maxStreams) throw new DomainError('SERVICE_UNAVAILABLE', 'this instance holds as many event streams as it may; retry shortly')
    // the caller's currency's share too: its issuer may register any number of participants, each with streams of its own
    const currency = callerCurrency(p)
    if (ev.perCurrency.of(currency) >= (o.streamsPerCurrency ?? Infinity)) {
      throw new DomainError('SERVICE_UNAVAILABLE', 'your currency\'s callers hold as many event streams on this instance as one currency may; retry shortly')
    }
    // counted in the same step as the checks, before anything is awaited: streams asked for together would all
    // pass the checks otherwise, and one caller could take every slot of the instance
    const res = reply.raw
    // until it is open, ending it (the instance closing) is a flag the opening reads once its awaits are over
    let ended = false
    ev.streams.set(res, () => { ended = true })
    ev.perCaller.take(caller)
    ev.perCurrency.take(currency)
    let counted = true
    const uncount = () => {
      if (!counted) return
      counted = false
      ev.streams.delete(res)
      ev.perCaller.give(caller)
      ev.perCurrency.give(currency)
    }
    let lastId: bigint
    try {
      try {
        await ev.hub.listen()
      } catch (err) {
        request.log.warn({ err }, 'event stream: cannot listen for events')
        throw new DomainError('SERVICE_UNAVAILABLE', 'live events are unavailable; retry shortly')
      }
      const from = request.headers['last-event-id'] ?? request.query.after
      if (from != null) lastId = BigInt(from)
      else {
        const r = await app.pool.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM event WHERE account_id = $1', [account.id])
        lastId = BigInt(r.rows[0].id)
      }
      if (ended) throw new DomainError('SERVICE_UNAVAILABLE', 'this instance is shutting down; retry shortly')
    } catch (err) {
      uncount()
      throw err
    }

    reply.hijack()
    // a hijacked reply has no onSend, where the place would be given back: the stream is open, its checks done
    leaveShare(request)
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    })
    res.write(`retry: 2000\n: ${account.id} after ${lastId.toString()}\n\n`)
    const sub: Subscriber = {
      accountId: account.id,
      currencyId: account.currencyId,
      lastId,
      paused: false,
      // The hub holds the stream (paused) while the caller's right is checked; then the rows are written, in the
      // order they came (one chain), and the hub resumed unless the socket is full ('drain' resumes it then).
      deliver: (rows) => {
        writes = writes.then(async () => {
          if (!await allowed()) return
          if (res.write(rows.map(eventMessage).join(''))) ev.hub.resume(sub)
        })
        return false
      },
    }
    let writes = Promise.resolve()
    /** Whether the stream may go on; ends it if not (or if the check itself fails). */
    const allowed = async (): Promise<boolean> => {
      if (done) return false
      const gone = await revoked().catch((err: unknown) => { request.log.warn({ err }, 'event stream: the caller\'s right could not be checked'); return true })
      if (gone && !done) { request.log.info({ account: account.id }, 'event stream ended: the caller\'s login or API key was revoked'); stop() }
      return !gone && !done
    }
    res.on('drain', () => { if (sub.paused) ev.hub.resume(sub) })
    const unsubscribe = ev.hub.subscribe(sub)
    // a quiet stream is checked too, so a revoked caller does not keep its slot until the stream's end
    const heartbeat = setInterval(() => {
      writes = writes.then(async () => { if (await allowed()) res.write(': heartbeat\n\n') })
    }, o.heartbeatMs)
    const expiry = setTimeout(() => { stop() }, Math.min(request.query.maxSeconds ?? o.streamMaxSeconds, o.streamMaxSeconds) * 1000)
    let done = false
    const finish = () => {
      if (done) return
      done = true
      clearInterval(heartbeat)
      clearTimeout(expiry)
      unsubscribe()
      uncount()
      request.log.info({ account: account.id, lastId: sub.lastId.toString() }, 'event stream closed')
    }
    /**
     * Ends the stream from this side (its time is up, its caller's right is gone, the instance closes), and gives
     * its slot back at once: a stream queued behind another answer on a pipelined connection is never closed by
     * end() (it has not been given the socket), so waiting for its 'close' would keep the slot until the client
     * hangs up.
     */
    const stop = () => { res.end(); finish() }
    if (counted) ev.streams.set(res, stop)
    // the client gone: the response's 'close', or the connection's (a pipelined stream's own 'close' never comes);
    // at once if it went while the listener or the last event id was awaited
    whenClosed(reply, finish)
    res.on('error', finish)
    request.log.info({ account: account.id, after: lastId.toString() }, 'event stream opened')
  })
}
export default routes
