import type { TestContext } from '../helper.js'
import { registerBusiness, registerMember } from '../helper.js'
import { createResearcher, ledger, type Book } from './ledger.js'

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

/**
 * A time bank for the flows tests of whole units: currency HRS (no decimals, no fees), six members in BS6, six food
 * businesses and six shops in BS1, each member issued `hours` on 2026-03-01, and a researcher's token.
 */
export async function timeBank (ctx: TestContext, hours: string) {
  const book = await reportBook(ctx, 'HRS', ['BS'], { name: 'Hours', decimals: 0, fees: {}, redemptionFee: '0' })
  const members: Party[] = []
  for (let i = 0; i < 6; i++) members.push(await member(ctx, 'HRS', 'BS6 5AB'))
  const food: Party[] = []; const retail: Party[] = []
  for (let i = 0; i < 6; i++) food.push(await business(ctx, 'HRS', 'food', 'BS1 4DJ'))
  for (let i = 0; i < 6; i++) retail.push(await business(ctx, 'HRS', 'retail', 'BS1 4DJ'))
  for (const m of members) await book.ledger.issue('2026-03-01T09:00:00Z', m.accountId, hours)
  await createResearcher(ctx.app.pool, book.currencyId, 'res-hrs', 'researcher-password')
  return { book, members, food, retail, token: await ctx.token('res-hrs', 'researcher-password') }
}

/** The first of a fixed sequence of secrets that `wanted` accepts, pinned as the currency's disclosure secret (a
 *  currency's own is random: a test that needs cells to go given ways picks one). */
export async function pinSecret (ctx: TestContext, currencyId: string, wanted: (secret: Buffer) => boolean): Promise<Buffer> {
  let secret = Buffer.alloc(32)
  for (let i = 0; !wanted(secret = Buffer.alloc(32, i)); i++);
  await ctx.app.pool.query('UPDATE disclosure_key SET secret = $2 WHERE currency_id = $1', [currencyId, secret])
  return secret
}
