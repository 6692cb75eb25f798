import type { TestContext } from '../helper.js'
import { registerBusiness, registerMember } from '../helper.js'
import { ledger, type Book } from './ledger.js'

export interface Party { id: string, accountId: string }

/** A currency for report tests: local areas BS, two decimals, money moved at simulated times (ledger.ts).
 *  `overrides` changes the currency's fields (for example a currency of whole units). */
export async function reportBook (ctx: TestContext, code = 'BRS', localAreas = ['BS'], overrides: Record<string, unknown> = {}): Promise<Book & { ledger: ReturnType<typeof ledger> }> {
  const cur = await ctx.call('POST', '/v1/currencies', {
    token: ctx.issuerToken,
    body: { code, name: `${code} Pound`, decimals: 2, fees: { app: '0.01' }, redemptionFee: '0.03', localAreas, ...overrides },
  })
  if (cur.status !== 201) throw new Error(cur.text)
  const r = await ctx.app.pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [code])
  const book: Book = { pool: ctx.app.pool, tooling: ctx.tooling(), currencyId: r.rows[0].id, code, system: cur.body.systemAccounts, currency: cur.body }
  return { ...book, ledger: ledger(book) }
}

/** Registers through the API, then dates the participant and its account back to `since` (they joined then). */
export async function member (ctx: TestContext, code: string, postcode: string, since = '2025-12-01T00:00:00Z'): Promise<Party> {
  const m = await registerMember(ctx, code, postcode)
  await backdate(ctx, m.id, since)
  return { id: m.id, accountId: m.accountId }
}

export async function business (ctx: TestContext, code: string, sector: string, postcode: string, since = '2025-12-01T00:00:00Z'): Promise<Party> {
  const b = await registerBusiness(ctx, code, { tradingName: `${sector} ${postcode} ${Math.random().toString(36).slice(2, 6)}`, sector, postcode })
  await backdate(ctx, b.id, since)
  return { id: b.id, accountId: b.accountId }
}

async function backdate (ctx: TestContext, participantId: string, since: string): Promise<void> {
  await ctx.app.pool.query('UPDATE participant SET created_at = $2 WHERE id = $1', [participantId, since])
  await ctx.app.pool.query('UPDATE account SET created_at = $2 WHERE participant_id = $1', [participantId, since])
}
