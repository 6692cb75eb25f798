import fastq from 'fastq'
import type pg from 'pg'
import { auditRecord, disclosed, RateLimitedError, type RequestMeta } from '../domain/access.js'
import { DomainError, MAX_LISTED, type FieldError } from '../domain/errors.js'
import { callerCurrency, participantOrLogin, PerCaller } from '../domain/per-caller.js'
import type { Principal } from '../domain/principal.js'
import { transferView, type TransferView } from '../domain/transfer-view.js'
import { postMovements, type MovementItem } from '../ledger/post.js'
import type { BatchCreate } from '../schemas/batch.js'
import type { CurrencyService } from './currency.service.js'
import { payer, paymentItem } from './payment-rules.js'

export type BatchItemResult = { index: number, idempotencyKey: string } & (
  | { ok: true, replayed: boolean, transfer: TransferView }
  | { ok: false, error: DomainError })

export interface BatchOptions {
  /** batch calls at the database at once (each holds up to 1,000 idempotency-key locks) */
  concurrency: number
  /** batch requests allowed to wait for a turn; past it a request is shed with a 503 */
  maxQueue: number
  /** batch requests one participant (all its logins and API keys), or one staff login, may have running or waiting */
  perCaller: number
  /** batch requests one currency's callers may have running or waiting (domain/per-caller.ts, callerCurrency); default no bound of its own */
  perCurrency?: number
}

/**
 * Up to 1,000 payments in one request, through the same rules as POST .../payments (payment-rules.ts) and one
 * call of the ledger function (src/ledger/post.ts). Each item has its own idempotency key and result; with `atomic`, one
 * failing item fails the request and nothing is posted.
 */
export function batchService (pool: pg.Pool, currencies: CurrencyService, opts: BatchOptions) {
  // fastq (what fastify's own plugin loader queues with) holds the turns: `concurrency` batches at the database,
  // the rest waiting in arrival order; past `maxQueue` waiting, a request is shed at once instead of queueing.
  const turns = fastq.promise(async (post: () => Promise<Posted>) => await post(), opts.concurrency)
  // The queue is the whole process's, every currency's: without a share per caller, one member re-sending batches
  // that all fail (costing it nothing) could keep it full and every other caller's batches would be shed
  const inFlight = new PerCaller()
  // nor one currency's callers, however many participants its issuer registers
  const byCurrency = new PerCaller()
  const perCurrency = opts.perCurrency ?? Infinity
  const inTurn = async (post: () => Promise<Posted>): Promise<Posted> => {
    if (turns.running() >= opts.concurrency && turns.length() >= opts.maxQueue) {
      throw new DomainError('SERVICE_UNAVAILABLE', 'too many batches are waiting; retry shortly')
    }
    return await turns.push(post)
  }

  return {
    /**
     * Takes the caller's place among its batches running or waiting, or refuses it (429) past `perCaller`; returns
     * the place's release (once; later calls do nothing). The route takes it before the body is read, so that one
     * caller's bodies (up to 4 MiB each, a second or two of parsing and checking) cannot take the process's CPU from
     * every other caller either.
     */
    admit (principal: Principal): () => void {
      const caller = participantOrLogin(principal)
      const mine = inFlight.of(caller)
      if (mine >= opts.perCaller) {
        throw new RateLimitedError(1, `you already have ${mine} batches running or waiting (at most ${opts.perCaller}); send the next when one has been answered`)
      }
      const currency = callerCurrency(principal)
      if (byCurrency.of(currency) >= perCurrency) {
        throw new DomainError('SERVICE_UNAVAILABLE', 'your currency\'s callers hold as many batch places on this instance as one currency may; retry shortly')
      }
      inFlight.take(caller)
      byCurrency.take(currency)
      let held = true
      return () => { if (held) { held = false; inFlight.give(caller); byCurrency.give(currency) } }
    },

    /** Batches running or waiting that were admitted, over all callers (for tests and health). */
    admitted: (): number => inFlight.total,

    /**
     * The caller must hold a place (admit). hashes[i]: the request hash of item i as a single payment (routes/idempotency.ts). refused: items that failed
     * the body schema, each with its problem; they are not looked at further and fail alone.
     */
    async payBatch (principal: Principal | null, code: string, body: BatchCreate, hashes: string[], meta?: RequestMeta,
      refused: ReadonlyMap<number, DomainError> = new Map()): Promise<{ atomic: boolean, items: BatchItemResult[] }> {
      if (principal == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
      const c = await currencies.resolve(code)
      const who = payer(principal, c)
      const atomic = body.atomic ?? false

      const firstWithKey = new Map<string, number>()
      const checked = body.items.map((raw, i): MovementItem | DomainError => {
        // a refused item may be anything (null, a number): it is not looked into
        const bad = refused.get(i)
        if (bad != null) return bad
        const { idempotencyKey, ...b } = raw
        const prior = firstWithKey.get(idempotencyKey)
        if (prior !== undefined) {
          return new DomainError('VALIDATION_FAILED', `idempotencyKey repeats item ${prior}'s; every item needs its own key`,
            [{ pointer: `/items/${i}/idempotencyKey`, detail: 'repeats an earlier item\'s key' }])
        }
        firstWithKey.set(idempotencyKey, i)
        try {
          const item = paymentItem(c, who, b, { key: idempotencyKey, requestHash: hashes[i] }, `items/${i}/`)
          // an issuer's payments are audited one row per posted item, as POST .../payments does
          if (who.issuer) {
            item.audit = auditRecord(principal, 'payment.create', meta, {
              target: b.fromAccount, currencyId: c.id, detail: { toAccount: b.toAccount, amount: item.legs[0].amount.toFixed(c.decimals), batch: true },
            })
          }
          return item
        } catch (err) {
          if (err instanceof DomainError) return err
          throw err
        }
      })
      if (atomic) refuseIfAny(checked.map((x, i) => [i, x]))

      const toPost = checked.flatMap((x, i) => x instanceof DomainError ? [] : [{ i, item: x }])
      const out = await inTurn(async () => await postMovements(pool, c.id, toPost.map(x => x.item), { atomic }))
      // an item the ledger could not post for a fault of its own is the service's error, never an item's problem
      const broken = out.results.find(r => !r.ok && r.error.status >= 500)
      if (broken != null && !broken.ok) throw broken.error
      // what the ledger says of an account the caller cannot see must not differ from what it says of none
      out.results = out.results.map(r => r.ok ? r : { ...r, error: disclosed(r.error, principal) })
      if (!out.posted) refuseIfAny(out.results.map((r, j) => [toPost[j].i, r.ok ? null : r.error]))

      // a refused item may have no key, or not be an object at all
      const keyOf = (i: number): string => { const k = (body.items[i] as { idempotencyKey?: unknown } | null)?.idempotencyKey; return typeof k === 'string' ? k : '' }
      const results: BatchItemResult[] = checked.map((x, i) => ({ index: i, idempotencyKey: keyOf(i), ok: false, error: x as DomainError }))
      out.results.forEach((r, j) => {
        const i = toPost[j].i
        results[i] = r.ok
          ? { index: i, idempotencyKey: keyOf(i), ok: true, replayed: r.replayed, transfer: transferView(r.legs, c) }
          : { index: i, idempotencyKey: keyOf(i), ok: false, error: r.error }
      })
      return { atomic, items: results }
    },
  }
}

/** An atomic batch with failing items: one problem, with the first failure's code and a pointer per failure. */
function refuseIfAny (checked: Array<[number, unknown]>): void {
  const failures = checked.filter((x): x is [number, DomainError] => x[1] instanceof DomainError)
  if (failures.length === 0) return
  const [i, first] = failures[0]
  const errors: FieldError[] = failures.flatMap(([j, e]) => e.errors?.length
    ? e.errors.map(f => ({ pointer: f.pointer.startsWith('/items/') ? f.pointer : `/items/${j}${f.pointer}`, detail: `${e.code}: ${f.detail}` }))
    : [{ pointer: `/items/${j}`, detail: `${e.code}: ${e.message}` }])
  // a schema problem already names its item (routes/batch.routes.ts)
  const what = first.message.startsWith(`item ${i}: `) ? first.message : `item ${i}: ${first.message}`
  // one problem lists at most MAX_LISTED fields, as any problem does, however many items failed
  const more = errors.length - MAX_LISTED
  throw new DomainError(first.code, `${what}; this batch is atomic, so no item was posted` +
    (more > 0 ? ` (${failures.length} items failed; ${MAX_LISTED} problems listed, and ${more} more)` : ''), errors.slice(0, MAX_LISTED))
}

type Posted = Awaited<ReturnType<typeof postMovements>>

export type BatchService = ReturnType<typeof batchService>
