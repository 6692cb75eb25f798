import { DomainError } from '../domain/errors.js'
import { feeFor, parseAmount } from '../domain/money.js'
import { isIssuerOf, isParticipant, type Principal } from '../domain/principal.js'
import type { PaymentItem } from '../ledger/batch-path.js'
import type { CurrencyInfo } from './currency.service.js'
import type { Idempotency, PaymentInput } from './transfer.service.js'

// The rules a payment must pass before it reaches the ledger, shared by POST .../payments and every item of
// POST .../transfers/batch, so the two cannot drift apart.

/** Who may pay in this currency: its issuers (from any account) and its members and businesses (their own). */
export function payer (p: Principal | null, c: CurrencyInfo): { principal: Principal, issuer: boolean } {
  if (p == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
  const issuer = isIssuerOf(p, c.id)
  if (!issuer && !isParticipant(p)) throw new DomainError('FORBIDDEN', 'only a member, a business or an issuer may pay')
  if (!issuer && p.currencyId !== c.id) throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
  return { principal: p, issuer }
}

/** One payment checked and priced (the receiver's channel fee), ready for the ledger; `field` prefixes pointers. */
export function paymentItem (c: CurrencyInfo, who: { principal: Principal, issuer: boolean }, b: PaymentInput, idem: Idempotency, field = ''): PaymentItem {
  const amount = parseAmount(b.amount, c.decimals, `${field}amount`)
  if (b.fromAccount === b.toAccount) throw new DomainError('SAME_ACCOUNT', 'payer and payee must be different accounts')
  const system = Object.values(c.system)
  if (system.includes(b.fromAccount) || system.includes(b.toAccount)) throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
  return {
    scope: who.principal.userId, idempotencyKey: idem.key, requestHash: idem.requestHash, createdBy: who.principal.userId,
    owner: who.issuer ? null : who.principal.participantId, from: b.fromAccount, to: b.toAccount, amount,
    fee: feeFor(amount, c.fees[b.channel], c.decimals), channel: b.channel, reference: b.reference ?? null,
    metadata: b.metadata ?? null,
  }
}
