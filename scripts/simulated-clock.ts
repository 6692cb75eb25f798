import type pg from 'pg'

// Simulated time for benchmarks and tests that need a ledger spread over past months.
//
// installClock() adds, to a throwaway database only, a BEFORE INSERT trigger that sets created_at from the
// transaction-local setting circulate.clock when it is set. ledger_post() runs unchanged (idempotency claim,
// locks, limits, transfers, entries, balances, reserve); only its now() is replaced. No migration has this
// trigger, so a real database never honours the setting. The trigger costs a little on every row it sees, so
// write throughput measured with it installed is not the production figure (the bench measures the write path
// without it).

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

// One round trip, like the service's own call: set_config(..., true) lasts for the statement's transaction, and
// ledger_post() takes the setting's result as an argument (an empty string appended to created_by), so the
// setting is in force before ledger_post() runs.
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
  scope?: string
}
export interface LegOut { id: string, kind: string, fromAccount: string, toAccount: string, amount: string, createdAt: string }

/** ledger_post() at a simulated time (needs installClock in that database). */
export async function postAt (pool: pg.Pool, currencyId: string, m: PostIn): Promise<LegOut[]> {
  const at = typeof m.at === 'string' ? m.at : m.at.toISOString()
  const r = await pool.query<{ legs: LegOut[] }>({
    name: 'post_at',
    text: POST_AT_SQL,
    values: [
      currencyId, m.scope ?? 'sim', m.key ?? null, 'h', 'sim',
      m.legs.map(l => l.kind), m.legs.map(l => l.from), m.legs.map(l => l.to), m.legs.map(l => l.amount),
      m.channel ?? null, null, null, m.legs.map(l => l.reverses ?? null), m.reserveDelta ?? null, null, null,
      m.applyOrder?.map(i => i + 1) ?? null, at,
    ],
  })
  return r.rows[0].legs
}
