import { Type, type Static } from 'typebox'
import { AmountString, NextCursor, Nullable, PageQuery, Timestamp, Uuid } from './common.js'

// Standing orders (docs/scheme-operations.md).

const DateString = (description: string) => Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', description: `${description} (YYYY-MM-DD)` })

export const ScheduleSchema = Type.Object({
  every: Type.Enum(['week', 'month'], { description: 'how often' }),
  day: Type.Integer({ minimum: 1, maximum: 31, description: 'week: ISO weekday, 1 Monday .. 7 Sunday; month: day of the month, 1-31 (29-31 fall on a shorter month\'s last day)' }),
}, { additionalProperties: false })

export const StandingOrderCreateSchema = Type.Object({
  toAccount: Uuid('the account paid'),
  amount: AmountString('paid at each due date'),
  reference: Type.String({ minLength: 1, maxLength: 140, description: 'shown on both statements, e.g. "wages" or "business rates"' }),
  schedule: ScheduleSchema,
  startsOn: DateString('the first day the order may be due; today or later'),
  endsOn: Type.Optional(DateString('the last day the order may be due; open-ended when left out')),
}, { additionalProperties: false })
export type StandingOrderCreate = Static<typeof StandingOrderCreateSchema>

export const StandingOrderSchema = Type.Object({
  id: Uuid('standing order id'),
  currency: Type.String(),
  fromAccount: Uuid('the account that pays'),
  toAccount: Uuid('the account paid'),
  amount: Type.String({ description: 'decimal string' }),
  reference: Type.String(),
  schedule: ScheduleSchema,
  startsOn: Type.String({ description: 'YYYY-MM-DD' }),
  endsOn: Nullable(Type.String({ description: 'YYYY-MM-DD' })),
  nextDue: Nullable(Type.String({ description: 'the next due date not yet reached by the scheduler (YYYY-MM-DD); null when none remains' })),
  status: Type.Enum(['active', 'cancelled', 'finished']),
  createdAt: Timestamp('created'),
  cancelledAt: Nullable(Timestamp('cancelled')),
  endReason: Nullable(Type.Object({
    code: Type.String({ description: 'ACCOUNT_CLOSED' }),
    detail: Type.String(),
  }, { description: 'why the scheduler ended (cancelled) the order: its paying or paid account is closed; null when its owner or an issuer cancelled it, or it has not ended' })),
})

export const StandingOrderPageSchema = Type.Object({ items: Type.Array(StandingOrderSchema), nextCursor: NextCursor })
export const StandingOrderListQuerySchema = Type.Object({
  status: Type.Optional(Type.Enum(['active', 'cancelled', 'finished'])),
  ...PageQuery,
}, { additionalProperties: false })
export type StandingOrderListQuery = Static<typeof StandingOrderListQuerySchema>

export const AccountOrderParams = Type.Object({ id: Uuid('the paying account'), orderId: Uuid('standing order id') })

export const OccurrenceSchema = Type.Object({
  id: Uuid('occurrence id'),
  dueOn: Type.String({ description: 'the due date (YYYY-MM-DD)' }),
  status: Type.Enum(['pending', 'retrying', 'paid', 'failed', 'cancelled'], {
    description: 'pending: not tried yet; retrying: refused once, tried again on nextAttemptOn; paid; failed: refused twice; cancelled: the order was cancelled first',
  }),
  transferId: Nullable(Uuid('the payment, when paid')),
  attempts: Type.Integer(),
  nextAttemptOn: Nullable(Type.String({ description: 'when it is tried (again), for pending and retrying (YYYY-MM-DD)' })),
  failure: Nullable(Type.Object({ code: Type.String({ description: 'the ledger\'s refusal, e.g. INSUFFICIENT_FUNDS' }), detail: Type.String() })),
  lastAttemptAt: Nullable(Timestamp('the last attempt')),
})
export const OccurrencePageSchema = Type.Object({ items: Type.Array(OccurrenceSchema), nextCursor: NextCursor })
export const OccurrenceQuerySchema = Type.Object({ ...PageQuery }, { additionalProperties: false })
