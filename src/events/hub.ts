import pg from 'pg'
import { connectionOptions } from '../db/hosts.js'

// One per instance: learns of committed events from PostgreSQL (LISTEN circulate_events on ONE dedicated
// connection, not a pooled one) and hands each subscriber (an open SSE stream) its account's events, read from the
// durable log by id. A notification only says "a currency has new events"; what a subscriber gets is always read
// from the log after the id it last got, so nothing depends on a notification's content or on its arriving:
//   * an event committed through another instance reaches this one through the notification;
//   * after the listening connection is lost, the hub reconnects (backing off), LISTENs again and reads every
//     subscriber's account from its last id (catch-up by id), so events committed while it was deaf still arrive;
//   * one account's ids rise in commit order (see the event_log migration), so "after n" never skips one.
// Reads are single-flight: notifications arriving while a read runs only mark currencies dirty for the next round.

export const EVENTS_CHANNEL = 'circulate_events'

export interface EventRow { id: string, currencyId: string, accountId: string, type: string, data: Record<string, unknown>, createdAt: string }

export interface Subscriber {
  accountId: string
  currencyId: string
  /** the id of the last event this subscriber got (0: none) */
  lastId: bigint
  /** true while its socket is full: it gets nothing until resume() */
  paused: boolean
  /** gets the account's events after lastId, in id order; returns false when its socket is full */
  deliver: (rows: EventRow[]) => boolean
}

export interface HubLog { warn: (obj: unknown, msg: string) => void, info: (obj: unknown, msg: string) => void }

export interface HubOptions {
  databaseUrl: string
  /** where the log is read (the service's pool) */
  pool: Pick<pg.Pool, 'query'>
  log: HubLog
  /** first reconnect delay of the listening connection; doubles up to 30 s */
  reconnectMs?: number
  /** rows read per round */
  batch?: number
}

const READ = `SELECT e.id::text AS id, e.currency_id AS "currencyId", e.account_id AS "accountId", e.type, e.data,
       api_time(e.created_at) AS "createdAt"
  FROM unnest($1::uuid[], $2::bigint[]) AS s(account, after)
  CROSS JOIN LATERAL (SELECT * FROM event WHERE account_id = s.account AND id > s.after ORDER BY id LIMIT $3) e
 ORDER BY e.id`

export class EventHub {
  private readonly subs = new Map<string, Set<Subscriber>>()
  private readonly dirty = new Set<string>()
  private allDirty = false
  private pumping: Promise<void> | null = null
  private again = false
  private client: pg.Client | null = null
  private listening: Promise<void> | null = null
  private closed = false
  private retryTimer: NodeJS.Timeout | null = null
  private delay: number
  /** other parts of the instance (the webhook worker) that want to hear of new events */
  private readonly listeners = new Set<(currencyId: string | null) => void>()

  /** a multi-host DATABASE_URL: LISTEN where the writes (and so the NOTIFYs) are, found again after a failover */
  private readonly connection: { connectionString?: string, Client: typeof pg.Client }

  constructor (private readonly opts: HubOptions) {
    this.delay = opts.reconnectMs ?? 500
    const { config } = connectionOptions(opts.databaseUrl)
    this.connection = { connectionString: config.connectionString, Client: (config as { Client?: typeof pg.Client }).Client ?? pg.Client }
  }

  /** Resolves once this instance is listening (the first call connects). Rejects while the database is away. */
  async listen (): Promise<void> {
    if (this.closed) throw new Error('the event hub is closed')
    this.listening ??= this.connect().catch((err: unknown) => { this.listening = null; throw err })
    await this.listening
  }

  /** Listens now and keeps listening: a failed first attempt is retried with backoff like a lost connection. */
  keepListening (): void {
    this.listen().catch((err: unknown) => {
      this.opts.log.warn({ err }, 'event hub: cannot listen yet; retrying')
      this.scheduleReconnect()
    })
  }

  get isListening (): boolean { return this.client != null }

  onEvents (fn: (currencyId: string | null) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  private async connect (): Promise<void> {
    const c = new this.connection.Client({ connectionString: this.connection.connectionString, application_name: 'circulate-events' })
    c.on('notification', (n) => {
      if (n.channel !== EVENTS_CHANNEL) return
      this.markDirty(n.payload ?? null)
    })
    c.on('error', (err) => { this.lost(c, err) })
    c.on('end', () => { this.lost(c, null) })
    await c.connect()
    try {
      await c.query(`LISTEN ${EVENTS_CHANNEL}`)
    } catch (err) {
      await c.end().catch(() => {})
      throw err
    }
    if (this.closed) { await c.end().catch(() => {}); return }
    this.client = c
    this.delay = this.opts.reconnectMs ?? 500
    // whatever committed while this instance was not listening: read every subscriber's account from its last id
    this.markDirty(null)
  }

  private lost (c: pg.Client, err: unknown): void {
    if (this.client !== c) return
    this.client = null
    this.listening = null
    c.removeAllListeners('notification')
    c.end().catch(() => {})
    if (this.closed) return
    this.opts.log.warn({ err }, 'event hub: the listening connection was lost; reconnecting')
    this.scheduleReconnect()
  }

  private scheduleReconnect (): void {
    if (this.closed || this.retryTimer != null) return
    const wait = this.delay
    this.delay = Math.min(this.delay * 2, 30_000)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      this.listen().then(() => { this.opts.log.info({}, 'event hub: listening again') })
        .catch((err: unknown) => { this.opts.log.warn({ err }, 'event hub: reconnect failed'); this.scheduleReconnect() })
    }, wait)
    this.retryTimer.unref()
  }

  /** null: every currency (after a reconnect) */
  markDirty (currencyId: string | null): void {
    if (currencyId == null) this.allDirty = true
    else this.dirty.add(currencyId)
    for (const fn of this.listeners) {
      try { fn(currencyId) } catch (err) { this.opts.log.warn({ err }, 'event hub: a listener failed') }
    }
    this.pump()
  }

  /** Adds a subscriber and reads its account's events after its lastId at once. Call listen() first. */
  subscribe (s: Subscriber): () => void {
    let set = this.subs.get(s.accountId)
    if (set == null) { set = new Set(); this.subs.set(s.accountId, set) }
    set.add(s)
    this.dirty.add(s.currencyId)
    this.pump()
    return () => {
      const cur = this.subs.get(s.accountId)
      cur?.delete(s)
      if (cur?.size === 0) this.subs.delete(s.accountId)
    }
  }

  /** A paused subscriber's socket drained: read on from its lastId. */
  resume (s: Subscriber): void {
    s.paused = false
    this.dirty.add(s.currencyId)
    this.pump()
  }

  get subscriberCount (): number {
    let n = 0
    for (const set of this.subs.values()) n += set.size
    return n
  }

  private pump (): void {
    if (this.pumping != null) { this.again = true; return }
    this.pumping = this.run()
      .catch((err: unknown) => {
        // the next notification, subscription or reconnect reads again from every subscriber's last id
        this.opts.log.warn({ err }, 'event hub: reading the event log failed; retrying in a second')
        if (!this.closed) setTimeout(() => { if (!this.closed) this.pump() }, 1000).unref()
      })
      .finally(() => { this.pumping = null })
  }

  private async run (): Promise<void> {
    const limit = this.opts.batch ?? 500
    for (;;) {
      this.again = false
      const all = this.allDirty
      const dirty = new Set(this.dirty)
      this.allDirty = false
      this.dirty.clear()
      // per account: the lowest last id of its active subscribers in a dirty currency
      const after = new Map<string, bigint>()
      for (const [account, set] of this.subs) {
        for (const s of set) {
          if (s.paused || (!all && !dirty.has(s.currencyId))) continue
          const cur = after.get(account)
          if (cur == null || s.lastId < cur) after.set(account, s.lastId)
        }
      }
      if (after.size > 0) {
        let full = false
        try {
          const accounts = [...after.keys()]
          const rows = (await this.opts.pool.query<EventRow>(READ, [accounts, accounts.map(a => after.get(a)!.toString()), limit])).rows
          const byAccount = new Map<string, EventRow[]>()
          for (const r of rows) {
            let l = byAccount.get(r.accountId)
            if (l == null) { l = []; byAccount.set(r.accountId, l) }
            l.push(r)
          }
          for (const [account, list] of byAccount) {
            if (list.length >= limit) full = true
            for (const s of this.subs.get(account) ?? []) {
              if (s.paused) continue
              const mine = list.filter(r => BigInt(r.id) > s.lastId)
              if (mine.length === 0) continue
              s.lastId = BigInt(mine[mine.length - 1].id)
              if (!s.deliver(mine)) s.paused = true
            }
          }
        } catch (err) {
          // put them back: the next round reads them again
          if (all) this.allDirty = true
          for (const c of dirty) this.dirty.add(c)
          throw err
        }
        if (full) {
          // a long backlog: read on for the currencies that had one
          if (all) this.allDirty = true
          for (const c of dirty) this.dirty.add(c)
          this.again = true
        }
      }
      if (!this.again && !this.allDirty && this.dirty.size === 0) return
    }
  }

  /** Waits for the current read round (tests). */
  async idle (): Promise<void> {
    while (this.pumping != null) await this.pumping
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.retryTimer != null) clearTimeout(this.retryTimer)
    const c = this.client
    this.client = null
    this.listening = null
    if (c != null) await c.end().catch(() => {})
    await this.idle()
  }
}
