/**
 * How many refused attempts one caller gets written to one currency's audit trail one by one.
 *
 * A refused action is audited after the fact (plugins/audit.ts), and most audited routes have no rate limit of their
 * own, so without a bound a logged-in member could fill another currency's trail with rows as fast as it can send
 * requests, and bury what its issuers need to see. Each caller (a participant with all its logins and keys, or a
 * staff login) has, per currency, `perWindow` rows a window; past that its refusals are counted, not written, and
 * when the window has ended they are written as summary rows: one per action and actor (the login or API key
 * that tried), so a filter on either still finds every attempt, with the error codes, the targets and the client
 * addresses counted. So flooding the trail with one cheap refusal does not hide a different attempt made after it:
 * that attempt gets a summary row of its own, under its own action and actor. The summaries of one window are
 * bounded too: `perWindow` of them per action and actor, and past that one more per action for the actors they had
 * no room for (the actions are a fixed list), so every summary is of one action and the action filter always finds
 * it. One caller's flood never takes another caller's rows: the windows are per caller, except that the callers of
 * another currency share one window in a currency (audit.service.ts), so many participants of one currency cannot
 * bury another currency's trail either.
 */

/** Distinct values kept in a summary's counts (targets, client addresses); the rest are counted as others. */
export const KEPT_PER_SUMMARY = 20

/** Counts of distinct values, at most KEPT_PER_SUMMARY of them; the rest in `others`. */
export interface Tally { counts: Record<string, number>, others: number }

/** The refusals of one window that were not written one by one, to be written as one summary row. */
export interface Unrecorded<T> {
  /** the first of them (who, where): the summary row is written in its name */
  first: T
  /** the action they all tried */
  action: string
  count: number
  errorCodes: Record<string, number>
  /** who tried (one, except in an action's summary of the actors past the bound) */
  actors: Tally
  targets: Tally
  clientAddresses: Tally
  from: Date
  to: Date
}

export interface Refused<T> {
  item: T
  action: string
  /** who tried, within the caller: its login or API key */
  actor: string
  errorCode: string
  target: string | null
  clientAddress: string | null
}

interface Window<T> {
  start: number
  written: number
  /** per action and actor, at most perWindow */
  groups: Map<string, Unrecorded<T>>
  /** per action, the actors past the bound */
  rest: Map<string, Unrecorded<T>>
}

const count = (counts: Record<string, number>, key: string) => { counts[key] = (counts[key] ?? 0) + 1 }

function tally (t: Tally, value: string | null): void {
  if (value == null) return
  if (t.counts[value] != null || Object.keys(t.counts).length < KEPT_PER_SUMMARY) count(t.counts, value)
  else t.others++
}

export class RefusalWindow<T> {
  private readonly windows = new Map<string, Window<T>>()

  /** perWindow 0: every refusal is written (no bound) */
  constructor (private readonly perWindow: number, private readonly windowMs = 60_000) {}

  /**
   * True: write this refusal's row. False: it was counted into a summary of its window. A window that has ended is
   * handed back in `ended` (with its summaries) before the new one starts, so they are written before the caller's
   * next rows.
   */
  admit (key: string, now: Date, what: Refused<T>): { write: boolean, ended: Array<Unrecorded<T>> } {
    if (this.perWindow <= 0) return { write: true, ended: [] }
    const t = now.getTime()
    let w = this.windows.get(key)
    let ended: Array<Unrecorded<T>> = []
    if (w != null && t - w.start >= this.windowMs) { ended = summaries(w); w = undefined }
    if (w == null) { w = { start: t, written: 0, groups: new Map(), rest: new Map() }; this.windows.set(key, w) }
    if (w.written < this.perWindow) { w.written++; return { write: true, ended } }
    const group = `${what.action}\u0000${what.actor}`
    let s = w.groups.get(group)
    if (s == null && w.groups.size < this.perWindow) w.groups.set(group, s = summary(what, now))
    if (s == null) {
      s = w.rest.get(what.action)
      if (s == null) w.rest.set(what.action, s = summary(what, now))
    }
    s.count++
    count(s.errorCodes, what.errorCode)
    tally(s.actors, what.actor)
    tally(s.targets, what.target)
    tally(s.clientAddresses, what.clientAddress)
    s.to = now
    return { write: false, ended }
  }

  /** The summaries of every window that has ended by `now` (or of all, with `all`); their windows are forgotten. */
  due (now: Date, all = false): Array<Unrecorded<T>> {
    const out: Array<Unrecorded<T>> = []
    for (const [key, w] of this.windows) {
      if (!all && now.getTime() - w.start < this.windowMs) continue
      this.windows.delete(key)
      out.push(...summaries(w))
    }
    return out
  }

  /** callers with a window open (memory is bounded per caller, for at most one window's time) */
  get size (): number { return this.windows.size }
}

function summary<T> (first: Refused<T>, now: Date): Unrecorded<T> {
  return {
    first: first.item, action: first.action, count: 0, errorCodes: {},
    actors: { counts: {}, others: 0 }, targets: { counts: {}, others: 0 }, clientAddresses: { counts: {}, others: 0 }, from: now, to: now,
  }
}

/** in the order their first attempts came, those past the bound last */
const summaries = <T>(w: Window<T>): Array<Unrecorded<T>> => [...w.groups.values(), ...w.rest.values()]
