import type pg from 'pg'
import { domainErrorFor, fromDatabaseError } from '../db/errors.js'
import { withRetry } from '../db/retry.js'
import type { AuditRecord } from '../domain/access.js'
import { DomainError } from '../domain/errors.js'
import type { Movement } from '../domain/movements.js'
import { legFromRow, type LegRow, type TransferRow } from '../domain/transfer-view.js'

// The one write path that moves money. Every balance change (the service, the batch endpoint, coalesced single
// payments, the simulator, test ledgers, benchmarks) is a call of the SQL function ledger_post_movements()
// (prisma/migrations/*_one_money_path): one round trip, one transaction, one or many movements, a result per
// movement. The movements themselves (which legs, which order, what the reserve does) come from
// src/domain/movements.ts; this module adds who asks (idempotency, owner, audit) and talks to PostgreSQL.
//
// Prisma is deliberately not on this path: one plain pg call of one function is one round trip, where an
// interactive transaction makes one per statement plus BEGIN and COMMIT.

/** One movement to post: what it moves (movements.ts) and on whose behalf. */
export interface MovementItem extends Movement {
  /** who claims the idempotency key: keys are unique per principal */
  scope: string
  idempotencyKey: string | null
  /** hash of the request, so a reused key with another request is told apart from a replay */
  requestHash: string
  createdBy: string
  /** when a member or business moves money: the main leg's payer account must be this participant's */
  owner: string | null
  /** an issuer's movement: its audit row is written with it, only when it posts (a replay writes none) */
  audit?: AuditRecord | null
}

export type ItemResult =
  | { ok: true, replayed: boolean, legs: TransferRow[] }
  | { ok: false, error: DomainError }

/** posted false: an atomic call where some movement failed; nothing was written, `results` say which and why. */
export interface PostOutcome { posted: boolean, results: ItemResult[] }

export interface PostOptions {
  /** all or nothing: one failing movement fails the call and nothing is written */
  atomic?: boolean
  /**
   * The tooling only (the simulator, test ledgers, benchmarks), on a session named 'circulate-simulator': the
   * time of each movement, set through the ledger clock (ledger_clock_set(), see the migration). The service
   * never passes it, and the database refuses it from the service's own sessions.
   */
  at?: Date[] | null
  /** with `at`: allow times before the currency's latest transfer (test ledgers that post into the past) */
  backdate?: boolean
}

/** A pool (one round trip, its own transaction) or a client the caller has already put in a transaction. */
export type Db = pg.Pool | pg.PoolClient

const SQL = `SELECT item, code, leg, id, kind, channel, from_account, to_account, amount, reference, metadata,
  parent_id, reverses_id, created_at
  FROM ledger_post_movements($1::uuid, $2::boolean, $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[],
    $8::text[], $9::text[], $10::jsonb[], $11::numeric[], $12::text[], $13::jsonb[], $14::int[], $15::text[],
    $16::uuid[], $17::uuid[], $18::numeric[], $19::uuid[], $20::int[])`

interface Row extends LegRow { item: number, code: string | null, leg: number | null }

interface Indexed { i: number, item: MovementItem, at: Date | null }

/**
 * Posts movements of one currency, in order: a later movement sees the balances the earlier ones left. Every
 * movement gets its own result; with `atomic`, all post or none does.
 *
 * One movement's data can never fail another's. Text PostgreSQL cannot store is refused here, per movement; if
 * the database still refuses the call for a value in it (a data or integrity error), the call is split in
 * halves and retried until the movement at fault is alone and gets its own error, while the others post as if it
 * had not been there (with `atomic`, the halves are only tried and rolled back, to say which movement failed).
 *
 * On a pool the call is its own transaction and deadlocks are retried. On a client the caller has put in a
 * transaction (payment requests, standing orders: their own row changes in the same transaction) nothing is
 * retried; if this throws, the caller's transaction is aborted and must be rolled back. A movement refused with
 * a result (funds, limits, keys) leaves the caller's transaction usable.
 */
export async function postMovements (db: Db, currencyId: string, items: MovementItem[], opts: PostOptions = {}): Promise<PostOutcome> {
  if (opts.at != null && opts.at.length !== items.length) throw new Error('postMovements: one time per movement')
  const results: ItemResult[] = new Array(items.length)
  const todo: Indexed[] = []
  items.forEach((item, i) => {
    const bad = unstorable(item)
    if (bad != null) results[i] = { ok: false, error: bad }
    else todo.push({ i, item, at: opts.at?.[i] ?? null })
  })
  const atomic = opts.atomic ?? false
  if (atomic && todo.length < items.length) return notPosted(results)
  const ctx: Ctx = { db, currencyId, atomic, backdate: opts.backdate ?? false, savepoints: todo.length > 1 }
  let out: ItemResult[]
  if (!isClient(db) && todo.length > 1) {
    // A call that may be split goes to one connection for all its tries. A failed statement's backend sends its
    // error before it has released what the statement locked (the items' idempotency keys among them): halves sent
    // at once on another connection could find those keys still held and be refused IN_FLIGHT (seen under load in
    // test/ledger/one-path.test.ts). One backend reads the next statement only after that abort.
    const client = await db.connect()
    let broken = false
    try {
      out = await postIsolated({ ...ctx, db: oneConnection(client) as unknown as pg.Pool }, todo)
    } catch (err) {
      broken = !(err instanceof DomainError)
      throw err
    } finally {
      client.release(broken)
    }
  } else {
    out = await postIsolated(ctx, todo)
  }
  out.forEach((r, k) => { results[todo[k].i] = r })
  const failed = results.some(r => !r.ok)
  return atomic && failed ? notPosted(results) : { posted: true, results }
}

/** One movement; its refusal is thrown as the DomainError it is. */
export async function postMovement (db: Db, currencyId: string, item: MovementItem, opts: Omit<PostOptions, 'atomic'> = {}): Promise<{ legs: TransferRow[], replayed: boolean }> {
  const [r] = (await postMovements(db, currencyId, [item], opts)).results
  if (!r.ok) throw r.error
  return { legs: r.legs, replayed: r.replayed }
}

interface Ctx {
  db: Db
  currencyId: string
  atomic: boolean
  backdate: boolean
  /** on the caller's client: each call under a savepoint, so one refused call leaves the transaction usable */
  savepoints: boolean
}

const isClient = (db: Db): db is pg.PoolClient => typeof (db as pg.PoolClient).release === 'function'

/** A pool of one connection: queries and transactions of the pool path, all on `client` (never released here). */
function oneConnection (client: pg.PoolClient) {
  const query = async (q: pg.QueryConfig | string, values?: unknown[]) => await client.query(q as string, values)
  return { query, connect: async () => ({ query, release: () => {} }) }
}

/** Errors a value in the call can cause (data exceptions, integrity and program-limit violations). */
const ITEM_SQLSTATE = /^(22|23|54)/
const causedByItems = (err: unknown) => ITEM_SQLSTATE.test((err as { code?: string } | null)?.code ?? '')

async function postIsolated (ctx: Ctx, todo: Indexed[]): Promise<ItemResult[]> {
  if (todo.length === 0) return []
  try {
    return await call(ctx, todo, true)
  } catch (err) {
    if (!causedByItems(err)) throw fromDatabaseError(err) ?? err
    // alone on the caller's client without a savepoint, the caller's transaction is aborted: it must know
    if (todo.length === 1 && isClient(ctx.db) && !ctx.savepoints) throw itemError(err, todo[0].item)
    if (todo.length === 1) return [{ ok: false, error: itemError(err, todo[0].item) }]
    if (ctx.atomic) return await findCulprits(ctx, todo, err)
    const mid = Math.ceil(todo.length / 2)
    // in order: the second half sees what the first half posted, as it would have in one call
    return [...await postIsolated(ctx, todo.slice(0, mid)), ...await postIsolated(ctx, todo.slice(mid))]
  }
}

/** An atomic call refused for a value in it: find the movements at fault by trying halves and rolling back. */
async function findCulprits (ctx: Ctx, todo: Indexed[], err: unknown): Promise<ItemResult[]> {
  const probe = async (part: Indexed[]): Promise<ItemResult[]> => {
    try {
      await call(ctx, part, false, true)
      return part.map(() => ({ ok: true, replayed: false, legs: [] }))
    } catch (e) {
      if (!causedByItems(e)) throw fromDatabaseError(e) ?? e
      if (part.length === 1) return [{ ok: false, error: itemError(e, part[0].item) }]
      const mid = Math.ceil(part.length / 2)
      return [...await probe(part.slice(0, mid)), ...await probe(part.slice(mid))]
    }
  }
  const found = await probe(todo)
  // refused only together: every movement carries the refusal
  return found.some(r => !r.ok) ? found : todo.map(x => ({ ok: false, error: itemError(err, x.item) }))
}

/** The refusal of one movement `m` for the database's error: a constraint's code is read as the function's is. */
function itemError (err: unknown, m: MovementItem): DomainError {
  const mapped = fromDatabaseError(err)
  if (mapped != null) return refusal(mapped.code, m) === mapped.code ? mapped : domainErrorFor(refusal(mapped.code, m))
  const e = new DomainError('INTERNAL', `the ledger refused a movement: ${(err as Error).message}`)
  ;(e as { cause?: unknown }).cause = err
  return e
}

function notPosted (results: ItemResult[]): PostOutcome {
  return { posted: false, results: Array.from(results, r => r ?? { ok: true, replayed: false, legs: [] }) }
}

/**
 * One call of ledger_post_movements(). On a pool: its own transaction (with the clock when times are given),
 * deadlocks retried when `retry`. On the caller's client: inside the caller's transaction, under a savepoint when
 * the call holds more than one movement (so the others can be retried without one at fault). `rollback`: try only.
 */
async function call (ctx: Ctx, part: Indexed[], retry: boolean, rollback = false): Promise<ItemResult[]> {
  const { db } = ctx
  const clocked = part[0].at != null
  const query = { name: 'ledger_post_movements', text: SQL, values: parameters(ctx, part) }
  const clock = clocked
    ? { text: 'SELECT ledger_clock_set($1::uuid, $2::timestamptz[], $3)', values: [ctx.currencyId, part.map(x => x.at!.toISOString()), ctx.backdate] }
    : null
  let rows: Row[]
  if (isClient(db)) {
    const savepoint = rollback || ctx.savepoints
    if (savepoint) await db.query('SAVEPOINT ledger_post')
    try {
      if (clock != null) await db.query(clock)
      rows = (await db.query<Row>(query)).rows
    } catch (err) {
      if (savepoint) await db.query('ROLLBACK TO SAVEPOINT ledger_post')
      throw err
    }
    if (savepoint) await db.query(rollback ? 'ROLLBACK TO SAVEPOINT ledger_post' : 'RELEASE SAVEPOINT ledger_post')
  } else if (clock == null && !rollback) {
    const run = async () => (await db.query<Row>(query)).rows
    rows = retry ? await withRetry(run) : await run()
  } else {
    const run = async () => {
      const client = await db.connect()
      try {
        await client.query('BEGIN')
        if (clock != null) await client.query(clock)
        const r = (await client.query<Row>(query)).rows
        await client.query(rollback ? 'ROLLBACK' : 'COMMIT')
        return r
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
    }
    rows = retry ? await withRetry(run) : await run()
  }
  return results(rows, part)
}

function results (rows: Row[], part: Indexed[]): ItemResult[] {
  const out: ItemResult[] = new Array(part.length)
  for (const r of rows) {
    const k = r.item - 1
    if (r.code == null || r.code === 'REPLAYED') {
      const prior = out[k]
      if (prior == null) out[k] = { ok: true, replayed: r.code === 'REPLAYED', legs: [legFromRow(r)] }
      else if (prior.ok) prior.legs.push(legFromRow(r))
    } else if (r.code === 'NOT_POSTED') {
      out[k] = { ok: true, replayed: false, legs: [] }
    } else {
      out[k] = { ok: false, error: domainErrorFor(refusal(r.code, part[k].item)) }
    }
  }
  return out
}

/**
 * The ledger function knows no kinds, so it calls the issuance account passing its ceiling of zero (the reserve
 * falling below zero, currency.repo.ts) CEILING_EXCEEDED like any other, as does the account table's constraint
 * when that is what refuses (itemError). In a movement that pays sterling out (its
 * reserve delta is negative: a redemption, a buyback, a withdrawal, a reversed issuance or note sale) the issuance
 * account is the only one that gains and can have a ceiling, so that is what it means; the caller is told so.
 */
function refusal (code: string, m: MovementItem): string {
  return code === 'CEILING_EXCEEDED' && m.reserveDelta?.isNegative() === true ? 'RESERVE_EXCEEDED' : code
}

function parameters (ctx: Ctx, part: Indexed[]): unknown[] {
  const items = part.map(x => x.item)
  const legs = items.flatMap((m, i) => m.legs.map((l, j) => ({ l, i: i + 1, order: m.applyOrder.indexOf(j) + 1 })))
  return [
    ctx.currencyId, ctx.atomic,
    items.map(m => m.scope), items.map(m => m.idempotencyKey), items.map(m => m.requestHash), items.map(m => m.createdBy),
    items.map(m => m.owner), items.map(m => m.channel), items.map(m => m.reference),
    items.map(m => m.metadata == null ? null : JSON.stringify(m.metadata)),
    items.map(m => m.reserveDelta?.toFixed() ?? null), items.map(m => m.sterlingReference),
    items.map(m => m.audit == null ? null : JSON.stringify(m.audit)),
    legs.map(x => x.i), legs.map(x => x.l.kind), legs.map(x => x.l.from), legs.map(x => x.l.to),
    legs.map(x => x.l.amount.toFixed()), legs.map(x => x.l.reverses ?? null), legs.map(x => x.order),
  ]
}

// Text PostgreSQL cannot store: NUL, and UTF-16 surrogates that do not pair (the driver would replace them, or
// jsonb would refuse them). The API refuses such text at its boundary too; this is the ledger's own guard, so a
// caller that forgot cannot fail the movements posted with its own.
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

function unstorable (m: MovementItem): DomainError | null {
  const fields: Array<[string, string | null | undefined]> = [
    ['/reference', m.reference], ['/sterlingReference', m.sterlingReference], ['/idempotencyKey', m.idempotencyKey],
    ['/scope', m.scope], ['/createdBy', m.createdBy],
    ...Object.entries(m.metadata ?? {}).flatMap(([k, v]): Array<[string, string]> => [[`/metadata/${pointerToken(k)}`, k], [`/metadata/${pointerToken(k)}`, v]]),
  ]
  const bad = fields.find(([, v]) => v != null && UNSTORABLE.test(v))
  if (bad == null) return null
  const pointer = bad[0]
  return new DomainError('VALIDATION_FAILED', `${pointer.slice(1)} contains a character that cannot be stored (NUL or an unpaired surrogate)`,
    [{ pointer, detail: 'contains a character that cannot be stored' }])
}

/** A key as a JSON pointer token (RFC 6901), with what cannot be shown replaced. */
// eslint-disable-next-line no-control-regex -- control characters are what it replaces
const pointerToken = (k: string) => k.replace(/[\u0000-\u001f\ud800-\udfff]/g, '?').replace(/~/g, '~0').replace(/\//g, '~1')
