// Shared by the reliability suite (npm run test:faults): payment load that survives the service or the
// database going away, and the checks that follow (every answered payment exists once, every unanswered key posts
// exactly once when retried, the ledger's invariants hold).
import pg from 'pg'
import type { Test } from 'tap'
import type { Economy } from './economy.js'
import { call, pooled } from './http.js'
import { ledgerViolations } from './invariants.js'

export interface Attempt {
  key: string
  token: string
  body: { fromAccount: string, toAccount: string, amount: string, channel: string, reference: string }
  /** the HTTP status, when the request was answered */
  status?: number
  contentType?: string
  code?: string
  transferId?: string
  /** why it was not answered (connection refused, reset, timeout) */
  error?: string
}

export const sleep = async (ms: number) => await new Promise(resolve => setTimeout(resolve, ms))

/**
 * Payments from `workers` concurrent clients until stop() is called, each with a fresh key. A request the service
 * does not answer is recorded as unanswered and the client moves on; `base()` is read per request, so a service
 * that comes back on the same port is used again at once.
 */
export function paymentLoad (base: () => string, e: Economy, workers: number, tag: string) {
  const attempts: Attempt[] = []
  let running = true
  let seq = 0
  const worker = async (w: number) => {
    // eslint-disable-next-line no-unmodified-loop-condition -- stop() sets it to false
    while (running) {
      const a = (w * 7 + seq) % e.members.length
      const b = (a + 1 + (seq % (e.members.length - 1))) % e.members.length
      const attempt: Attempt = {
        key: `${tag}-${w}-${seq++}`, token: e.members[a].token,
        body: { fromAccount: e.members[a].accountId, toAccount: e.members[b].accountId, amount: `${1 + (seq % 5)}.${String(seq % 100).padStart(2, '0')}`, channel: 'app', reference: tag },
      }
      attempts.push(attempt)
      try {
        const r = await call(base(), 'POST', `/v1/currencies/${e.code}/payments`, { token: attempt.token, key: attempt.key, body: attempt.body, timeoutMs: 10_000 })
        attempt.status = r.status
        attempt.contentType = r.headers.get('content-type') ?? ''
        attempt.code = r.body?.code
        attempt.transferId = r.status === 201 ? r.body.id : undefined
      } catch (err) {
        attempt.error = String((err as Error).cause ?? err)
        await sleep(100)
      }
    }
  }
  const done = Promise.all(Array.from({ length: workers }, async (_, w) => await worker(w)))
  return {
    attempts,
    stop: async () => { running = false; await done },
  }
}

/**
 * After the faults: every payment answered 2xx is in the ledger exactly once under its key; every other attempt,
 * retried with the same key and body, ends as exactly one transfer (a replay when the first try had committed);
 * a second retry replays it; the database holds exactly one payment per key; the invariants hold.
 */
export async function checkExactlyOnce (t: Test, base: string, databaseUrl: string, code: string, attempts: Attempt[]): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  try {
    const answered = attempts.filter(a => a.status === 201)
    const unanswered = attempts.filter(a => a.status !== 201)
    t.ok(answered.length > 0, `${answered.length} payments answered 201 during the faults`)
    const byKey = new Map<string, string>()
    for (const r of (await db.query<{ key: string, transfer_id: string }>('SELECT key, transfer_id FROM idempotency_key')).rows) byKey.set(r.key, r.transfer_id)
    const lost = answered.filter(a => byKey.get(a.key) !== a.transferId)
    t.same(lost.map(a => a.key), [], 'every payment answered 201 is recorded under its key')

    let replays = 0
    await pooled(unanswered, 8, async (a) => {
      const r = await call(base, 'POST', `/v1/currencies/${code}/payments`, { token: a.token, key: a.key, body: a.body })
      if (r.status !== 201) { t.fail(`retry of ${a.key} answered ${r.status}`, { body: r.body }); return }
      if (r.headers.get('idempotent-replayed') === 'true') replays++
      a.transferId = r.body.id
    })
    t.pass(`${unanswered.length} unanswered or refused attempts retried; ${replays} of them had committed before (replayed)`)
    const sample = [...answered.slice(0, 20), ...unanswered.slice(0, 20)]
    for (const a of sample) {
      const r = await call(base, 'POST', `/v1/currencies/${code}/payments`, { token: a.token, key: a.key, body: a.body })
      if (r.status !== 201 || r.headers.get('idempotent-replayed') !== 'true' || r.body.id !== a.transferId) {
        t.fail(`second retry of ${a.key} did not replay the same transfer`, { status: r.status, body: r.body })
      }
    }
    const keys = new Set(attempts.map(a => a.key))
    const payments = (await db.query<{ key: string | null, n: string }>(`
      SELECT k.key, count(*) AS n FROM transfer t LEFT JOIN idempotency_key k ON k.transfer_id = t.id
      WHERE t.kind = 'payment' AND t.reference = ANY($1) GROUP BY k.key`, [[...new Set(attempts.map(a => a.body.reference))]])).rows
    t.equal(payments.filter(p => p.key == null).length, 0, 'no payment without its key')
    t.equal(payments.filter(p => Number(p.n) !== 1).length, 0, 'one payment per key')
    t.equal(payments.length, keys.size, `exactly one payment for each of the ${keys.size} keys`)
    t.same(await ledgerViolations(databaseUrl), [], 'ledger invariants hold')
  } finally {
    await db.end()
  }
}
