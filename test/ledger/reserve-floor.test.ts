import t from 'tap'
import { balance, buildTestApp, issue, registerBusiness, registerMember, scenario, type TestContext } from '../helper.js'

// The sterling reserve never falls below zero: sterling is paid out (a redemption, a note buyback or withdrawal, a
// reversed issuance) only when it was paid in. Money spent on credit (an account with a floor below zero) keeps
// the books balanced, but no sterling backs it, so it cannot be redeemed beyond what the reserve holds.

const reserveOf = async (ctx: TestContext, code: string) =>
  (await ctx.call('GET', `/v1/currencies/${code}/reserve`, { token: ctx.issuerToken })).body as { sterlingReserve: string, difference: string }

const credit = async (ctx: TestContext, accountId: string, floor: string) => {
  const r = await ctx.call('PATCH', `/v1/accounts/${accountId}`, { token: ctx.issuerToken, body: { floor } })
  if (r.status !== 200) throw new Error(r.text)
}

const redeem = async (ctx: TestContext, code: string, b: { token: string, accountId: string }, amount: string, key: string) =>
  await ctx.call('POST', `/v1/currencies/${code}/redemptions`, {
    token: b.token, key, body: { fromAccount: b.accountId, amount, sterlingReference: `payout-${key}` },
  })

t.test('money spent on credit is not redeemed for sterling nobody paid in', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await credit(ctx, s.member.accountId, '-100.00')
  const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'on-credit', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '100.00', channel: 'app' },
  })
  t.equal(pay.status, 201, pay.text)
  t.equal(await balance(ctx, s.business.accountId), '98.00', 'the business was paid (less the 2% fee)')
  t.equal((await reserveOf(ctx, s.code)).sterlingReserve, '0.00', 'but no sterling came in')

  const refused = await redeem(ctx, s.code, s.business, '50.00', 'r1')
  t.same([refused.status, refused.body.code], [422, 'RESERVE_EXCEEDED'], refused.text)
  t.match(refused.body.detail, /sterling reserve/)
  t.equal(await balance(ctx, s.business.accountId), '98.00', 'nothing moved')
  t.match(await reserveOf(ctx, s.code), { sterlingReserve: '0.00', difference: '0.00' })
  // the refusal did not use up the key: the same key redeems once there is sterling to pay
  const early = await redeem(ctx, s.code, s.business, '30.00', 'r2')
  t.same([early.status, early.body.code], [422, 'RESERVE_EXCEEDED'], early.text)
  const m2 = await registerMember(ctx, s.code)
  await issue(ctx, s.code, m2.accountId, '30.00')
  const paid = await redeem(ctx, s.code, s.business, '30.00', 'r2')
  t.equal(paid.status, 201, paid.text)
  t.match(paid.body, { kind: 'redemption', amount: '29.10' })
  t.equal((await reserveOf(ctx, s.code)).sterlingReserve, '0.90', '30 in, 29.10 out')

  // down to zero exactly is allowed (0.93 less a 0.03 fee pays out 0.90); one minor unit more is not
  const exact = await redeem(ctx, s.code, s.business, '0.93', 'r3')
  t.equal(exact.status, 201, exact.text)
  t.equal((await reserveOf(ctx, s.code)).sterlingReserve, '0.00')
  const over = await redeem(ctx, s.code, s.business, '0.01', 'r4')
  t.same([over.status, over.body.code], [422, 'RESERVE_EXCEEDED'], over.text)

  // a payment is no sterling movement: a business at the reserve's limit still pays and is paid
  const onward = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.business.token, key: 'onward', body: { fromAccount: s.business.accountId, toAccount: m2.accountId, amount: '5.00', channel: 'api' },
  })
  t.equal(onward.status, 201, onward.text)
})

t.test('a reversed issuance pays back sterling only the reserve holds', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await credit(ctx, s.member.accountId, '-50.00')
  const issued = await issue(ctx, s.code, s.member.accountId, '10.00')
  await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'p', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '10.00', channel: 'online' },
  })
  t.equal((await redeem(ctx, s.code, s.business, '9.90', 'r')).status, 201)
  const before = await reserveOf(ctx, s.code)
  t.equal(before.sterlingReserve, '0.40', '10 in, 9.60 out')
  // the member could go below zero to give the 10.00 back, but the reserve cannot pay 10.00 of sterling back
  const rev = await ctx.call('POST', `/v1/transfers/${issued.id}/reversal`, { token: ctx.issuerToken, key: 'rev' })
  t.same([rev.status, rev.body.code], [422, 'RESERVE_EXCEEDED'], rev.text)
  t.match(await reserveOf(ctx, s.code), { sterlingReserve: '0.40', difference: '0.00' }, 'nothing moved')
  t.equal(await balance(ctx, s.member.accountId), '0.00')
})

t.test('two businesses redeeming at once cannot both take the last of the reserve', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const other = await registerBusiness(ctx, s.code, { tradingName: 'Second Shop', sector: 'cafes-pubs', postcode: 'BS1 4DJ' })
  await credit(ctx, s.member.accountId, '-100.00')
  for (const [b, key] of [[s.business, 'a'], [other, 'b']] as const) {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: s.member.token, key, body: { fromAccount: s.member.accountId, toAccount: b.accountId, amount: '20.00', channel: 'api' },
    })
    t.equal(r.status, 201, r.text)
  }
  const m2 = await registerMember(ctx, s.code)
  await issue(ctx, s.code, m2.accountId, '15.00')
  for (let round = 0; round < 5; round++) {
    const [a, b] = await Promise.all([redeem(ctx, s.code, s.business, '10.00', `a${round}`), redeem(ctx, s.code, other, '10.00', `b${round}`)])
    const codes = [a, b].map(r => r.status === 201 ? 'ok' : r.body.code).sort()
    if (round === 0) t.same(codes, ['RESERVE_EXCEEDED', 'ok'], 'one of the two is paid (9.70 of 15.00); the other would take the reserve below zero')
    else t.same(codes, ['RESERVE_EXCEEDED', 'RESERVE_EXCEEDED'], `round ${round}: 5.30 left, neither 9.70 is paid`)
  }
  t.match(await reserveOf(ctx, s.code), { sterlingReserve: '5.30', difference: '0.00' })
})

t.test('the issuance account\'s ceiling of zero is a rule of the currency', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const issuance = s.currency.systemAccounts.issuance as string
  const view = await ctx.call('GET', `/v1/accounts/${issuance}`, { token: ctx.issuerToken })
  t.match(view.body, { floor: null, ceiling: '0.00' })
  for (const body of [{ ceiling: null }, { ceiling: '10.00' }]) {
    const r = await ctx.call('PATCH', `/v1/accounts/${issuance}`, { token: ctx.issuerToken, body })
    t.same([r.status, r.body.code], [403, 'FORBIDDEN'], JSON.stringify(body))
    t.match(r.body.detail, /a ceiling of 0/)
  }
  const same = await ctx.call('PATCH', `/v1/accounts/${issuance}`, { token: ctx.issuerToken, body: { ceiling: '0.00' } })
  t.same([same.status, same.body.ceiling], [200, '0.00'], 'asking for the rule is answered')
  // whoever makes a currency (the API, the simulator, a script), its issuance account has a ceiling
  const err = await ctx.tooling().query('UPDATE account SET ceiling = NULL WHERE id = $1', [issuance]).then(() => null, (e: { constraint?: string }) => e)
  t.equal(err?.constraint, 'account_issuance_ceiling_check', 'the database refuses an issuance account without one')
})

// The ledger function checks limits itself, but if the account table's CHECK is what refuses (the constraint
// fallback, src/db/errors.ts), a movement that pays sterling out is still told RESERVE_EXCEEDED, alone or found by
// the isolating split, as the function's own refusal says.
t.test('the issuance account\'s ceiling refused by the table\'s constraint is RESERVE_EXCEEDED too', async (t) => {
  const { postMovements } = await import('../../src/ledger/post.js')
  const { issuance, redemption } = await import('../../src/domain/movements.js')
  const { Money } = await import('../../src/domain/money.js')
  const c = {
    id: '00000000-0000-7000-8000-000000000001', decimals: 2, fees: {} as never, redemptionFee: new Money('0.03'),
    system: { issuance: '00000000-0000-7000-8000-00000000000a', fees: '00000000-0000-7000-8000-00000000000b', paper: '00000000-0000-7000-8000-00000000000c' },
  }
  const who = { scope: 's', idempotencyKey: null, requestHash: 'h', createdBy: 'u', owner: null }
  const out = { ...who, ...redemption(c, { from: '00000000-0000-7000-8000-0000000000d1', amount: new Money('10.00'), sterlingReference: 'x' }) }
  const into = { ...who, ...issuance(c, { to: '00000000-0000-7000-8000-0000000000d2', amount: new Money('10.00'), sterlingReference: 'y' }) }
  const ceiling = Object.assign(new Error('new row for relation "account" violates check constraint "account_ceiling_check"'),
    { code: '23514', constraint: 'account_ceiling_check' })
  const refusing = { query: async () => { throw ceiling } }

  const [alone] = (await postMovements(refusing as never, c.id, [out])).results
  t.match(alone, { ok: false, error: { code: 'RESERVE_EXCEEDED' } }, 'a redemption alone')
  const [other] = (await postMovements(refusing as never, c.id, [into])).results
  t.match(other, { ok: false, error: { code: 'CEILING_EXCEEDED' } }, 'a movement that pays nothing out keeps CEILING_EXCEEDED')

  // on one connection (the split's), every call refused: each movement alone gets its own answer
  const client = { query: async () => { throw ceiling }, release: () => {} }
  const pool = { connect: async () => client, query: client.query }
  const split = (await postMovements(pool as never, c.id, [out, into])).results
  t.match(split, [{ ok: false, error: { code: 'RESERVE_EXCEEDED' } }, { ok: false, error: { code: 'CEILING_EXCEEDED' } }], 'split')
  const atomic = await postMovements(pool as never, c.id, [out, into], { atomic: true })
  t.match(atomic.results, [{ ok: false, error: { code: 'RESERVE_EXCEEDED' } }, { ok: false, error: { code: 'CEILING_EXCEEDED' } }], 'atomic')
})
