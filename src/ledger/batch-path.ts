import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { domainErrorFor, fromDatabaseError, RETRYABLE } from '../db/errors.js'
import type { AuditRecord } from '../domain/access.js'
import type { DomainError } from '../domain/errors.js'
import type { Money } from '../domain/money.js'
import type { Channel, TransferRow } from './write-path.js'

// Many payments in one call of the SQL function ledger_post_payments() (prisma/migrations/*_batch_transfers):
// the same rules as ledger_post(), each payment with its own idempotency key and its own result, one round trip
// and one transaction for all of them. Used by the batch endpoint and by the coalescer that posts concurrent
// single payments together (see coalescer.ts).

export interface PaymentItem {
  /** who claims the idempotency key: keys are unique per principal */
  scope: string
  idempotencyKey: string | null
  requestHash: string
  createdBy: string
  /** when a member or business pays: the payer account must be this participant's */
  owner: string | null
  from: string
  to: string
  amount: Money
  /** the receiver's fee for the channel; zero: no fee leg */
  fee: Money
  channel: Channel
  reference: string | null
  metadata: Record<string, string> | null
  /** an issuer's payment: its audit row is written in the same statement, only when the payment posts */
  audit?: AuditRecord | null
}

export type ItemResult =
  | { ok: true, replayed: boolean, legs: TransferRow[] }
  | { ok: false, error: DomainError }

/** An atomic call where some item failed: nothing was written; `results` says which items failed and why. */
export interface PaymentsOutcome { posted: boolean, results: ItemResult[] }

const CALL = `SELECT codes, ids, fee_ids, created_at, replays FROM ledger_post_payments($1::uuid, $2::uuid, $3,
  $4::text[], $5::text[], $6::text[], $7::text[], $8::uuid[], $9::uuid[], $10::uuid[], $11::numeric[], $12::numeric[],
  $13::text[], $14::text[], $15::jsonb[])`
// With issuers' payments among the items: their audit rows in the same statement (a data-modifying CTE runs once,
// in the statement's transaction), one per item that posted, as write-path.ts does for a single movement.
const AUDITED = `WITH p AS MATERIALIZED (${CALL}),
a AS (INSERT INTO audit_event (actor_id, actor_name, role, action, target, currency_id, outcome, client_address, request_id, detail)
  SELECT x->>'actorId', x->>'actorName', x->>'role', x->>'action', x->>'target', $1::uuid, 'success', x->>'clientAddress',
         x->>'requestId', coalesce(x->'detail', '{}'::jsonb) || jsonb_build_object('transferId', p.ids[u.i])
    FROM p, unnest($16::jsonb[]) WITH ORDINALITY AS u(x, i)
   WHERE u.x IS NOT NULL AND p.ids[u.i] IS NOT NULL)
SELECT codes, ids, fee_ids, created_at, replays FROM p`

const MAX_ATTEMPTS = 5

interface Row { codes: Array<string | null>, ids: Array<string | null>, fee_ids: Array<string | null>, created_at: string | null, replays: Record<string, TransferRow[]> | null }

export async function postPayments (
  pool: pg.Pool, currencyId: string, feeAccount: string, items: PaymentItem[], atomic: boolean,
): Promise<PaymentsOutcome> {
  if (items.length === 0) return { posted: true, results: [] }
  const metadata = items.map(i => i.metadata == null ? null : jsonbOrder(i.metadata))
  const values = [
    currencyId, feeAccount, atomic,
    items.map(i => i.scope), items.map(i => i.idempotencyKey), items.map(i => i.requestHash), items.map(i => i.createdBy),
    items.map(i => i.owner), items.map(i => i.from), items.map(i => i.to),
    items.map(i => i.amount.toFixed()), items.map(i => i.fee.toFixed()), items.map(i => i.channel),
    items.map(i => i.reference), metadata.map(m => m == null ? null : JSON.stringify(m)),
  ]
  const audited = items.some(i => i.audit != null)
  if (audited) values.push(items.map(i => i.audit == null ? null : JSON.stringify(i.audit)))
  const query = audited ? { name: 'ledger_post_payments_audited', text: AUDITED, values } : { name: 'ledger_post_payments', text: CALL, values }
  let row: Row
  for (let attempt = 1; ; attempt++) {
    try {
      row = (await pool.query<Row>(query)).rows[0]
      break
    } catch (err) {
      if (RETRYABLE.has((err as { code?: string }).code ?? '') && attempt < MAX_ATTEMPTS) {
        await sleep(5 * attempt + Math.random() * 10 * attempt)
        continue
      }
      throw fromDatabaseError(err) ?? err
    }
  }
  const failed = row.codes.some(c => c != null && c !== 'REPLAYED')
  const results = items.map((item, i): ItemResult => {
    const code = row.codes[i]
    if (code === 'REPLAYED') return { ok: true, replayed: true, legs: row.replays![String(i + 1)] }
    if (code != null) return { ok: false, error: domainErrorFor(code) }
    if (atomic && failed) return { ok: true, replayed: false, legs: [] }
    // The legs as transfer_legs() would read them back, so a later replay or GET is byte-identical.
    const payment: TransferRow = {
      id: row.ids[i]!, kind: 'payment', channel: item.channel, fromAccount: item.from, toAccount: item.to,
      amount: item.amount.toFixed(), reference: item.reference, metadata: metadata[i] ?? {}, parentId: null,
      reversesId: null, createdAt: row.created_at!,
    }
    const legs = [payment]
    if (row.fee_ids[i] != null) {
      legs.push({ ...payment, id: row.fee_ids[i]!, kind: 'fee', fromAccount: item.to, toAccount: feeAccount, amount: item.fee.toFixed(), parentId: payment.id })
    }
    return { ok: true, replayed: false, legs }
  })
  return { posted: !(atomic && failed), results }
}

/** jsonb keeps object keys shorter-first, then bytewise; a stored metadata object reads back in that order. */
export function jsonbOrder (o: Record<string, string>): Record<string, string> {
  const keys = Object.keys(o).sort((a, b) => {
    const x = Buffer.from(a); const y = Buffer.from(b)
    return x.length - y.length || Buffer.compare(x, y)
  })
  const out: Record<string, string> = {}
  for (const k of keys) out[k] = o[k]
  return out
}
