import type pg from 'pg'
import { hashPassword } from '../../src/auth/password.js'

// Test ledgers for the reports: money moves only through ledger_post() (the write path), at simulated times
// (scripts/simulated-clock.ts explains how, and why that is only ever installed in a throwaway database).
import { postAt, type LegOut } from '../../scripts/simulated-clock.js'
export { installClock, postAt, type LegOut } from '../../scripts/simulated-clock.js'

export interface Book {
  pool: pg.Pool
  currencyId: string
  code: string
  system: { issuance: string, fees: string, paper: string }
}

/** The movements the service builds, posted at a chosen time. */
export const ledger = (b: Book) => ({
  issue: async (at: string, to: string, amount: string) =>
    await postAt(b.pool, b.currencyId, { at, legs: [{ kind: 'issuance', from: b.system.issuance, to, amount }], reserveDelta: amount }),
  pay: async (at: string, from: string, to: string, amount: string, fee = '0') =>
    await postAt(b.pool, b.currencyId, {
      at, channel: 'app',
      legs: [{ kind: 'payment', from, to, amount }, ...(Number(fee) > 0 ? [{ kind: 'fee', from: to, to: b.system.fees, amount: fee }] : [])],
    }),
  /** gross is what leaves the business; fee of it goes to the fee account, the rest back to sterling */
  redeem: async (at: string, from: string, net: string, fee = '0') =>
    await postAt(b.pool, b.currencyId, {
      at, reserveDelta: `-${net}`,
      legs: [{ kind: 'redemption', from, to: b.system.issuance, amount: net }, ...(Number(fee) > 0 ? [{ kind: 'fee', from, to: b.system.fees, amount: fee }] : [])],
    }),
  reverse: async (at: string, legs: LegOut[]) =>
    await postAt(b.pool, b.currencyId, {
      at,
      legs: legs.map(l => ({ kind: 'reversal', from: l.toAccount, to: l.fromAccount, amount: l.amount, reverses: l.id })),
      applyOrder: legs.map((_, i) => legs.length - 1 - i),
      reserveDelta: legs[0].kind === 'issuance' ? `-${legs[0].amount}` : legs[0].kind === 'redemption' ? legs[0].amount : null,
    }),
})

/** A researcher login for a currency (the registration route belongs to another issue). */
export async function createResearcher (pool: pg.Pool, currencyId: string, username: string, password: string): Promise<void> {
  await pool.query(`INSERT INTO app_user (username, password_hash, role, name, currency_id) VALUES ($1, $2, 'researcher', 'Researcher', $3)`,
    [username, await hashPassword(password, 1024), currencyId])
}
