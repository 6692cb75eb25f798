import type pg from 'pg'

// The event log's one writer in TypeScript (payments' events are written by a trigger on transfer: see
// prisma/migrations/20261211000000_event_log). Other features (payment requests, standing orders, ...) call
// recordEvent() on the client of THEIR transaction, so the event commits with what causes it or not at all, and
// the webhooks' outbox rows with it. Subscribers (the SSE stream, webhooks) learn of it on commit (NOTIFY).

/** The event types there are. A new type: add it here (webhook subscriptions and the docs list these). */
export const EVENT_TYPES = ['payment.received', 'payment.sent', 'request.paid', 'request.expired', 'standing_order.failed'] as const
export type EventType = typeof EVENT_TYPES[number]

export interface NewEvent {
  currencyId: string
  /** the account whose stream and webhooks get the event */
  accountId: string
  type: EventType
  /** a JSON object; money as strings (never JS numbers), times as RFC 3339 */
  data: Record<string, unknown>
}

export interface RecordedEvent { id: string, createdAt: string }

/**
 * Appends an event, in the caller's transaction (`tx`: a pg client after BEGIN; a pool makes it its own
 * transaction). It takes the account's row lock (FOR NO KEY UPDATE, as the ledger's posting does) before the id
 * is drawn, so one account's event ids rise in commit order and a stream resumed after id n misses nothing: call
 * it AFTER posting movements in the same transaction (the lock is then already held), and lock accounts in id
 * order if you lock several. Throws if the account does not exist or is of another currency (a programming error,
 * not a client's). Returns the event id (a bigint, as a string).
 */
export async function recordEvent (tx: pg.PoolClient | pg.Pool | pg.Client, e: NewEvent): Promise<RecordedEvent> {
  if (!(EVENT_TYPES as readonly string[]).includes(e.type)) throw new Error(`recordEvent: unknown event type ${e.type}`)
  if (e.data == null || typeof e.data !== 'object' || Array.isArray(e.data)) throw new Error('recordEvent: data must be an object')
  const r = await tx.query<{ id: string, created_at: string }>(
    `WITH a AS (SELECT id FROM account WHERE id = $2::uuid AND currency_id = $1::uuid FOR NO KEY UPDATE)
     INSERT INTO event (currency_id, account_id, type, data)
     SELECT $1::uuid, a.id, $3, $4::jsonb FROM a
     RETURNING id::text, api_time(created_at) AS created_at`,
    [e.currencyId, e.accountId, e.type, JSON.stringify(e.data)])
  if (r.rowCount !== 1) throw new Error(`recordEvent: account ${e.accountId} is not an account of currency ${e.currencyId}`)
  return { id: r.rows[0].id, createdAt: r.rows[0].created_at }
}
