import type { Static } from 'typebox'
import type { Channel, TransferKind, TransferLegSchema, TransferSchema } from '../schemas/ledger.js'
import { formatMoney } from './money.js'

// Transfer JSON is made here and nowhere else. The database gives every reader of a movement the same columns
// (the SQL function transfer_rows(): the posting call's result, a replay, GET /v1/transfers/{id}, the search),
// legFromRow() turns such a row into a TransferRow, and transferView() makes the API's JSON of it, so a first
// response, its replays and a later GET are byte-identical.

/** One transfer as the ledger reads it back: amounts and times as text. */
export interface TransferRow {
  id: string
  kind: TransferKind
  channel: Channel | null
  fromAccount: string
  toAccount: string
  amount: string
  reference: string | null
  metadata: Record<string, unknown>
  parentId: string | null
  reversesId: string | null
  createdAt: string
}

/** A row with transfer_rows()'s columns (snake_case, as pg returns them). */
export interface LegRow {
  id: string
  kind: string
  channel: string | null
  from_account: string
  to_account: string
  amount: string
  reference: string | null
  metadata: Record<string, unknown> | null
  parent_id: string | null
  reverses_id: string | null
  created_at: string
}

export const legFromRow = (r: LegRow): TransferRow => ({
  id: r.id, kind: r.kind as TransferKind, channel: r.channel as Channel | null, fromAccount: r.from_account,
  toAccount: r.to_account, amount: r.amount, reference: r.reference, metadata: r.metadata ?? {},
  parentId: r.parent_id, reversesId: r.reverses_id, createdAt: r.created_at,
})

/** A movement as the API shows it: its main transfer, the other legs in `related`. */
export function transferView (legs: TransferRow[], currency: { code: string, decimals: number }): TransferView {
  const one = (t: TransferRow): TransferLeg => ({
    id: t.id, currency: currency.code, kind: t.kind, channel: t.channel, fromAccount: t.fromAccount,
    toAccount: t.toAccount, amount: formatMoney(t.amount, currency.decimals), reference: t.reference,
    metadata: t.metadata, parentId: t.parentId, reversesId: t.reversesId, createdAt: t.createdAt,
  })
  const [main, ...rest] = legs
  return { ...one(main), related: rest.map(one) }
}
/** The JSON's types are the response schema's (Static<>), so the view cannot drift from the documented API. */
export type TransferView = Static<typeof TransferSchema>
export type TransferLeg = Static<typeof TransferLegSchema>
