import { Type, type Static } from 'typebox'
import { AmountString, FormatQuery, Nullable, Timestamp, Uuid } from './common.js'

// Paper notes and the sterling reserve (docs/scheme-operations.md).

/** The note values a scheme prints. A count per value; the face values must sum to the amount. */
export const DENOMINATIONS = ['1', '5', '10', '20'] as const
const Count = (d: string) => Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, description: `number of ${d} notes` }))
export const DenominationsSchema = Type.Object(
  Object.fromEntries(DENOMINATIONS.map(d => [d, Count(d)])) as Record<typeof DENOMINATIONS[number], ReturnType<typeof Count>>,
  { additionalProperties: false, minProperties: 1, description: 'notes by face value, e.g. {"5": 2, "10": 1}; their face values must sum to the amount' }
)
export type Denominations = Static<typeof DenominationsSchema>

const SterlingReference = (d: string) => Type.String({ minLength: 1, maxLength: 140, description: d })

export const NoteSaleSchema = Type.Object({
  amount: AmountString('face value of the notes sold = sterling received'),
  denominations: DenominationsSchema,
  sterlingReference: SterlingReference('the sterling received for the notes (till or bank reference)'),
}, { additionalProperties: false })

export const NoteDepositSchema = Type.Object({
  toAccount: Uuid('the member\'s or business\'s account credited'),
  amount: AmountString('face value of the notes paid in'),
  denominations: DenominationsSchema,
  reference: Type.Optional(Type.String({ maxLength: 140, description: 'shown on the account\'s statement' })),
}, { additionalProperties: false })

export const NoteBuybackSchema = Type.Object({
  business: Uuid('the business whose notes are bought back'),
  amount: AmountString('face value of the notes bought back; the redemption fee is withheld from it'),
  denominations: DenominationsSchema,
  sterlingReference: SterlingReference('the sterling paid out to the business'),
}, { additionalProperties: false })

export const NoteWithdrawalSchema = Type.Object({
  amount: AmountString('face value of the notes taken out of circulation'),
  denominations: DenominationsSchema,
  reason: Type.Enum(['worn', 'lost'], { description: 'worn (destroyed) or lost notes' }),
  sterlingReference: SterlingReference('where the sterling that backed the notes went when it left the reserve'),
}, { additionalProperties: false })

export type NoteSale = Static<typeof NoteSaleSchema>
export type NoteDeposit = Static<typeof NoteDepositSchema>
export type NoteBuyback = Static<typeof NoteBuybackSchema>
export type NoteWithdrawal = Static<typeof NoteWithdrawalSchema>

export const ReserveQuerySchema = Type.Object({
  at: Type.Optional(Type.String({ maxLength: 40, description: 'the reserve as it stood at this time: an RFC 3339 time, or a date (its midnight in the currency\'s time zone); default now' })),
  format: FormatQuery('csv: the reconciliation, every sterling movement up to `at` with its running total (issuers)'),
}, { additionalProperties: false })
export type ReserveQuery = Static<typeof ReserveQuerySchema>

export const ReserveSchema = Type.Object({
  currency: Type.String(),
  at: Timestamp('the time the figures are for'),
  sterlingReserve: Type.String({ description: 'sterling held: the sum of every recorded sterling movement (issuances, redemptions, note sales, buybacks, withdrawals and their reversals)' }),
  electronicCirculation: Type.String({ description: 'currency held in accounts: members\', businesses\' and the fee income account' }),
  paperCirculation: Type.String({ description: 'paper notes in people\'s hands (the paper account)' }),
  difference: Type.String({ description: 'sterlingReserve - electronicCirculation - paperCirculation; always "0" (with the currency\'s decimals) when the books reconcile' }),
  movements: Type.Integer({ description: 'sterling movements recorded up to `at`' }),
  lastMovementAt: Nullable(Timestamp('the latest of them')),
})
