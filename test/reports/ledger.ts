import type pg from 'pg'
import { hashPassword } from '../../src/auth/password.js'
import { Money } from '../../src/domain/money.js'
import { issuance, payment, redemption, reversal, type LedgerCurrency, type Movement } from '../../src/domain/movements.js'
import type { TransferRow } from '../../src/domain/transfer-view.js'
import { postMovement } from '../../src/ledger/post.js'
import { CHANNELS, type Channel } from '../../src/schemas/ledger.js'

// Test ledgers for the reports: movements built by src/domain/movements.ts, as the API builds them, posted
// through the ledger's one write path at chosen past times (the ledger clock, on a tooling session:
// TestContext.tooling()). Back-dating is allowed: the reports must cope with a transfer that arrives late.

export type LegOut = TransferRow

export interface Book {
  /** the service's pool, for reading */
  pool: pg.Pool
  /** a tooling session (application_name circulate-simulator), for posting at past times */
  tooling: pg.Pool
  currencyId: string
  code: string
  system: { issuance: string, fees: string, paper: string }
  /** the currency as the API created it (decimals, fees), so the movements carry its real fees */
  currency: { decimals: number, fees: Partial<Record<Channel, string>>, redemptionFee: string }
}

const ledgerCurrency = (b: Book): LedgerCurrency => ({
  id: b.currencyId, decimals: b.currency.decimals, system: b.system, redemptionFee: new Money(b.currency.redemptionFee),
  fees: Object.fromEntries(CHANNELS.map(k => [k, new Money(b.currency.fees[k] ?? '0')])) as Record<Channel, Money>,
})

/** The movements the service builds, posted at a chosen time. */
export const ledger = (b: Book) => {
  const c = ledgerCurrency(b)
  const post = async (at: string, m: Movement): Promise<LegOut[]> => (await postMovement(b.tooling, b.currencyId, {
    ...m, scope: 'test', idempotencyKey: null, requestHash: '', createdBy: 'test', owner: null,
  }, { at: [new Date(at)], backdate: true })).legs
  /** the channel whose fee is `fee`: a test names the fee it expects, and the currency must charge exactly that */
  const priced = (amount: string, fee: string): Channel => {
    const channel = CHANNELS.find(k => {
      const legs = payment(c, { from: 'payer', to: 'payee', amount: new Money(amount), channel: k }).legs
      return (legs[1]?.amount ?? new Money(0)).eq(fee)
    })
    if (channel == null) throw new Error(`test ledger: no channel of ${b.code} charges ${fee} on ${amount}`)
    return channel
  }
  return {
    issue: async (at: string, to: string, amount: string) =>
      await post(at, issuance(c, { to, amount: new Money(amount), sterlingReference: null })),
    pay: async (at: string, from: string, to: string, amount: string, fee = '0') =>
      await post(at, payment(c, { from, to, amount: new Money(amount), channel: priced(amount, fee) })),
    /** net goes back to sterling, fee to the fee account: net + fee leaves the business */
    redeem: async (at: string, from: string, net: string, fee = '0') => {
      const m = redemption(c, { from, amount: new Money(net).plus(fee) })
      if (!m.legs[0].amount.eq(net)) throw new Error(`test ledger: ${b.code}'s redemption fee on ${new Money(net).plus(fee).toFixed()} is not ${fee}`)
      return await post(at, m)
    },
    reverse: async (at: string, legs: LegOut[]) => await post(at, reversal(c, legs)),
  }
}

/** A researcher login for a currency (the registration route belongs to another issue). */
export async function createResearcher (pool: pg.Pool, currencyId: string, username: string, password: string): Promise<void> {
  await pool.query(`INSERT INTO app_user (username, password_hash, role, name, currency_id) VALUES ($1, $2, 'researcher', 'Researcher', $3)`,
    [username, await hashPassword(password, 1024), currencyId])
}
