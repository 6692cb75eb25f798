import pg from 'pg'

// The ledger's invariants, checked straight on the database (tests and the faults suite):
//   every currency's balances sum to zero; no account past its floor or ceiling; every account's entries form a
//   chain (each balance_after = the previous one + amount, the last = the balance); every transfer has exactly
//   two entries that cancel and match its amount; the recorded sterling reserve equals the currency in
//   circulation (the negative of the issuance account); every idempotency key points at a main transfer.
export async function ledgerViolations (databaseUrl: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: databaseUrl })
  await c.connect()
  try {
    const out: string[] = []
    const q = async (label: string, sql: string) => {
      const r = await c.query(sql)
      for (const row of r.rows) out.push(`${label}: ${JSON.stringify(row)}`)
    }
    await q('balances do not sum to zero', `SELECT currency_id, sum(balance) AS total FROM account GROUP BY currency_id HAVING sum(balance) <> 0`)
    await q('account past floor or ceiling', `SELECT id, balance, floor, ceiling FROM account WHERE balance < floor OR balance > ceiling`)
    await q('entry chain broken', `
      SELECT account_id, id, amount, balance_after, prev FROM (
        SELECT account_id, id, amount, balance_after,
               coalesce(lag(balance_after) OVER (PARTITION BY account_id ORDER BY id), 0) AS prev
        FROM entry) e
      WHERE balance_after <> prev + amount LIMIT 20`)
    await q('last entry is not the balance', `
      SELECT a.id, a.balance, l.balance_after FROM account a
      LEFT JOIN LATERAL (SELECT balance_after FROM entry e WHERE e.account_id = a.id ORDER BY id DESC LIMIT 1) l ON true
      WHERE a.balance <> coalesce(l.balance_after, 0) LIMIT 20`)
    await q('transfer entries do not match', `
      SELECT t.id, count(e.id) AS n, sum(e.amount) AS net FROM transfer t LEFT JOIN entry e ON e.transfer_id = t.id
      GROUP BY t.id, t.amount, t.from_account_id, t.to_account_id
      HAVING count(e.id) <> 2 OR sum(e.amount) <> 0
          OR sum(e.amount) FILTER (WHERE e.account_id = t.to_account_id) <> t.amount
          OR sum(e.amount) FILTER (WHERE e.account_id = t.from_account_id) <> -t.amount LIMIT 20`)
    await q('reserve differs from circulation', `
      SELECT a.currency_id, -a.balance AS circulation, coalesce(r.total, 0) AS reserve FROM account a
      LEFT JOIN (SELECT currency_id, sum(amount) AS total FROM reserve_movement GROUP BY currency_id) r USING (currency_id)
      WHERE a.system_kind = 'issuance' AND -a.balance <> coalesce(r.total, 0)`)
    await q('idempotency key points at a leg', `
      SELECT k.scope, k.key FROM idempotency_key k JOIN transfer t ON t.id = k.transfer_id WHERE t.parent_id IS NOT NULL LIMIT 20`)
    await q('fee leg without its payment', `
      SELECT f.id FROM transfer f LEFT JOIN transfer p ON p.id = f.parent_id
      WHERE f.kind = 'fee' AND (p.id IS NULL OR (p.kind = 'payment' AND f.from_account_id <> p.to_account_id)) LIMIT 20`)
    return out
  } finally {
    await c.end()
  }
}
