import type { Socket } from 'node:net'
import type { FastifyReply } from 'fastify'

// When a request's client has gone. A response's own 'close' is not enough: on a pipelined connection (several
// requests sent before the first is answered), a response queued behind an unfinished one is not yet given the
// socket, and when the client hangs up Node never emits 'close' on it, nor marks it destroyed. So the connection's
// 'close' is watched too: one listener per socket, however many of its requests are waiting, each removed when its
// response closes (a keep-alive connection serves many requests one after another).

const watchers = new WeakMap<Socket, Set<() => void>>()

// (a reply built by hand, as some tests of the budgets do, has no request: only its response's 'close' is watched)
const socketOf = (reply: FastifyReply): Socket | null =>
  (reply.request as FastifyReply['request'] | undefined)?.raw.socket ?? null

/** Whether the request's client has gone (its response closed early, or its connection). */
export function clientGone (reply: FastifyReply): boolean {
  return reply.raw.destroyed || socketOf(reply)?.destroyed === true
}

/**
 * Calls `closed` once: when the response closes (sent, or its client gone) or its connection closes, at once if
 * either has already. Returns a function that stops watching.
 */
export function whenClosed (reply: FastifyReply, closed: () => void): () => void {
  const socket = socketOf(reply)
  let fired = false
  const stop = () => {
    reply.raw.off('close', fire)
    if (socket != null) watchers.get(socket)?.delete(fire)
  }
  function fire () {
    if (fired) return
    fired = true
    stop()
    closed()
  }
  if (clientGone(reply)) { fire(); return stop }
  reply.raw.once('close', fire)
  if (socket != null) {
    let set = watchers.get(socket)
    if (set == null) {
      const mine = set = new Set()
      watchers.set(socket, mine)
      socket.once('close', () => { watchers.delete(socket); for (const f of [...mine]) f() })
    }
    set.add(fire)
  }
  return stop
}

/**
 * Ends the response (and its connection) once its client has stopped reading: `ms` on end with data waiting to be
 * sent and none taken (the response's buffer full and not drained). A client that never reads would otherwise keep
 * an export streaming, or a large report unsent, for as long as its connection stays open, and with it the place
 * the read holds (held-places.ts): a researcher's two stalled downloads held their currency's share of the read
 * pool for good. Time spent waiting for the database writes nothing and counts for nothing here: only a full
 * buffer that does not drain. A response still queued behind another on its connection (pipelining) is left to
 * the one in front.
 */
export function endWhenStalled (reply: FastifyReply, ms: number): void {
  const res = reply.raw
  let blockedSince: number | null = null
  const drained = () => { blockedSince = null }
  res.on('drain', drained)
  const timer = setInterval(() => {
    if (res.socket == null || !res.writableNeedDrain) { blockedSince = null; return }
    const now = Date.now()
    blockedSince ??= now
    if (now - blockedSince >= ms) res.destroy()
  }, Math.max(10, Math.floor(ms / 4)))
  timer.unref()
  whenClosed(reply, () => { clearInterval(timer); res.off('drain', drained) })
}
