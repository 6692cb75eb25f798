import t from 'tap'
import { ledgerViolations } from '../../support/invariants.js'
import { balance, buildTestApp, issue, scenario } from '../helper.js'

// An id in capitals is the same id. The services compare ids as strings (is this a system account? is the payee
// the payer?) while PostgreSQL reads a uuid in either case, so an id sent in capitals once passed those checks and
// reached the account: a member paid into the issuance account and the reserve stopped reconciling, an issuer paid
// out of it (money with no sterling), notes went into the fee account. Every request is sent twice here, with its
// ids in small letters and in capitals, and must be answered the same; the ledger's invariants hold throughout.

const upper = (body: Record<string, unknown>) => Object.fromEntries(Object.entries(body).map(([k, v]) => [k, typeof v === 'string' && /^[0-9a-f-]{36}$/.test(v) ? v.toUpperCase() : v]))

t.test('system accounts named in capitals are refused as in small letters, and the reserve reconciles', async (t) => {
  const ctx = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 })
  const s = await scenario(ctx)
  const sys = s.currency.systemAccounts as { issuance: string, fees: string, paper: string }
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const sale = await ctx.call('POST', `/v1/currencies/${s.code}/notes/sales`, { token: ctx.issuerToken, key: 'sale', body: { amount: '20', denominations: { 20: 1 }, sterlingReference: 'notes-1' } })
  t.equal(sale.status, 201, sale.text)

  let n = 0
  const both = async (name: string, token: string, url: string, body: Record<string, unknown>) => {
    const lower = await ctx.call('POST', url, { token, key: `lo-${n}`, body })
    const caps = await ctx.call('POST', url, { token, key: `up-${n++}`, body: upper(body) })
    t.not(lower.status, 201, `${name}: refused (${lower.text})`)
    t.same([caps.status, caps.body.code], [lower.status, lower.body.code], `${name}: in capitals, the same answer`)
  }
  const pay = `/v1/currencies/${s.code}/payments`
  await both('a member pays the issuance account', s.member.token, pay, { fromAccount: s.member.accountId, toAccount: sys.issuance, amount: '10.00', channel: 'app' })
  await both('a member pays the paper account', s.member.token, pay, { fromAccount: s.member.accountId, toAccount: sys.paper, amount: '10.00', channel: 'app' })
  await both('an issuer pays out of the issuance account', ctx.issuerToken, pay, { fromAccount: sys.issuance, toAccount: s.member.accountId, amount: '1000.00', channel: 'app' })
  await both('an issuer pays out of the fee account', ctx.issuerToken, pay, { fromAccount: sys.fees, toAccount: s.member.accountId, amount: '1.00', channel: 'app' })
  await both('issuance into the paper account', ctx.issuerToken, `/v1/currencies/${s.code}/issuances`, { toAccount: sys.paper, amount: '5.00', sterlingReference: 'bank-9' })
  await both('notes paid into the fee account', ctx.issuerToken, `/v1/currencies/${s.code}/notes/deposits`, { toAccount: sys.fees, amount: '5', denominations: { 5: 1 } })
  await both('notes paid into the issuance account', ctx.issuerToken, `/v1/currencies/${s.code}/notes/deposits`, { toAccount: sys.issuance, amount: '5', denominations: { 5: 1 } })
  const batch = await ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, {
    token: s.member.token, body: { items: [{ idempotencyKey: 'b-1', fromAccount: s.member.accountId, toAccount: sys.issuance.toUpperCase(), amount: '10.00', channel: 'app' }] },
  })
  t.same(batch.body.items.map((x: any) => [x.status, x.problem?.code]), [[404, 'ACCOUNT_NOT_FOUND']], 'a batch item in capitals too')

  const reserve = await ctx.call('GET', `/v1/currencies/${s.code}/reserve`, { token: ctx.issuerToken })
  t.equal(reserve.body.difference, '0.00', 'the reserve reconciles')
  t.equal(await balance(ctx, s.member.accountId), '100.00', 'nothing moved')
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('ids in capitals are stored, compared and replayed in small letters; urn:uuid: is no id', async (t) => {
  const ctx = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const body = { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '2.00', channel: 'app' }
  const paid = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'caps', body: upper(body) })
  t.equal(paid.status, 201, paid.text)
  t.match(paid.body, { fromAccount: s.member.accountId, toAccount: s.business.accountId }, 'answered in small letters')
  const again = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'caps', body })
  t.equal(again.status, 201, again.text)
  t.equal(again.headers['idempotent-replayed'], 'true', 'the same payment in small letters is its retry')
  t.equal(await balance(ctx, s.member.accountId), '98.00', 'paid once')

  // the same account as payer and payee, one of them in capitals: the service's own check, not the table's (500)
  const self = await ctx.call('POST', `/v1/accounts/${s.member.accountId}/standing-orders`, {
    token: s.member.token, key: 'self', body: { toAccount: s.member.accountId.toUpperCase(), amount: '1.00', reference: 'self', schedule: { every: 'week', day: 1 }, startsOn: new Date().toISOString().slice(0, 10) },
  })
  t.same([self.status, self.body.code], [422, 'SAME_ACCOUNT'], self.text)
  const account = await ctx.call('GET', `/v1/accounts/${s.member.accountId.toUpperCase()}`, { token: s.member.token })
  t.same([account.status, account.body.id], [200, s.member.accountId], 'a path id in capitals finds the account')

  const urn = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: 'urn', body: { ...body, toAccount: `urn:uuid:${s.business.accountId}` } })
  t.same([urn.status, urn.body.code, urn.body.errors?.[0]?.pointer], [422, 'VALIDATION_FAILED', '/toAccount'], urn.text)
  const urnPath = await ctx.call('GET', `/v1/accounts/urn:uuid:${s.member.accountId}`, { token: s.member.token })
  t.same([urnPath.status, urnPath.body.code], [400, 'INVALID_QUERY'], urnPath.text)
})
