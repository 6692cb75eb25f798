import t from 'tap'
import { buildTestApp, issue, registerMember, scenario, type TestContext } from '../helper.js'

// GET /v1/currencies/{code}/transfers, the issuer's search. A rare kind (a redemption among thousands of payments)
// read the rest of the ledger after the cursor on every page, and an account's pages gathered and sorted its whole
// history; now a page with kind, from or to looks at no more than TRANSFER_WINDOW transfers (here 50) after its
// cursor, and an account's pages go along its entries. These tests walk every page of a few thousand transfers posted
// through the service and compare with what the database holds: nothing skipped, nothing repeated, in order.

const WINDOW = 50

interface Walk { ids: string[], pages: number, sizes: number[], cursors: string[] }

async function walk (ctx: TestContext, code: string, query: string, limit: number, onPage?: (n: number) => Promise<void>): Promise<Walk> {
  const w: Walk = { ids: [], pages: 0, sizes: [], cursors: [] }
  let cursor: string | null = null
  do {
    const r: any = await ctx.call('GET', `/v1/currencies/${code}/transfers?limit=${limit}${query}${cursor != null ? `&cursor=${cursor}` : ''}`, { token: ctx.issuerToken })
    if (r.status !== 200) throw new Error(`page ${w.pages}: ${r.status} ${r.text as string}`)
    w.ids.push(...r.body.items.map((x: any) => x.id as string))
    w.sizes.push(r.body.items.length)
    cursor = r.body.nextCursor
    if (cursor != null) w.cursors.push(cursor)
    w.pages++
    if (onPage != null) await onPage(w.pages)
  } while (cursor != null)
  return w
}

/** Payments from `from` to `to` of 1.00 by the api channel (each with its 0.01 fee leg), `n` at a time in one batch. */
async function pay (ctx: TestContext, code: string, pairs: Array<[string, string]>, key: string) {
  const r = await ctx.call('POST', `/v1/currencies/${code}/transfers/batch`, {
    token: ctx.issuerToken,
    body: { items: pairs.map(([from, to], i) => ({ idempotencyKey: `${key}-${i}`, fromAccount: from, toAccount: to, amount: '1.00', channel: 'api' })) },
  })
  if (r.status !== 200 || r.body.posted !== pairs.length) throw new Error(`batch ${key}: ${r.status} ${r.text.slice(0, 300) as string}`)
}

async function ledger (t: any) {
  const ctx = await buildTestApp(t, { TRANSFER_WINDOW: WINDOW })
  const s = await scenario(ctx)
  const m2 = await registerMember(ctx, s.code, 'BS6 5AB')
  await issue(ctx, s.code, s.member.accountId, '5000.00')
  await issue(ctx, s.code, m2.accountId, '5000.00')
  const redeem = async (key: string) => {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/redemptions`, { token: s.business.token, key, body: { fromAccount: s.business.accountId, amount: '10.00' } })
    if (r.status !== 201) throw new Error(r.text)
  }
  const round = (n: number): Array<[string, string]> => Array.from({ length: n }, (_, i) =>
    i % 3 === 0 ? [s.member.accountId, s.business.accountId] : i % 3 === 1 ? [m2.accountId, s.business.accountId] : [s.member.accountId, m2.accountId])
  await pay(ctx, s.code, round(900), 'a')
  await redeem('r1')
  await pay(ctx, s.code, round(900), 'b')
  await redeem('r2')
  // another currency's transfers in between: none of them in this currency's search
  const o = await scenario(ctx, { code: 'OTH' })
  await issue(ctx, 'OTH', o.member.accountId, '100.00')
  await pay(ctx, 'OTH', Array.from({ length: 30 }, () => [o.member.accountId, o.business.accountId]), 'o')
  const q = async (sql: string, args: unknown[]) => (await ctx.app.pool.query<{ id: string }>(sql, args)).rows.map(r => r.id)
  const ofCurrency = async (kind: string | null) => await q(
    'SELECT t.id::text AS id FROM transfer t JOIN currency c ON c.id = t.currency_id WHERE c.code = $1 AND ($2::text IS NULL OR t.kind = $2) ORDER BY t.id', [s.code, kind])
  const ofAccount = async (account: string, kind: string | null) => await q(
    'SELECT t.id::text AS id FROM entry e JOIN transfer t ON t.id = e.transfer_id WHERE e.account_id = $1 AND ($2::text IS NULL OR t.kind = $2) ORDER BY e.id', [account, kind])
  return { ctx, s, m2, o, ofCurrency, ofAccount }
}

t.test('every page of every search, walked to its end: each transfer once, in order, and no page looks past its window', async (t) => {
  const { ctx, s, m2, o, ofCurrency, ofAccount } = await ledger(t)
  const all = await ofCurrency(null)
  t.ok(all.length > 3600, `${all.length} transfers in the currency`)

  const redemptions = await ofCurrency('redemption')
  t.equal(redemptions.length, 2)
  const rare = await walk(ctx, s.code, '&kind=redemption', 10)
  t.same(rare.ids, redemptions, 'the two redemptions, once each')
  // the first redemption is past the first window: the first page is empty and goes on (before, it had both)
  t.same(rare.sizes[0], 0, 'the first page looked at 50 transfers, found none, and says where to go on')
  t.ok(rare.pages >= Math.floor(all.length / WINDOW), `${rare.pages} pages: one per window at least`)

  const payments = await walk(ctx, s.code, '&kind=payment', 37)
  t.same(payments.ids, await ofCurrency('payment'), 'every payment once, in id order')
  t.ok(Math.max(...payments.sizes) <= 37)

  const unfiltered = await walk(ctx, s.code, '', 200)
  t.same(unfiltered.ids, all, 'unfiltered: every transfer once, in id order, only this currency\'s')
  t.equal(unfiltered.sizes.filter(n => n < 200).length, 1, 'unfiltered pages are full but the last')

  // a time range: only what was posted inside it
  const cut = (await ctx.app.pool.query<{ at: Date }>('SELECT created_at AS at FROM transfer WHERE id = $1', [redemptions[0]])).rows[0].at
  const before = await walk(ctx, s.code, `&to=${cut.toISOString()}`, 50)
  const expectBefore = (await ctx.app.pool.query<{ id: string }>(
    'SELECT t.id::text AS id FROM transfer t JOIN currency c ON c.id = t.currency_id WHERE c.code = $1 AND t.created_at < $2 ORDER BY t.id', [s.code, cut])).rows.map(r => r.id)
  t.ok(expectBefore.length > 1000 && expectBefore.length < all.length)
  t.same(before.ids, expectBefore, 'to: every transfer before it once')
  // from: the walk starts at from's time, not at the ledger's first transfer (the 1,800 payments and fees
  // before the cut were 36 windows of empty pages)
  const since = await walk(ctx, s.code, `&from=${cut.toISOString()}`, 50)
  const expectSince = (await ctx.app.pool.query<{ id: string }>(
    'SELECT t.id::text AS id FROM transfer t JOIN currency c ON c.id = t.currency_id WHERE c.code = $1 AND t.created_at >= $2 ORDER BY t.id', [s.code, cut])).rows.map(r => r.id)
  t.ok(expectSince.length > 1000 && expectSince.length < all.length)
  t.equal(all.indexOf(expectSince[0]), all.length - expectSince.length, 'what is at or after the cut is the ledger\'s tail in id order')
  t.same(since.ids, expectSince, 'from: every transfer at or after it once')
  t.ok(since.sizes[0] > 0, 'the first page already holds transfers')
  t.ok(since.pages <= Math.ceil(expectSince.length / 50) + 1, `${since.pages} pages for ${expectSince.length} transfers: none spent on what came before`)
  const between = await walk(ctx, s.code, `&kind=redemption&from=${cut.toISOString()}&to=${new Date(cut.getTime() + 1).toISOString()}`, 10)
  t.same(between.ids, [redemptions[0]], 'from and to one millisecond apart: the one redemption of that millisecond')
  t.equal(between.sizes[0], 1, 'found on the first page: its window begins at the cut (to does not end the walk: the pages go on to the ledger\'s end)')
  const ancient = await walk(ctx, s.code, '&from=0001-01-01T00:00:00Z&kind=redemption', 10)
  t.same(ancient.ids, redemptions, 'a from before 1970 starts at the first transfer')

  // an account: in the order its movements were posted in (its entries), with or without a kind
  for (const [name, account] of [['member', s.member.accountId], ['business', s.business.accountId], ['second member', m2.accountId]] as const) {
    const mine = await walk(ctx, s.code, `&account=${account}`, 40)
    t.same(mine.ids, await ofAccount(account, null), `${name}: every transfer of the account once, in posting order`)
    t.same(new Set(mine.ids).size, mine.ids.length)
  }
  const businessRedemptions = await walk(ctx, s.code, `&account=${s.business.accountId}&kind=redemption`, 5)
  t.same(businessRedemptions.ids, redemptions, 'the business\'s redemptions: found through its entries, window by window')
  t.equal(businessRedemptions.sizes[0], 0, 'the first window of the business\'s entries holds no redemption')
  const fees = await walk(ctx, s.code, `&account=${s.member.accountId}&kind=fee`, 5)
  t.same(fees.ids, [], 'a member pays no fee: none, after walking its entries window by window')

  // an account of another currency has none of this currency's transfers
  const other = await ctx.call('GET', `/v1/currencies/${s.code}/transfers?account=${o.member.accountId}`, { token: ctx.issuerToken })
  t.same([other.status, other.body.items, other.body.nextCursor], [200, [], null])

  // a cursor goes on only in a search of the same account (or of none)
  const bad = async (query: string) => {
    const r = await ctx.call('GET', `/v1/currencies/${s.code}/transfers?${query}`, { token: ctx.issuerToken })
    return [r.status, r.body.code]
  }
  const accountCursor = (await walk(ctx, s.code, `&account=${s.member.accountId}`, 200)).cursors[0]
  t.same(await bad(`cursor=${accountCursor}`), [400, 'INVALID_CURSOR'], 'an account\'s cursor without the account')
  t.same(await bad(`account=${m2.accountId}&cursor=${accountCursor}`), [400, 'INVALID_CURSOR'], 'an account\'s cursor for another account')
  t.same(await bad(`account=${s.member.accountId}&cursor=${unfiltered.cursors[0]}`), [400, 'INVALID_CURSOR'], 'a cursor without account, with one')
  t.same(await bad(`account=${s.member.accountId}&cursor=${Buffer.from(JSON.stringify([s.member.accountId, '-1'])).toString('base64url')}`), [400, 'INVALID_CURSOR'])
})

t.test('payments posted while pages are read: an account\'s walk misses none and repeats none; the currency\'s repeats none', async (t) => {
  const { ctx, s, m2, ofCurrency, ofAccount } = await ledger(t)
  const existing = await ofCurrency(null)
  // single payments of the member's, several at a time through the coalescer, while the walks read their pages
  let posted = 0
  const postPayments = async () => {
    for (let round = 0; round < 8; round++) {
      await Promise.all(Array.from({ length: 6 }, async (_, i) => {
        const r = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
          token: s.member.token, key: `live-${round}-${i}`, body: { fromAccount: s.member.accountId, toAccount: i % 2 === 0 ? s.business.accountId : m2.accountId, amount: '1.00', channel: 'api' },
        })
        if (r.status !== 201) throw new Error(r.text)
        posted++
      }))
    }
  }
  const [, accountWalk, currencyWalk, kindWalk] = await Promise.all([
    postPayments(),
    walk(ctx, s.code, `&account=${s.member.accountId}`, 25),
    walk(ctx, s.code, '', 100),
    walk(ctx, s.code, '&kind=payment', 60),
  ])
  t.equal(posted, 48)
  // a walk may end before the last payments commit: a client polling for more reads the last page again from the
  // cursor it was read with, and goes on from there
  const more = async (query: string, w: Walk, limit: number) => {
    const lastSize = w.sizes.at(-1) ?? 0
    const from = w.sizes.length > 1 ? w.cursors.at(-1) ?? null : null
    return [...w.ids.slice(0, w.ids.length - lastSize), ...await walkFrom(ctx, s.code, query, limit, from)]
  }
  // an account's entries are written under its row lock, so their ids rise in commit order: the walk missed nothing
  const accountIds = await more(`&account=${s.member.accountId}`, accountWalk, 25)
  t.same(accountIds, await ofAccount(s.member.accountId, null), 'the member\'s walk: every transfer of the account, once, in posting order')
  for (const [name, ids] of [['unfiltered', currencyWalk.ids], ['kind=payment', kindWalk.ids]] as const) {
    t.equal(new Set(ids).size, ids.length, `${name}: nothing repeated`)
    t.ok(ids.every((id, i) => i === 0 || ids[i - 1] < id), `${name}: in id order`)
  }
  const seen = new Set(currencyWalk.ids)
  t.ok(existing.every(id => seen.has(id)), 'unfiltered: every transfer committed before the walk began')
  const payments = new Set(await ofCurrency('payment'))
  t.ok(kindWalk.ids.every(id => payments.has(id)), 'kind=payment: only payments')
  const existingPayments = existing.filter(id => payments.has(id))
  const seenPayments = new Set(kindWalk.ids)
  t.ok(existingPayments.length > 1000 && existingPayments.every(id => seenPayments.has(id)), 'kind=payment: every payment committed before the walk began')
})

/** A walk that starts from a cursor (or from the start). */
async function walkFrom (ctx: TestContext, code: string, query: string, limit: number, cursor: string | null): Promise<string[]> {
  const ids: string[] = []
  let next: string | null = cursor
  do {
    const r: any = await ctx.call('GET', `/v1/currencies/${code}/transfers?limit=${limit}${query}${next != null ? `&cursor=${next}` : ''}`, { token: ctx.issuerToken })
    if (r.status !== 200) throw new Error(r.text)
    ids.push(...r.body.items.map((x: any) => x.id as string))
    next = r.body.nextCursor
  } while (next != null)
  return ids
}
