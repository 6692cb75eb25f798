import type pg from 'pg'

// The real gateway behind the outbound port (docs/text-payments.md, "Sending for real"): Twilio's Messages REST
// API, and the relay that hands it the texts queued in sms_outbox. Off unless SMS_ACCOUNT_SID, SMS_FROM and
// SMS_AUTH_TOKEN are all configured; then every instance runs the relay (rows are claimed with SKIP LOCKED, so
// instances share the queue and never send one row twice at once).

export interface Gateway {
  /** Hands one text to the gateway; resolves to the gateway's id for it, or throws why it was not taken. */
  deliver: (to: string, body: string) => Promise<string>
}

export interface RestGatewayOptions {
  accountSid: string
  authToken: string
  /** the sender: the scheme's number (E.164), or a Messaging Service SID (MG...) */
  from: string
  /** https://api.twilio.com, or a stand-in (tests point it at a server on 127.0.0.1) */
  baseUrl: string
  timeoutMs?: number
}

export class GatewayError extends Error {
  constructor (message: string, readonly permanent: boolean) { super(message) }
}

/**
 * POST {baseUrl}/2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP Basic auth (account SID, auth token), form
 * fields To, Body and From (or MessagingServiceSid). 201 with the message's `sid` is success; a 4xx other than 429
 * is a permanent refusal (a bad number: retrying will not help); anything else may succeed later.
 */
export function restGateway (o: RestGatewayOptions): Gateway {
  const url = `${o.baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(o.accountSid)}/Messages.json`
  const auth = `Basic ${Buffer.from(`${o.accountSid}:${o.authToken}`).toString('base64')}`
  return {
    async deliver (to, body) {
      const form = new URLSearchParams({ To: to, Body: body })
      form.set(o.from.startsWith('MG') ? 'MessagingServiceSid' : 'From', o.from)
      let res: Response
      try {
        res = await fetch(url, {
          method: 'POST', headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
          body: form.toString(), signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
        })
      } catch (err) {
        throw new GatewayError(`gateway unreachable: ${(err as Error).message}`, false)
      }
      const text = await res.text()
      if (res.status === 200 || res.status === 201) {
        const sid = (JSON.parse(text) as { sid?: unknown }).sid
        if (typeof sid === 'string') return sid
        throw new GatewayError('gateway answered without a message sid', false)
      }
      const permanent = res.status >= 400 && res.status < 500 && res.status !== 429 && res.status !== 408
      throw new GatewayError(`gateway answered ${res.status}: ${text.slice(0, 200)}`, permanent)
    },
  }
}

export interface RelayOptions {
  /** rows per round */
  batch?: number
  /** tries before a text is marked failed */
  maxAttempts?: number
  /** no text is handed to the gateway once a round has run this long (the round commits, and the rest waits for the next) */
  roundMs?: number
  /** the round's clock (tests) */
  clock?: () => number
}

/**
 * Sends queued texts: participants' before replies to other numbers, and the numbers in turn. Each round claims up to `batch` queued rows (FOR UPDATE SKIP LOCKED), hands
 * each to the gateway and records the outcome in the same transaction: sent (with the gateway's id), or one more
 * attempt, tried again after a pause that doubles (failed after maxAttempts, or at once when the gateway refuses it
 * for good). Delivery is at least once:
 * if the process dies between the gateway's answer and the commit, the text is sent again.
 */
export function outboxRelay (pool: pg.Pool, gateway: Gateway, o: RelayOptions = {}) {
  const batch = o.batch ?? 20
  const maxAttempts = o.maxAttempts ?? 8
  const roundMs = o.roundMs ?? 30_000
  const clock = o.clock ?? Date.now
  return {
    async round (): Promise<{ sent: number, failed: number, retry: number }> {
      const out = { sent: 0, failed: 0, retry: 0 }
      const deadline = clock() + roundMs
      const c = await pool.connect()
      try {
        await c.query('BEGIN')
        // Fair shares, not oldest first: anyone can text the scheme's number and every text is answered, so one
        // phone's flood would queue its replies ahead of everyone's "Paid" and receipts. Texts to participants
        // first (a reply to a number no participant has after them), and within those the numbers in turn: each
        // number's oldest, then each one's second, and so on (a number's own texts still go in their order).
        const rows = (await c.query<{ id: string, to_phone: string, body: string, attempts: number, participant_id: string | null, purpose: string }>(
          `SELECT o.id, o.to_phone, o.body, o.attempts, o.participant_id, o.purpose
             FROM sms_outbox o
             JOIN (SELECT id, row_number() OVER (PARTITION BY to_phone ORDER BY id) AS turn FROM sms_outbox
                    WHERE status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= now())) q ON q.id = o.id
            WHERE o.status = 'queued' AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= now())
            ORDER BY o.participant_id IS NULL, q.turn, o.id LIMIT $1 FOR UPDATE OF o SKIP LOCKED`, [batch])).rows
        for (const r of rows) {
          // A slow gateway (each send may take its whole timeout) would otherwise hold this transaction, its row
          // locks and a pool connection for the batch's sends end to end. The rows not handed over are left as they
          // were: the commit unlocks them, and the next round (here or on another instance) takes them.
          if (clock() >= deadline) break
          // A reply or receipt goes only to a number its participant still holds, checked as it is handed over. A
          // confirmation or removal of the number (sms.service.ts) fails what is queued for it, but passes over the
          // rows a round holds (SKIP LOCKED, not to wait for the round's sends): one of them that the gateway did not
          // take at once was queued again, and its next attempt went to whoever holds the number then.
          if (r.participant_id != null && (r.purpose === 'reply' || r.purpose === 'receipt')) {
            const holds = (await c.query('SELECT 1 FROM text_phone WHERE participant_id = $1 AND phone = $2', [r.participant_id, r.to_phone])).rowCount === 1
            if (!holds) {
              await c.query(`UPDATE sms_outbox SET status = 'failed', last_error = 'not sent: the number is no longer the participant''s' WHERE id = $1`, [r.id])
              out.failed++
              continue
            }
          }
          try {
            const id = await gateway.deliver(r.to_phone, r.body)
            await c.query(`UPDATE sms_outbox SET status = 'sent', gateway_id = $2, attempts = attempts + 1, sent_at = now(), last_error = NULL WHERE id = $1`, [r.id, id])
            out.sent++
          } catch (err) {
            const permanent = err instanceof GatewayError && err.permanent
            const failed = permanent || r.attempts + 1 >= maxAttempts
            // tried again after 2, 4, 8 ... seconds, at most 15 minutes apart
            const pause = Math.min(2 ** (r.attempts + 1), 900)
            await c.query(
              `UPDATE sms_outbox SET attempts = attempts + 1, last_error = $2, status = CASE WHEN $3 THEN 'failed' ELSE status END,
                      next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1`,
              [r.id, (err as Error).message.slice(0, 500), failed, pause])
            if (failed) out.failed++; else out.retry++
          }
        }
        await c.query('COMMIT')
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        c.release()
      }
      return out
    },
  }
}

export type OutboxRelay = ReturnType<typeof outboxRelay>
