import type pg from 'pg'

// The currency's perturbation secret (migration 20261216000000_disclosure_key, docs/disclosure.md): made with the
// currency, never changed, never sent. Kept in memory once read: it never changes.
const cache = new Map<string, Buffer>()

export async function disclosureKey (pool: Pick<pg.Pool, 'query'>, currencyId: string): Promise<Buffer> {
  const hit = cache.get(currencyId)
  if (hit != null) return hit
  const r = await pool.query<{ secret: Buffer }>('SELECT secret FROM disclosure_key WHERE currency_id = $1', [currencyId])
  if (r.rows.length === 0) throw new Error(`no disclosure key for currency ${currencyId}`)
  cache.set(currencyId, r.rows[0].secret)
  return r.rows[0].secret
}
