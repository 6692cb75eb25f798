import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { fromDatabaseError, RETRYABLE } from '../db/errors.js'
import type { AuditRecord } from '../domain/access.js'
import type { Money } from '../domain/money.js'

// The one write path that moves money: every balance change in the service goes through postMovement(), which
// is one call of the SQL function ledger_post() (prisma/migrations/*_ledger_core): one round trip, one
// transaction. Prisma is deliberately not on this path (see TOOLCHAIN: 3-10x slower as an interactive
// transaction). Payments are the one exception in shape, not in rules: they go through ledger_post_payments()
// (batch-path.ts), many in one call, either from POST .../transfers/batch or coalesced (coalescer.ts).

export type TransferKind = 'payment' | 'fee' | 'issuance' | 'redemption' | 'reversal'
export type Channel = 'text' | 'app' | 'online' | 'api' | 'till'

export interface Leg {
  kind: TransferKind
  from: string
  to: string
  amount: Money
  /** the transfer this leg reverses */
  reverses?: string
}

export interface Movement {
  currencyId: string
  /** who claims the idempotency key: keys are unique per principal */
  scope: string
  idempotencyKey: string | null
  requestHash: string
  createdBy: string
  /** the first leg is the movement's main transfer; the others point at it (a fee, a reversal's fee leg) */
  legs: Leg[]
  channel?: Channel | null
  reference?: string | null
  metadata?: Record<string, string> | null
  /** sterling into (+) or out of (-) the reserve */
  reserveDelta?: Money | null
  sterlingReference?: string | null
  /** when a member or business moves money: the first leg's payer account must be this participant's */
  owner?: string | null
  /** the order in which legs move balances (indexes into legs); default: as listed */
  applyOrder?: number[] | null
  /** The seeding tool only (src/simulator): post at this past time, through ledger_post_at(), which accepts it
   *  only from a session named 'circulate-simulator', never in the future and never before the currency's latest
   *  transfer (prisma/migrations/*_simulated_clock). The service never sets it. */
  at?: Date | null
  /**
   * An issuer's movement is audited in the same statement (so in the same transaction): the row exists exactly
   * when the movement committed. A replay writes no second row. Members' and businesses' payments pass none:
   * the ledger's created_by records them, and the hot path stays one plain call.
   */
  audit?: AuditRecord | null
}

/** One transfer as ledger_post()/transfer_legs() return it: amounts and times as text. */
export interface TransferRow {
  id: string
  kind: TransferKind
  channel: Channel | null
  fromAccount: string
  toAccount: string
  amount: string
  reference: string | null
  metadata: Record<string, unknown>
  parentId: string | null
  reversesId: string | null
  createdAt: string
}

/** The movement's transfers, main first, and whether this was a replay of an earlier request with the same key. */
export interface Posted { legs: TransferRow[], replayed: boolean }

const SQL = `SELECT replayed, legs FROM ledger_post($1::uuid, $2, $3, $4, $5, $6::text[], $7::uuid[], $8::uuid[],
  $9::numeric[], $10, $11, $12::jsonb, $13::uuid[], $14::numeric, $15, $16::uuid, $17::int[])`

const SQL_AT = `SELECT replayed, legs FROM ledger_post_at($18::timestamptz, $1::uuid, $2, $3, $4, $5, $6::text[],
  $7::uuid[], $8::uuid[], $9::numeric[], $10, $11, $12::jsonb, $13::uuid[], $14::numeric, $15, $16::uuid, $17::int[])`

// ledger_post() and the audit row in one statement: a data-modifying CTE runs exactly once, in the statement's
// transaction, and only when the call returned (a refused movement raises and writes nothing).
const AUDITED_SQL = `WITH p AS MATERIALIZED (${SQL}),
a AS (INSERT INTO audit_event (actor_id, actor_name, role, action, target, currency_id, outcome, client_address, request_id, detail)
  SELECT $18, $19, $20, $21, $22, $1::uuid, 'success', $23, $24, $25::jsonb || jsonb_build_object('transferId', p.legs->0->>'id')
    FROM p WHERE NOT p.replayed)
SELECT replayed, legs FROM p`

const MAX_ATTEMPTS = 5

export async function postMovement (pool: pg.Pool, m: Movement): Promise<Posted> {
  const values = [
    m.currencyId, m.scope, m.idempotencyKey, m.requestHash, m.createdBy,
    m.legs.map(l => l.kind), m.legs.map(l => l.from), m.legs.map(l => l.to),
    m.legs.map(l => l.amount.toFixed()), m.channel ?? null, m.reference ?? null,
    m.metadata == null ? null : JSON.stringify(m.metadata), m.legs.map(l => l.reverses ?? null),
    m.reserveDelta?.toFixed() ?? null, m.sterlingReference ?? null, m.owner ?? null,
    m.applyOrder?.map(i => i + 1) ?? null,
  ]
  const a = m.audit
  let query: { name: string, text: string, values: unknown[] }
  if (m.at != null) {
    // the simulator's movements are not issuer actions: no audit row, and ledger_post_at() would not take one
    if (a != null) throw new Error('a movement posted at a simulated time carries no audit record')
    query = { name: 'ledger_post_at', text: SQL_AT, values: [...values, m.at.toISOString()] }
  } else if (a != null) {
    values.push(a.actorId, a.actorName, a.role, a.action, a.target, a.clientAddress, a.requestId, JSON.stringify(a.detail))
    query = { name: 'ledger_post_audited', text: AUDITED_SQL, values }
  } else {
    query = { name: 'ledger_post', text: SQL, values }
  }
  for (let attempt = 1; ; attempt++) {
    try {
      // A named statement is parsed and planned once per connection.
      const r = await pool.query<{ replayed: boolean, legs: TransferRow[] }>(query)
      return { legs: r.rows[0].legs, replayed: r.rows[0].replayed }
    } catch (err) {
      // Deadlocks and serialization failures are retried here, never shown to a client as a 500.
      if (RETRYABLE.has((err as { code?: string }).code ?? '') && attempt < MAX_ATTEMPTS) {
        await sleep(5 * attempt + Math.random() * 10 * attempt)
        continue
      }
      throw fromDatabaseError(err) ?? err
    }
  }
}
