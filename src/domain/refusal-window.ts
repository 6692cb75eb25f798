/**
 * How many refused attempts one caller gets written to one currency's audit trail one by one.
 *
 * A refused action is audited after the fact (plugins/audit.ts), and most audited routes have no rate limit of their
 * own, so without a bound a logged-in member could fill another currency's trail with rows as fast as it can send
 * requests, and bury what its issuers need to see. Each caller (a participant with all its logins and keys, or a
 * staff login) has, per currency, `perWindow` rows a window; past that its refusals are counted, not written, and
 * when the window has ended one summary row says how many there were, of which actions and error codes. Nothing
 * is lost but the rows' request ids and times, and one caller's flood never takes another caller's rows: the
 * windows are per caller.
 */

/** The refusals a window did not write one by one, to be written as one summary row. */
export interface Unrecorded<T> {
  /** the first refusal past the budget (who, where): the summary row is written in its name */
  first: T
  count: number
  /** attempts per action and per error code */
  actions: Record<string, number>
  errorCodes: Record<string, number>
  from: Date
  to: Date
}

interface Window<T> { start: number, written: number, held: Unrecorded<T> | null }

export class RefusalWindow<T> {
  private readonly windows = new Map<string, Window<T>>()

  /** perWindow 0: every refusal is written (no bound) */
  constructor (private readonly perWindow: number, private readonly windowMs = 60_000) {}

  /**
   * True: write this refusal's row. False: it was counted into its window's summary. A window that has ended is
   * handed back in `ended` (with its summary, if any) before the new one starts, so its summary is written before
   * the caller's next rows.
   */
  admit (key: string, now: Date, what: { item: T, action: string, errorCode: string }): { write: boolean, ended: Unrecorded<T> | null } {
    if (this.perWindow <= 0) return { write: true, ended: null }
    const t = now.getTime()
    let w = this.windows.get(key)
    let ended: Unrecorded<T> | null = null
    if (w != null && t - w.start >= this.windowMs) { ended = w.held; w = undefined }
    if (w == null) { w = { start: t, written: 0, held: null }; this.windows.set(key, w) }
    if (w.written < this.perWindow) { w.written++; return { write: true, ended } }
    const h = w.held ??= { first: what.item, count: 0, actions: {}, errorCodes: {}, from: now, to: now }
    h.count++
    h.actions[what.action] = (h.actions[what.action] ?? 0) + 1
    h.errorCodes[what.errorCode] = (h.errorCodes[what.errorCode] ?? 0) + 1
    h.to = now
    return { write: false, ended }
  }

  /** The summaries of every window that has ended by `now` (or of all, with `all`); their windows are forgotten. */
  due (now: Date, all = false): Array<Unrecorded<T>> {
    const out: Array<Unrecorded<T>> = []
    for (const [key, w] of this.windows) {
      if (!all && now.getTime() - w.start < this.windowMs) continue
      this.windows.delete(key)
      if (w.held != null) out.push(w.held)
    }
    return out
  }

  /** callers with a window open (memory is one small entry each, for at most one window's time) */
  get size (): number { return this.windows.size }
}
