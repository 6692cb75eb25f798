import t from 'tap'
import { buildTestApp, issue, registerMember, scenario, type TestContext } from '../helper.js'
import { assertInvariants, invariantViolations } from '../../support/invariants.js'
import pg from 'pg'

// Paper notes recorded by exchange points (issuer staff) and the reserve, through HTTP with real tokens.

async function staff (ctx: TestContext, code: string, role: 'issuers' | 'researchers', token = ctx.issuerToken) {
  const username = `${role}-${code}-${Math.random().toString(36).slice(2, 8)}`
  const r = await ctx.call('POST', `/v1/currencies/${code}/${role}`, { token, body: { name: 'Staff', username, password: 'staff-password-1' } })
  if (r.status !== 201) throw new Error(r.text)
  return await ctx.token(username, 'staff-password-1')
}

const reserve = async (ctx: TestContext, code: string, token: string, q = '') => await ctx.call('GET', `/v1/currencies/${code}/reserve${q}`, { token })

t.test('notes: sold, paid in, bought back with the fee, withdrawn; the reserve reconciles after each', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const desk = await staff(ctx, s.code, 'issuers')
  const paper = s.currency.systemAccounts.paper
  await issue(ctx, s.code, s.member.accountId, '40.00')

  const sale = await ctx.call('POST', `/v1/currencies/${s.code}/notes/sales`, {
    token: desk, key: 'sale-1', body: { amount: '100.00', denominations: { 20: 2, 10: 4, 5: 3, 1: 5 }, sterlingReference: 'till 7 float' },
  })
  t.equal(sale.status, 201, sale.text)
  t.match(sale.body, { kind: 'note_sale', amount: '100.00', fromAccount: s.currency.systemAccounts.issuance, toAccount: paper, metadata: { notes: '1x5 5x3 10x4 20x2' } })
  const replay = await ctx.call('POST', `/v1/currencies/${s.code}/notes/sales`, {
    token: desk, key: 'sale-1', body: { amount: '100.00', denominations: { 20: 2, 10: 4, 5: 3, 1: 5 }, sterlingReference: 'till 7 float' },
  })
  t.equal(replay.headers['idempotent-replayed'], 'true', 'a retried sale replays')
  t.equal(replay.body.id, sale.body.id)
  const reused = await ctx.call('POST', `/v1/currencies/${s.code}/notes/sales`, {
    token: desk, key: 'sale-1', body: { amount: '20.00', denominations: { 20: 1 }, sterlingReference: 'till 7 float' },
  })
  t.equal(reused.body.code, 'IDEMPOTENCY_KEY_REUSED')

  let r = await reserve(ctx, s.code, desk)
  t.equal(r.status, 200)
  t.match(r.body, { currency: s.code, sterlingReserve: '140.00', electronicCirculation: '40.00', paperCirculation: '100.00', difference: '0.00', movements: 2 })

  const dep = await ctx.call('POST', `/v1/currencies/${s.code}/notes/deposits`, {
    token: desk, key: 'dep-1', body: { toAccount: s.member.accountId, amount: '25.00', denominations: { 20: 1, 5: 1 } },
  })
  t.equal(dep.status, 201, dep.text)
  t.match(dep.body, { kind: 'note_deposit', fromAccount: paper, toAccount: s.member.accountId, amount: '25.00' })
  const stmt = await ctx.call('GET', `/v1/accounts/${s.member.accountId}/statement`, { token: s.member.token })
  t.equal(stmt.status, 200)
  t.same(stmt.body.items.map((e: any) => [e.kind, e.amount]), [['issuance', '40.00'], ['note_deposit', '25.00']], 'the member sees the notes paid in')
  r = await reserve(ctx, s.code, desk)
  t.match(r.body, { sterlingReserve: '140.00', electronicCirculation: '65.00', paperCirculation: '75.00', difference: '0.00' })

  const buy = await ctx.call('POST', `/v1/currencies/${s.code}/notes/buybacks`, {
    token: ctx.issuerToken, key: 'buy-1', body: { business: s.business.id, amount: '50.00', denominations: { 10: 5 }, sterlingReference: 'BACS 991' },
  })
  t.equal(buy.status, 201, buy.text)
  t.match(buy.body, { kind: 'note_buyback', amount: '48.50', fromAccount: paper, metadata: { business: s.business.id } })
  t.same(buy.body.related.map((l: any) => [l.kind, l.amount, l.toAccount]), [['fee', '1.50', s.currency.systemAccounts.fees]], 'the 3% redemption fee is withheld')
  r = await reserve(ctx, s.code, desk)
  t.match(r.body, { sterlingReserve: '91.50', electronicCirculation: '66.50', paperCirculation: '25.00', difference: '0.00' })

  const wd = await ctx.call('POST', `/v1/currencies/${s.code}/notes/withdrawals`, {
    token: desk, key: 'wd-1', body: { amount: '5.00', denominations: { 1: 5 }, reason: 'worn', sterlingReference: 'released to scheme account' },
  })
  t.equal(wd.status, 201, wd.text)
  t.match(wd.body, { kind: 'note_withdrawal', reference: 'notes withdrawn (worn)' })
  const before = new Date().toISOString()
  r = await reserve(ctx, s.code, desk)
  t.match(r.body, { sterlingReserve: '86.50', electronicCirculation: '66.50', paperCirculation: '20.00', difference: '0.00', movements: 4 })

  // more notes come back than were sold: the paper float cannot go below zero
  const over = await ctx.call('POST', `/v1/currencies/${s.code}/notes/deposits`, {
    token: desk, key: 'dep-over', body: { toAccount: s.member.accountId, amount: '40.00', denominations: { 20: 2 } },
  })
  t.equal(over.body.code, 'INSUFFICIENT_FUNDS', 'no more notes are paid in than are out there')

  // a reversal of a note movement moves the reserve back too
  const rev = await ctx.call('POST', `/v1/transfers/${buy.body.id}/reversal`, { token: ctx.issuerToken, key: 'rev-buy' })
  t.equal(rev.status, 201, rev.text)
  r = await reserve(ctx, s.code, desk)
  t.match(r.body, { sterlingReserve: '135.00', electronicCirculation: '65.00', paperCirculation: '70.00', difference: '0.00', movements: 5 })

  // at a past time: the figures as they stood then
  const past = await reserve(ctx, s.code, desk, `?at=${encodeURIComponent(before)}`)
  t.match(past.body, { sterlingReserve: '86.50', paperCirculation: '20.00', difference: '0.00', movements: 4 })
  const origin = await reserve(ctx, s.code, desk, '?at=2000-01-01')
  t.match(origin.body, { at: '2000-01-01T00:00:00.000Z', sterlingReserve: '0.00', electronicCirculation: '0.00', paperCirculation: '0.00', difference: '0.00', movements: 0, lastMovementAt: null })
  t.equal((await reserve(ctx, s.code, desk, '?at=yesterday')).status, 400)

  // the reconciliation: every sterling movement with its running total
  const csv = await reserve(ctx, s.code, desk, '?format=csv')
  t.equal(csv.status, 200)
  t.match(String(csv.headers['content-type']), /text\/csv/)
  const lines = csv.text.trim().split('\n')
  t.equal(lines[0], 'time,transfer_id,kind,sterling_reference,amount,running_total')
  t.same(lines.slice(1).map(l => l.split(',').slice(2)), [
    ['issuance', lines[1].split(',')[3], '40.00', '40.00'],
    ['note_sale', 'till 7 float', '100.00', '140.00'],
    ['note_buyback', 'BACS 991', '-48.50', '91.50'],
    ['note_withdrawal', 'released to scheme account', '-5.00', '86.50'],
    ['reversal', '', '48.50', '135.00'],
  ])
  await assertInvariants(t, await invariantViolations(new pg.Pool({ connectionString: ctx.db.url, max: 1 }).on('error', () => {})))

  const audit = await ctx.call('GET', `/v1/currencies/${s.code}/audit?limit=200`, { token: ctx.issuerToken })
  const actions = audit.body.items.map((a: any) => `${a.action}:${a.outcome}`)
  for (const a of ['notes.sale:success', 'notes.deposit:success', 'notes.buyback:success', 'notes.withdrawal:success']) t.ok(actions.includes(a), `audited ${a}`)
  t.equal(actions.filter((a: string) => a === 'notes.sale:success').length, 1, 'a replay writes no second audit row')
})

t.test('notes: who may record them, and bad input', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const other = await scenario(ctx, { code: 'OTH' })
  const otherDesk = await staff(ctx, 'OTH', 'issuers')
  const researcher = await staff(ctx, s.code, 'researchers')
  const sale = { amount: '10.00', denominations: { 10: 1 }, sterlingReference: 'cash' }
  const url = `/v1/currencies/${s.code}/notes/sales`
  t.equal((await ctx.call('POST', url, { key: 'a', body: sale })).status, 401, 'anonymous')
  t.equal((await ctx.call('POST', url, { token: s.member.token, key: 'a', body: sale })).status, 403, 'a member')
  t.equal((await ctx.call('POST', url, { token: s.business.token, key: 'a', body: sale })).status, 403, 'a business')
  t.equal((await ctx.call('POST', url, { token: researcher, key: 'a', body: sale })).status, 403, 'a researcher')
  t.equal((await ctx.call('POST', url, { token: otherDesk, key: 'a', body: sale })).status, 403, 'another currency\'s issuer')
  t.equal((await ctx.call('POST', url, { token: ctx.issuerToken, body: sale })).status, 400, 'no Idempotency-Key')

  // the currency's own issuer staff (to the platform issuer, another currency's account is CURRENCY_MISMATCH)
  const desk = await staff(ctx, s.code, 'issuers')
  const bad = async (path: string, body: unknown) => await ctx.call('POST', `/v1/currencies/${s.code}/notes/${path}`, { token: desk, key: `k-${Math.random()}`, body })
  const r = await bad('sales', { ...sale, denominations: { 10: 2 } })
  t.equal(r.status, 422)
  t.equal(r.body.code, 'VALIDATION_FAILED', 'notes that do not add up to the amount')
  t.equal(r.body.errors[0].pointer, '/denominations')
  t.equal((await bad('sales', { ...sale, denominations: { 3: 1 } })).status, 422, 'no 3 note')
  t.equal((await bad('sales', { ...sale, denominations: {} })).status, 422, 'no notes at all')
  t.equal((await bad('sales', { ...sale, denominations: { 10: -1 } })).status, 422, 'a negative count')
  t.equal((await bad('sales', { ...sale, denominations: { 10: 1.5 } })).status, 422, 'a fractional count')
  t.equal((await bad('sales', { ...sale, amount: '10.001' })).body.code, 'INVALID_AMOUNT')
  t.equal((await bad('sales', { ...sale, amount: 10 })).status, 422, 'amount as a JSON number')
  t.equal((await bad('sales', { ...sale, sterlingReference: '' })).status, 422)
  t.equal((await bad('sales', { ...sale, extra: 1 })).status, 422)
  t.equal((await bad('sales', { amount: '10.50', denominations: { 10: 1 }, sterlingReference: 'x' })).body.code, 'VALIDATION_FAILED', 'no coins')
  await bad('sales', { amount: '100.00', denominations: { 20: 5 }, sterlingReference: 'float' })
  t.equal((await bad('deposits', { toAccount: s.currency.systemAccounts.fees, amount: '10.00', denominations: { 10: 1 } })).status, 404, 'no deposit into a system account')
  t.equal((await bad('deposits', { toAccount: other.member.accountId, amount: '10.00', denominations: { 10: 1 } })).status, 404, 'no deposit into another currency\'s account')
  t.equal((await bad('deposits', { toAccount: '018f0000-0000-7000-8000-000000000000', amount: '10.00', denominations: { 10: 1 } })).status, 404)
  t.equal((await bad('buybacks', { business: s.member.id, amount: '10.00', denominations: { 10: 1 }, sterlingReference: 'x' })).body.code, 'NOT_REDEEMABLE', 'members do not sell notes back')
  t.equal((await bad('buybacks', { business: other.business.id, amount: '10.00', denominations: { 10: 1 }, sterlingReference: 'x' })).status, 404)
  t.equal((await bad('withdrawals', { amount: '10.00', denominations: { 10: 1 }, reason: 'stolen', sterlingReference: 'x' })).status, 422)
  const wd = await bad('withdrawals', { amount: '200.00', denominations: { 20: 10 }, reason: 'lost', sterlingReference: 'x' })
  t.equal(wd.body.code, 'INSUFFICIENT_FUNDS', 'no more withdrawn than is out there')
  const r2 = await reserve(ctx, s.code, ctx.issuerToken)
  t.match(r2.body, { sterlingReserve: '100.00', paperCirculation: '100.00', difference: '0.00' }, 'nothing half-written by the refusals')
})

t.test('the reserve: issuers read all, researchers the totals only, nobody else', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await scenario(ctx, { code: 'OTH' })
  const otherDesk = await staff(ctx, 'OTH', 'issuers')
  const otherResearcher = await staff(ctx, 'OTH', 'researchers')
  const researcher = await staff(ctx, s.code, 'researchers')
  const desk = await staff(ctx, s.code, 'issuers')
  await ctx.call('POST', `/v1/currencies/${s.code}/notes/sales`, {
    token: desk, key: 'formula', body: { amount: '5.00', denominations: { 5: 1 }, sterlingReference: '=HYPERLINK("http://x")' },
  })
  const other = await registerMember(ctx, s.code)
  t.equal((await reserve(ctx, s.code, desk)).status, 200, 'issuer staff')
  t.equal((await reserve(ctx, s.code, ctx.issuerToken)).status, 200, 'the platform issuer')
  t.equal((await reserve(ctx, s.code, researcher)).status, 200, 'a researcher reads the totals')
  t.equal((await reserve(ctx, s.code, researcher, '?format=csv')).status, 403, 'but not the sterling references')
  t.equal((await reserve(ctx, s.code, s.member.token)).status, 403, 'a member')
  t.equal((await reserve(ctx, s.code, other.token, '?format=csv')).status, 403)
  t.equal((await reserve(ctx, s.code, s.business.token)).status, 403, 'a business')
  t.equal((await reserve(ctx, s.code, otherDesk)).status, 403, 'another currency\'s issuer')
  t.equal((await reserve(ctx, s.code, otherResearcher)).status, 403, 'another currency\'s researcher')
  t.equal((await ctx.call('GET', `/v1/currencies/${s.code}/reserve`)).status, 401)
  t.equal((await reserve(ctx, 'NOPE', desk)).status, 404)
  const csv = await reserve(ctx, s.code, desk, '?format=csv')
  t.match(csv.text, /'=HYPERLINK/, 'a sterling reference that looks like a formula is written as text')
})

t.test('the reserve at a bare date: that day\'s midnight in the currency\'s time zone', async (t) => {
  const ctx = await buildTestApp(t)
  const utc = await scenario(ctx, { code: 'UTC' })
  const ldn = await scenario(ctx, { code: 'LDN' })
  t.equal((await ctx.call('PATCH', '/v1/currencies/LDN', { token: ctx.issuerToken, body: { timeZone: 'Europe/London' } })).status, 200)
  t.equal((await reserve(ctx, utc.code, ctx.issuerToken, '?at=2026-07-01')).body.at, '2026-07-01T00:00:00.000Z')
  t.equal((await reserve(ctx, ldn.code, ctx.issuerToken, '?at=2026-07-01')).body.at, '2026-06-30T23:00:00.000Z', 'London\'s midnight in summer is 23:00 UTC')
  t.equal((await reserve(ctx, ldn.code, ctx.issuerToken, '?at=2026-01-01')).body.at, '2026-01-01T00:00:00.000Z', 'and in winter UTC\'s')
  t.equal((await reserve(ctx, ldn.code, ctx.issuerToken, `?at=${encodeURIComponent('2026-07-01T00:00:00Z')}`)).body.at, '2026-07-01T00:00:00.000Z', 'a time with its offset is that instant')
})
