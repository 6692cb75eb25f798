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
 *
 * A client that reads a little now and then drains the buffer each time, so it is also ended when it takes less
 * than `minBytesPerSecond` on average over `ms` while the service had more to send all along (the buffer full at
 * every look): counted in the bytes the socket handed to the system, so what the kernel's buffers took at the start
 * is not held against it. A look that finds the buffer not full (the service waiting for the database, or the
 * client keeping up) starts the count again. 0: no such floor.
 */
export function endWhenStalled (reply: FastifyReply, ms: number, minBytesPerSecond = 0): void {
  const res = reply.raw
  const watch: StallWatch = { blockedSince: null, window: null }
  const drained = () => { watch.blockedSince = null }
  res.on('drain', drained)
  const timer = setInterval(() => {
    const socket = res.socket
    // a response still queued behind another on its connection has no socket yet: not a full buffer of its own
    const look = { now: Date.now(), full: socket != null && res.writableNeedDrain, bytes: socket?.bytesWritten ?? 0 }
    if (stalled(watch, look, ms, minBytesPerSecond)) res.destroy()
  }, Math.max(10, Math.floor(ms / 4)))
  timer.unref()
  whenClosed(reply, () => { clearInterval(timer); res.off('drain', drained) })
}

/** What endWhenStalled() remembers of one response between its looks. */
export interface StallWatch {
  /** since when every look found the buffer full, with no drain between */
  blockedSince: number | null
  /** where the current count of bytes taken began: every look since found the buffer full */
  window: { at: number, bytes: number } | null
}

/**
 * One look at a response (endWhenStalled): the time, whether its send buffer is full, and the bytes its socket has
 * handed to the system so far. Whether to end it: nothing taken for `ms` (no drain), or, with `minBytesPerSecond`,
 * less than that taken on average over `ms` of looks that all found the buffer full.
 */
export function stalled (w: StallWatch, look: { now: number, full: boolean, bytes: number }, ms: number, minBytesPerSecond: number): boolean {
  if (!look.full) { w.blockedSince = null; w.window = null; return false }
  w.blockedSince ??= look.now
  if (look.now - w.blockedSince >= ms) return true
  if (minBytesPerSecond <= 0) return false
  w.window ??= { at: look.now, bytes: look.bytes }
  if (look.now - w.window.at < ms) return false
  if (look.bytes - w.window.bytes < minBytesPerSecond * (look.now - w.window.at) / 1000) return true
  w.window = { at: look.now, bytes: look.bytes }
  return false
}
