import type { Test } from 'tap'
import type pg from 'pg'

// The ledger's invariants, read straight from PostgreSQL. Each returns the rows that break it (empty = holds).
export async function invariantViolations (pool: pg.Pool | pg.Client): Promise<Record<string, unknown[]>> {
  const q = async (sql: string) => (await pool.query(sql)).rows
  return {
    // every currency's balances sum to zero (issuance mirrors everything outstanding)
    nonZeroSum: await q(`SELECT currency_id, sum(balance)::text AS total FROM account GROUP BY currency_id HAVING sum(balance) <> 0`),
    // no account is past its floor or ceiling
    pastLimits: await q(`SELECT id, balance::text FROM account
      WHERE (floor IS NOT NULL AND balance < floor) OR (ceiling IS NOT NULL AND balance > ceiling)`),
    // each account's entries chain: previous balance + amount = balance after; the first starts from zero
    brokenChain: await q(`SELECT account_id, id FROM (
        SELECT account_id, id, amount, balance_after,
               lag(balance_after, 1, 0::numeric) OVER (PARTITION BY account_id ORDER BY id) AS prev
        FROM entry) e
      WHERE prev + amount <> balance_after`),
    // the last entry's balance is the account's balance
    staleBalance: await q(`SELECT a.id FROM account a
      LEFT JOIN LATERAL (SELECT balance_after FROM entry WHERE account_id = a.id ORDER BY id DESC LIMIT 1) l ON true
      WHERE a.balance <> COALESCE(l.balance_after, 0)`),
    // every transfer has exactly two entries that net to zero
    unbalancedTransfer: await q(`SELECT t.id FROM transfer t JOIN entry e ON e.transfer_id = t.id
      GROUP BY t.id HAVING count(*) <> 2 OR sum(e.amount) <> 0`),
    transferWithoutEntries: await q(`SELECT t.id FROM transfer t WHERE NOT EXISTS (SELECT 1 FROM entry e WHERE e.transfer_id = t.id)`),
    // every reference between ledger rows points at a row, in the same currency (tenancy: nothing crosses currencies)
    danglingOrForeign: await q(`
      SELECT 'transfer ' || t.id AS row FROM transfer t
        LEFT JOIN account f ON f.id = t.from_account_id LEFT JOIN account d ON d.id = t.to_account_id
        LEFT JOIN transfer p ON p.id = t.parent_id LEFT JOIN transfer r ON r.id = t.reverses_id
       WHERE f.currency_id IS DISTINCT FROM t.currency_id OR d.currency_id IS DISTINCT FROM t.currency_id
          OR (t.parent_id IS NOT NULL AND p.currency_id IS DISTINCT FROM t.currency_id)
          OR (t.reverses_id IS NOT NULL AND r.currency_id IS DISTINCT FROM t.currency_id)
      UNION ALL
      SELECT 'entry ' || e.id FROM entry e LEFT JOIN transfer t ON t.id = e.transfer_id LEFT JOIN account a ON a.id = e.account_id
       WHERE t.currency_id IS DISTINCT FROM e.currency_id OR a.currency_id IS DISTINCT FROM e.currency_id
          OR e.account_id NOT IN (t.from_account_id, t.to_account_id)
      UNION ALL
      SELECT 'key ' || k.key FROM idempotency_key k LEFT JOIN transfer t ON t.id = k.transfer_id
       WHERE t.currency_id IS DISTINCT FROM k.currency_id OR t.parent_id IS NOT NULL
      UNION ALL
      SELECT 'reserve ' || m.id FROM reserve_movement m LEFT JOIN transfer t ON t.id = m.transfer_id
       WHERE t.currency_id IS DISTINCT FROM m.currency_id OR t.parent_id IS NOT NULL
      LIMIT 20`),
    // electronic + paper circulation equals the recorded sterling reserve
    reserveMismatch: await q(`SELECT c.id FROM currency c
      WHERE COALESCE((SELECT sum(amount) FROM reserve_movement r WHERE r.currency_id = c.id), 0)
         <> -(SELECT balance FROM account a WHERE a.currency_id = c.id AND a.system_kind = 'issuance')`),
    // sterling is paid out only if it was paid in: the reserve (minus the issuance account) is never below zero
    reserveBelowZero: await q(`SELECT currency_id FROM account WHERE system_kind = 'issuance' AND balance > 0`),
  }
}

export function assertInvariants (t: Test, v: Record<string, unknown[]>, where = ''): boolean {
  let ok = true
  for (const [name, rows] of Object.entries(v)) {
    if (rows.length > 0) { ok = false; t.fail(`invariant ${name} broken ${where}`, { rows: rows.slice(0, 5) }) }
  }
  return ok
}

/**
 * The same invariants for a database URL (the faults suite checks a database behind a service process), plus
 * three that concern the batch path: each transfer's entries carry its amount from its payer to its payee, a
 * fee leg belongs to its payment, and an idempotency key points at a movement's main transfer. Returns one line
 * per broken row (empty = all hold).
 */
export async function ledgerViolations (databaseUrl: string): Promise<string[]> {
  const pgModule = (await import('pg')).default
  // a client, not a pool: its end() waits until the server has closed the session, so a DROP DATABASE right after
  // cannot catch the session still closing (pool.end() resolves earlier)
  const pool = new pgModule.Client({ connectionString: databaseUrl })
  await pool.connect()
  try {
    const v = await invariantViolations(pool)
    const q = async (sql: string) => (await pool.query(sql)).rows
    v.entriesDisagreeWithTransfer = await q(`SELECT t.id FROM transfer t JOIN entry e ON e.transfer_id = t.id
      GROUP BY t.id, t.amount, t.from_account_id, t.to_account_id
      HAVING sum(e.amount) FILTER (WHERE e.account_id = t.to_account_id) <> t.amount
          OR sum(e.amount) FILTER (WHERE e.account_id = t.from_account_id) <> -t.amount LIMIT 20`)
    v.feeWithoutItsPayment = await q(`SELECT f.id FROM transfer f LEFT JOIN transfer p ON p.id = f.parent_id
      WHERE f.kind = 'fee' AND (p.id IS NULL OR (p.kind = 'payment' AND f.from_account_id <> p.to_account_id)) LIMIT 20`)
    v.keyOnALeg = await q(`SELECT k.scope, k.key FROM idempotency_key k JOIN transfer t ON t.id = k.transfer_id
      WHERE t.parent_id IS NOT NULL LIMIT 20`)
    return Object.entries(v).flatMap(([name, rows]) => rows.map(r => `${name}: ${JSON.stringify(r)}`))
  } finally {
    await pool.end()
  }
}
