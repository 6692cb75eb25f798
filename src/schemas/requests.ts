import { Type, type Static } from 'typebox'
import { AmountString, NextCursor, Nullable, PageQuery, Timestamp, Uuid } from './common.js'
import { PayChannelSchema } from './ledger.js'

// Payment requests (src/services/payment-request.service.ts, docs/shop.md).

export const REQUEST_STATUSES = ['pending', 'paid', 'cancelled', 'declined', 'expired'] as const
export type RequestStatus = typeof REQUEST_STATUSES[number]
const Status = Type.Enum([...REQUEST_STATUSES], {
  description: 'pending until paid (once), cancelled by the payee, declined by a payer, or expired at expiresAt',
})

/** The longest a request may stay payable: 7 days. */
export const MAX_EXPIRES_IN_SECONDS = 7 * 24 * 3600
export const DEFAULT_EXPIRES_IN_SECONDS = 900

export const PaymentRequestCreateSchema = Type.Object({
  toAccount: Uuid('the business\'s account the payment goes to'),
  amount: AmountString('amount asked'),
  reference: Type.Optional(Type.String({ maxLength: 140, description: 'why: shown to the payer and on both statements' })),
  fromAccount: Type.Optional(Uuid('ask this account only: then only its owner may pay or decline. Left out: anyone of the currency holding the link may pay, and nobody may decline')),
  expiresInSeconds: Type.Optional(Type.Integer({
    minimum: 1, maximum: MAX_EXPIRES_IN_SECONDS, default: DEFAULT_EXPIRES_IN_SECONDS,
    description: `how long the request may be paid (default ${DEFAULT_EXPIRES_IN_SECONDS} s, at most 7 days)`,
  })),
}, { additionalProperties: false })

export const PaymentRequestSchema = Type.Object({
  id: Uuid('payment request id: a capability, like a payment link'),
  currency: Type.String(),
  status: Status,
  toAccount: Uuid('payee account'),
  fromAccount: Nullable(Uuid('the only account that may pay it; null: anyone of the currency holding the id')),
  payee: Type.Object({
    name: Type.String({ description: 'the payee\'s trading name (or a member\'s name)' }),
    kind: Type.Enum(['member', 'business']),
  }),
  amount: Type.String({ description: 'decimal string' }),
  reference: Nullable(Type.String()),
  expiresAt: Timestamp('after this it can no longer be paid'),
  createdAt: Timestamp('when it was made'),
  updatedAt: Timestamp('when its status last changed'),
  payUrl: Type.String({ description: 'the page that pays it: /pay/{id} on this service' }),
  qr: Type.String({ description: 'the text its QR code encodes: the pay URL with ?currency=&amount= (docs/shop.md, "QR format")' }),
  transferId: Nullable(Uuid('the payment\'s main transfer, once paid (shown to the payee, the payer and issuers)')),
  payer: Nullable(Type.Object({
    accountId: Uuid('the account that paid, or (addressed) declined'),
    name: Type.String({ description: 'the payer\'s display name' }),
  }, { description: 'who paid or declined; shown to the payee, the payer and issuers only' })),
})

export const PaymentRequestPaySchema = Type.Object({
  fromAccount: Uuid('the payer\'s account'),
  channel: PayChannelSchema,
}, { additionalProperties: false, description: 'the amount and the payee come from the request, never from the payer' })

export const PaymentRequestGetQuerySchema = Type.Object({
  waitSeconds: Type.Optional(Type.Integer({
    minimum: 0, maximum: 30,
    description: 'long-poll: while the request is pending, answer when its status changes or after this many seconds',
  })),
}, { additionalProperties: false })

export const PaymentRequestListQuerySchema = Type.Object({
  status: Type.Optional(Status),
  ...PageQuery,
}, { additionalProperties: false })

export const PaymentRequestPageSchema = Type.Object({
  items: Type.Array(PaymentRequestSchema, { description: 'newest first: asked by the account, asked of it, or paid or declined from it' }),
  nextCursor: NextCursor,
})

export type PaymentRequestCreate = Static<typeof PaymentRequestCreateSchema>
export type PaymentRequestPay = Static<typeof PaymentRequestPaySchema>
export type PaymentRequestView = Static<typeof PaymentRequestSchema>
export type PaymentRequestListQuery = Static<typeof PaymentRequestListQuerySchema>
