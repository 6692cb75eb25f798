import t from 'tap'
import { balance, buildTestApp, issue, registerMember, scenario } from '../helper.js'
import { requestHash } from '../../src/routes/idempotency.js'

// Every bad input the ledger-core issue lists: each is a problem+json 4xx with a stable code, and nothing moves.
t.test('bad input is refused with a stable code and changes nothing', async (t) => {
  const ctx = await buildTestApp(t, { BODY_LIMIT: 4096 })
  const s = await scenario(ctx)
  const other = await scenario(ctx, { code: 'OTH' })
  await issue(ctx, s.code, s.member.accountId, '50.00')
  await issue(ctx, other.code, other.member.accountId, '50.00')
  const frozen = await registerMember(ctx, s.code)
  const closed = await registerMember(ctx, s.code)
  await issue(ctx, s.code, frozen.accountId, '5.00')
  t.equal((await ctx.call('PATCH', `/v1/accounts/${frozen.accountId}`, { token: ctx.issuerToken, body: { status: 'frozen' } })).status, 200)
  t.equal((await ctx.call('PATCH', `/v1/accounts/${closed.accountId}`, { token: ctx.issuerToken, body: { status: 'closed' } })).status, 200)
  const capped = await registerMember(ctx, s.code)
  t.equal((await ctx.call('PATCH', `/v1/accounts/${capped.accountId}`, { token: ctx.issuerToken, body: { ceiling: '10.00' } })).status, 200)

  const url = `/v1/currencies/${s.code}/payments`
  const good = { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' }
  const before = await snapshot()
  let n = 0
  const refuse = async (name: string, status: number, code: string, o: Parameters<typeof ctx.call>[2] & { method?: string, url?: string }) => {
    const r = await ctx.call(o.method ?? 'POST', o.url ?? url, { token: s.member.token, key: `bad-${n++}`, ...o })
    t.equal(r.status, status, `${name}: status`)
    t.equal(r.body?.code, code, `${name}: code ${code}`)
    t.match(String(r.headers['content-type']), /^application\/problem\+json/, `${name}: problem+json`)
    t.type(r.body?.detail, 'string', `${name}: says what was wrong`)
  }

  await refuse('malformed JSON', 400, 'MALFORMED_JSON', { raw: '{"fromAccount": ' })
  await refuse('unknown field', 422, 'VALIDATION_FAILED', { body: { ...good, tip: '1.00' } })
  await refuse('missing field', 422, 'VALIDATION_FAILED', { body: { fromAccount: good.fromAccount, amount: '1.00', channel: 'app' } })
  await refuse('unknown channel', 422, 'VALIDATION_FAILED', { body: { ...good, channel: 'carrier-pigeon' } })
  await refuse('amount as a JSON number', 422, 'INVALID_AMOUNT', { body: { ...good, amount: 12.6 } })
  for (const amount of ['12.601', '0', '0.00', '-5', '1e3', 'abc', '', ' 1', '1.', '.5', '01', '+5', '1234567890123456', '12345678901234.56']) {
    await refuse(`amount ${JSON.stringify(amount)}`, 422, 'INVALID_AMOUNT', { body: { ...good, amount } })
  }
  await refuse('missing Idempotency-Key', 400, 'IDEMPOTENCY_KEY_MISSING', { key: undefined, headers: {}, body: good })
  const noKey = await ctx.call('POST', url, { token: s.member.token, body: good })
  t.equal(noKey.body.code, 'IDEMPOTENCY_KEY_MISSING')
  await refuse('unknown currency', 404, 'CURRENCY_NOT_FOUND', { url: '/v1/currencies/NOPE/payments', body: good })
  await refuse('unknown payee account', 404, 'ACCOUNT_NOT_FOUND', { body: { ...good, toAccount: '01a21aec-27aa-77a1-a01f-02688af7a49a' } })
  await refuse('payer equal to payee', 422, 'SAME_ACCOUNT', { body: { ...good, toAccount: good.fromAccount } })
  // an account of another currency is out of a member's reach: it answers as an unknown one (test/access/oracles.test.ts)
  await refuse('accounts of two currencies', 404, 'ACCOUNT_NOT_FOUND', { body: { ...good, toAccount: other.business.accountId } })
  await refuse('accounts of two currencies, as the platform issuer', 422, 'CURRENCY_MISMATCH', { token: ctx.issuerToken, body: { ...good, toAccount: other.business.accountId } })
  await refuse('insufficient funds', 422, 'INSUFFICIENT_FUNDS', { body: { ...good, amount: '50.01' } })
  await refuse('a frozen payer', 422, 'ACCOUNT_FROZEN', {
    token: frozen.token, body: { ...good, fromAccount: frozen.accountId },
  })
  await refuse('a frozen payee', 422, 'ACCOUNT_FROZEN', { body: { ...good, toAccount: frozen.accountId } })
  await refuse('a closed payee', 422, 'ACCOUNT_CLOSED', { body: { ...good, toAccount: closed.accountId } })
  await refuse('a ceiling passed', 422, 'CEILING_EXCEEDED', { body: { ...good, toAccount: capped.accountId, amount: '10.01' } })
  await refuse('a system account as payee', 404, 'ACCOUNT_NOT_FOUND', { body: { ...good, toAccount: s.currency.systemAccounts.fees } })
  await refuse('someone else\'s account as payer', 404, 'ACCOUNT_NOT_FOUND', {
    token: s.business.token, body: { ...good, fromAccount: s.member.accountId, toAccount: frozen.accountId },
  })
  await refuse('an oversized body', 413, 'PAYLOAD_TOO_LARGE', { body: { ...good, reference: 'x'.repeat(5000) } })
  await refuse('not JSON', 415, 'UNSUPPORTED_MEDIA_TYPE', { raw: 'amount=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  await refuse('JSON sent as text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE', { raw: JSON.stringify(good), headers: { 'content-type': 'text/plain' } })
  await refuse('JSON sent as text/plain with a charset', 415, 'UNSUPPORTED_MEDIA_TYPE', { raw: JSON.stringify(good), headers: { 'content-type': 'text/plain; charset=utf-8' } })
  // JSON is read as UTF-8: one labelled otherwise would be read wrongly (a latin-1 "Café" stored as "Caf\uFFFD")
  await refuse('JSON labelled latin-1', 415, 'UNSUPPORTED_MEDIA_TYPE', {
    raw: JSON.stringify({ ...good, reference: 'Café' }), headers: { 'content-type': 'application/json; charset=ISO-8859-1' },
  })
  await refuse('JSON labelled UTF-16', 415, 'UNSUPPORTED_MEDIA_TYPE', { raw: JSON.stringify(good), headers: { 'content-type': 'application/json;charset="utf-16"' } })
  await refuse('a malformed account id', 422, 'VALIDATION_FAILED', { body: { ...good, toAccount: 'not-a-uuid' } })
  await refuse('a malformed path id', 400, 'INVALID_QUERY', { method: 'GET', url: '/v1/accounts/not-a-uuid' })
  await refuse('a bad cursor', 400, 'INVALID_CURSOR', { method: 'GET', url: `/v1/accounts/${s.member.accountId}/statement?cursor=garbage` })
  // cursors that look like the service's own but that a query would refuse are refused before one is made
  const cursor = (key: unknown[]) => Buffer.from(JSON.stringify(key)).toString('base64url')
  await refuse('a cursor id beyond bigint', 400, 'INVALID_CURSOR', { method: 'GET', url: `/v1/accounts/${s.member.accountId}/statement?cursor=${cursor(['9999999999999999999'])}` })
  await refuse('a time in year 0', 400, 'INVALID_QUERY', { method: 'GET', url: `/v1/accounts/${s.member.accountId}/statement?from=0000-01-01T00:00:00Z` })
  await refuse('a cursor with a NUL', 400, 'INVALID_CURSOR', { method: 'GET', url: `/v1/currencies/${s.code}/businesses?cursor=${cursor(['a\u0000b', s.business.accountId])}` })
  await refuse('a limit out of range', 400, 'INVALID_QUERY', { method: 'GET', url: `/v1/accounts/${s.member.accountId}/statement?limit=100000` })

  // issuance and redemption have their own amounts and rules
  await refuse('issuance by a member', 403, 'FORBIDDEN', {
    url: `/v1/currencies/${s.code}/issuances`, body: { toAccount: s.member.accountId, amount: '5.00', sterlingReference: 'x' },
  })
  await refuse('issuance of "0.001"', 422, 'INVALID_AMOUNT', {
    token: ctx.issuerToken, url: `/v1/currencies/${s.code}/issuances`, body: { toAccount: s.member.accountId, amount: '0.001', sterlingReference: 'x' },
  })
  await refuse('issuance to a system account', 404, 'ACCOUNT_NOT_FOUND', {
    token: ctx.issuerToken, url: `/v1/currencies/${s.code}/issuances`, body: { toAccount: s.currency.systemAccounts.issuance, amount: '5.00', sterlingReference: 'x' },
  })
  await refuse('redemption by a member', 403, 'FORBIDDEN', { url: `/v1/currencies/${s.code}/redemptions`, body: { fromAccount: s.member.accountId, amount: '5.00' } })
  await refuse('redemption of a member account by the issuer', 422, 'NOT_REDEEMABLE', {
    token: ctx.issuerToken, url: `/v1/currencies/${s.code}/redemptions`, body: { fromAccount: s.member.accountId, amount: '5.00' },
  })
  await refuse('redemption beyond the balance', 422, 'INSUFFICIENT_FUNDS', {
    token: s.business.token, url: `/v1/currencies/${s.code}/redemptions`, body: { fromAccount: s.business.accountId, amount: '5.00' },
  })
  await refuse('reversal of an unknown transfer', 404, 'TRANSFER_NOT_FOUND', {
    token: ctx.issuerToken, url: '/v1/transfers/01a21aec-27aa-77a1-a01f-02688af7a49a/reversal', body: undefined,
  })
  await refuse('a floor above the balance', 422, 'INVALID_LIMITS', {
    method: 'PATCH', token: ctx.issuerToken, url: `/v1/accounts/${s.member.accountId}`, body: { floor: '60.00' },
  })
  await refuse('an empty patch', 422, 'VALIDATION_FAILED', {
    method: 'PATCH', token: ctx.issuerToken, url: `/v1/accounts/${s.member.accountId}`, body: {},
  })
  await refuse('a currency code taken', 409, 'CURRENCY_EXISTS', { token: ctx.issuerToken, url: '/v1/currencies', body: { code: 'brs', name: 'again' } })
  await refuse('a currency by a member', 403, 'FORBIDDEN', { url: '/v1/currencies', body: { code: 'ZZZ', name: 'mine' } })
  await refuse('a fee rate of 1', 422, 'VALIDATION_FAILED', { token: ctx.issuerToken, url: '/v1/currencies', body: { code: 'ZZZ', name: 'z', fees: { text: '1' } } })
  // passwords: beyond their length, not only spaces, not the username, not one character, not the commonest
  for (const [why, username, password] of [['only spaces', 'pw-spaces', '        '], ['the username', 'password1x', 'Password1x'],
    ['one character repeated', 'pw-repeat', 'aaaaaaaaaa'], ['a common password', 'pw-common', 'Password123']]) {
    await refuse(`a password that is ${why}`, 422, 'VALIDATION_FAILED', {
      token: ctx.issuerToken, url: `/v1/currencies/${s.code}/members`, body: { name: 'P', postcode: 'BS6 5AB', username, password },
    })
    await refuse(`a staff password that is ${why}`, 422, 'VALIDATION_FAILED', {
      token: ctx.issuerToken, url: `/v1/currencies/${s.code}/researchers`, body: { name: 'P', username: `${username}-r`, password: why === 'the username' ? `${username}-R` : password },
    })
  }
  // fees cannot be changed once set, so a misspelt channel must not be dropped silently (every fee left at 0)
  await refuse('a misspelt fee channel', 422, 'VALIDATION_FAILED', { token: ctx.issuerToken, url: '/v1/currencies', body: { code: 'ZZZ', name: 'z', fees: { Text: '0.02', onlien: '0.5' } } })
  await refuse('a bad postcode', 422, 'INVALID_POSTCODE', {
    token: ctx.issuerToken, url: `/v1/currencies/${s.code}/members`, body: { name: 'x', postcode: 'NOWHERE1', username: 'xyz', password: 'long-enough' },
  })
  await refuse('a username taken', 409, 'USERNAME_TAKEN', {
    token: ctx.issuerToken, url: `/v1/currencies/${s.code}/members`, body: { name: 'x', postcode: 'BS1 1AA', username: s.member.username, password: 'long-enough' },
  })
  await refuse('no token', 401, 'UNAUTHENTICATED', { token: null, body: good })
  await refuse('a garbage token', 401, 'UNAUTHENTICATED', { token: 'a.b.c', body: good })

  t.same(await snapshot(), before, 'no balance changed and no transfer was written')

  async function snapshot () {
    const { rows } = await ctx.app.pool.query('SELECT (SELECT count(*) FROM transfer) AS transfers, (SELECT count(*) FROM entry) AS entries')
    return { ...rows[0], member: await balance(ctx, s.member.accountId), business: await balance(ctx, s.business.accountId) }
  }
})

t.test('JSON labelled UTF-8, in any of its spellings, is taken', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const body = JSON.stringify({ fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app', reference: 'Café' })
  for (const [i, type] of ['application/json; charset=UTF-8', 'application/json;charset="utf-8"', 'application/json; charset=utf8'].entries()) {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: `utf8-${i}`, raw: body, headers: { 'content-type': type } })
    t.equal(r.status, 201, type)
    t.equal(r.body.reference, 'Café', `${type}: the text as sent`)
  }
  const dated = await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token, headers: { 'content-type': 'application/json; charset=latin1' } })
  t.equal(dated.status, 200, 'a request with no body is not refused for its content type\'s charset')
})

t.test('amounts follow the currency\'s decimals', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx, { code: 'WHL', decimals: 0 })
  const r = await ctx.call('POST', `/v1/currencies/${s.code}/issuances`, {
    token: ctx.issuerToken, key: 'k1', body: { toAccount: s.member.accountId, amount: '10.5', sterlingReference: 'b' },
  })
  t.equal(r.status, 422)
  t.equal(r.body.code, 'INVALID_AMOUNT')
  t.match(r.body.detail, /0/)
  const ok = await ctx.call('POST', `/v1/currencies/${s.code}/issuances`, {
    token: ctx.issuerToken, key: 'k2', body: { toAccount: s.member.accountId, amount: '10', sterlingReference: 'b' },
  })
  t.equal(ok.status, 201)
  t.equal(ok.body.amount, '10')
})

t.test('a body nested past any the API takes is a 422, not a stack overflow, on a route that takes no body', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '20.00')
  const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'deep-pay', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '5.00', channel: 'app' },
  })
  t.equal(pay.status, 201)
  // the reversal route once had no body schema and hashed whatever JSON it was sent for its idempotency key; these
  // recursed past the stack (a 500, and before the token was looked at, so to anyone). Its body is now checked by
  // its schema first; routes that still hash a body they have no schema for are guarded by requestHash() (below)
  const bodies = { arrays: '['.repeat(6000) + ']'.repeat(6000), objects: '{"a":'.repeat(6000) + '1' + '}'.repeat(6000), 'just past the limit': '['.repeat(66) + ']'.repeat(66) }
  for (const [what, raw] of Object.entries(bodies)) {
    for (const token of [null, ctx.issuerToken]) {
      const r = await ctx.call('POST', `/v1/transfers/${pay.body.id as string}/reversal`, { token, key: `deep-${what}-${token == null ? 'anon' : 'issuer'}`, raw, headers: { 'content-type': 'application/json' } })
      t.equal(r.status, 422, `${what}, ${token == null ? 'anonymous' : 'as the issuer'}`)
      t.equal(r.body.code, 'VALIDATION_FAILED')
    }
  }
  t.equal(await balance(ctx, s.member.accountId), '15.00', 'nothing reversed')
  const shallow = await ctx.call('POST', `/v1/transfers/${pay.body.id as string}/reversal`, { token: ctx.issuerToken, key: 'deep-ok', raw: '[[[[]]]]', headers: { 'content-type': 'application/json' } })
  t.same([shallow.status, shallow.body.code], [422, 'VALIDATION_FAILED'], 'a body that is not the reversal\'s object is refused')
  const fine = await ctx.call('POST', `/v1/transfers/${pay.body.id as string}/reversal`, { token: ctx.issuerToken, key: 'deep-ok', raw: '{}', headers: { 'content-type': 'application/json' } })
  t.equal(fine.status, 201, 'an empty one is taken, with the same key')
  // a body hashed without a schema (a webhook secret's rotation): too deep is a 422, never a stack overflow
  t.throws(() => requestHash('POST', '/v1/webhooks/:id/secret', { id: 'x' }, JSON.parse('['.repeat(6000) + ']'.repeat(6000))), { code: 'VALIDATION_FAILED' })
  t.type(requestHash('POST', '/v1/webhooks/:id/secret', { id: 'x' }, JSON.parse('['.repeat(60) + ']'.repeat(60))), 'string', 'within the limit it is hashed')
  // a route that takes no body still reads one: another type is 415, as openapi.yaml lists (the helper checks it)
  for (const [method, url] of [['DELETE', '/v1/webhooks/01a21aec-27aa-77a1-a01f-02688af7a49a'], ['POST', '/v1/payment-requests/01a21aec-27aa-77a1-a01f-02688af7a49a/cancel']]) {
    const r = await ctx.call(method, url, { token: s.business.token, raw: 'x', headers: { 'content-type': 'text/plain' } })
    t.equal(r.status, 415, `${method} ${url} with a text/plain body`)
  }
})

t.test('an Idempotency-Key of white space alone is refused as a missing one, on every route that takes a key', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '20.00')
  const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'blank-pay', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '5.00', channel: 'app' },
  })
  t.equal(pay.status, 201)
  const count = async () => (await ctx.app.pool.query(`SELECT (SELECT count(*) FROM transfer) AS transfers, (SELECT count(*) FROM payment_request) AS requests,
    (SELECT count(*) FROM standing_order) AS orders, (SELECT count(*) FROM idempotency_key) AS keys`)).rows[0]
  const before = await count()
  const routes: Array<[string, string, string, unknown]> = [
    ['a payment', s.member.token, `/v1/currencies/${s.code}/payments`, { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' }],
    ['an issuance', ctx.issuerToken, `/v1/currencies/${s.code}/issuances`, { toAccount: s.member.accountId, amount: '1.00', sterlingReference: 'blank' }],
    ['a reversal', ctx.issuerToken, `/v1/transfers/${pay.body.id as string}/reversal`, undefined],
    ['a payment request', s.business.token, `/v1/currencies/${s.code}/payment-requests`, { toAccount: s.business.accountId, amount: '1.00' }],
    ['a standing order', s.member.token, `/v1/accounts/${s.member.accountId}/standing-orders`,
      { toAccount: s.business.accountId, amount: '1.00', reference: 'rent', schedule: { every: 'week', day: 1 }, startsOn: '2027-03-01' }],
  ]
  // a space, several, and a no-break space (a byte a header may carry); a tab is already refused as text (422)
  for (const key of [' ', '   ', '\u00a0', ' \u00a0 ']) {
    for (const [what, token, url, body] of routes) {
      const r = await ctx.call('POST', url, { token, key, body })
      t.same([r.status, r.body?.code], [400, 'IDEMPOTENCY_KEY_MISSING'], `${what} with the key ${JSON.stringify(key)}: ${r.text}`)
      t.match(String(r.headers['content-type']), /^application\/problem\+json/)
      t.same(r.body?.errors, [{ pointer: '/idempotency-key', detail: 'must hold a character other than white space' }], what)
    }
  }
  t.same(await count(), before, 'nothing was made, and no key was taken')
  // a batch item's key is the same kind of key, shared with POST .../payments: its item fails alone
  const item = { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' }
  const batch = await ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, { token: s.member.token, body: { items: [{ ...item, idempotencyKey: 'blank-ok' }, { ...item, idempotencyKey: '  ' }] } })
  t.equal(batch.status, 200, batch.text)
  t.same([batch.body.posted, batch.body.failed], [1, 1])
  t.same([batch.body.items[1].status, batch.body.items[1].problem.code], [422, 'VALIDATION_FAILED'])
  t.same(batch.body.items[1].problem.errors, [{ pointer: '/items/1/idempotencyKey', detail: 'must hold a character other than white space' }])
  // a key with white space around a character is a key (it is compared as sent)
  const spaced = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, { token: s.member.token, key: ' k ', body: item })
  t.equal(spaced.status, 201, spaced.text)
  t.equal(await balance(ctx, s.member.accountId), '13.00')
})
