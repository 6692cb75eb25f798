import type { FastifyReply } from 'fastify'
import { clientGone, whenClosed } from './client-gone.js'

/** What a caller found when it asked for a place. */
export type Entry =
  | { kind: 'run', release: () => void }
  | { kind: 'refused', running: number, waiting: number }
  /** the client went away while it waited (or as it was handed its place): it takes no place */
  | { kind: 'gone' }

interface Caller {
  group: string
  running: number
  /** its requests waiting for a place, first come first served */
  line: Array<() => void>
}

interface Group {
  running: number
  /** requests of its callers waiting, over all of them */
  waiting: number
  /** callers that have requests waiting and room under their own limit, held back by the group's only, in the
   *  order they became so (a Set keeps it; a caller is in it once, and leaves it when it is forgotten) */
  ready: Set<Caller>
}

/**
 * Per caller, in this instance's memory: at most `running` requests at once and `waiting` more in line, first come
 * first served; one past that is refused. The read budget (reports, exports) and the caller share (everything else)
 * each keep one.
 *
 * Callers belong to a group (their currency): while more than one group has requests running or waiting, a group's
 * callers together run at most `groupRunning` at once, and the rest of theirs wait, taking turns caller by caller
 * as the group's places come back. A currency's issuer registers as many participants as it likes, each with a
 * caller's places of its own, so without this fifty of one currency's members kept the read pool from another
 * currency's reports (docs/operations.md, "One currency's share", has the figures). Alone on the instance a group is not held back (a scheme that has an instance to
 * itself uses all of it). Entries exist only while a caller or group holds or waits for a place.
 */
export class CallerQueue {
  private readonly callers = new Map<string, Caller>()
  private readonly groups = new Map<string, Group>()

  constructor (private readonly running: number, private readonly waiting: number, private readonly groupRunning = Infinity) {}

  /** `group`: the caller's currency; a caller keeps the group it first came with while it has an entry. */
  async enter (key: string, reply: FastifyReply, group = ''): Promise<Entry> {
    if (clientGone(reply)) return { kind: 'gone' }
    let c = this.callers.get(key)
    if (c == null) { c = { group, running: 0, line: [] }; this.callers.set(key, c) }
    let g = this.groups.get(c.group)
    if (g == null) { g = { running: 0, waiting: 0, ready: new Set() }; this.groups.set(c.group, g) }
    // a caller with room runs unless its group is held back; others of its group that already wait for the
    // group's places go first (pump), so one arriving now does not pass them
    if (c.running < this.running && this.groupHasRoom(g)) {
      this.pump(g)
      if (c.running < this.running && this.groupHasRoom(g)) {
        c.running++; g.running++
        return { kind: 'run', release: this.releaser(key) }
      }
    }
    if (c.line.length >= this.waiting) {
      const refused: Entry = { kind: 'refused', running: c.running, waiting: c.line.length }
      this.tidy(key)
      return refused
    }
    const caller = c
    const grp = g
    let turn!: () => void
    let stop = () => {}
    const left = await new Promise<boolean>((resolve) => {
      turn = () => { resolve(false) }
      caller.line.push(turn)
      grp.waiting++
      if (caller.running < this.running) grp.ready.add(caller)
      // a client that gives up while waiting leaves the line and takes no place
      stop = whenClosed(reply, () => {
        const i = caller.line.indexOf(turn)
        if (i >= 0) {
          caller.line.splice(i, 1); grp.waiting--
          if (caller.line.length === 0) grp.ready.delete(caller)
          this.tidy(key); resolve(true)
        }
      })
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
  get waitingNow (): number { let n = 0; for (const c of this.callers.values()) n += c.line.length; return n }

  private groupHasRoom (g: Group): boolean { return g.running < this.groupRunning || this.groups.size <= 1 }

  /** Hands a place to c's next request in line (c has one, and room). */
  private handTo (c: Caller, g: Group): void {
    const next = c.line.shift()!
    g.waiting--
    c.running++; g.running++
    next()
  }

  private releaser (key: string): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      const c = this.callers.get(key)
      if (c == null) return
      const g = this.groups.get(c.group)!
      c.running--; g.running--
      if (c.line.length > 0) {
        // the place goes to the caller's own next request, unless others of its group wait for the group's
        // places: then it takes its turn behind them
        if (g.ready.size === 0 && this.groupHasRoom(g)) this.handTo(c, g)
        else g.ready.add(c)
      }
      this.pump(g)
      this.tidy(key)
    }
  }

  /** Gives the group's free places to its ready callers, one request each in turn. */
  private pump (g: Group): void {
    while (g.ready.size > 0 && this.groupHasRoom(g)) {
      const c: Caller = g.ready.values().next().value!
      g.ready.delete(c)
      if (c.line.length === 0 || c.running >= this.running) continue
      this.handTo(c, g)
      // to the back: the group's callers take turns
      if (c.line.length > 0 && c.running < this.running) g.ready.add(c)
    }
  }

  /** Forgets a caller, and its group, that hold and wait for nothing; a group gone may lift the others' bound. */
  private tidy (key: string): void {
    const c = this.callers.get(key)
    if (c == null || c.running > 0 || c.line.length > 0) return
    this.callers.delete(key)
    const g = this.groups.get(c.group)
    g?.ready.delete(c)
    if (g == null || g.running > 0 || g.waiting > 0) return
    this.groups.delete(c.group)
    if (this.groups.size === 1) for (const other of this.groups.values()) this.pump(other)
  }
}
