import { Type, type Static } from 'typebox'
import { PIN_PATTERN, TEXT_CODE_PATTERN } from '../domain/sms.js'
import { MultilineText, NextCursor, Nullable, PageQuery, Timestamp, Uuid } from './common.js'

// Pay by text (docs/text-payments.md).

export const TextCode = Type.String({
  pattern: TEXT_CODE_PATTERN,
  description: 'the business\'s code for payments by text ("PAY <code> <amount> <PIN>"): 3-12 letters and digits starting with a letter, ' +
    'stored upper-case, unique in the currency',
  examples: ['MONTPELIER'],
})

export const PhoneBodySchema = Type.Object({
  phone: Type.String({ minLength: 8, maxLength: 16, description: 'mobile number in E.164 form, e.g. "+447911123456"; a code is texted to it' }),
}, { additionalProperties: false })

export const VerificationBodySchema = Type.Object({
  code: Type.String({ pattern: '^[0-9]{6}$', description: 'the 6-digit code texted to the number' }),
}, { additionalProperties: false })

export const TextPinBodySchema = Type.Object({
  pin: Type.String({ pattern: PIN_PATTERN, description: '4 to 8 digits; stored only as a scrypt hash. Setting it also lifts a lock after wrong PINs' }),
}, { additionalProperties: false })

export const ParticipantPatchSchema = Type.Object({
  textCode: Nullable(TextCode),
}, { additionalProperties: false, minProperties: 1 })

export const TextSettingsSchema = Type.Object({
  participantId: Uuid('participant id'),
  phone: Nullable(Type.String({ description: 'the verified number texts are accepted from; null until one is verified' })),
  pendingPhone: Nullable(Type.String({ description: 'a number waiting for its code to be confirmed' })),
  codeExpiresAt: Nullable(Timestamp('when the pending code expires')),
  pinSet: Type.Boolean({ description: 'a text PIN is set' }),
  locked: Type.Boolean({ description: 'text payments are locked after too many wrong PINs in a row, until the PIN is set again' }),
  textCode: Nullable(Type.String({ description: 'a business\'s text code' })),
})

// The gateway's webhook: the form fields of an incoming text (Twilio's names). Other fields the gateway sends are
// accepted, signed over and ignored.
export const InboundSchema = Type.Object({
  From: Type.String({ maxLength: 40, description: 'the sender\'s number (E.164)' }),
  To: Type.String({ maxLength: 40, description: 'the scheme\'s number the text was sent to' }),
  Body: MultilineText({ maxLength: 1600, description: 'the text, e.g. "PAY MONTPELIER 5.00 1234"' }),
  MessageSid: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'the gateway\'s id of the message: the idempotency key' }),
}, { additionalProperties: Type.Union([Type.String({ 'x-text': 'multiline' }), Type.Array(Type.String({ 'x-text': 'multiline' }))]) })

export const InboundHeadersSchema = Type.Object({
  'x-twilio-signature': Type.Optional(Type.String({ maxLength: 200, description: 'base64 HMAC-SHA1 of the webhook URL and the sorted form fields, keyed with SMS_AUTH_TOKEN' })),
})

export const OutboxQuerySchema = Type.Object({
  currency: Type.Optional(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{1,9}$', description: 'currency code; an issuer\'s own currency by default' })),
  status: Type.Optional(Type.Enum(['queued', 'sent', 'failed'])),
  ...PageQuery,
}, { additionalProperties: false })

export const OutboxPageSchema = Type.Object({
  items: Type.Array(Type.Object({
    id: Uuid('outgoing text id (time-ordered)'),
    currency: Nullable(Type.String({ description: 'currency code; null for a reply to a number no participant has' })),
    participantId: Nullable(Uuid('the participant texted')),
    to: Type.String({ description: 'E.164 number' }),
    purpose: Type.Enum(['verification', 'reply', 'receipt']),
    body: Type.String({ description: 'the text; a verification code is shown as ******' }),
    inReplyTo: Nullable(Type.String({ description: 'the MessageSid of the text it answers' })),
    status: Type.Enum(['queued', 'sent', 'failed']),
    attempts: Type.Integer({ description: 'delivery attempts by the gateway adapter' }),
    createdAt: Timestamp('queued at'),
    sentAt: Nullable(Timestamp('handed to the gateway at')),
  })),
  nextCursor: NextCursor,
})

export type PhoneBody = Static<typeof PhoneBodySchema>
export type VerificationBody = Static<typeof VerificationBodySchema>
export type TextPinBody = Static<typeof TextPinBodySchema>
export type ParticipantPatch = Static<typeof ParticipantPatchSchema>
export type OutboxQuery = Static<typeof OutboxQuerySchema>
export type TextSettings = Static<typeof TextSettingsSchema>
