import { Type, type Static } from 'typebox'
import { AmountString, FormatQuery, MultilineText, NextCursor, Nullable, PageQuery, RateString, SignedAmountString, Timestamp, Uuid } from './common.js'

export const ChannelSchema = Type.Enum(['text', 'app', 'online', 'api', 'till'], {
  description: 'how the payment was made; the receiver pays the currency\'s fee for it',
})
export type Channel = Static<typeof ChannelSchema>
export const CHANNELS = ChannelSchema.enum as readonly Channel[]
/** The channel as a payer names it over the API (src/services/payment-rules.ts says why text is refused). */
export const PayChannelSchema = Type.Enum([...CHANNELS], {
  description: 'how the payer paid; the receiver pays the currency\'s fee for it. text is for payments by text message, which the SMS gateway posts itself: named here by a member, a business or an API key it is 422 CHANNEL_RESERVED (an issuer may record one by hand)',
})
export const SECTORS = ['food', 'cafes-pubs', 'retail', 'services', 'trades', 'arts', 'health', 'other'] as const
const Sector = Type.Enum([...SECTORS], { description: 'business sector, for the directory and sector flows' })
export const TransferKindSchema = Type.Enum(['payment', 'fee', 'issuance', 'redemption', 'reversal', 'note_sale', 'note_deposit', 'note_buyback', 'note_withdrawal'])
export type TransferKind = Static<typeof TransferKindSchema>
const STATUSES = ['active', 'frozen', 'closed'] as const
const Status = Type.Enum(STATUSES)
export type AccountStatus = Static<typeof Status>
export const Username = Type.String({ minLength: 3, maxLength: 64, pattern: '^[A-Za-z0-9._@-]+$', description: 'login name, unique in the deployment' })
export const Password = Type.String({ minLength: 8, maxLength: 200, description: 'at least 8 characters, not only spaces, not the username, not one character repeated, not one of the commonest passwords (422 otherwise); stored only as a scrypt hash' })
/** A name someone reads (x-text: name: at least one visible character; src/domain/text.ts). */
export const Name = (d: string, maxLength = 200) => Type.String({ minLength: 1, maxLength, description: d, 'x-text': 'name' })
const Postcode = Type.String({ minLength: 5, maxLength: 10, description: 'UK postcode, e.g. "BS6 5AB"' })
const Fees = Type.Object({
  text: RateString('fee on text payments'), app: RateString('fee on app payments'),
  online: RateString('fee on online payments'), api: RateString('fee on API payments'), till: RateString('fee on till payments'),
}, { additionalProperties: false })

const TimeZone = Type.String({
  minLength: 1, maxLength: 64,
  description: 'IANA time zone, e.g. "Europe/London" (UTC when left out at creation): the currency\'s reports, their days, weeks and months, its holding days and its standing orders\' due dates are local to it. Fixed once the currency has a transfer',
})

export const CurrencyCreateSchema = Type.Object({
  code: Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{1,9}$', description: 'short code, stored upper-case, e.g. BRS' }),
  name: Name('display name, e.g. "Bristol Pound"'),
  backing: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$', default: 'GBP', description: 'ISO 4217 code of the backing currency' })),
  decimals: Type.Optional(Type.Integer({ minimum: 0, maximum: 6, default: 2, description: 'minor-unit digits' })),
  // Type.Partial drops the object options: additionalProperties is given again, or a misspelt fee would vanish
  fees: Type.Optional(Type.Partial(Fees, { additionalProperties: false })),
  redemptionFee: Type.Optional(RateString('fee withheld when a business redeems to sterling')),
  localAreas: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 4 }), {
    maxItems: 500, description: 'postcode areas ("BS") or districts ("BS6") that count as local',
  })),
  timeZone: Type.Optional(TimeZone),
}, { additionalProperties: false })

export const CurrencyUpdateSchema = Type.Object({
  timeZone: TimeZone,
}, { additionalProperties: false })

export const CurrencySchema = Type.Object({
  code: Type.String(), name: Type.String(), backing: Type.String(), decimals: Type.Integer(),
  fees: Fees, redemptionFee: Type.String(), localAreas: Type.Array(Type.String()),
  timeZone: Type.String({ description: 'IANA time zone whose local days, weeks and months the reports use' }),
  systemAccounts: Type.Object({
    issuance: Uuid('mirrors all currency issued and not redeemed (negative)'),
    fees: Uuid('fee income'),
    paper: Uuid('paper notes in circulation'),
  }),
  createdAt: Timestamp('when the currency was created'),
})

export const MemberCreateSchema = Type.Object({
  name: Name('the member\'s name (never shown in the directory or to researchers)'),
  postcode: Postcode, username: Username, password: Password,
}, { additionalProperties: false })

export const BusinessCreateSchema = Type.Object({
  tradingName: Name('name shown in the public directory'), sector: Sector, postcode: Postcode,
  independent: Type.Boolean({ description: 'independently owned (not a chain)' }),
  username: Username, password: Password,
  textCode: Type.Optional(Type.String({
    pattern: '^[A-Za-z][A-Za-z0-9]{2,11}$',
    description: 'code for payments by text ("PAY <code> <amount> <PIN>"): 3-12 letters and digits starting with a letter, stored upper-case, unique in the currency',
  })),
}, { additionalProperties: false })

export const RegisteredSchema = Type.Object({ id: Uuid('participant id'), accountId: Uuid('its account') })

/** A directory cursor's length at most: base64url of ["<trading name>","<uuid>"] (7 + 36 bytes besides the name), the
 *  name up to 200 code points of up to 4 UTF-8 bytes each (names hold no character JSON escapes longer than that). */
export const DIRECTORY_CURSOR_LENGTH = Math.ceil((200 * 4 + 7 + 36) / 3) * 4

export const DirectoryQuerySchema = Type.Object({
  q: Type.Optional(Type.String({ maxLength: 100, description: 'part of the trading name' })),
  sector: Type.Optional(Sector),
  district: Type.Optional(Type.String({ pattern: '^[A-Za-z]{1,2}[0-9][0-9A-Za-z]?$', description: 'postcode district, e.g. BS6' })),
  ...PageQuery,
  // the directory's cursor holds the last trading name and an id: up to 1,124 characters, where PageQuery's 200 refused
  // the cursor after a long name (about 100 ASCII characters or more), so the listing could not go past it
  cursor: Type.Optional(Type.String({ maxLength: DIRECTORY_CURSOR_LENGTH, description: 'opaque cursor from the previous page\'s nextCursor' })),
}, { additionalProperties: false })

export const DirectoryPageSchema = Type.Object({
  items: Type.Array(Type.Object({
    id: Uuid('business id'), tradingName: Type.String(), sector: Type.String(), district: Type.String(),
    independent: Type.Boolean(), local: Type.Boolean({ description: 'sits in one of the currency\'s local areas' }),
    textCode: Nullable(Type.String({ description: 'its code for payments by text; null when it takes none' })),
  })),
  nextCursor: NextCursor,
})

export const AccountSchema = Type.Object({
  id: Uuid('account id'), currency: Type.String(),
  participantId: Nullable(Uuid('owner; null for a system account')),
  systemKind: Nullable(Type.String({ description: 'issuance, fees or paper for system accounts' })),
  balance: Type.String({ description: 'decimal string' }),
  floor: Nullable(Type.String({ description: 'lowest balance allowed; null: none' })),
  ceiling: Nullable(Type.String({ description: 'highest balance allowed; null: none' })),
  status: Status, createdAt: Timestamp('created'), updatedAt: Timestamp('last changed'),
})

export const AccountPatchSchema = Type.Object({
  status: Type.Optional(Type.Enum(STATUSES, { description: 'closed only when the balance is zero (409 ACCOUNT_NOT_EMPTY); a system account never closes' })),
  floor: Type.Optional(Nullable(Type.String({ maxLength: 30, description: 'decimal string; null removes the floor' }))),
  ceiling: Type.Optional(Nullable(Type.String({ maxLength: 30, description: 'decimal string; null removes the ceiling' }))),
}, { additionalProperties: false, minProperties: 1 })

export const ParticipantSchema = Type.Object({
  id: Uuid('participant id'), kind: Type.Enum(['member', 'business']),
  currency: Type.String(), name: Type.String(), postcode: Type.String(), district: Type.String(),
  sector: Nullable(Type.String()), independent: Nullable(Type.Boolean()),
  accounts: Type.Array(AccountSchema), createdAt: Timestamp('registered'),
  loginSuspendedAt: Nullable(Timestamp('when an issuer suspended this participant\'s login; null when it is not suspended')),
  textCode: Nullable(Type.String({ description: 'a business\'s code for payments by text; null when it has none' })),
})

export const StatementQuerySchema = Type.Object({
  from: Type.Optional(Type.String({ format: 'date-time', description: 'entries at or after this time; with from or to, a page looks at no more than STATEMENT_WINDOW (1,000) entries, so it may be shorter than limit, even empty, while nextCursor goes on: follow nextCursor until it is null' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'entries before this time (see from: a ranged page may be short or empty while nextCursor goes on)' })),
  format: FormatQuery(),
  order: Type.Optional(Type.Enum(['oldest', 'newest'], {
    default: 'oldest',
    description: 'oldest first (the running balance read forward), or newest first (the latest entries on the first page); a cursor continues in the order it was made in',
  })),
  ...PageQuery,
}, { additionalProperties: false })

export const StatementSchema = Type.Object({
  account: Uuid('account id'), currency: Type.String(),
  items: Type.Array(Type.Object({
    entryId: Type.String({ description: 'position in the account\'s history' }),
    transferId: Uuid('the transfer'), kind: TransferKindSchema, channel: Nullable(ChannelSchema),
    counterparty: Uuid('the other account'),
    amount: SignedAmountString('signed: negative when money left the account'),
    balanceAfter: Type.String({ description: 'the running balance after this entry' }),
    reference: Nullable(Type.String()), createdAt: Timestamp('when'),
  })),
  nextCursor: NextCursor,
})

/**
 * Metadata keys the service writes itself on the payments it makes (payment-request.service.ts,
 * scheduler/standing-orders.ts): a client may not send them, or a plain payment could pass for a payment request's
 * or a standing order's to whoever reconciles by them.
 */
export const SERVICE_METADATA_KEYS = ['paymentRequest', 'standingOrder', 'dueOn'] as const
const Metadata = Type.Record(Type.String(), MultilineText({ maxLength: 500, description: 'a value (several lines allowed)' }), {
  maxProperties: 20,
  // TypeBox keeps no constraint of a record's key schema in JSON Schema; propertyNames does
  propertyNames: { type: 'string', minLength: 1, maxLength: 40, not: { enum: [...SERVICE_METADATA_KEYS] } },
  description: `up to 20 string values the client wants kept with the transfer (e.g. till receipt number); keys of 1-40 characters, other than those the service writes itself on the payments it makes (${SERVICE_METADATA_KEYS.join(', ')})`,
})
const Reference = Type.String({ maxLength: 140, description: 'free text shown on both statements' })

export const PaymentCreateSchema = Type.Object({
  fromAccount: Uuid('payer account'), toAccount: Uuid('payee account'),
  amount: AmountString('amount the payer pays'), channel: PayChannelSchema,
  reference: Type.Optional(Reference), metadata: Type.Optional(Metadata),
}, { additionalProperties: false })

export const IssuanceCreateSchema = Type.Object({
  toAccount: Uuid('account credited'), amount: AmountString('sterling received = currency issued'),
  sterlingReference: Type.String({ minLength: 1, maxLength: 140, description: 'the sterling payment this issuance matches (bank reference)' }),
}, { additionalProperties: false })

export const ReversalCreateSchema = Type.Object({
  reason: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'why it is reversed, kept in the audit trail' })),
  sterlingReference: Type.Optional(Type.String({ minLength: 1, maxLength: 140, description: 'for a movement of sterling (an issuance, a redemption, a note sale, buyback or withdrawal): the sterling payment that puts it right (bank reference), shown in the reserve\'s reconciliation' })),
}, { additionalProperties: false, description: 'optional: a reversal may be sent with no body' })

export const RedemptionCreateSchema = Type.Object({
  fromAccount: Uuid('business account redeeming'), amount: AmountString('currency taken from the account, fee included'),
  sterlingReference: Type.Optional(Type.String({ maxLength: 140, description: 'the sterling payout reference' })),
}, { additionalProperties: false })

const TransferFields = {
  id: Uuid('transfer id (time-ordered UUIDv7)'), currency: Type.String(), kind: TransferKindSchema, channel: Nullable(ChannelSchema),
  fromAccount: Uuid('debited account'), toAccount: Uuid('credited account'),
  amount: Type.String({ description: 'decimal string' }), reference: Nullable(Type.String()),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  parentId: Nullable(Uuid('the main transfer of the movement this leg belongs to')),
  reversesId: Nullable(Uuid('the transfer this one reverses')), createdAt: Timestamp('when it was posted'),
}
export const TransferLegSchema = Type.Object(TransferFields)
export const TransferSchema = Type.Object({
  ...TransferFields,
  related: Type.Array(TransferLegSchema, { description: 'the other legs of the same money movement (its fee)' }),
})

/** What a client of the transfer search must know about its pages (openapi.yaml's description of the route). */
export const TRANSFER_SEARCH_DESCRIPTION = 'Oldest first: in id order, or with account in the order the account\'s movements were posted in. ' +
  'With kind, from or to a page looks at no more than TRANSFER_WINDOW (1,000) transfers after its cursor (with account, the account\'s), ' +
  'so it may be shorter than limit, even empty, while nextCursor goes on: follow nextCursor until it is null. ' +
  'Without account, from also says where the walk starts (no page is spent on what came before it); to does not end it. ' +
  'A cursor goes on only in a search of the same account (or of none); another answers 400 INVALID_CURSOR.'

export const TransferSearchQuerySchema = Type.Object({
  kind: Type.Optional(TransferKindSchema),
  account: Type.Optional(Uuid('transfers from or to this account')),
  from: Type.Optional(Type.String({ format: 'date-time' })),
  to: Type.Optional(Type.String({ format: 'date-time' })),
  ...PageQuery,
}, { additionalProperties: false })
export const TransferPageSchema = Type.Object({ items: Type.Array(TransferSchema), nextCursor: NextCursor })

export type PaymentCreate = Static<typeof PaymentCreateSchema>
export type IssuanceCreate = Static<typeof IssuanceCreateSchema>
export type RedemptionCreate = Static<typeof RedemptionCreateSchema>
export type ReversalCreate = Static<typeof ReversalCreateSchema>
export type TransferSearchQuery = Static<typeof TransferSearchQuerySchema>
export type AccountPatch = Static<typeof AccountPatchSchema>
export type StatementQuery = Static<typeof StatementQuerySchema>
export type MemberCreate = Static<typeof MemberCreateSchema>
export type BusinessCreate = Static<typeof BusinessCreateSchema>
export type CurrencyCreate = Static<typeof CurrencyCreateSchema>
export type CurrencyUpdate = Static<typeof CurrencyUpdateSchema>
export type DirectoryQuery = Static<typeof DirectoryQuerySchema>
