import t from 'tap'
import { buildTestApp, issue, registerBusiness, registerMember, scenario } from '../helper.js'

t.test('the business directory: public, filtered, cursor-paginated', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  for (let i = 0; i < 7; i++) {
    await registerBusiness(ctx, s.code, { tradingName: `Bakery ${i}`, sector: i % 2 === 0 ? 'food' : 'retail', postcode: i < 5 ? 'BS6 1AA' : 'BA1 1AA' })
  }
  const all: string[] = []
  let cursor: string | null = null
  do {
    const r: any = await ctx.call('GET', `/v1/currencies/${s.code}/businesses?q=bakery&limit=3${cursor != null ? `&cursor=${cursor}` : ''}`)
    t.equal(r.status, 200)
    t.ok(r.body.items.length <= 3)
    all.push(...r.body.items.map((b: any) => b.tradingName))
    cursor = r.body.nextCursor
  } while (cursor != null)
  t.same(all, [0, 1, 2, 3, 4, 5, 6].map(i => `Bakery ${i}`), 'every match once, in name order, across pages')

  const food = await ctx.call('GET', `/v1/currencies/${s.code}/businesses?sector=food&q=Bakery`)
  t.same(food.body.items.map((b: any) => b.tradingName), ['Bakery 0', 'Bakery 2', 'Bakery 4', 'Bakery 6'])
  const bs6 = await ctx.call('GET', `/v1/currencies/${s.code}/businesses?district=bs6`)
  t.equal(bs6.body.items.length, 5)
  t.same(bs6.body.items.map((b: any) => [b.local, b.district]), Array(5).fill([true, 'BS6']))
  const away = await ctx.call('GET', `/v1/currencies/${s.code}/businesses?district=BA1`)
  t.same(away.body.items.map((b: any) => [b.local, b.district]), Array(2).fill([false, 'BA1']), 'outside the local areas')
  t.notOk(JSON.stringify(bs6.body).includes('postcode'), 'no full postcodes in the public directory')
  // q is text: LIKE's wildcards and its escape match themselves only
  await registerBusiness(ctx, s.code, { tradingName: '100% Local_Shop', sector: 'retail', postcode: 'BS6 1AA' })
  for (const [q, want] of [['_', ['100% Local_Shop']], ['%', ['100% Local_Shop']], ['\\', []], ['y_0', []], ['100%', ['100% Local_Shop']]] as const) {
    const r = await ctx.call('GET', `/v1/currencies/${s.code}/businesses?q=${encodeURIComponent(q)}`)
    t.same(r.body.items.map((b: any) => b.tradingName), want, `q=${q}`)
  }
})

t.test('the directory pages past the longest trading names: the cursor it issues after one is one it takes', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  // 200 characters each (the most a trading name holds): ASCII, two-byte, and four-byte (emoji) UTF-8
  const names = ['A' + 'x'.repeat(199), 'B' + 'é'.repeat(199), 'C' + '\u{1F600}'.repeat(199), 'D shop']
  for (const n of names) await registerBusiness(ctx, s.code, { tradingName: n, sector: 'food', postcode: 'BA1 1AA' })
  const seen: string[] = []
  let cursor: string | null = null
  for (let i = 0; i < names.length + 1; i++) {
    const r: any = await ctx.call('GET', `/v1/currencies/${s.code}/businesses?district=BA1&limit=1${cursor != null ? `&cursor=${cursor}` : ''}`)
    t.equal(r.status, 200, `page ${i + 1}`)
    if (r.status !== 200) break
    seen.push(...r.body.items.map((b: any) => b.tradingName))
    cursor = r.body.nextCursor
    if (cursor == null) break
  }
  t.same(seen, names, 'every business once, in name order')
})

t.test('accounts: owners and issuers read them, others get 404; issuers freeze and set limits', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const stranger = await registerMember(ctx, s.code)
  await issue(ctx, s.code, s.member.accountId, '20.00')

  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })).body.balance, '20.00')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: stranger.token })).status, 404, 'existence does not leak')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`)).status, 401)
  t.equal((await ctx.call('PATCH', `/v1/accounts/${s.member.accountId}`, { token: s.member.token, body: { status: 'frozen' } })).status, 403, 'owners cannot change limits')

  const p = await ctx.call('GET', `/v1/participants/${s.member.id}`, { token: s.member.token })
  t.equal(p.status, 200)
  t.equal(p.body.accounts[0].id, s.member.accountId)
  t.equal((await ctx.call('GET', `/v1/participants/${s.member.id}`, { token: stranger.token })).status, 404)

  const lim = await ctx.call('PATCH', `/v1/accounts/${s.member.accountId}`, { token: ctx.issuerToken, body: { floor: '-5.00', ceiling: '500.00' } })
  t.equal(lim.status, 200)
  t.match(lim.body, { floor: '-5.00', ceiling: '500.00' })
  const overdraft = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'o1', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '24.00', channel: 'api' },
  })
  t.equal(overdraft.status, 201, 'a negative floor allows an overdraft down to it')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })).body.balance, '-4.00')
  const tooFar = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'o2', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.01', channel: 'api' },
  })
  t.equal(tooFar.body.code, 'INSUFFICIENT_FUNDS')
  const raise = await ctx.call('PATCH', `/v1/accounts/${s.member.accountId}`, { token: ctx.issuerToken, body: { floor: '0' } })
  t.equal(raise.body.code, 'INVALID_LIMITS', 'a floor above the current balance is refused')
  const reopen = await ctx.call('PATCH', `/v1/accounts/${s.member.accountId}`, { token: ctx.issuerToken, body: { status: 'frozen' } })
  t.equal(reopen.body.status, 'frozen')
})

t.test('statements page by cursor and filter by time; the issuer searches transfers', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  for (let i = 0; i < 5; i++) await issue(ctx, s.code, s.member.accountId, `${i + 1}.00`)
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const r: any = await ctx.call('GET', `/v1/accounts/${s.member.accountId}/statement?limit=2${cursor != null ? `&cursor=${cursor}` : ''}`, { token: s.member.token })
    seen.push(...r.body.items.map((e: any) => e.balanceAfter))
    cursor = r.body.nextCursor
  } while (cursor != null)
  t.same(seen, ['1.00', '3.00', '6.00', '10.00', '15.00'], 'running balance across pages')
  const future = await ctx.call('GET', `/v1/accounts/${s.member.accountId}/statement?from=2999-01-01T00:00:00Z`, { token: s.member.token })
  t.same(future.body.items, [])

  const search = await ctx.call('GET', `/v1/currencies/${s.code}/transfers?kind=issuance&account=${s.member.accountId}&limit=3`, { token: ctx.issuerToken })
  t.equal(search.status, 200)
  t.equal(search.body.items.length, 3)
  t.type(search.body.nextCursor, 'string')
  const rest = await ctx.call('GET', `/v1/currencies/${s.code}/transfers?kind=issuance&account=${s.member.accountId}&cursor=${search.body.nextCursor}`, { token: ctx.issuerToken })
  t.same(rest.body.items.map((x: any) => x.amount), ['4.00', '5.00'])
  t.equal((await ctx.call('GET', `/v1/currencies/${s.code}/transfers`, { token: s.member.token })).status, 403, 'members cannot search')
})

t.test('redemption withholds the fee and moves the reserve', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '200.00')
  await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'p', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '150.00', channel: 'online' },
  })
  const r = await ctx.call('POST', `/v1/currencies/${s.code}/redemptions`, {
    token: s.business.token, key: 'r', body: { fromAccount: s.business.accountId, amount: '100.00', sterlingReference: 'payout-1' },
  })
  t.equal(r.status, 201)
  t.match(r.body, { kind: 'redemption', amount: '97.00', toAccount: s.currency.systemAccounts.issuance })
  t.match(r.body.related[0], { kind: 'fee', amount: '3.00', toAccount: s.currency.systemAccounts.fees })
  t.equal((await ctx.call('GET', `/v1/accounts/${s.business.accountId}`, { token: s.business.token })).body.balance, '48.50', '150 - 1.50 fee - 100')
  const { rows } = await ctx.app.pool.query(`SELECT sum(amount)::text AS reserve FROM reserve_movement`)
  t.equal(rows[0].reserve, '103.000000', '200 in, 97 paid out')
})

t.test('an account closes only when it holds nothing; a system account never closes', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '20.00')
  const close = async (id: string) => await ctx.call('PATCH', `/v1/accounts/${id}`, { token: ctx.issuerToken, body: { status: 'closed' } })
  const account = async (id: string) => (await ctx.call('GET', `/v1/accounts/${id}`, { token: ctx.issuerToken })).body

  const full = await close(s.member.accountId)
  t.match([full.status, full.body.code], [409, 'ACCOUNT_NOT_EMPTY'], 'money in it: refused')
  t.match(full.body.detail, /move its balance out first/, 'and says what to do')
  t.match(await account(s.member.accountId), { status: 'active', balance: '20.00' }, 'nothing changed')

  // an overdrawn account holds a debt: not empty either
  const owing = await registerMember(ctx, s.code)
  t.equal((await ctx.call('PATCH', `/v1/accounts/${owing.accountId}`, { token: ctx.issuerToken, body: { floor: '-5.00' } })).status, 200)
  t.equal((await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: owing.token, key: 'owe', body: { fromAccount: owing.accountId, toAccount: s.business.accountId, amount: '3.00', channel: 'api' },
  })).status, 201)
  t.equal((await close(owing.accountId)).body.code, 'ACCOUNT_NOT_EMPTY', 'a negative balance: refused')

  // the issuer moves the balance out (it may pay from any account of its currency), then closes it
  t.equal((await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: ctx.issuerToken, key: 'leave', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '20.00', channel: 'api' },
  })).status, 201)
  const closed = await close(s.member.accountId)
  t.match([closed.status, closed.body.status, closed.body.balance], [200, 'closed', '0.00'], 'empty: closed')
  t.equal((await close(s.member.accountId)).status, 200, 'closing it again changes nothing')
  const into = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.business.token, key: 'into', body: { fromAccount: s.business.accountId, toAccount: s.member.accountId, amount: '1.00', channel: 'api' },
  })
  t.equal(into.body.code, 'ACCOUNT_CLOSED', 'nothing moves into a closed account')
  t.equal((await ctx.call('PATCH', `/v1/accounts/${s.member.accountId}`, { token: ctx.issuerToken, body: { status: 'active' } })).body.status, 'active', 'it can be reopened')

  for (const [kind, id] of Object.entries(s.currency.systemAccounts as Record<string, string>)) {
    const r = await close(id)
    t.match([r.status, r.body.code], [403, 'FORBIDDEN'], `the ${kind} account never closes`)
  }
})

t.test('a system account\'s limits and status are fixed: no paper paid in beyond notes sold, no frozen fee account', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const sys = s.currency.systemAccounts as Record<string, string>
  const before = Object.fromEntries(await Promise.all(Object.entries(sys).map(async ([k, id]) =>
    [k, (await ctx.call('GET', `/v1/accounts/${id}`, { token: ctx.issuerToken })).body])))
  for (const [kind, id] of Object.entries(sys)) {
    for (const body of [{ floor: kind === 'issuance' ? '0.00' : null }, { floor: '-1000.00' }, { ceiling: '5.00' }, { status: 'frozen' }, { status: 'closed' }]) {
      const r = await ctx.call('PATCH', `/v1/accounts/${id}`, { token: ctx.issuerToken, body })
      t.same([r.status, r.body.code], [403, 'FORBIDDEN'], `${kind}: ${JSON.stringify(body)} refused`)
    }
    t.same((await ctx.call('GET', `/v1/accounts/${id}`, { token: ctx.issuerToken })).body, before[kind], `${kind}: unchanged`)
    const same = await ctx.call('PATCH', `/v1/accounts/${id}`, { token: ctx.issuerToken, body: { status: 'active' } })
    t.match([same.status, same.body.status, same.body.floor, same.body.ceiling], [200, 'active', before[kind].floor, before[kind].ceiling],
      `${kind}: asking for the status it has is answered`)
  }
  // an account changed by hand (as before this rule) is put right with the rule's own values, and only with them
  await ctx.tooling().query(`UPDATE account SET status = 'frozen' WHERE id = $1`, [sys.fees])
  await ctx.tooling().query('UPDATE account SET floor = NULL WHERE id = $1', [sys.paper])
  t.equal((await ctx.call('PATCH', `/v1/accounts/${sys.fees}`, { token: ctx.issuerToken, body: { status: 'closed' } })).status, 403, 'not closed')
  const thawed = await ctx.call('PATCH', `/v1/accounts/${sys.fees}`, { token: ctx.issuerToken, body: { status: 'active' } })
  t.same([thawed.status, thawed.body.status], [200, 'active'], 'the fee account made active again')
  const floored = await ctx.call('PATCH', `/v1/accounts/${sys.paper}`, { token: ctx.issuerToken, body: { floor: '0.00', ceiling: null } })
  t.same([floored.status, floored.body.floor], [200, '0.00'], 'the paper account\'s floor put back')
  // with the paper account's floor in place, notes paid in beyond those sold are refused
  const dep = await ctx.call('POST', `/v1/currencies/${s.code}/notes/deposits`, {
    token: ctx.issuerToken, key: 'dep', body: { toAccount: s.member.accountId, amount: '1000', denominations: { 20: 50 } },
  })
  t.same([dep.status, dep.body.code], [422, 'INSUFFICIENT_FUNDS'], dep.text)
  // payments with a fee still go through
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'fee', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '5.00', channel: 'app' },
  })
  t.equal(pay.status, 201, pay.text)
})

t.test('a close and a payment into the account at once: never a closed account that holds money', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.business.accountId, '100.00')
  const outcomes = new Map<string, number>()
  for (let i = 0; i < 12; i++) {
    const m = await registerMember(ctx, s.code)
    const [closing, paying] = await Promise.all([
      ctx.call('PATCH', `/v1/accounts/${m.accountId}`, { token: ctx.issuerToken, body: { status: 'closed' } }),
      ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
        token: s.business.token, key: `race-${i}`, body: { fromAccount: s.business.accountId, toAccount: m.accountId, amount: '1.00', channel: 'api' },
      }),
    ])
    const key = `close ${closing.status}, pay ${paying.status}`
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
    const a = (await ctx.call('GET', `/v1/accounts/${m.accountId}`, { token: ctx.issuerToken })).body
    t.ok(!(a.status === 'closed' && a.balance !== '0.00'), `round ${i}: ${key}, ${a.status as string} holding ${a.balance as string}`)
    // exactly one of the two went first: closed and the payment refused, or paid and the close refused
    t.ok((closing.status === 200 && paying.body.code === 'ACCOUNT_CLOSED') || (paying.status === 201 && closing.body.code === 'ACCOUNT_NOT_EMPTY'), `round ${i}: one of the two won`)
  }
  t.comment(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`)
})
