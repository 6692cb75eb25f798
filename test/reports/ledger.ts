import pg from 'pg'
import { hashPassword } from '../../src/auth/password.js'

// Test ledgers for the reports: money moves only through ledger_post() (the write path), at simulated times.
//
// Simulated time: installClock() adds, to the test's own database only, a BEFORE INSERT trigger that sets
// created_at from the transaction-local setting circulate.clock when it is set. ledger_post() runs unchanged
// (locks, limits, entries, balances, idempotency); only now() is replaced. No migration has this trigger, so a
// real database never honours the setting. scripts/bench-reports.ts uses the same trigger for the same reason.

export const CLOCK_SQL = `
CREATE OR REPLACE FUNCTION simulated_clock() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE v text := current_setting('circulate.clock', true);
BEGIN
  IF v IS NOT NULL AND v <> '' THEN NEW.created_at := v::timestamptz; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER simulated_clock BEFORE INSERT ON transfer FOR EACH ROW EXECUTE FUNCTION simulated_clock();
CREATE TRIGGER simulated_clock BEFORE INSERT ON entry FOR EACH ROW EXECUTE FUNCTION simulated_clock();
CREATE TRIGGER simulated_clock BEFORE INSERT ON reserve_movement FOR EACH ROW EXECUTE FUNCTION simulated_clock();
CREATE TRIGGER simulated_clock BEFORE INSERT ON idempotency_key FOR EACH ROW EXECUTE FUNCTION simulated_clock();`

export async function installClock (pool: pg.Pool): Promise<void> {
  await pool.query(CLOCK_SQL)
}

// set_config(..., true) lasts for the statement's own transaction; ledger_post() takes the setting's result as
// an argument (an empty string appended to created_by), so the setting is in force before it runs.
const POST_AT_SQL = `
SELECT l.replayed, l.legs
  FROM (SELECT set_config('circulate.clock', $18, true) AS clk) c,
       ledger_post($1::uuid, $2, $3, $4, $5 || left(c.clk, 0), $6::text[], $7::uuid[], $8::uuid[], $9::numeric[],
                   $10, $11, $12::jsonb, $13::uuid[], $14::numeric, $15, $16::uuid, $17::int[]) l`

export interface LegIn { kind: string, from: string, to: string, amount: string, reverses?: string }
export interface PostIn {
  at: Date | string
  legs: LegIn[]
  channel?: string | null
  reserveDelta?: string | null
  applyOrder?: number[] | null
  key?: string | null
}
export interface LegOut { id: string, kind: string, fromAccount: string, toAccount: string, amount: string, createdAt: string }

export async function postAt (pool: pg.Pool, currencyId: string, m: PostIn): Promise<LegOut[]> {
  const at = typeof m.at === 'string' ? m.at : m.at.toISOString()
  const r = await pool.query<{ legs: LegOut[] }>(POST_AT_SQL, [
    currencyId, 'test', m.key ?? null, 'h', 'test',
    m.legs.map(l => l.kind), m.legs.map(l => l.from), m.legs.map(l => l.to), m.legs.map(l => l.amount),
    m.channel ?? null, null, null, m.legs.map(l => l.reverses ?? null), m.reserveDelta ?? null, null, null,
    m.applyOrder?.map(i => i + 1) ?? null, at,
  ])
  return r.rows[0].legs
}

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
