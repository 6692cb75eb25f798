import type { FastifyReply } from 'fastify'
import { clientGone, whenClosed } from './client-gone.js'

/** What a caller found when it asked for a place. */
export type Entry =
  | { kind: 'run', release: () => void }
  | { kind: 'refused', running: number, waiting: number }
  /** the client went away while it waited (or as it was handed its place): it takes no place */
  | { kind: 'gone' }

interface Caller { running: number, waiting: Array<() => void> }

/**
 * Per caller, in this instance's memory: at most `running` requests at once and `waiting` more in line, first come
 * first served; one past that is refused. A place passes straight to the caller's next in line when it is given
 * back, and a caller's entry exists only while it holds or waits for a place. The read budget (reports, exports)
 * and the caller share (everything else) each keep one.
 */
export class CallerQueue {
  private readonly callers = new Map<string, Caller>()

  constructor (private readonly running: number, private readonly waiting: number) {}

  async enter (key: string, reply: FastifyReply): Promise<Entry> {
    if (clientGone(reply)) return { kind: 'gone' }
    let c = this.callers.get(key)
    if (c == null) { c = { running: 0, waiting: [] }; this.callers.set(key, c) }
    if (c.running < this.running) {
      c.running++
      return { kind: 'run', release: this.releaser(key) }
    }
    if (c.waiting.length >= this.waiting) return { kind: 'refused', running: c.running, waiting: c.waiting.length }
    const line = c.waiting
    let turn!: () => void
    let stop = () => {}
    const left = await new Promise<boolean>((resolve) => {
      turn = () => { resolve(false) }
      line.push(turn)
      // a client that gives up while waiting leaves the line and takes no place
      stop = whenClosed(reply, () => { const i = line.indexOf(turn); if (i >= 0) { line.splice(i, 1); resolve(true) } })
    })
    stop()
    if (left) return { kind: 'gone' }
    const release = this.releaser(key)
    // handed a place just as its client went: passed on, not used
    if (clientGone(reply)) { release(); return { kind: 'gone' } }
    return { kind: 'run', release }
  }

  /** requests running now, over all callers */
  get runningNow (): number { let n = 0; for (const c of this.callers.values()) n += c.running; return n }
  /** requests waiting in line now, over all callers */
  get waitingNow (): number { let n = 0; for (const c of this.callers.values()) n += c.waiting.length; return n }

  private releaser (key: string): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      const c = this.callers.get(key)
      if (c == null) return
      const next = c.waiting.shift()
      if (next != null) { next(); return } // the place passes straight to the next in line
      c.running--
      if (c.running <= 0 && c.waiting.length === 0) this.callers.delete(key)
    }
  }
}
