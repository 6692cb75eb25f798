import type pg from 'pg'
import type { PrismaClient } from '../generated/prisma/client.js'
import { auditRecord, type AuditAction, type RequestMeta } from '../domain/access.js'
import { CURSOR_INT, CURSOR_UUID, decodeCursor, encodeCursor } from '../domain/cursor.js'
import { DomainError } from '../domain/errors.js'
import { formatMoney, parseAmount } from '../domain/money.js'
import { issuance, redemption, reversal, type Movement } from '../domain/movements.js'
import { isIssuerOf, type Principal } from '../domain/principal.js'
import { transferView, type TransferView } from '../domain/transfer-view.js'
import type { MovementCoalescer } from '../ledger/coalescer.js'
import { postMovement, type MovementItem } from '../ledger/post.js'
import { accountRepo } from '../repositories/account.repo.js'
import { transferRepo } from '../repositories/transfer.repo.js'
import type { IssuanceCreate, PaymentCreate, RedemptionCreate, ReversalCreate, TransferSearchQuery } from '../schemas/ledger.js'
import { parseTime, type AccountService } from './account.service.js'
import type { CurrencyInfo, CurrencyService } from './currency.service.js'
import { isSystemAccount, payer, paymentItem } from './payment-rules.js'

/** The request's idempotency: its key and a hash of what was asked, so a reused key with another body is caught. */
export interface Idempotency { key: string, requestHash: string }

export type { TransferView }

/** A movement posted through the one write path: with the coalescer (concurrent single movements posted together,
 *  see ledger/coalescer.ts) when there is one, else alone. */
export async function submitMovement (pool: pg.Pool, coalescer: MovementCoalescer | null, c: CurrencyInfo, item: MovementItem): Promise<{ transfer: TransferView, replayed: boolean }> {
  let r
  if (coalescer != null) {
    const out = await coalescer.submit(c.id, item)
    if (!out.ok) throw out.error
    r = out
  } else {
    r = await postMovement(pool, c.id, item)
  }
  return { transfer: transferView(r.legs, c), replayed: r.replayed }
}

/** A movement on behalf of a principal: its idempotency scope, key and author. */
export function onBehalfOf (p: Principal, idem: Idempotency, m: Movement, extra: Partial<MovementItem> = {}): MovementItem {
  return { ...m, scope: p.userId, idempotencyKey: idem.key, requestHash: idem.requestHash, createdBy: p.userId, owner: null, ...extra }
}

/** TRANSFER_WINDOW's default (config.ts) */
const DEFAULT_WINDOW = 1000

/** coalescer: posts concurrent single movements together (see ledger/coalescer.ts); null posts each alone. */
export function transferService (pool: pg.Pool, prisma: PrismaClient, currencies: CurrencyService, accountAccess: Pick<AccountService, 'readable'>,
  coalescer: MovementCoalescer | null = null, opts: { window?: number } = {}) {
  const accounts = accountRepo(prisma)
  const transfers = transferRepo(prisma)

  const requirePrincipal = (p: Principal | null): Principal => {
    if (p == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
    return p
  }
  /** What an issuer did, for the audit row written with the movement. */
  const audited = (p: Principal, c: CurrencyInfo, action: AuditAction, meta: RequestMeta | undefined, target: string, detail: Record<string, unknown>) =>
    auditRecord(p, action, meta, { target, currencyId: c.id, detail })
  const post = async (c: CurrencyInfo, item: MovementItem) => await submitMovement(pool, coalescer, c, item)
  const on = onBehalfOf

  return {
    /** A payment, and the receiver's fee for its channel as a second transfer in the same transaction. */
    async pay (principal: Principal | null, code: string, b: PaymentCreate, idem: Idempotency, meta?: RequestMeta) {
      const c = await currencies.resolve(code)
      const who = payer(principal, c)
      const item = paymentItem(c, who, b, idem)
      if (who.issuer) item.audit = audited(who.principal, c, 'payment.create', meta, b.fromAccount, { toAccount: b.toAccount, amount: item.legs[0].amount.toFixed(c.decimals) })
      return await post(c, item)
    },

    /** Sterling received into the reserve; the same amount of currency credited 1:1. */
    async issue (principal: Principal | null, code: string, b: IssuanceCreate, idem: Idempotency, meta?: RequestMeta) {
      const c = await currencies.resolve(code)
      currencies.assertIssuer(principal, c.id)
      const amount = parseAmount(b.amount, c.decimals)
      if (isSystemAccount(c, b.toAccount)) throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
      return await post(c, on(principal, idem, issuance(c, { to: b.toAccount, amount, sterlingReference: b.sterlingReference }), {
        audit: audited(principal, c, 'issuance.create', meta, b.toAccount, { amount: amount.toFixed(c.decimals), sterlingReference: b.sterlingReference }),
      }))
    },

    /** A business takes currency back to sterling; the redemption fee is withheld to the fee account. */
    async redeem (principal: Principal | null, code: string, b: RedemptionCreate, idem: Idempotency, meta?: RequestMeta) {
      const p = requirePrincipal(principal)
      const c = await currencies.resolve(code)
      const issuer = isIssuerOf(p, c.id)
      if (!issuer && p.role !== 'business') throw new DomainError('FORBIDDEN', 'only a business or an issuer may redeem')
      const amount = parseAmount(b.amount, c.decimals)
      // Only a business's account redeems. Whether the caller may see the account at all is settled first (the
      // rule of GET /v1/accounts/{id}), or "not redeemable" would tell a stranger that it exists; the ledger checks
      // the owner again under the account's lock.
      const { account: acct } = await accountAccess.readable(p, b.fromAccount)
      if (acct.currencyId !== c.id) throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
      if (acct.participant?.kind !== 'business') throw new DomainError('NOT_REDEEMABLE', 'only business accounts redeem to sterling')
      const m = redemption(c, { from: acct.id, amount, sterlingReference: b.sterlingReference })
      return await post(c, on(p, idem, m, {
        owner: issuer ? null : p.participantId,
        audit: issuer ? audited(p, c, 'redemption.create', meta, acct.id, { amount: amount.toFixed(c.decimals), fee: amount.minus(m.legs[0].amount).toFixed(c.decimals) }) : null,
      }))
    },

    /** Reverses a money movement once, by new transfers: its fee is given back before the payment is taken back. */
    async reverse (principal: Principal | null, id: string, b: ReversalCreate, idem: Idempotency, meta?: RequestMeta) {
      const p = requirePrincipal(principal)
      // decided by role alone, before anything is looked up: a researcher learns nothing about which ids exist
      if (p.role === 'researcher') throw new DomainError('FORBIDDEN', 'only an issuer of this currency may reverse')
      const found = await transfers.movement(id)
      if (found == null) throw new DomainError('TRANSFER_NOT_FOUND', 'transfer not found')
      const c = await currencies.resolveId(found.currencyId)
      if (!isIssuerOf(p, c.id)) {
        // a party to the transfer can read it, so it is told it may not reverse it; to anyone else (an issuer of
        // another currency among them) it answers exactly as an unknown id
        const ids = [...new Set(found.legs.flatMap(t => [t.fromAccount, t.toAccount]))]
        const party = p.participantId != null && (await accounts.byIds(ids)).some(a => a.participantId === p.participantId)
        if (party) throw new DomainError('FORBIDDEN', 'only an issuer of this currency may reverse')
        throw new DomainError('TRANSFER_NOT_FOUND', 'transfer not found')
      }
      const [main] = found.legs
      const m = reversal(c, found.legs, { sterlingReference: b.sterlingReference })
      return await post(c, on(p, idem, m, {
        audit: audited(p, c, 'transfer.reverse', meta, main.id, {
          kind: main.kind, amount: formatMoney(main.amount, c.decimals),
          ...(b.reason != null ? { reason: b.reason } : {}), ...(b.sterlingReference != null ? { sterlingReference: b.sterlingReference } : {}),
        }),
      }))
    },

    /** One transfer with its related legs: its parties and the currency's issuers may read it. */
    async get (principal: Principal | null, id: string) {
      const p = requirePrincipal(principal)
      if (p.role === 'researcher') throw new DomainError('FORBIDDEN', 'researchers see reports and exports, not transfers')
      const found = await transfers.movement(id)
      if (found == null) throw new DomainError('TRANSFER_NOT_FOUND', 'transfer not found')
      if (!isIssuerOf(p, found.currencyId)) {
        const ids = [...new Set(found.legs.flatMap(t => [t.fromAccount, t.toAccount]))]
        const owned = (await accounts.byIds(ids)).some(a => a.participantId != null && a.participantId === p.participantId)
        if (!owned) throw new DomainError('TRANSFER_NOT_FOUND', 'transfer not found')
      }
      return transferView(found.legs, await currencies.resolveId(found.currencyId))
    },

    /**
     * The issuer's search over a currency's transfers, oldest first, keyset-paginated: on the time-ordered id, or
     * with an account on the account's entries (the order they were posted in). With kind, from or to a page looks
     * at no more than TRANSFER_WINDOW rows after its cursor (transfer.repo.ts); one that did not fill up goes on
     * after them. A cursor goes on only in a search of the same account (or of none): else 400 INVALID_CURSOR.
     */
    async search (principal: Principal | null, code: string, q: TransferSearchQuery & { limit: number }) {
      const c = await currencies.resolve(code)
      currencies.assertIssuer(principal, c.id)
      let afterId: string | undefined
      let afterEntry: string | undefined
      if (q.account == null) {
        afterId = decodeCursor(q.cursor, [CURSOR_UUID])?.[0]
      } else {
        const after = decodeCursor(q.cursor, [CURSOR_UUID, CURSOR_INT])
        if (after != null && after[0] !== q.account) throw new DomainError('INVALID_CURSOR', 'the cursor is of another search; start again without it')
        afterEntry = after?.[1]
      }
      const { rows, resumeAfter } = await transfers.search({
        currencyId: c.id, kind: q.kind, account: q.account, from: parseTime(q.from, 'from'), to: parseTime(q.to, 'to'), afterId, afterEntry,
      }, q.limit, opts.window ?? DEFAULT_WINDOW)
      const page = rows.slice(0, q.limit)
      // a filtered page that looked at its whole window without filling up goes on after the window
      const resume = rows.length > q.limit ? page.at(-1)?.key ?? null : resumeAfter
      return {
        items: page.map(r => transferView([r.transfer], c)),
        nextCursor: resume == null ? null : encodeCursor(q.account == null ? [resume] : [q.account, resume]),
      }
    },
  }
}
