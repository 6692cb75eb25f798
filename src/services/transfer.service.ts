import type pg from 'pg'
import type { PrismaClient } from '../generated/prisma/client.js'
import { auditRecord, type AuditAction, type RequestMeta } from '../domain/access.js'
import { CURSOR_UUID, decodeCursor, encodeCursor } from '../domain/cursor.js'
import { DomainError } from '../domain/errors.js'
import { feeFor, formatMoney, Money, parseAmount } from '../domain/money.js'
import { isIssuerOf, type Principal } from '../domain/principal.js'
import type { PaymentCoalescer } from '../ledger/coalescer.js'
import { postMovement, type Channel, type Leg, type Movement, type TransferKind, type TransferRow } from '../ledger/write-path.js'
import { accountRepo } from '../repositories/account.repo.js'
import { transferRepo } from '../repositories/transfer.repo.js'
import { parseTime } from './account.service.js'
import type { CurrencyInfo, CurrencyService } from './currency.service.js'
import { payer, paymentItem } from './payment-rules.js'

export interface PaymentInput {
  fromAccount: string, toAccount: string, amount: string, channel: Channel, reference?: string
  metadata?: Record<string, string>
}
export interface IssuanceInput { toAccount: string, amount: string, sterlingReference: string }
export interface RedemptionInput { fromAccount: string, amount: string, sterlingReference?: string }
export interface SearchQuery { kind?: TransferKind, account?: string, from?: string, to?: string, cursor?: string, limit: number }

/** The request's idempotency: its key and a hash of what was asked, so a reused key with another body is caught. */
export interface Idempotency { key: string, requestHash: string }

export function transferView (legs: TransferRow[], currency: CurrencyInfo) {
  const one = (t: TransferRow) => ({
    id: t.id, currency: currency.code, kind: t.kind, channel: t.channel, fromAccount: t.fromAccount,
    toAccount: t.toAccount, amount: formatMoney(t.amount, currency.decimals), reference: t.reference,
    metadata: t.metadata, parentId: t.parentId, reversesId: t.reversesId, createdAt: t.createdAt,
  })
  const [main, ...rest] = legs
  return { ...one(main), related: rest.map(one) }
}
export type TransferView = ReturnType<typeof transferView>

/** coalescer: posts concurrent single payments together (see ledger/coalescer.ts); null posts each alone. */
export function transferService (pool: pg.Pool, prisma: PrismaClient, currencies: CurrencyService, coalescer: PaymentCoalescer | null = null) {
  const accounts = accountRepo(prisma)
  const transfers = transferRepo(prisma)

  const requirePrincipal = (p: Principal | null): Principal => {
    if (p == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
    return p
  }
  const notSystem = (c: CurrencyInfo, id: string) => {
    if (Object.values(c.system).includes(id)) throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
  }
  /** What an issuer did, for the audit row written with the movement. */
  const audited = (p: Principal, c: CurrencyInfo, action: AuditAction, meta: RequestMeta | undefined, target: string, detail: Record<string, unknown>) =>
    auditRecord(p, action, meta, { target, currencyId: c.id, detail })
  const post = async (c: CurrencyInfo, p: Principal, idem: Idempotency, m: Omit<Movement, 'currencyId' | 'scope' | 'idempotencyKey' | 'requestHash' | 'createdBy'>) => {
    const r = await postMovement(pool, {
      ...m, currencyId: c.id, scope: p.userId, idempotencyKey: idem.key, requestHash: idem.requestHash, createdBy: p.userId,
    })
    return { transfer: transferView(r.legs, c), replayed: r.replayed }
  }

  return {
    /** A payment, and the receiver's fee for its channel as a second transfer in the same transaction. */
    async pay (principal: Principal | null, code: string, b: PaymentInput, idem: Idempotency, meta?: RequestMeta) {
      const p = requirePrincipal(principal)
      const c = await currencies.resolve(code)
      const who = payer(p, c)
      const audit = who.issuer ? audited(p, c, 'payment.create', meta, b.fromAccount, { toAccount: b.toAccount, amount: parseAmount(b.amount, c.decimals).toFixed(c.decimals) }) : null
      const item = { ...paymentItem(c, who, b, idem), audit }
      if (coalescer != null) {
        const r = await coalescer.submit(c.id, c.system.fees, item)
        if (!r.ok) throw r.error
        return { transfer: transferView(r.legs, c), replayed: r.replayed }
      }
      const legs: Leg[] = [{ kind: 'payment', from: item.from, to: item.to, amount: item.amount }]
      if (item.fee.gt(0)) legs.push({ kind: 'fee', from: item.to, to: c.system.fees, amount: item.fee })
      return await post(c, who.principal, idem, {
        legs, channel: b.channel, reference: b.reference, metadata: b.metadata, owner: item.owner, audit,
      })
    },

    /** Sterling received into the reserve; the same amount of currency credited 1:1. */
    async issue (principal: Principal | null, code: string, b: IssuanceInput, idem: Idempotency, meta?: RequestMeta) {
      const c = await currencies.resolve(code)
      currencies.assertIssuer(principal, c.id)
      const amount = parseAmount(b.amount, c.decimals)
      notSystem(c, b.toAccount)
      return await post(c, principal, idem, {
        legs: [{ kind: 'issuance', from: c.system.issuance, to: b.toAccount, amount }],
        reference: b.sterlingReference, reserveDelta: amount, sterlingReference: b.sterlingReference,
        audit: audited(principal, c, 'issuance.create', meta, b.toAccount, { amount: amount.toFixed(c.decimals), sterlingReference: b.sterlingReference }),
      })
    },

    /** A business takes currency back to sterling; the redemption fee is withheld to the fee account. */
    async redeem (principal: Principal | null, code: string, b: RedemptionInput, idem: Idempotency, meta?: RequestMeta) {
      const p = requirePrincipal(principal)
      const c = await currencies.resolve(code)
      const issuer = isIssuerOf(p, c.id)
      if (!issuer && p.role !== 'business') throw new DomainError('FORBIDDEN', 'only a business or an issuer may redeem')
      const amount = parseAmount(b.amount, c.decimals)
      const acct = await accounts.byId(b.fromAccount)
      if (acct == null || acct.currencyId !== c.id || (!issuer && acct.participantId !== p.participantId)) {
        throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
      }
      if (acct.participant?.kind !== 'business') throw new DomainError('NOT_REDEEMABLE', 'only business accounts redeem to sterling')
      const fee = feeFor(amount, c.redemptionFee, c.decimals)
      const net = amount.minus(fee)
      if (net.lte(0)) throw new DomainError('INVALID_AMOUNT', 'amount is too small to redeem after the fee', [{ pointer: '/amount', detail: 'too small' }])
      const legs: Leg[] = [{ kind: 'redemption', from: acct.id, to: c.system.issuance, amount: net }]
      if (fee.gt(0)) legs.push({ kind: 'fee', from: acct.id, to: c.system.fees, amount: fee })
      return await post(c, p, idem, {
        legs, reference: b.sterlingReference, reserveDelta: net.neg(), sterlingReference: b.sterlingReference,
        owner: issuer ? null : p.participantId,
        audit: issuer ? audited(p, c, 'redemption.create', meta, acct.id, { amount: amount.toFixed(c.decimals), fee: fee.toFixed(c.decimals) }) : null,
      })
    },

    /** Reverses a money movement once, by new transfers: its fee is given back before the payment is taken back. */
    async reverse (principal: Principal | null, id: string, idem: Idempotency, meta?: RequestMeta) {
      const p = requirePrincipal(principal)
      // decided by role alone, before anything is looked up: a researcher learns nothing about which ids exist
      if (p.role === 'researcher') throw new DomainError('FORBIDDEN', 'only an issuer of this currency may reverse')
      const legs = await transfers.legs(id)
      if (legs == null) throw new DomainError('TRANSFER_NOT_FOUND', 'transfer not found')
      const c = await currencies.resolveId((await transfers.currencyOf(id))!)
      if (!isIssuerOf(p, c.id)) {
        // a party to the transfer can read it, so it is told it may not reverse it; to anyone else (an issuer of
        // another currency among them) it answers exactly as an unknown id
        const ids = [...new Set(legs.flatMap(t => [t.fromAccount, t.toAccount]))]
        const party = p.participantId != null && (await accounts.byIds(ids)).some(a => a.participantId === p.participantId)
        if (party) throw new DomainError('FORBIDDEN', 'only an issuer of this currency may reverse')
        throw new DomainError('TRANSFER_NOT_FOUND', 'transfer not found')
      }
      const [main] = legs
      if (main.parentId != null) throw new DomainError('NOT_REVERSIBLE', 'reverse the movement\'s main transfer; its fee is reversed with it')
      if (main.kind === 'reversal') throw new DomainError('NOT_REVERSIBLE', 'a reversal cannot itself be reversed')
      const amount = (t: TransferRow) => new Money(t.amount)
      const reserveDelta = main.kind === 'issuance' ? amount(main).neg() : main.kind === 'redemption' ? amount(main) : null
      return await post(c, p, idem, {
        legs: legs.map(t => ({ kind: 'reversal', from: t.toAccount, to: t.fromAccount, amount: amount(t), reverses: t.id })),
        applyOrder: legs.map((_, i) => legs.length - 1 - i),
        reference: `reversal of ${main.id}`, reserveDelta,
        audit: audited(p, c, 'transfer.reverse', meta, main.id, { kind: main.kind, amount: formatMoney(main.amount, c.decimals) }),
      })
    },

    /** One transfer with its related legs: its parties and the currency's issuers may read it. */
    async get (principal: Principal | null, id: string) {
      const p = requirePrincipal(principal)
      if (p.role === 'researcher') throw new DomainError('FORBIDDEN', 'researchers see reports and exports, not transfers')
      const legs = await transfers.legs(id)
      if (legs == null) throw new DomainError('TRANSFER_NOT_FOUND', 'transfer not found')
      const currencyId = (await transfers.currencyOf(id))!
      if (!isIssuerOf(p, currencyId)) {
        const ids = [...new Set(legs.flatMap(t => [t.fromAccount, t.toAccount]))]
        const owned = (await accounts.byIds(ids)).some(a => a.participantId != null && a.participantId === p.participantId)
        if (!owned) throw new DomainError('TRANSFER_NOT_FOUND', 'transfer not found')
      }
      return transferView(legs, await currencies.resolveId(currencyId))
    },

    /** The issuer's search over a currency's transfers, oldest first, keyset-paginated on the time-ordered id. */
    async search (principal: Principal | null, code: string, q: SearchQuery) {
      const c = await currencies.resolve(code)
      currencies.assertIssuer(principal, c.id)
      const after = decodeCursor(q.cursor, [CURSOR_UUID])
      const rows = await transfers.search({
        currencyId: c.id, kind: q.kind, account: q.account, from: parseTime(q.from, 'from'), to: parseTime(q.to, 'to'),
        afterId: after?.[0],
      }, q.limit)
      const page = rows.slice(0, q.limit)
      const last = page.at(-1)
      return {
        items: page.map(t => transferView([t], c)),
        nextCursor: rows.length > q.limit && last != null ? encodeCursor([last.id]) : null,
      }
    },
  }
}
