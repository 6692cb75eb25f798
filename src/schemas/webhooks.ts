import { Type, type Static } from 'typebox'
import { EVENT_TYPES } from '../events/record.js'
import { NextCursor, Nullable, PageQuery, Timestamp, Uuid } from './common.js'

const EventType = Type.Enum([...EVENT_TYPES], { description: 'an event type' })

/** A url's length at most, as sent and as stored (normalised, which percent-encodes: checkUrlForm), as the table's CHECK. */
export const MAX_URL_LENGTH = 2000

export const WebhookCreateSchema = Type.Object({
  url: Type.String({ minLength: 8, maxLength: MAX_URL_LENGTH, description: 'where events are POSTed: https (http only where the operator allows it); no private, loopback or link-local address' }),
  events: Type.Array(EventType, { minItems: 1, maxItems: EVENT_TYPES.length, description: 'the event types to send' }),
  description: Type.Optional(Type.String({ maxLength: 200, description: 'what the endpoint is, for you' })),
  currency: Type.Optional(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{1,9}$', description: 'the currency code: needed by the platform issuer; anyone else may leave it out (it must be their own)' })),
}, { additionalProperties: false })
export type WebhookCreate = Static<typeof WebhookCreateSchema>

const WebhookFields = {
  id: Uuid('webhook id'),
  url: Type.String(),
  events: Type.Array(EventType),
  description: Nullable(Type.String()),
  currency: Type.String({ description: 'currency code' }),
  participantId: Nullable(Uuid('the business whose accounts\' events are sent; null: every account of the currency (an issuer\'s endpoint)')),
  status: Type.Enum(['active', 'disabled'], { description: 'disabled: after repeated failures (see disabledReason); a retry of one of its deliveries enables it again' }),
  disabledReason: Nullable(Type.String()),
  createdAt: Timestamp('created'),
}
export const WebhookSchema = Type.Object(WebhookFields)
export const WebhookCreatedSchema = Type.Object({
  ...WebhookFields,
  secret: Type.String({ description: 'the signing secret (whsec_...): shown this once. Verify each request\'s webhook-signature with it (Standard Webhooks)' }),
})
export const WebhookRotatedSchema = Type.Object({
  ...WebhookCreatedSchema.properties,
  previousSecretExpiresAt: Timestamp('until then the secret this one replaced signs each request too (two signatures in webhook-signature)'),
})
export const WebhookPageSchema = Type.Object({ items: Type.Array(WebhookSchema), nextCursor: NextCursor })
export const WebhookListQuerySchema = Type.Object({ ...PageQuery }, { additionalProperties: false })

export const DeliverySchema = Type.Object({
  id: Uuid('delivery id: the webhook-id header of every attempt'),
  eventId: Type.String({ description: 'the event id (as in the event stream)' }),
  eventType: EventType,
  status: Type.Enum(['pending', 'delivered', 'failed'], { description: 'pending: not yet delivered, retried with backoff; failed: given up (see lastError)' }),
  attempts: Type.Integer({ description: 'attempts made' }),
  lastStatusCode: Nullable(Type.Integer({ description: 'the HTTP status of the last attempt; null when no answer came' })),
  lastLatencyMs: Nullable(Type.Integer()),
  lastError: Nullable(Type.String({ description: 'why the last attempt failed; also says when the endpoint was disabled' })),
  lastAttemptAt: Nullable(Timestamp('last attempt')),
  nextAttemptAt: Nullable(Timestamp('next attempt, while pending')),
  deliveredAt: Nullable(Timestamp('delivered')),
  createdAt: Timestamp('created, with its event'),
})
export const DeliveryPageSchema = Type.Object({ items: Type.Array(DeliverySchema), nextCursor: NextCursor })
export const DeliveryListQuerySchema = Type.Object({
  ...PageQuery,
  status: Type.Optional(Type.Enum(['pending', 'delivered', 'failed'])),
}, { additionalProperties: false })
export type DeliveryListQuery = Static<typeof DeliveryListQuerySchema>
export const DeliveryParams = Type.Object({ id: Uuid('webhook id'), deliveryId: Uuid('delivery id') })
