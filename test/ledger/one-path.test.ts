import pg from 'pg'
import t from 'tap'
import { Money } from '../../src/domain/money.js'
import { issuance, payment, redemption, reversal, type LedgerCurrency, type Movement } from '../../src/domain/movements.js'
import type { TransferRow } from '../../src/domain/transfer-view.js'
import { movementCoalescer } from '../../src/ledger/coalescer.js'
import { postMovement, postMovements, type ItemResult, type MovementItem } from '../../src/ledger/post.js'
import { buildTestApp, registerBusiness, registerMember, scenario, type TestContext } from '../helper.js'
import { assertInvariants, invariantViolations, ledgerViolations } from '../../support/invariants.js'

// Every kind of movement goes through one function (src/ledger/post.ts -> ledger_post_movements()), one or many
// at a time. These tests call the ledger module itself, below the HTTP layer.

let n = 0
const as = (m: Movement, key: string | null = `k-${++n}`, extra: Partial<MovementItem> = {}): MovementItem =>
  ({ ...m, scope: 'test', idempotencyKey: key, requestHash: 'h', createdBy: 'test', owner: null, ...extra })
const legsOf = (r: ItemResult): TransferRow[] => r.ok ? r.legs : []

/** Two members and a business, each funded, in a currency with Bristol-like fees. */
async function side (ctx: TestContext, code: string) {
  const s = await scenario(ctx, { code })
  const c = await ctx.app.services.currencies.resolve(code)
  const other = await registerMember(ctx, code)
  const shop = await registerBusiness(ctx, code, { tradingName: `Shop ${code}`, sector: 'retail', postcode: 'BS2 0AA' })
  return { c, accounts: [s.member.accountId, other.accountId, s.business.accountId, shop.accountId] }
}

t.test('each kind posts alike one at a time and many in one call', async (t) => {
  const ctx = await buildTestApp(t)
  const pool = ctx.app.pool
  const [one, many] = [await side(ctx, 'ONE'), await side(ctx, 'MANY')]
  const money = (x: string) => new Money(x)
  // the same movements on both sides: [member, other member, business, shop]
  const plan = (s: Awaited<ReturnType<typeof side>>): Movement[] => {
    const [m, o, b, shop] = s.accounts
    return [
      issuance(s.c, { to: m, amount: money('100.00'), sterlingReference: 'bank-1' }),
      issuance(s.c, { to: o, amount: money('20.00'), sterlingReference: 'bank-2' }),
      payment(s.c, { from: m, to: b, amount: money('12.60'), channel: 'text', reference: 'coffee', metadata: { till: '7', a: 'x' } }),
      payment(s.c, { from: o, to: m, amount: money('5.00'), channel: 'api' }),
      payment(s.c, { from: o, to: b, amount: money('50.00'), channel: 'app' }), // more than o has: refused
      payment(s.c, { from: b, to: shop, amount: money('10.00'), channel: 'online' }), // fee 0.10: shop keeps 9.90
      redemption(s.c, { from: shop, amount: money('9.90'), sterlingReference: 'payout-1' }),
      payment(s.c, { from: m, to: m, amount: money('1.00'), channel: 'app' }), // same account: refused
    ]
  }
  const singles: ItemResult[] = []
  for (const m of plan(one)) singles.push((await postMovements(pool, one.c.id, [as(m)])).results[0])
  const batch = (await postMovements(pool, many.c.id, plan(many).map(m => as(m)))).results

  // the same outcome, leg for leg, with each side's accounts in the same places
  const shape = (s: Awaited<ReturnType<typeof side>>, r: ItemResult) => {
    const name = (a: string) => { const i = s.accounts.indexOf(a); return i >= 0 ? `p${i}` : Object.entries(s.c.system).find(([, id]) => id === a)?.[0] ?? a }
    return r.ok
      ? legsOf(r).map(l => [l.kind, name(l.fromAccount), name(l.toAccount), l.amount, l.channel, l.reference, l.metadata, l.parentId == null ? null : 'parent', l.reversesId])
      : r.error.code
  }
  t.same(batch.map(r => shape(many, r)), singles.map(r => shape(one, r)), 'payments, issuances and redemptions: the same results singly and in one call')
  t.same(singles.map(r => r.ok ? 'posted' : r.error.code), ['posted', 'posted', 'posted', 'posted', 'INSUFFICIENT_FUNDS', 'posted', 'posted', 'SAME_ACCOUNT'])
  t.same(legsOf(singles[2]).map(l => [l.kind, l.amount]), [['payment', '12.600000'], ['fee', '0.250000']], 'a text payment carries its 2% fee leg')
  t.same(legsOf(singles[6]).map(l => [l.kind, l.amount]), [['redemption', '9.600000'], ['fee', '0.300000']], 'a redemption withholds its 3% fee')

  // reversals of each kind, singly on one side and in one call on the other, last movement first, so every
  // account still holds what it gives back: in the end every balance and the reserve are back to zero
  const reversible = [6, 5, 2, 3, 0, 1]
  const revOne: ItemResult[] = []
  for (const i of reversible) revOne.push((await postMovements(pool, one.c.id, [as(reversal(one.c, legsOf(singles[i])))])).results[0])
  const revMany = (await postMovements(pool, many.c.id, reversible.map(i => as(reversal(many.c, legsOf(batch[i])))))).results
  t.same(revOne.map(r => r.ok ? 'posted' : r.error.code), reversible.map(() => 'posted'))
  // (each side's reversals name that side's transfers: compared without them)
  const revShape = (s: Awaited<ReturnType<typeof side>>, r: ItemResult) => (shape(s, r) as unknown[][]).map(l => [...l.slice(0, 5), l[7]])
  t.same(revMany.map(r => revShape(many, r)), revOne.map(r => revShape(one, r)), 'reversals: the same results singly and in one call')
  t.same(legsOf(revOne[2]).map(l => l.kind + ':' + l.reversesId), legsOf(singles[2]).map(l => 'reversal:' + l.id), 'a reversal names each leg it reverses')

  const balances = async (s: Awaited<ReturnType<typeof side>>) => (await pool.query<{ balance: string }>(
    'SELECT balance::text FROM account WHERE id = ANY($1) ORDER BY array_position($1, id)', [[...s.accounts, s.c.system.issuance, s.c.system.fees]])).rows.map(r => r.balance)
  t.same(await balances(many), await balances(one), 'both sides end with the same balances')
  t.same(await balances(one), (await balances(one)).map(() => '0.000000'), 'every movement reversed: every balance is zero')
  const reserve = await pool.query<{ code: string, total: string }>(`SELECT c.code, sum(r.amount)::text AS total FROM reserve_movement r
    JOIN currency c ON c.id = r.currency_id GROUP BY c.code ORDER BY c.code`)
  t.same(reserve.rows, [{ code: 'MANY', total: '0.000000' }, { code: 'ONE', total: '0.000000' }], 'issued, redeemed and all reversed: the reserve is back to zero')

  // a reversal again, and two reversals of one movement in one call, are refused
  const [m, , b] = many.accounts
  await postMovement(pool, many.c.id, as(issuance(many.c, { to: m, amount: money('5.00'), sterlingReference: null })))
  const p = await postMovement(pool, many.c.id, as(payment(many.c, { from: m, to: b, amount: money('1.00'), channel: 'app' })))
  const again = await postMovements(pool, many.c.id, [as(reversal(many.c, p.legs)), as(reversal(many.c, p.legs)), as(reversal(many.c, legsOf(batch[5])))])
  t.same(again.results.map(r => r.ok ? 'posted' : r.error.code), ['posted', 'ALREADY_REVERSED', 'ALREADY_REVERSED'])
  assertInvariants(t, await invariantViolations(pool))
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('idempotency in one call: replays, reuse, a key twice', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await side(ctx, 'IDM')
  const [m, o] = s.accounts
  const pay = (amount: string) => payment(s.c, { from: m, to: o, amount: new Money(amount), channel: 'app' })
  await postMovement(ctx.app.pool, s.c.id, as(issuance(s.c, { to: m, amount: new Money('10.00'), sterlingReference: null })))
  const first = await postMovement(ctx.app.pool, s.c.id, as(pay('1.00'), 'once'))
  t.equal(first.replayed, false)
  const out = await postMovements(ctx.app.pool, s.c.id, [as(pay('1.00'), 'once'), as(pay('1.00'), 'twice'), as(pay('1.00'), 'twice'), as(pay('1.00'), 'once', { requestHash: 'other' })])
  t.same(out.results.map(r => r.ok ? (r.replayed ? 'replayed' : 'posted') : r.error.code), ['replayed', 'posted', 'IDEMPOTENCY_IN_FLIGHT', 'IDEMPOTENCY_IN_FLIGHT'],
    'a key used again later in the same call waits behind its first use')
  t.same(legsOf(out.results[0]), first.legs, 'a replay reads back exactly what was posted')
  const reused = await postMovements(ctx.app.pool, s.c.id, [as(pay('2.00'), 'once', { requestHash: 'other' })])
  t.same(reused.results.map(r => r.ok ? 'posted' : r.error.code), ['IDEMPOTENCY_KEY_REUSED'])
})

t.test('one movement\'s data never fails another\'s: the ledger isolates it', async (t) => {
  const ctx = await buildTestApp(t)
  const pool = ctx.app.pool
  const s = await side(ctx, 'ISO')
  const [m, o, b] = s.accounts
  await postMovement(pool, s.c.id, as(issuance(s.c, { to: m, amount: new Money('100.00'), sterlingReference: null })))
  const honest = (ref: string) => as(payment(s.c, { from: m, to: b, amount: new Money('1.00'), channel: 'app', reference: ref }))
  // what the database itself refuses, past the checks the ledger makes before it calls it
  const poisons: Array<[string, MovementItem]> = [
    ['NUL in a reference', honest('till\u0000receipt')],
    ['a lone surrogate in metadata', { ...honest('x'), metadata: { note: '\ud800' } }],
    ['a reserve delta NUMERIC(24,6) cannot hold', { ...as(issuance(s.c, { to: o, amount: new Money('1.00'), sterlingReference: null })), reserveDelta: new Money('1e30') }],
    ['a kind the transfer table does not know', { ...honest('y'), legs: [{ kind: 'gift' as never, from: m, to: b, amount: new Money('1.00') }] }],
  ]
  const items = [honest('h1'), poisons[0][1], honest('h2'), poisons[1][1], honest('h3'), poisons[2][1], honest('h4'), poisons[3][1], honest('h5')]
  const out = await postMovements(pool, s.c.id, items)
  t.equal(out.posted, true)
  const codes = out.results.map(r => r.ok ? 'posted' : r.error.code)
  t.same(codes.filter((_, i) => i % 2 === 0), ['posted', 'posted', 'posted', 'posted', 'posted'], 'every honest movement posted')
  t.same(codes.filter((_, i) => i % 2 === 1).map(c => c !== 'posted'), [true, true, true, true], 'every poisoned one failed, alone')
  t.equal(codes[1], 'VALIDATION_FAILED', poisons[0][0])
  t.equal(codes[3], 'VALIDATION_FAILED', poisons[1][0])
  t.equal(codes[5], 'VALIDATION_FAILED', poisons[2][0])
  t.equal((await pool.query(`SELECT balance::text FROM account WHERE id = $1`, [m])).rows[0].balance, '95.000000', 'five payments left the payer')
  t.same((await pool.query(`SELECT reference FROM transfer WHERE kind = 'payment' ORDER BY id`)).rows.map(r => r.reference), ['h1', 'h2', 'h3', 'h4', 'h5'], 'in order')

  // atomic: nothing posts, and the refusal names the movement at fault
  const atomic = await postMovements(pool, s.c.id, [honest('a1'), poisons[2][1], honest('a2')], { atomic: true })
  t.equal(atomic.posted, false)
  t.same(atomic.results.map(r => r.ok ? 'ok' : r.error.code), ['ok', 'VALIDATION_FAILED', 'ok'])
  t.equal((await pool.query(`SELECT count(*)::int AS n FROM transfer WHERE reference LIKE 'a%'`)).rows[0].n, 0, 'nothing was written')

  // coalesced: honest payments and poisoned ones submitted at once, each gets its own result
  const coalescer = movementCoalescer(pool, { maxBatch: 64, concurrency: 1, maxQueue: 1000 })
  const submitted = Array.from({ length: 40 }, (_, i) => i % 10 === 3 ? poisons[i % 4 === 0 ? 2 : 3][1] : honest(`c${i}`))
  const results = await Promise.all(submitted.map(x => coalescer.submit(s.c.id, { ...x, idempotencyKey: `co-${++n}` })))
  t.same(results.map(r => r.ok ? 'posted' : r.error.code), submitted.map((_, i) => i % 10 === 3 ? 'INTERNAL' : 'posted'),
    'through the coalescer: honest ones post, poisoned ones fail alone')
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('through HTTP with coalescing on: honest payers and a poisoner at once', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const payers = [s.member, ...await Promise.all(Array.from({ length: 7 }, async () => await registerMember(ctx, s.code)))]
  for (const p of payers) {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/issuances`, { token: ctx.issuerToken, key: `fund-${p.accountId}`, body: { toAccount: p.accountId, amount: '100.00', sterlingReference: 'x' } })
    t.equal(r.status, 201)
  }
  const poisoner = payers[7]
  const calls = payers.flatMap((p, i) => Array.from({ length: 20 }, async (_, j) => {
    const poisoned = p === poisoner && j % 2 === 0
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: p.token, key: `p-${i}-${j}`,
      body: { fromAccount: p.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app', ...(poisoned ? { reference: 'a\u0000b', metadata: { k: '\ud800' } } : { reference: 'ok' }) },
    })
    return { poisoned, status: r.status, code: r.body.code as string | undefined }
  }))
  const results = await Promise.all(calls)
  t.same(results.filter(r => !r.poisoned).map(r => r.status), results.filter(r => !r.poisoned).map(() => 201), 'every honest payment is 201')
  t.same(results.filter(r => r.poisoned).map(r => [r.status, r.code]), results.filter(r => r.poisoned).map(() => [422, 'INVALID_TEXT']), 'each poisoned one gets its own 422 (refused at the boundary; below it, the tests above)')

  const batch = await ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, {
    token: ctx.issuerToken,
    body: {
      items: [
        { idempotencyKey: 'b1', fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
        { idempotencyKey: 'b2', fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app', metadata: { 'bad\u0000key': 'v' } },
        { idempotencyKey: 'b3', fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
      ],
    },
  })
  t.equal(batch.status, 200)
  t.same(batch.body.items.map((x: { status: number }) => x.status), [201, 422, 201], 'a bad item fails only itself')
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('a caller\'s own transaction: the movement commits or rolls back with the caller\'s row', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await side(ctx, 'TXN')
  const [m, o] = s.accounts
  await postMovement(ctx.app.pool, s.c.id, as(issuance(s.c, { to: m, amount: new Money('10.00'), sterlingReference: null })))
  const client = await ctx.app.pool.connect()
  t.teardown(() => client.release())
  await client.query('CREATE TABLE request_row (id int PRIMARY KEY, paid boolean NOT NULL DEFAULT false)')
  await client.query('INSERT INTO request_row (id) VALUES (1), (2)')
  const pay = (amount: string, key: string) => as(payment(s.c, { from: m, to: o, amount: new Money(amount), channel: 'till' }), key)

  await client.query('BEGIN')
  await postMovement(client, s.c.id, pay('2.00', 'tx-1'))
  await client.query('UPDATE request_row SET paid = true WHERE id = 1')
  await client.query('COMMIT')
  await client.query('BEGIN')
  await postMovement(client, s.c.id, pay('3.00', 'tx-2'))
  await client.query('UPDATE request_row SET paid = true WHERE id = 2')
  await client.query('ROLLBACK')
  t.same((await client.query('SELECT id, paid FROM request_row ORDER BY id')).rows, [{ id: 1, paid: true }, { id: 2, paid: false }])
  t.equal((await client.query('SELECT balance::text FROM account WHERE id = $1', [m])).rows[0].balance, '8.000000', 'only the committed payment moved money')

  // a refusal with a result leaves the caller's transaction usable; a movement refused by the database, alone,
  // is thrown (the caller's transaction is aborted and must be rolled back)
  await client.query('BEGIN')
  await t.rejects(postMovement(client, s.c.id, pay('50.00', 'tx-3')), { code: 'INSUFFICIENT_FUNDS' })
  t.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1, 'the transaction goes on')
  await t.rejects(postMovement(client, s.c.id, { ...pay('1.00', 'tx-4'), reserveDelta: new Money('1e30') }), { code: 'VALIDATION_FAILED' })
  await client.query('ROLLBACK')
  // many movements in the caller's transaction: one refused by the database does not abort it
  await client.query('BEGIN')
  const out = await postMovements(client, s.c.id, [pay('1.00', 'tx-5'), { ...pay('1.00', 'tx-6'), reserveDelta: new Money('1e30') }, pay('1.00', 'tx-7')])
  t.same(out.results.map(r => r.ok), [true, false, true])
  await client.query('COMMIT')
  t.equal((await client.query('SELECT balance::text FROM account WHERE id = $1', [m])).rows[0].balance, '6.000000')
  assertInvariants(t, await invariantViolations(ctx.app.pool))
})

t.test('the service\'s own sessions cannot post at a past time', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await side(ctx, 'CLK')
  const api = new pg.Pool({ connectionString: ctx.db.url, max: 1, application_name: 'circulate' })
  t.teardown(async () => { await api.end() })
  await t.rejects(postMovements(api, s.c.id, [as(issuance(s.c, { to: s.accounts[0], amount: new Money('1.00'), sterlingReference: null }))], { at: [new Date('2026-01-01T00:00:00Z')] }), /tooling only/)
  await t.rejects(postMovements(ctx.app.pool, s.c.id, [as(issuance(s.c, { to: s.accounts[0], amount: new Money('1.00'), sterlingReference: null }))], { at: [new Date('2026-01-01T00:00:00Z')] }), /tooling only/)
  t.equal((await ctx.app.pool.query('SELECT count(*)::int AS n FROM transfer')).rows[0].n, 0)
})

t.test('movements.ts: the reserve moves by minus the issuance account', async (t) => {
  const c: LedgerCurrency = {
    id: 'c', decimals: 2, redemptionFee: new Money('0.03'), system: { issuance: 'I', fees: 'F', paper: 'P' },
    fees: { text: new Money('0.02'), app: new Money('0.02'), online: new Money('0.01'), api: new Money(0), till: new Money(0) },
  }
  t.equal(issuance(c, { to: 'm', amount: new Money('10'), sterlingReference: null }).reserveDelta?.toFixed(), '10')
  t.equal(payment(c, { from: 'm', to: 'b', amount: new Money('10'), channel: 'app' }).reserveDelta, null)
  const r = redemption(c, { from: 'b', amount: new Money('10.00') })
  t.same([r.legs[0].amount.toFixed(), r.legs[1].amount.toFixed(), r.reserveDelta?.toFixed()], ['9.7', '0.3', '-9.7'])
  const back = reversal(c, r.legs.map((l, i) => ({ id: `t${i}`, kind: l.kind, fromAccount: l.from, toAccount: l.to, amount: l.amount.toFixed(), parentId: i === 0 ? null : 't0' })))
  t.same(back.applyOrder, [1, 0], 'the fee comes back first')
  t.equal(back.reserveDelta?.toFixed(), '9.7')
  t.throws(() => redemption({ ...c, redemptionFee: new Money('0.5') }, { from: 'b', amount: new Money('0.01') }), { code: 'INVALID_AMOUNT' }, 'nothing left after the fee')
  t.throws(() => reversal(c, [{ id: 'f', kind: 'fee', fromAccount: 'b', toAccount: 'F', amount: '1', parentId: 'p' }]), { code: 'NOT_REVERSIBLE' })
})

t.test('ledger rows are append-only, and the invariants catch what the dropped foreign keys used to', async (t) => {
  const ctx = await buildTestApp(t)
  const pool = ctx.app.pool
  const s = await side(ctx, 'APP')
  const [m, o] = s.accounts
  await postMovement(pool, s.c.id, as(issuance(s.c, { to: m, amount: new Money('10.00'), sterlingReference: 'bank' })))
  const paid = await postMovement(pool, s.c.id, as(payment(s.c, { from: m, to: o, amount: new Money('5.00'), channel: 'app' })))
  for (const [what, sql] of [
    ['a transfer changed', `UPDATE transfer SET amount = 1 WHERE id = '${paid.legs[0].id}'`],
    ['a transfer deleted', `DELETE FROM transfer WHERE id = '${paid.legs[1].id}'`],
    ['an entry deleted', `DELETE FROM entry WHERE transfer_id = '${paid.legs[0].id}'`],
    ['an entry changed', `UPDATE entry SET balance_after = 0 WHERE transfer_id = '${paid.legs[0].id}'`],
    ['a key deleted', 'DELETE FROM idempotency_key'],
    ['a reserve movement deleted', 'DELETE FROM reserve_movement'],
    ['an account deleted', `DELETE FROM account WHERE id = '${o}'`],
    ['a currency deleted', `DELETE FROM currency WHERE id = '${s.c.id}'`],
    ['the transfer table truncated', 'TRUNCATE transfer CASCADE'],
  ]) await t.rejects(pool.query(sql), /the ledger only appends/, `${what}: refused`)
  t.same(await ledgerViolations(ctx.db.url), [], 'the ledger as posted holds every invariant')

  // a row written past the ledger function, pointing at an account that does not exist: the invariant check
  // (run by the property, concurrency, crash and outage tests) finds it
  await pool.query(`INSERT INTO transfer (currency_id, kind, from_account_id, to_account_id, amount, created_by)
    VALUES ($1, 'payment', $2, gen_random_uuid(), 1, 'not the ledger')`, [s.c.id, m])
  const v = await invariantViolations(pool)
  t.equal(v.danglingOrForeign.length, 1, 'a dangling reference is a broken invariant')
})
