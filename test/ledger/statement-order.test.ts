import t from 'tap'
import { buildTestApp, issue, scenario } from '../helper.js'

// A statement read newest first: the same entries as oldest first, in reverse, page by page; a cursor is tied to
// the order it was made in; the time window and the CSV read the same way.
t.test('a statement newest first: every entry once, in reverse, with its running balance', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  for (let i = 1; i <= 6; i++) {
    const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: s.member.token, key: `order-${i}`, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: `${i}.00`, channel: 'app', reference: `n${i}` },
    })
    t.equal(pay.status, 201)
  }
  const url = (q: string) => `/v1/accounts/${s.member.accountId}/statement?${q}`
  const all = async (order: string, extra = '') => {
    const seen: Array<{ entryId: string, amount: string, balanceAfter: string }> = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page: { status: number, body: { items: typeof seen, nextCursor: string | null } } = await ctx.call('GET', url(`order=${order}&limit=3${extra}${cursor == null ? '' : `&cursor=${cursor}`}`), { token: s.member.token })
      t.equal(page.status, 200)
      seen.push(...page.body.items)
      cursor = page.body.nextCursor
      pages++
    } while (cursor != null)
    return { seen, pages }
  }
  const oldest = await all('oldest')
  const newest = await all('newest')
  t.equal(oldest.seen.length, 7, 'the issuance and six payments')
  t.equal(newest.pages, 3, 'three pages of at most three')
  t.same(newest.seen, [...oldest.seen].reverse(), 'the same entries, each once, latest first')
  t.same(newest.seen.slice(0, 2).map(e => [e.amount, e.balanceAfter]), [['-6.00', '79.00'], ['-5.00', '85.00']], 'the latest payment and its balance first')
  const plain = await ctx.call('GET', url(''), { token: s.member.token })
  t.same(plain.body.items, oldest.seen, 'oldest first by default')

  // a cursor continues only in the order it was made in
  const first = await ctx.call('GET', url('order=newest&limit=2'), { token: s.member.token })
  const forward = await ctx.call('GET', url('limit=2'), { token: s.member.token })
  for (const [what, q] of [['a newest-first cursor read oldest first', `cursor=${first.body.nextCursor as string}`], ['an oldest-first cursor read newest first', `order=newest&cursor=${forward.body.nextCursor as string}`]]) {
    const r = await ctx.call('GET', url(q), { token: s.member.token })
    t.equal(r.status, 400, what)
    t.equal(r.body.code, 'INVALID_CURSOR', what)
  }
  const bad = await ctx.call('GET', url('order=latest'), { token: s.member.token })
  t.equal(bad.status, 400, 'an order the API does not know')
  t.match(bad.headers['content-type'], /^application\/problem\+json/)

  // the time window: entries before the fourth payment, newest first
  const cut = (await ctx.app.pool.query<{ t: Date }>(
    `SELECT e.created_at AS t FROM entry e JOIN transfer x ON x.id = e.transfer_id
      WHERE e.account_id = $1 AND x.reference = 'n4'`, [s.member.accountId])).rows[0].t.toISOString()
  const before = await all('newest', `&to=${encodeURIComponent(cut)}`)
  t.same(before.seen.map(e => e.amount), ['-3.00', '-2.00', '-1.00', '100.00'])

  const csv = await ctx.call('GET', url('order=newest&format=csv&limit=2'), { token: s.member.token })
  t.equal(csv.status, 200)
  const rows = csv.text.trim().split('\n').slice(1).map(l => l.split(',')[0])
  t.same(rows, newest.seen.slice(0, 2).map(e => e.entryId), 'the CSV reads newest first too')
  const next = await ctx.call('GET', url(`order=newest&format=csv&limit=2&cursor=${csv.headers['x-next-cursor'] as string}`), { token: s.member.token })
  t.same(next.text.trim().split('\n').slice(1).map(l => l.split(',')[0]), newest.seen.slice(2, 4).map(e => e.entryId), 'and its next page follows on')
})

t.test('a page with a time range looks at most STATEMENT_WINDOW entries: an unfilled window gives a shorter page that goes on in nextCursor', async (t) => {
  const ctx = await buildTestApp(t, { STATEMENT_WINDOW: 4 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  for (let i = 1; i <= 9; i++) {
    const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: s.member.token, key: `window-${i}`, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: `${i}.00`, channel: 'app', reference: `w${i}` },
    })
    t.equal(pay.status, 201)
  }
  const at = async (ref: string) => encodeURIComponent((await ctx.app.pool.query<{ t: Date }>(
    `SELECT e.created_at AS t FROM entry e JOIN transfer x ON x.id = e.transfer_id WHERE e.account_id = $1 AND x.reference = $2`,
    [s.member.accountId, ref])).rows[0].t.toISOString())
  const pages = async (q: string) => {
    const out: string[][] = []
    let cursor: string | null = null
    do {
      const page: { status: number, body: { items: Array<{ amount: string }>, nextCursor: string | null } } =
        await ctx.call('GET', `/v1/accounts/${s.member.accountId}/statement?limit=3&${q}${cursor == null ? '' : `&cursor=${cursor}`}`, { token: s.member.token })
      t.equal(page.status, 200)
      out.push(page.body.items.map(e => e.amount))
      cursor = page.body.nextCursor
    } while (cursor != null)
    return out
  }
  // ten entries (the issuance, nine payments): windows of 4, 4 and 2
  t.same(await pages(`from=${await at('w8')}`), [[], [], ['-8.00', '-9.00']], 'the first two windows hold nothing of the range: two empty pages, each going on')
  t.same(await pages(`order=newest&to=${await at('w2')}`), [[], [], ['-1.00', '100.00']], 'newest first the same way (to is exclusive: w2 is not in it)')
  // a full window cannot know that the range has ended, so the last page may be empty
  t.same(await pages(`from=${await at('w3')}&to=${await at('w6')}`), [['-3.00'], ['-4.00', '-5.00'], []], 'each page holds what its window finds, and ends with the history')
  t.same(await pages(''), [['100.00', '-1.00', '-2.00'], ['-3.00', '-4.00', '-5.00'], ['-6.00', '-7.00', '-8.00'], ['-9.00']], 'without a range the pages are full, as before')
})
