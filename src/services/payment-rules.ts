import { DomainError } from '../domain/errors.js'
import { parseAmount } from '../domain/money.js'
import { payment } from '../domain/movements.js'
import { isIssuerOf, isParticipant, type Principal } from '../domain/principal.js'
import type { MovementItem } from '../ledger/post.js'
import type { PaymentCreate } from '../schemas/ledger.js'
import type { CurrencyInfo } from './currency.service.js'
import type { Idempotency } from './transfer.service.js'

// Who may pay, and a payment request made into a movement: shared by POST .../payments and every item of
// POST .../transfers/batch, so the two cannot drift apart.

export interface Payer { principal: Principal, issuer: boolean }

export const isSystemAccount = (c: CurrencyInfo, account: string) => Object.values(c.system).includes(account)

/** Who may pay in this currency: its issuers (from any account) and its members and businesses (their own). */
export function payer (p: Principal | null, c: CurrencyInfo): Payer {
  if (p == null) throw new DomainError('UNAUTHENTICATED', 'this route needs a bearer token (POST /v1/auth/token)')
  const issuer = isIssuerOf(p, c.id)
  if (!issuer && !isParticipant(p)) throw new DomainError('FORBIDDEN', 'only a member, a business or an issuer may pay')
  if (!issuer && p.currencyId !== c.id) throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
  return { principal: p, issuer }
}

/** One payment parsed and priced (the receiver's channel fee), ready for the ledger; `field` prefixes pointers. */
export function paymentItem (c: CurrencyInfo, who: Payer, b: PaymentCreate, idem: Idempotency, field = ''): MovementItem {
  const amount = parseAmount(b.amount, c.decimals, `${field}amount`)
  // The channel sets the receiver's fee, so a payer may name only how it could have paid. A text payment is made
  // by the SMS gateway's route, which names the channel itself: a member or business claiming one over HTTP would
  // choose the receiver's fee (text's rate) for a payment that never went by text. An issuer may still record one
  // by hand, as when the gateway was down.
  if (b.channel === 'text' && !who.issuer) {
    throw new DomainError('CHANNEL_RESERVED', 'channel text is for payments made by text message, which the SMS gateway posts itself; this one came over the API',
      [{ pointer: `/${field}channel`, detail: 'text is the SMS gateway\'s channel; name how this payment was made (app, online, api or till)' }])
  }
  // system accounts are not parties to a payment; to a payer they do not exist
  if (isSystemAccount(c, b.fromAccount) || isSystemAccount(c, b.toAccount)) throw new DomainError('ACCOUNT_NOT_FOUND', 'account not found')
  return {
    ...payment(c, { from: b.fromAccount, to: b.toAccount, amount, channel: b.channel, reference: b.reference, metadata: b.metadata }),
    scope: who.principal.userId, idempotencyKey: idem.key, requestHash: idem.requestHash, createdBy: who.principal.userId,
    // a member or business pays only from its own accounts; the ledger checks it under the account's lock
    owner: who.issuer ? null : who.principal.participantId,
  }
}
