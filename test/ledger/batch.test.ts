import t from 'tap'
import pg from 'pg'
import { balance, buildTestApp, issue, registerBusiness, registerMember, scenario } from '../helper.js'
import { ledgerViolations } from '../../support/invariants.js'
import { MAX_LISTED } from '../../src/domain/errors.js'
import { BATCH_ITEM_MAX_FIELDS } from '../../src/schemas/batch.js'

// POST /v1/currencies/{code}/transfers/batch: up to 1,000 payments, each with its own key and result.
const url = (code: string) => `/v1/currencies/${code}/transfers/batch`
let n = 0
const key = () => `item-${++n}`

t.test('a mixed batch: each item has its own result, and later items see earlier ones', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const fees = s.currency.systemAccounts.fees as string
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const other = await registerMember(ctx, s.code)
  const frozen = await registerBusiness(ctx, s.code, { tradingName: 'Frozen Ltd', sector: 'retail', postcode: 'BS2 0AA' })
  const patch = await ctx.call('PATCH', `/v1/accounts/${frozen.accountId}`, { token: ctx.issuerToken, body: { status: 'frozen' } })
  t.equal(patch.status, 200)

  const pay = (amount: string, extra: Record<string, unknown> = {}) =>
    ({ idempotencyKey: key(), fromAccount: s.member.accountId, toAccount: s.business.accountId, amount, channel: 'app', reference: 'batch', ...extra })
  const items = [
    pay('6.00'), // 0: posted, fee 0.12
    pay('6.00'), // 1: only 4.00 left: insufficient funds
    pay('1.005'), // 2: three decimals
    pay('1.00', { toAccount: s.member.accountId }), // 3: same account
    pay('1.00', { fromAccount: other.accountId }), // 4: not the member's account
    pay('1.00', { toAccount: frozen.accountId }), // 5: payee frozen
    pay('1.00', { toAccount: '0190aaaa-0000-7000-8000-000000000000' }), // 6: no such account
    pay('4.00', { channel: 'online' }), // 7: posted, uses the rest; fee 0.04
  ]
  const r = await ctx.call('POST', url(s.code), { token: s.member.token, body: { items } })
  t.equal(r.status, 200)
  t.same(r.body.items.map((x: any) => [x.index, x.status, x.problem?.code ?? null]), [
    [0, 201, null], [1, 422, 'INSUFFICIENT_FUNDS'], [2, 422, 'INVALID_AMOUNT'], [3, 422, 'SAME_ACCOUNT'],
    [4, 404, 'ACCOUNT_NOT_FOUND'], [5, 422, 'ACCOUNT_FROZEN'], [6, 404, 'ACCOUNT_NOT_FOUND'], [7, 201, null],
  ])
  t.match(r.body, { atomic: false, posted: 2, replayed: 0, failed: 6 })
  t.equal(r.body.items[2].problem.errors[0].pointer, '/items/2/amount')
  t.match(r.body.items[1].problem, { type: 'urn:circulate:problem:insufficient-funds', status: 422, instance: `${url(s.code)}#/items/1` })
  const first = r.body.items[0].transfer
  t.match(first, { kind: 'payment', amount: '6.00', channel: 'app', reference: 'batch', fromAccount: s.member.accountId, toAccount: s.business.accountId })
  t.match(first.related, [{ kind: 'fee', amount: '0.12', fromAccount: s.business.accountId, toAccount: fees, parentId: first.id }])
  t.equal(await balance(ctx, s.member.accountId), '0.00')
  t.equal(await balance(ctx, s.business.accountId), '9.84')
  t.equal(await balance(ctx, fees), '0.16')

  const got = await ctx.call('GET', `/v1/transfers/${first.id}`, { token: s.member.token })
  t.same(got.body, first, 'GET reads the transfer back exactly as the batch answered it')
  const st = await ctx.call('GET', `/v1/accounts/${s.business.accountId}/statement`, { token: s.business.token })
  t.same(st.body.items.map((e: any) => [e.kind, e.amount, e.balanceAfter]),
    [['payment', '6.00', '6.00'], ['fee', '-0.12', '5.88'], ['payment', '4.00', '9.88'], ['fee', '-0.04', '9.84']],
    'entries carry the running balance in posting order')
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('atomic: one failing item fails the request and nothing is posted', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const items = [
    { idempotencyKey: 'a-1', fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '3.00', channel: 'app' },
    { idempotencyKey: 'a-2', fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '8.00', channel: 'app' },
  ]
  const r = await ctx.call('POST', url(s.code), { token: s.member.token, body: { atomic: true, items } })
  t.equal(r.status, 422)
  t.match(r.headers['content-type'], /application\/problem\+json/)
  t.equal(r.body.code, 'INSUFFICIENT_FUNDS')
  t.same(r.body.errors.map((e: any) => e.pointer), ['/items/1'])
  t.match(r.body.detail, /atomic/)
  t.equal(await balance(ctx, s.member.accountId), '10.00', 'the first item was not posted either')
  t.equal(await balance(ctx, s.business.accountId), '0.00')

  const bad = await ctx.call('POST', url(s.code), { token: s.member.token, body: { atomic: true, items: [items[0], { ...items[1], amount: '0' }] } })
  t.equal(bad.status, 422)
  t.equal(bad.body.code, 'INVALID_AMOUNT')
  t.same(bad.body.errors.map((e: any) => e.pointer), ['/items/1/amount'])

  // the keys were not claimed: the same keys post once the batch can succeed
  const ok = await ctx.call('POST', url(s.code), { token: s.member.token, body: { atomic: true, items: [items[0], { ...items[1], amount: '7.00' }] } })
  t.equal(ok.status, 200)
  t.match(ok.body, { atomic: true, posted: 2, failed: 0 })
  t.equal(await balance(ctx, s.member.accountId), '0.00')
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('idempotency per item: replays, reuse with another body, keys shared with POST .../payments', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const item = (k: string, amount = '1.00') => ({ idempotencyKey: k, fromAccount: s.member.accountId, toAccount: s.business.accountId, amount, channel: 'app', metadata: { till: '7', a: 'x' } })
  const first = await ctx.call('POST', url(s.code), { token: s.member.token, body: { items: [item('k1'), item('k2')] } })
  t.match(first.body, { posted: 2, replayed: 0 })

  const again = await ctx.call('POST', url(s.code), { token: s.member.token, body: { items: [item('k1'), item('k2', '2.00'), item('k3')] } })
  t.same(again.body.items.map((x: any) => [x.status, x.replayed, x.problem?.code ?? null]),
    [[201, true, null], [422, false, 'IDEMPOTENCY_KEY_REUSED'], [201, false, null]])
  t.same(again.body.items[0].transfer, first.body.items[0].transfer, 'a replayed item answers exactly as the first time')
  t.equal(await balance(ctx, s.member.accountId), '97.00', 'three payments, not four')

  // a batch item and a single payment with the same key and fields are the same payment
  const { idempotencyKey, ...single } = item('k3')
  const replay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: idempotencyKey, body: single })
  t.equal(replay.status, 201)
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.same(replay.body, again.body.items[2].transfer)
  const p = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'single-1', body: single })
  t.equal(p.status, 201)
  const fromSingle = await ctx.call('POST', url(s.code), { token: s.member.token, body: { items: [{ ...single, idempotencyKey: 'single-1' }] } })
  t.match(fromSingle.body.items[0], { status: 201, replayed: true })
  t.same(fromSingle.body.items[0].transfer, p.body)

  // keys are per principal: the issuer's k1 is another payment
  const issuer = await ctx.call('POST', url(s.code), { token: ctx.issuerToken, body: { items: [item('k1')] } })
  t.match(issuer.body.items[0], { status: 201, replayed: false })

  const dup = await ctx.call('POST', url(s.code), { token: s.member.token, body: { items: [item('d1'), item('d1')] } })
  t.same(dup.body.items.map((x: any) => [x.status, x.problem?.code ?? null]), [[201, null], [422, 'VALIDATION_FAILED']])
  t.equal(dup.body.items[1].problem.errors[0].pointer, '/items/1/idempotencyKey')
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('who may batch: a payer\'s own accounts, an issuer any account of its currency', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '20.00')
  const item = { idempotencyKey: 'w1', fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'api' }
  const byBusiness = await ctx.call('POST', url(s.code), { token: s.business.token, body: { items: [item] } })
  t.match(byBusiness.body.items[0], { status: 404, problem: { code: 'ACCOUNT_NOT_FOUND' } }, 'a business cannot pay from a member\'s account')
  const byIssuer = await ctx.call('POST', url(s.code), { token: ctx.issuerToken, body: { items: [item] } })
  t.match(byIssuer.body.items[0], { status: 201 })
  const other = await scenario(ctx, { code: 'OTH' })
  const cross = await ctx.call('POST', url('OTH'), { token: s.member.token, body: { items: [item] } })
  t.equal(cross.status, 404, 'a member of another currency')
  const sys = await ctx.call('POST', url(s.code), { token: ctx.issuerToken, body: { items: [{ ...item, idempotencyKey: 'w2', toAccount: s.currency.systemAccounts.fees }] } })
  t.match(sys.body.items[0], { status: 404 }, 'system accounts are not payees')
  const foreign = await ctx.call('POST', url(s.code), { token: ctx.issuerToken, body: { items: [{ ...item, idempotencyKey: 'w3', toAccount: other.business.accountId }] } })
  t.match(foreign.body.items[0], { status: 422, problem: { code: 'CURRENCY_MISMATCH' } })
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('floors and ceilings hold item by item', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const payee = await registerMember(ctx, s.code)
  await issue(ctx, s.code, s.member.accountId, '50.00')
  t.equal((await ctx.call('PATCH', `/v1/accounts/${s.business.accountId}`, { token: ctx.issuerToken, body: { ceiling: '10.00' } })).status, 200)
  t.equal((await ctx.call('PATCH', `/v1/accounts/${s.member.accountId}`, { token: ctx.issuerToken, body: { floor: '-5.00' } })).status, 200)
  const item = (k: string, amount: string, to = s.business.accountId) => ({ idempotencyKey: k, fromAccount: s.member.accountId, toAccount: to, amount, channel: 'app' })
  const r = await ctx.call('POST', url(s.code), {
    token: s.member.token,
    body: { items: [item('c1', '9.00'), item('c2', '2.00'), item('c3', '1.00'), item('c4', '0.80'), item('c5', '0.20'), item('c6', '44.81', payee.accountId), item('c7', '44.80', payee.accountId)] },
  })
  // payee: 9.00 lands (8.82 after its fee); 2.00 would take it to 10.82 before the fee is taken: past the ceiling;
  // 1.00 -> 9.80; 0.80 -> 10.60: past; 0.20 (fee 0.00) -> 10.00. Payer: 50 - 10.20 = 39.80, floor -5: 44.80 more.
  t.same(r.body.items.map((x: any) => x.problem?.code ?? x.status), [201, 'CEILING_EXCEEDED', 201, 'CEILING_EXCEEDED', 201, 'INSUFFICIENT_FUNDS', 201])
  t.equal(await balance(ctx, s.business.accountId), '10.00')
  t.equal(await balance(ctx, s.member.accountId), '-5.00')
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('bad requests are problems, never 5xx', async (t) => {
  const ctx = await buildTestApp(t, { BATCH_BODY_LIMIT: 200_000 })
  const s = await scenario(ctx)
  const item = { idempotencyKey: 'b1', fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' }
  const cases: Array<[string, any, number, string]> = [
    ['no items', { items: [] }, 422, 'VALIDATION_FAILED'],
    ['items missing', {}, 422, 'VALIDATION_FAILED'],
    ['an unknown field', { items: [item], all: true }, 422, 'VALIDATION_FAILED'],
    ['atomic not a boolean', { items: [item], atomic: 'yes' }, 422, 'VALIDATION_FAILED'],
    ['an atomic batch with a malformed item', { atomic: true, items: [item, { ...item, idempotencyKey: 'b2', amount: 1 }] }, 422, 'INVALID_AMOUNT'],
    ['1,001 items', { items: Array.from({ length: 1001 }, (_, i) => ({ ...item, idempotencyKey: `x${i}` })) }, 422, 'VALIDATION_FAILED'],
  ]
  for (const [name, body, status, code] of cases) {
    const r = await ctx.call('POST', url(s.code), { token: s.member.token, body: JSON.parse(JSON.stringify(body)) })
    t.equal(r.status, status, name)
    t.equal(r.body.code, code, name)
  }
  // A malformed item fails alone, with its own problem; the others are posted.
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const itemCases: Array<[string, any, string, string]> = [
    ['an item without a key', { ...item, idempotencyKey: undefined }, 'VALIDATION_FAILED', '/items/1/idempotencyKey'],
    ['an empty key', { ...item, idempotencyKey: '' }, 'VALIDATION_FAILED', '/items/1/idempotencyKey'],
    ['an unknown item field', { ...item, idempotencyKey: 'k3', fee: '0' }, 'VALIDATION_FAILED', '/items/1/fee'],
    ['a numeric amount', { ...item, idempotencyKey: 'k4', amount: 1 }, 'INVALID_AMOUNT', '/items/1/amount'],
    ['an item that is not an object', 7, 'VALIDATION_FAILED', '/items/1'],
    ['a null item', null, 'VALIDATION_FAILED', '/items/1'],
  ]
  for (const [name, bad, code, pointer] of itemCases) {
    const r = await ctx.call('POST', url(s.code), { token: s.member.token, body: JSON.parse(JSON.stringify({ items: [{ ...item, idempotencyKey: `ok-${name}` }, bad] })) })
    t.equal(r.status, 200, name)
    t.same([r.body.posted, r.body.failed], [1, 1], `${name}: the good item is posted, the bad one fails`)
    t.equal(r.body.items[1].status, 422, name)
    t.equal(r.body.items[1].problem.code, code, name)
    t.equal(r.body.items[1].problem.errors[0].pointer, pointer, name)
    t.equal(r.body.items[1].problem.instance, `/v1/currencies/${s.code}/transfers/batch#/items/1`, name)
  }
  t.equal(await balance(ctx, s.member.accountId), '4.00', 'only the six good items were posted')
  const huge = await ctx.call('POST', url(s.code), { token: s.member.token, body: { items: Array.from({ length: 1000 }, (_, i) => ({ ...item, idempotencyKey: `h${i}`, reference: 'r'.repeat(140) })) } })
  t.equal(huge.status, 413, 'past BATCH_BODY_LIMIT')
  const raw = await ctx.call('POST', url(s.code), { token: s.member.token, raw: '{"items": [' })
  t.equal(raw.status, 400)
  const anon = await ctx.call('POST', url(s.code), { body: { items: [item] } })
  t.equal(anon.status, 401)
  const unknown = await ctx.call('POST', url('NOPE'), { token: s.member.token, body: { items: [item] } })
  t.equal(unknown.status, 404)
  t.equal(await balance(ctx, s.member.accountId), '4.00')
})

t.test('what a large body can cost is bounded: no token, too many items, thousands of unknown fields', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const item = { idempotencyKey: 'b1', fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' }
  // without a token the body is not read: a body that is not JSON at all answers 401 (on other routes, 400 first)
  const anon = await ctx.call('POST', url(s.code), { raw: '{"items": [' })
  t.equal(anon.status, 401, 'no token: 401 before the body is parsed')
  t.equal(anon.body.code, 'UNAUTHENTICATED')
  // too many items: one error for the count, not one per item
  const many = await ctx.call('POST', url(s.code), { token: s.member.token, body: { items: Array.from({ length: 20_000 }, () => ({})) } })
  t.equal(many.status, 422)
  t.same(many.body.errors, [{ pointer: '/items', detail: 'must NOT have more than 1000 items' }], 'the count alone, as the schema says it')
  // an item of far more fields than a payment has is no payment: the request is refused, naming it
  const wide = Object.fromEntries([...Object.entries(item), ...Array.from({ length: 300 }, (_, i) => [`x${i}`, 1])])
  const r = await ctx.call('POST', url(s.code), { token: s.member.token, body: { items: [{ ...item, idempotencyKey: 'b0' }, wide] } })
  t.equal(r.status, 422)
  t.same(r.body.errors, [{ pointer: '/items/1', detail: `must NOT have more than ${BATCH_ITEM_MAX_FIELDS} properties` }], 'one error, for the item')
  // a few stray fields fail their item only, each named
  const stray = { ...item, idempotencyKey: 'b2', tip: 1, note: 'x', colour: 'red' }
  const few = await ctx.call('POST', url(s.code), { token: s.member.token, body: { items: [stray] } })
  t.equal(few.status, 200)
  t.same(few.body.items[0].problem.errors.map((e: { pointer: string }) => e.pointer).sort(), ['/items/0/colour', '/items/0/note', '/items/0/tip'])
  // atomic, 1,000 items with 5 stray fields each: one problem, listing MAX_LISTED of the 5,000 and counting the rest
  const bad = Array.from({ length: 1000 }, (_, i) => ({ ...item, idempotencyKey: `a${i}`, s1: 1, s2: 1, s3: 1, s4: 1, s5: 1 }))
  const all = await ctx.call('POST', url(s.code), { token: s.member.token, body: { atomic: true, items: bad } })
  t.equal(all.status, 422)
  t.equal(all.body.errors.length, MAX_LISTED, `${MAX_LISTED} problems listed`)
  t.match(all.body.detail, new RegExp(`\\(1000 items failed; ${MAX_LISTED} problems listed, and ${5000 - MAX_LISTED} more\\)$`), 'and the rest counted')
  // atomic: the item's problem names its item once
  const atomic = await ctx.call('POST', url(s.code), { token: s.member.token, body: { atomic: true, items: [null] } })
  t.equal(atomic.status, 422)
  t.match(atomic.body.detail, /^item 0: \/items\/0 must be object; this batch is atomic/)
  t.equal(await balance(ctx, s.member.accountId), '0.00', 'nothing was posted')
})

t.test('batches and single payments on the same accounts at once: no deadlock, invariants hold', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const members = [s.member, await registerMember(ctx, s.code), await registerMember(ctx, s.code)]
  for (const m of members) await issue(ctx, s.code, m.accountId, '30.00')
  const accounts = [...members.map(m => m.accountId), s.business.accountId]
  const jobs: Array<Promise<unknown>> = []
  for (let b = 0; b < 6; b++) {
    const items = Array.from({ length: 40 }, (_, i) => {
      const from = accounts[(b + i) % 3]; const to = accounts[(b + i + 1) % 4]
      return { idempotencyKey: `c-${b}-${i}`, fromAccount: from, toAccount: from === to ? accounts[3] : to, amount: '1.25', channel: 'app' }
    })
    jobs.push(ctx.call('POST', url(s.code), { token: ctx.issuerToken, body: { items, atomic: b % 2 === 0 } }))
    for (let i = 0; i < 10; i++) {
      jobs.push(ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
        token: ctx.issuerToken, key: `s-${b}-${i}`, body: { fromAccount: accounts[i % 3], toAccount: accounts[3], amount: '0.75', channel: 'till' },
      }))
    }
  }
  const results = await Promise.all(jobs) as Array<{ status: number }>
  t.ok(results.every(r => r.status < 500), 'no 5xx')
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('an issuer\'s batch is audited: one row per posted payment, none for a refused or replayed one', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const item = (k: string, amount: string) => ({ idempotencyKey: k, fromAccount: s.member.accountId, toAccount: s.business.accountId, amount, channel: 'app' })
  const count = async () => {
    const c = new pg.Client({ connectionString: ctx.db.url })
    await c.connect()
    try { return Number((await c.query(`SELECT count(*) FROM audit_event WHERE action = 'payment.create' AND outcome = 'success'`)).rows[0].count) } finally { await c.end() }
  }
  const before = await count()
  const r = await ctx.call('POST', url(s.code), { token: ctx.issuerToken, body: { items: [item('au-1', '1.00'), item('au-2', '50.00'), item('au-3', '2.00')] } })
  t.same(r.body.items.map((x: any) => x.status), [201, 422, 201])
  t.equal(await count() - before, 2, 'two posted, two rows')
  await ctx.call('POST', url(s.code), { token: ctx.issuerToken, body: { items: [item('au-1', '1.00')] } })
  await ctx.call('POST', url(s.code), { token: ctx.issuerToken, body: { atomic: true, items: [item('au-4', '1.00'), item('au-5', '50.00')] } })
  await ctx.call('POST', url(s.code), { token: s.member.token, body: { items: [item('au-6', '1.00')] } })
  t.equal(await count() - before, 2, 'a replay, a refused atomic batch and a member\'s own payment add none')
})
