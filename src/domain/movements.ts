import type { Channel, TransferKind } from '../schemas/ledger.js'
import { DomainError } from './errors.js'
import { feeFor, Money } from './money.js'

// The kinds of money movement and their legs: the only place that knows them. The service, the simulator, the
// test ledgers and the benchmarks build every movement here and post it through the ledger's one function
// (src/ledger/post.ts), which knows no kinds: it claims the key, checks accounts, limits and the reverse-once
// rule, and writes what it is given.
//
// A movement is one or more legs (transfers), the first being the movement's main transfer, the others pointing
// at it (a fee). The apply order says in which order the legs move balances (a reversal gives the fee back before
// it takes the payment back). The sterling reserve moves by minus what the issuance account moves: currency
// leaving the issuance account is currency issued against sterling received, and currency coming back to it is
// sterling paid out. That rule holds for every kind, so electronic + paper circulation always equals the reserve.
//
// Who may move money from or to which account (a payer's own accounts, no system account as a party to a
// payment) is the services' concern; a builder only says what a movement of its kind moves.
//
// To add a kind: a builder here (and, if the kind is new to the transfer table, a migration widening its CHECK).

/** What a movement needs to know of its currency (src/services/currency.service.ts resolves and caches it). */
export interface LedgerCurrency {
  id: string
  decimals: number
  fees: Record<Channel, Money>
  redemptionFee: Money
  system: { issuance: string, fees: string, paper: string }
}

export interface Leg {
  kind: TransferKind
  from: string
  to: string
  amount: Money
  /** the transfer this leg reverses */
  reverses?: string | null
}

export interface Movement {
  /** the main transfer first; the others point at it */
  legs: Leg[]
  /** indexes into legs, in the order they move balances */
  applyOrder: number[]
  /** sterling into (+) or out of (-) the reserve; null when the reserve does not move */
  reserveDelta: Money | null
  sterlingReference: string | null
  channel: Channel | null
  reference: string | null
  metadata: Record<string, string> | null
}

/** A transfer as it was posted, enough to reverse it (TransferRow, as the ledger reads transfers back). */
export interface PostedLeg {
  id: string
  kind: TransferKind
  fromAccount: string
  toAccount: string
  amount: string
  parentId: string | null
}

/** The reserve moves by minus the issuance account's net movement over the legs. */
export function reserveDelta (c: LedgerCurrency, legs: Leg[]): Money | null {
  let delta = new Money(0)
  for (const l of legs) {
    if (l.from === c.system.issuance) delta = delta.plus(l.amount)
    if (l.to === c.system.issuance) delta = delta.minus(l.amount)
  }
  return delta.isZero() ? null : delta
}

function movement (c: LedgerCurrency, legs: Leg[], o: Partial<Omit<Movement, 'legs' | 'reserveDelta'>> = {}): Movement {
  return {
    legs, applyOrder: o.applyOrder ?? legs.map((_, i) => i), reserveDelta: reserveDelta(c, legs),
    sterlingReference: o.sterlingReference ?? null, channel: o.channel ?? null, reference: o.reference ?? null,
    metadata: o.metadata ?? null,
  }
}

/** A payment between two participants' accounts, and the receiver's fee for the channel as a second leg. */
export function payment (c: LedgerCurrency, p: {
  from: string, to: string, amount: Money, channel: Channel, reference?: string | null, metadata?: Record<string, string> | null
}): Movement {
  const legs: Leg[] = [{ kind: 'payment', from: p.from, to: p.to, amount: p.amount }]
  const fee = feeFor(p.amount, c.fees[p.channel], c.decimals)
  if (fee.gt(0)) legs.push({ kind: 'fee', from: p.to, to: c.system.fees, amount: fee })
  return movement(c, legs, { channel: p.channel, reference: p.reference, metadata: p.metadata })
}

/** Sterling received into the reserve; the same amount of currency credited 1:1 from the issuance account. */
export function issuance (c: LedgerCurrency, p: { to: string, amount: Money, sterlingReference: string | null }): Movement {
  return movement(c, [{ kind: 'issuance', from: c.system.issuance, to: p.to, amount: p.amount }],
    { reference: p.sterlingReference, sterlingReference: p.sterlingReference })
}

/** Currency back to sterling: the redemption fee is withheld to fee income, the rest returns to the issuance
 *  account and leaves the reserve. `amount` is what leaves the account, fee included. */
export function redemption (c: LedgerCurrency, p: { from: string, amount: Money, sterlingReference?: string | null }): Movement {
  const fee = feeFor(p.amount, c.redemptionFee, c.decimals)
  const net = p.amount.minus(fee)
  if (net.lte(0)) throw new DomainError('INVALID_AMOUNT', 'amount is too small to redeem after the fee', [{ pointer: '/amount', detail: 'too small' }])
  const legs: Leg[] = [{ kind: 'redemption', from: p.from, to: c.system.issuance, amount: net }]
  if (fee.gt(0)) legs.push({ kind: 'fee', from: p.from, to: c.system.fees, amount: fee })
  return movement(c, legs, { reference: p.sterlingReference, sterlingReference: p.sterlingReference })
}

/** Reverses a whole movement (its main transfer and the legs that point at it), once, by new transfers: each
 *  leg runs back, the last leg first (a payment's fee is given back before the payment is taken back). */
export function reversal (c: LedgerCurrency, original: PostedLeg[], p: { sterlingReference?: string | null } = {}): Movement {
  const [main] = original
  if (main == null) throw new DomainError('TRANSFER_NOT_FOUND', 'transfer not found')
  if (main.parentId != null) throw new DomainError('NOT_REVERSIBLE', 'reverse the movement\'s main transfer; its fee is reversed with it')
  if (main.kind === 'reversal') throw new DomainError('NOT_REVERSIBLE', 'a reversal cannot itself be reversed')
  const legs: Leg[] = original.map(t => ({ kind: 'reversal', from: t.toAccount, to: t.fromAccount, amount: new Money(t.amount), reverses: t.id }))
  const m = movement(c, legs, { applyOrder: legs.map((_, i) => legs.length - 1 - i), reference: `reversal of ${main.id}`, sterlingReference: p.sterlingReference })
  // a sterling reference belongs to a movement of sterling: on anything else it would name a bank payment that
  // never touched the reserve
  if (p.sterlingReference != null && m.reserveDelta == null) {
    throw new DomainError('VALIDATION_FAILED', 'sterlingReference is for reversing a movement of sterling (an issuance, a redemption, a note sale, buyback or withdrawal); this one moved no sterling',
      [{ pointer: '/sterlingReference', detail: 'this movement moved no sterling' }])
  }
  return m
}

// Paper notes. The currency's paper account holds the float of notes in people's hands (its floor is 0: no more
// notes can come back than were sold). Exchange points (issuer staff) record the four movements below; the reserve
// follows from the one rule above (a note sale takes currency out of the issuance account: sterling in; a buyback
// or a withdrawal puts it back: sterling out).

/** Notes sold for sterling: the issuance account credits the paper float; the reserve grows by the amount. */
export function noteSale (c: LedgerCurrency, p: { amount: Money, sterlingReference: string, metadata?: Record<string, string> | null }): Movement {
  return movement(c, [{ kind: 'note_sale', from: c.system.issuance, to: c.system.paper, amount: p.amount }],
    { reference: p.sterlingReference, sterlingReference: p.sterlingReference, metadata: p.metadata })
}

/** Notes paid into an account: the paper float shrinks, the account grows; the reserve does not move. */
export function noteDeposit (c: LedgerCurrency, p: { to: string, amount: Money, reference?: string | null, metadata?: Record<string, string> | null }): Movement {
  return movement(c, [{ kind: 'note_deposit', from: c.system.paper, to: p.to, amount: p.amount }],
    { reference: p.reference, metadata: p.metadata })
}

/** A business's notes bought back for sterling, with the redemption fee: the net returns to the issuance account
 *  (sterling out of the reserve), the fee goes from the float to fee income. `amount` is the notes' face value. */
export function noteBuyback (c: LedgerCurrency, p: { amount: Money, sterlingReference: string, metadata?: Record<string, string> | null }): Movement {
  const fee = feeFor(p.amount, c.redemptionFee, c.decimals)
  const net = p.amount.minus(fee)
  if (net.lte(0)) throw new DomainError('INVALID_AMOUNT', 'amount is too small to buy back after the fee', [{ pointer: '/amount', detail: 'too small' }])
  const legs: Leg[] = [{ kind: 'note_buyback', from: c.system.paper, to: c.system.issuance, amount: net }]
  if (fee.gt(0)) legs.push({ kind: 'fee', from: c.system.paper, to: c.system.fees, amount: fee })
  return movement(c, legs, { reference: p.sterlingReference, sterlingReference: p.sterlingReference, metadata: p.metadata })
}

/** Worn or lost notes taken out of circulation without anything paid for them: the float shrinks and the sterling
 *  that backed them leaves the reserve (released to the scheme, under `sterlingReference`). */
export function noteWithdrawal (c: LedgerCurrency, p: { amount: Money, sterlingReference: string, reason: string, metadata?: Record<string, string> | null }): Movement {
  return movement(c, [{ kind: 'note_withdrawal', from: c.system.paper, to: c.system.issuance, amount: p.amount }],
    { reference: `notes withdrawn (${p.reason})`, sterlingReference: p.sterlingReference, metadata: p.metadata })
}
