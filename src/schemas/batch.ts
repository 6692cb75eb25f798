import { Type, type Static } from 'typebox'
import { IDEMPOTENCY_KEY_PATTERN } from './common.js'
import { PaymentCreateSchema, TransferSchema } from './ledger.js'

export const BATCH_MAX_ITEMS = 1000

const ItemFields = {
  idempotencyKey: Type.String({
    minLength: 1, maxLength: 255, pattern: IDEMPOTENCY_KEY_PATTERN,
    description: 'this payment\'s own idempotency key (not white space alone): the same key and fields replay it (also across POST .../payments)',
  }),
  ...PaymentCreateSchema.properties,
}

/**
 * An item with more fields than this fails the whole request (routes/batch.routes.ts): room for a client's few
 * stray fields, each refused on its item, but not for thousands.
 */
export const BATCH_ITEM_MAX_FIELDS = 2 * Object.keys(ItemFields).length

export const BatchItemSchema = Type.Object(ItemFields, {
  additionalProperties: false, maxProperties: BATCH_ITEM_MAX_FIELDS,
  description: 'one payment, with the same fields as POST /v1/currencies/{code}/payments',
})

export const BatchCreateSchema = Type.Object({
  atomic: Type.Optional(Type.Boolean({
    default: false,
    description: 'true: all items are posted or none is (a failing item fails the request); false: each item has its own result',
  })),
  items: Type.Array(BatchItemSchema, { minItems: 1, maxItems: BATCH_MAX_ITEMS, description: `1 to ${BATCH_MAX_ITEMS} payments, posted in this order` }),
}, { additionalProperties: false })

export const BatchResultSchema = Type.Object({
  atomic: Type.Boolean(),
  posted: Type.Integer({ description: 'items posted by this request' }),
  replayed: Type.Integer({ description: 'items whose key had already posted the same payment (replays)' }),
  failed: Type.Integer({ description: 'items refused (each has a problem)' }),
  items: Type.Array(Type.Object({
    index: Type.Integer({ description: 'position in the request (0-based)' }),
    idempotencyKey: Type.String(),
    status: Type.Integer({ description: '201 when posted or replayed; otherwise the status the same payment alone would have had' }),
    replayed: Type.Boolean({ description: 'true when this key had already posted this payment' }),
    transfer: Type.Optional(TransferSchema),
    problem: Type.Optional(Type.Ref('Problem')),
  })),
}, { description: 'one result per item, in request order' })

export type BatchCreate = Static<typeof BatchCreateSchema>
export type BatchItem = Static<typeof BatchItemSchema>
