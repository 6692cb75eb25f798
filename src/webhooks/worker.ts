import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import fastq from 'fastq'
import type pg from 'pg'
import { Webhook } from 'standardwebhooks'
import { currencyShare } from '../domain/per-caller.js'
import { checkAddresses, lookupChecked, UrlRefused, type AddressPolicy } from './address.js'

// Delivers the webhooks' outbox (webhook_delivery rows, written with their events: see the webhooks migration).
// Any number of instances run this: a worker claims due rows with FOR UPDATE SKIP LOCKED in a short transaction
// that also leases them (next_attempt_at moves past the send's timeout), so two workers never send one delivery
// at the same time and a worker killed mid-send leaves its rows to be sent again when the lease ends (at least
// once). The send happens outside any transaction; its outcome is written afterwards.
//
// Retries: exponential backoff with jitter (5 s, 15 s, 45 s, ... tripling, at most 12 h between attempts, each
// delay ±25 %) until the delivery is 3 days old (WEBHOOK_GIVE_UP_HOURS), then it is failed and its endpoint
// disabled. An endpoint is also disabled when it has failed WEBHOOK_DISABLE_AFTER_FAILURES times in a row over at
// least WEBHOOK_DISABLE_AFTER_HOURS; its pending deliveries are failed and each says why in the delivery log.
// The clock, the random source and the interval are injectable, so tests step through days without sleeping.

export interface WorkerOptions {
  pool: pg.Pool
  log: { warn: (o: unknown, m: string) => void, info: (o: unknown, m: string) => void }
  policy: AddressPolicy
  now?: () => Date
  random?: () => number
  /** how often due retries are looked for (0: never by itself; tests call runOnce) */
  intervalMs: number
  timeoutMs: number
  giveUpHours: number
  disableAfterFailures: number
  disableAfterHours: number
  /** deliveries claimed per round */
  batch?: number
  /** rounds at once while there is a backlog (default 4); sends under way at most twice their batches */
  lanes?: number
  /** the share of the sends under way one currency's may be: CURRENCY_SHARE_PERCENT (default 50) */
  currencySharePercent?: number
  /** due deliveries a claim ranks, shared out between the currencies with any due (default CLAIM_WINDOW) */
  claimWindow?: number
}

export interface Claimed {
  id: string
  /** whose endpoint it is: the participant, or for an issuer's endpoint its currency */
  owner: string
  /** the endpoint's currency (every endpoint has one: its business's, or its issuer's) */
  currency: string
  attempts: number
  /** the endpoint's owner (a participant) has its login suspended: nothing is sent to it meanwhile */
  owner_suspended: boolean
  created_at: Date
  webhook_id: string
  url: string
  secret: string
  /** the secret before a rotation, while it still signs (a day): the request carries both signatures */
  previous_secret: string | null
  event_id: string
  type: string
  account_id: string
  currency_id: string
  data: Record<string, unknown>
  event_at: string
}

/** failures written at once by one worker (pool connections it takes beside the claim) */
const RECORDERS = 2
/** tries to write an outcome before leaving the delivery to its lease */
const RECORD_TRIES = 3

export const backoffMs = (attempt: number, random: () => number): number =>
  Math.round(Math.min(5000 * 3 ** Math.max(0, attempt - 1), 12 * 3600_000) * (0.75 + random() * 0.5))

/** The Standard Webhooks payload of an event. */
export const webhookBody = (c: Pick<Claimed, 'type' | 'event_at' | 'event_id' | 'account_id' | 'data'>): string =>
  JSON.stringify({ type: c.type, timestamp: c.event_at, data: { eventId: c.event_id, accountId: c.account_id, ...c.data } })

interface SendResult { status: number | null, latencyMs: number, error: string | null }

/** A send under way this long is slow (an endpoint taking its time): its lane goes on without it, and its owner gets
 *  nothing more until it ends. */
const SLOW_ROUND_MS = 1000
/**
 * Due deliveries a claim ranks (the oldest first), shared out between the currencies with any due, at least
 * MIN_WINDOW each: bounds its cost when the outbox holds a backlog, and lets a currency alone look past one owner's.
 */
const CLAIM_WINDOW = 1000
const MIN_WINDOW = 10

export class WebhookWorker {
  private readonly lanes = new Set<Promise<void>>()
  /** rounds whose lane went on without their slow sends: the sends still under way, then their outcomes written */
  private readonly tails = new Set<Promise<void>>()
  /** this worker's sends under way: delivery id -> its endpoint's owner and currency, and when the send started (performance.now()) */
  private readonly sending = new Map<string, { owner: string, currency: string, since: number, slow?: boolean }>()
  private claimTurn: Promise<unknown> = Promise.resolve()
  /** wake-ups so far: a lane whose round saw none begin and claimed less than a batch has nothing more to do */
  private wakes = 0
  /** the failures being written, at most RECORDERS at once for the whole worker (each a transaction on the pool) */
  private readonly recorders = fastq.promise(async (write: () => Promise<void>) => { await write() }, RECORDERS)
  private timer: NodeJS.Timeout | null = null
  private closed = false
  readonly now: () => Date
  private readonly random: () => number
  private readonly lookup

  constructor (private readonly o: WorkerOptions) {
    this.now = o.now ?? (() => new Date())
    this.random = o.random ?? Math.random
    this.lookup = lookupChecked(o.policy)
  }

  start (): void {
    if (this.o.intervalMs > 0) {
      this.timer = setInterval(() => { this.kick() }, this.o.intervalMs)
      this.timer.unref()
    }
    this.kick()
  }

  /**
   * Runs delivery rounds until nothing is due. One round at a time while the outbox keeps up; a round that claims a
   * full batch means a backlog, and then another round starts at once, up to `lanes` at a time (their claims never
   * overlap: SKIP LOCKED). A kick during a round asks for one more. A round waits for its sends at most
   * SLOW_ROUND_MS: past that its lane goes on to the next round and leaves the slow sends (an endpoint slow to
   * answer, up to WEBHOOK_TIMEOUT_MS) to finish and be written on their own, so a slow endpoint holds its sends,
   * never a lane, and deliveries due since are not held behind it.
   */
  kick (): void {
    if (this.closed) return
    this.wakes++
    if (this.lanes.size === 0) this.startLane()
  }

  private get maxLanes (): number { return this.o.lanes ?? 4 }

  private get batch (): number { return this.o.batch ?? 50 }

  /** Sends under way at once in this worker, at most (the slow ones its lanes went on without included). */
  private get maxSending (): number { return 2 * this.maxLanes * this.batch }

  /** One owner's sends under way at once, at most: a lane's worth fewer than all of them, so others always have room. */
  private get ownerShare (): number { return Math.max(1, this.maxLanes - 1) * this.batch }

  /** One currency's sends under way at once, at most: CURRENCY_SHARE_PERCENT of maxSending. */
  private get currencyCap (): number { return currencyShare(this.maxSending, this.o.currencySharePercent ?? 50) }

  private startLane (): void {
    const lane: Promise<void> = (async () => {
      for (;;) {
        const seen = this.wakes
        const n = await this.runOnce((claimed) => {
          if (claimed >= this.batch && this.lanes.size < this.maxLanes) this.startLane()
        }, true)
        if (this.closed) return
        if (n < this.batch && this.wakes === seen) return
      }
    })().catch((err: unknown) => { this.o.log.warn({ err }, 'webhooks: a delivery round failed; the next one retries') })
      .finally(() => { this.lanes.delete(lane) })
    this.lanes.add(lane)
  }

  /** Waits until no round runs and no send is under way. */
  async idle (): Promise<void> {
    while (this.lanes.size > 0 || this.tails.size > 0) await Promise.all([...this.lanes, ...this.tails])
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.timer != null) clearInterval(this.timer)
    await this.idle()
  }

  /** Claims what is due now, fairly between currencies and between owners, and counts its sends as under way. */
  private async claim (now: Date): Promise<Claimed[]> {
    const lease = this.o.timeoutMs + 30_000
    // Fair shares between owners (a business, or a currency's issuer), so that what one owner's endpoints do (answer
    // slowly, or never, or receive a flood of events) does not hold up another's deliveries:
    // - an owner with a send under way here for over SLOW_ROUND_MS is taking its time: nothing more of its goes out
    //   until that send ends (then its lane wakes to what waited), so its slowness holds the lanes it is in, and the
    //   lanes a kick opens beside them are free of it;
    // - at most ownerShare of one owner's sends are under way here at once, a lane's worth fewer than all lanes hold;
    // - a claim takes the owners' due deliveries in turn (each owner's oldest first, then each one's second, ...)
    //   rather than oldest first overall, so a backlog of one owner's does not queue another's behind it.
    // And the same between currencies, whose issuers register as many businesses (owners) as they like:
    // - at most currencyCap of one currency's sends are under way here at once;
    // - a claim reads each currency's oldest due deliveries (a window per currency with any due, the windows
    //   together about CLAIM_WINDOW), and takes the currencies in turn (each one's first, counting its sends under
    //   way, then each one's second, ...), within each the owners in turn, so one currency's backlog neither hides
    //   another's deliveries nor goes out ahead of them.
    const room = Math.min(this.batch, this.maxSending - this.sending.size)
    if (room <= 0) return []
    const t = performance.now()
    const held = new Map<string, number>()
    const blocked = new Set<string>()
    const heldByCurrency = new Map<string, number>()
    for (const x of this.sending.values()) {
      held.set(x.owner, (held.get(x.owner) ?? 0) + 1)
      // slow: its round went on without it. The round's timer, not this clock, decides that: a timer runs from the
      // event loop's cached time, which on a loaded machine can lag performance.now() by a long loop turn, so the
      // round can go on (and claim again) before SLOW_ROUND_MS has passed by this clock
      if (x.slow === true || t - x.since >= SLOW_ROUND_MS) blocked.add(x.owner)
      heldByCurrency.set(x.currency, (heldByCurrency.get(x.currency) ?? 0) + 1)
    }
    for (const [owner, n] of held) if (n >= this.ownerShare) blocked.add(owner)
    const busy = [...held].filter(([owner]) => !blocked.has(owner))
    const blockedCurrencies = [...heldByCurrency].filter(([, n]) => n >= this.currencyCap).map(([c]) => c)
    // Only an active endpoint's deliveries: one written by an event whose transaction began before its endpoint was
    // deleted (or disabled) and committed after is pending still (the deletion did not see it), and was sent.
    // One statement, one round trip: claims are taken one at a time, so a claim's round trips bound how fast a
    // worker delivers (with a transaction around it, to plan it without JIT, the bench's deliveries fell behind by
    // seconds). On a very deep backlog in one currency PostgreSQL may JIT-compile it (tens of milliseconds).
    const claimed = (await this.o.pool.query<Claimed>(
      `WITH due_currencies AS MATERIALIZED (
         SELECT c.id FROM currency c
          WHERE c.id::text <> ALL ($9::text[])
            AND EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.currency_id = c.id AND d.status = 'pending' AND d.next_attempt_at <= $1)),
       win AS (SELECT greatest($12, $7 / greatest(1, count(*)))::int AS n FROM due_currencies),
       head AS (
         SELECT h.* FROM due_currencies c CROSS JOIN LATERAL (
           SELECT d.id, d.next_attempt_at, d.currency_id::text AS currency, coalesce(w.participant_id, w.currency_id)::text AS owner
             FROM webhook_delivery d JOIN webhook w ON w.id = d.webhook_id
            WHERE d.currency_id = c.id AND d.status = 'pending' AND d.next_attempt_at <= $1 AND w.status = 'active'
              AND coalesce(w.participant_id, w.currency_id)::text <> ALL ($4::text[])
            ORDER BY d.next_attempt_at, d.id
            LIMIT (SELECT n FROM win)) h),
       ranked AS (
         SELECT h.id, h.owner, h.currency, h.next_attempt_at, row_number() OVER (PARTITION BY h.owner ORDER BY h.next_attempt_at, h.id) + coalesce(b.n, 0) AS turn
           FROM head h LEFT JOIN unnest($5::text[], $6::int[]) AS b(owner, n) ON b.owner = h.owner),
       turns AS (
         SELECT r.*, row_number() OVER (PARTITION BY r.currency ORDER BY r.turn, r.next_attempt_at, r.id) + coalesce(k.n, 0) AS cturn
           FROM ranked r LEFT JOIN unnest($10::text[], $11::int[]) AS k(currency, n) ON k.currency = r.currency
          WHERE r.turn <= $8),
       -- the best few times the batch, before the rows are locked: what SKIP LOCKED passes over is replaced from these
       cand AS (SELECT * FROM turns WHERE cturn <= $13 ORDER BY cturn, turn, next_attempt_at, id LIMIT 4 * $2),
       due AS (
         SELECT d.id, u.owner, u.currency FROM cand u JOIN webhook_delivery d ON d.id = u.id
          WHERE d.status = 'pending' AND d.next_attempt_at <= $1
          ORDER BY u.cturn, u.turn, u.next_attempt_at, u.id
          LIMIT $2
          FOR UPDATE OF d SKIP LOCKED)
       UPDATE webhook_delivery d
          SET attempts = d.attempts + 1, last_attempt_at = $1, next_attempt_at = $1::timestamptz + $3 * interval '1 millisecond',
              sending_until = $1::timestamptz + $3 * interval '1 millisecond'
         FROM due, webhook w, event e
        WHERE d.id = due.id AND w.id = d.webhook_id AND e.id = d.event_id
       RETURNING d.id, due.owner, due.currency, d.attempts, d.created_at, w.id AS webhook_id, w.url, w.secret,
                 CASE WHEN w.previous_secret_until > $1 THEN w.previous_secret END AS previous_secret, e.id::text AS event_id, e.type,
                 e.account_id, e.currency_id, e.data, api_time(e.created_at) AS event_at,
                 EXISTS (SELECT 1 FROM app_user u WHERE u.participant_id = w.participant_id AND u.suspended_at IS NOT NULL) AS owner_suspended`,
      [now, room, lease, [...blocked], busy.map(([o]) => o), busy.map(([, n]) => n), this.o.claimWindow ?? CLAIM_WINDOW,
        this.ownerShare, blockedCurrencies, [...heldByCurrency.keys()], [...heldByCurrency.values()], MIN_WINDOW, this.currencyCap])).rows
    const since = performance.now()
    for (const c of claimed) if (!c.owner_suspended) this.sending.set(c.id, { owner: c.owner, currency: c.currency, since })
    return claimed
  }

  /**
   * One round: claims what is due now, sends it, records the outcomes. Returns how many were claimed, once every
   * send has ended and its outcome is written; or, with `goOn` (a lane's round), once they have or SLOW_ROUND_MS has
   * passed, leaving the slow sends to end and be written on their own (idle() waits for them).
   * `claimed` is told the count before the sends start (a full batch opens another lane).
   */
  async runOnce (claimedHook?: (n: number) => void, goOn = false): Promise<number> {
    const now = this.now()
    // one claim at a time in this worker, each counting the sends the one before it started (the shares are exact)
    const turn = this.claimTurn.then(async () => await this.claim(now))
    this.claimTurn = turn.catch(() => {})
    const claimed = await turn
    claimedHook?.(claimed.length)
    // The sends run concurrently. Their outcomes: the round's deliveries that succeeded in ONE statement once every
    // send has ended, the failures (each a transaction: backoff, streaks, disabling) at most RECORDERS at a time, every
    // write retried a few times. A round of 50 writing 50 transactions at once queued on the pool beside the payments
    // (DB_ACQUIRE_TIMEOUT_MS), and an outcome not written is sent again when its lease ends (measured in
    // test-faults/webhooks.faults.ts: 48 of 86 events sent twice after a restart with a backlog, on a loaded machine).
    const round = { goneOn: false }
    let delivered: Array<{ c: Claimed, r: SendResult }> = []
    const sends = Promise.all(claimed.map(async (c) => {
      // a suspended participant's endpoints are told nothing, as its tokens and API keys are refused: the delivery
      // waits its backoff as after a failure, and goes out once the suspension is lifted (within the give-up time)
      let r: SendResult
      if (c.owner_suspended) r = { status: null, latencyMs: 0, error: 'not sent: the owner\'s login is suspended' }
      else {
        try { r = await this.send(c, now) } finally {
          const since = this.sending.get(c.id)?.since ?? performance.now()
          this.sending.delete(c.id)
          // its owner's deliveries that waited meanwhile, and what waited for room, are claimed now, not at the next
          // interval (a worker driven by hand claims them in its next round)
          if (goOn && (round.goneOn || performance.now() - since >= SLOW_ROUND_MS)) this.kick()
        }
      }
      if (r.status != null && r.status >= 200 && r.status < 300) delivered.push({ c, r })
      else await this.recorders.push(async () => { await this.retrying(c.id, async () => { await this.recordFailure(c, r) }) })
    }))
    const written = async (done: Array<{ c: Claimed, r: SendResult }>) => {
      if (done.length > 0) await this.retrying(done[0].c.id, async () => { await this.recordDelivered(done) })
    }
    let timer: NodeJS.Timeout | undefined
    const slow = goOn && claimed.length > 0 && await Promise.race([
      sends.then(() => false),
      new Promise<true>(resolve => { timer = setTimeout(() => { resolve(true) }, SLOW_ROUND_MS) }),
    ])
    clearTimeout(timer)
    if (!slow) {
      await sends
      await written(delivered)
      return claimed.length
    }
    // the lane goes on; what has succeeded so far is written now, the rest as the slow sends end
    round.goneOn = true
    for (const c of claimed) { const x = this.sending.get(c.id); if (x != null) x.slow = true }
    const early = delivered
    delivered = []
    const tail: Promise<void> = sends.then(async () => { await written(delivered) })
      .catch((err: unknown) => { this.o.log.warn({ err }, 'webhooks: a delivery round failed; the next one retries') })
      .finally(() => { this.tails.delete(tail) })
    this.tails.add(tail)
    await written(early)
    return claimed.length
  }

  /** Runs a write, retried twice (250 ms, 1 s) before the deliveries are left to their lease. */
  private async retrying (delivery: string, write: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await write()
        return
      } catch (err) {
        if (attempt >= RECORD_TRIES || this.closed) {
          this.o.log.warn({ err, delivery }, 'webhooks: recording an outcome failed; the lease ends and it is sent again')
          return
        }
        await new Promise(resolve => setTimeout(resolve, 250 * 4 ** (attempt - 1)))
      }
    }
  }

  /** The round's successes, in one statement: delivered, and their endpoints' failure streaks reset. */
  private async recordDelivered (done: Array<{ c: Claimed, r: SendResult }>): Promise<void> {
    await this.o.pool.query(
      `WITH o AS (SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[]) AS o(id, status, latency)),
       d AS (UPDATE webhook_delivery d SET status = 'delivered', delivered_at = $4, last_status_code = o.status,
                    last_latency_ms = o.latency, last_error = NULL, sending_until = NULL
               FROM o WHERE d.id = o.id RETURNING d.webhook_id)
       UPDATE webhook w SET consecutive_failures = 0, failing_since = NULL
        WHERE w.id IN (SELECT webhook_id FROM d) AND w.consecutive_failures > 0`,
      [done.map(x => x.c.id), done.map(x => x.r.status), done.map(x => x.r.latencyMs), this.now()])
  }

  private async send (c: Claimed, now: Date): Promise<SendResult> {
    const body = webhookBody(c)
    let signature: string
    try {
      signature = new Webhook(c.secret).sign(c.id, now, body)
      // Standard Webhooks: several signatures, space-delimited; a receiver accepts the request if any verifies
      if (c.previous_secret != null) signature += ` ${new Webhook(c.previous_secret).sign(c.id, now, body)}`
    } catch (err) {
      return { status: null, latencyMs: 0, error: `signing failed: ${(err as Error).message}` }
    }
    const started = performance.now()
    let u: URL
    try { u = new URL(c.url) } catch { return { status: null, latencyMs: 0, error: 'the url is not valid' } }
    const lib = u.protocol === 'https:' ? https : u.protocol === 'http:' && this.o.policy.allowHttp ? http : null
    if (lib == null) return { status: null, latencyMs: 0, error: 'the url\'s scheme is not allowed' }
    // an IP literal is connected to without a lookup: check it here (a host name is checked by the lookup itself,
    // on the very addresses the connection then uses)
    try {
      if (net.isIP(u.hostname.replace(/^\[(.*)\]$/, '$1')) !== 0) await checkAddresses(u, this.o.policy)
    } catch (err) {
      return { status: null, latencyMs: 0, error: (err as Error).message }
    }
    return await new Promise<SendResult>((resolve) => {
      let settled = false
      const done = (status: number | null, error: string | null) => {
        if (settled) return
        settled = true
        resolve({ status, latencyMs: Math.round(performance.now() - started), error })
      }
      const req = lib.request(u, {
        method: 'POST',
        lookup: this.lookup,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'Circulate-Webhooks/1',
          'webhook-id': c.id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': signature,
        },
      }, (res) => {
        // the status line is the answer (a 2xx accepts the event): recorded now, whatever the body does; the body
        // is read and dropped, at most 64 KiB of it, until it ends or the deadline closes the connection
        const status = res.statusCode ?? 0
        done(status, status >= 200 && status < 300 ? null : `the endpoint answered ${status}`)
        let seen = 0
        res.on('data', (chunk: Buffer) => { seen += chunk.length; if (seen > 65536) res.destroy() })
        res.on('end', () => { clearTimeout(deadline) })
        res.on('close', () => { clearTimeout(deadline) })
        res.on('error', () => {})
      })
      // The timeout bounds the whole exchange, not only the silences: an endpoint that answers and then sends its
      // body a byte at a time, never quite idle for the timeout, held the round (and every other owner's
      // deliveries behind it) for as long as it liked.
      const deadline = setTimeout(() => { req.destroy(new Error(`no answer within ${this.o.timeoutMs} ms`)) }, this.o.timeoutMs)
      deadline.unref()
      // (cleared once the exchange is over, so the deadline never destroys a kept-alive socket another send now uses)
      // A request can also end with neither a response nor an error: an endpoint answering 101 Switching Protocols
      // is handed to 'upgrade', and without a listener Node just closes it. That send never ended: it held its place
      // among the sends under way (and its owner's and currency's shares) for good, and close() waited for it forever.
      req.on('upgrade', (res: http.IncomingMessage, socket: net.Socket) => {
        socket.destroy()
        done(res.statusCode ?? null, `the endpoint answered ${res.statusCode ?? 101} (a protocol switch), not 2xx`)
      })
      req.on('close', () => { clearTimeout(deadline); done(null, 'the connection closed without an answer') })
      req.on('error', (err: Error) => {
        clearTimeout(deadline)
        // a host name refused by the lookup: its owner's delivery log says only that (address.ts, NAME_REFUSED);
        // the cause is for this log
        if (err instanceof UrlRefused && err.reason != null) this.o.log.info({ webhook: c.webhook_id, delivery: c.id, reason: err.reason }, 'webhooks: a delivery\'s host refused')
        done(null, err.message.slice(0, 500))
      })
      req.end(body)
    })
  }

  /** A failed attempt: its backoff, the endpoint's failure streak, and disabling when due, in one transaction. */
  private async recordFailure (c: Claimed, r: SendResult): Promise<void> {
    const now = this.now()
    const client = await this.o.pool.connect()
    try {
      await client.query('BEGIN')
      const next = new Date(now.getTime() + backoffMs(c.attempts, this.random))
      const giveUp = next.getTime() > new Date(c.created_at).getTime() + this.o.giveUpHours * 3600_000
      const w = (await client.query<{ consecutive_failures: number, failing_since: Date }>(
        `UPDATE webhook SET consecutive_failures = consecutive_failures + 1, failing_since = coalesce(failing_since, $2)
          WHERE id = $1 RETURNING consecutive_failures, failing_since`, [c.webhook_id, now])).rows[0]
      const streak = w != null && w.consecutive_failures >= this.o.disableAfterFailures &&
        now.getTime() - new Date(w.failing_since).getTime() >= this.o.disableAfterHours * 3600_000
      let error = r.error ?? 'failed'
      if (giveUp) error += ` (gave up after ${c.attempts} attempts over ${this.o.giveUpHours} hours)`
      const disable = giveUp || streak
      const reason = giveUp
        ? `a delivery failed for ${this.o.giveUpHours} hours (${c.attempts} attempts)`
        : `${w?.consecutive_failures ?? 0} consecutive failures over ${this.o.disableAfterHours} hours`
      if (disable) error += `; endpoint disabled: ${reason}`
      // the send has ended, whatever became of the delivery meanwhile: a manual retry may now make it due
      await client.query('UPDATE webhook_delivery SET sending_until = NULL WHERE id = $1 AND sending_until IS NOT NULL', [c.id])
      // only while it is still pending: the endpoint deleted or disabled during the send failed it, and writing
      // 'pending' over that sent it again to the deleted endpoint after its backoff, for up to WEBHOOK_GIVE_UP_HOURS
      await client.query(
        `UPDATE webhook_delivery SET status = $2, next_attempt_at = $3, last_status_code = $4, last_latency_ms = $5,
                last_error = $6 WHERE id = $1 AND status = 'pending'`,
        [c.id, giveUp || disable ? 'failed' : 'pending', next, r.status, r.latencyMs, error])
      if (disable) {
        await client.query(
          `UPDATE webhook SET status = 'disabled', disabled_at = $2, disabled_reason = $3 WHERE id = $1 AND status = 'active'`,
          [c.webhook_id, now, reason])
        await client.query(
          `UPDATE webhook_delivery SET status = 'failed', last_error = coalesce(last_error || '; ', '') || $2
            WHERE webhook_id = $1 AND status = 'pending'`, [c.webhook_id, `not sent: endpoint disabled (${reason})`])
        this.o.log.warn({ webhook: c.webhook_id, reason }, 'webhooks: endpoint disabled')
      }
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release()
    }
  }
}
