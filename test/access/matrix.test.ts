import t from 'tap'
import { buildTestApp, issue, loadDoc, registerMember, scenario } from './fixtures/index.js'

// Every route × every kind of caller, from one table. A route in openapi.yaml (or in the running app) without a
// row fails the test, so a new route cannot ship without someone deciding who may call it.
const ROLES = ['anonymous', 'member', 'otherMember', 'business', 'otherIssuer', 'issuer', 'platform', 'researcher', 'apiKey'] as const
type Role = typeof ROLES[number]
type Expect = [number, number, number, number, number, number, number, number, number]
interface Req { url: string, body?: unknown, key?: string }
interface Row { expect: Expect, req: (role: Role) => Promise<Req> | Req }

let n = 0
const u = () => `${Date.now().toString(36)}${(n++).toString(36)}`

t.test('route × role access matrix', async (t) => {
  // (failed logins budget: the password change row below sends a wrong current password for every role)
  const ctx = await buildTestApp(t, { WEBHOOK_MAX_PER_OWNER: 100, WEBHOOK_DELIVERY: '0', LOGIN_MAX_FAILURES: 100 })
  const s = await scenario(ctx)
  const other = await registerMember(ctx, s.code)
  const staff = async (code: string, kind: 'issuers' | 'researchers') => {
    const username = `${kind}-${u()}`
    const r = await ctx.call('POST', `/v1/currencies/${code}/${kind}`, { token: ctx.issuerToken, body: { name: 'Staff', username, password: 'staff-password' } })
    t.equal(r.status, 201)
    return await ctx.token(username, 'staff-password')
  }
  t.equal((await ctx.call('POST', '/v1/currencies', { token: ctx.issuerToken, body: { code: 'OTH', name: 'Other Pound' } })).status, 201)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  await issue(ctx, s.code, s.business.accountId, '100.00')
  const key = await ctx.call('POST', '/v1/api-keys', {
    token: s.business.token, body: { name: 'till', scopes: ['payments:write', 'redemptions:write', 'statements:read', 'accounts:read'] },
  })
  const tokens: Record<Role, string | null> = {
    anonymous: null,
    member: s.member.token,
    otherMember: other.token,
    business: s.business.token,
    otherIssuer: await staff('OTH', 'issuers'),
    issuer: await staff(s.code, 'issuers'),
    platform: ctx.issuerToken,
    researcher: await staff(s.code, 'researchers'),
    apiKey: (await ctx.call('POST', '/v1/auth/token', { body: { apiKey: key.body.key } })).body.accessToken,
  }
  const pay = async () => (await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: `p-${u()}`, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
  })).body.id as string
  const payment = await pay()
  // a fresh endpoint of the business each time (deleting one must not touch the next row's)
  const businessHook = async () => {
    const r = await ctx.call('POST', '/v1/webhooks', { token: s.business.token, body: { url: 'https://93.184.216.34/hook', events: ['payment.received'] } })
    if (r.status !== 201) throw new Error(`webhook: ${r.text}`)
    return r.body.id as string
  }
  await issue(ctx, s.code, other.accountId, '100.00')
  const askPayment = async (fromAccount?: string) => {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/payment-requests`, {
      token: s.business.token, key: `k-${u()}`, body: { toAccount: s.business.accountId, amount: '1.00', ...(fromAccount != null ? { fromAccount } : {}) },
    })
    t.equal(r.status, 201)
    return r.body.id as string
  }
  const staffBody = () => ({ name: 'Someone', username: `s-${u()}`, password: 'staff-password' })
  const orderBody = () => ({ toAccount: s.business.accountId, amount: '1.00', reference: 'rent', schedule: { every: 'month', day: 28 }, startsOn: new Date().toISOString().slice(0, 10) })
  const newOrder = async () => (await ctx.call('POST', `/v1/accounts/${s.member.accountId}/standing-orders`, { key: `k-${u()}`, token: s.member.token, body: orderBody() })).body.id as string
  const order = await newOrder()
  const researcherId = async () => (await ctx.call('POST', `/v1/currencies/${s.code}/researchers`, { token: ctx.issuerToken, body: staffBody() })).body.id as string
  const all = (status: number): Expect => [status, status, status, status, status, status, status, status, status]

  //                                              anon member other busin. othIss issuer platf. resea. apiKey
  const table: Record<string, Row> = {
    'GET /health': { expect: all(200), req: () => ({ url: '/health' }) },
    'GET /ready': { expect: all(200), req: () => ({ url: '/ready' }) },
    'POST /v1/auth/token': { expect: all(200), req: () => ({ url: '/v1/auth/token', body: { username: s.member.username, password: 'member-password' } }) },
    'GET /.well-known/jwks.json': { expect: all(200), req: () => ({ url: '/.well-known/jwks.json' }) },
    // any token asks who it speaks for, an API key's whatever its scopes
    'GET /v1/auth/me': { expect: [401, 200, 200, 200, 200, 200, 200, 200, 200], req: () => ({ url: '/v1/auth/me' }) },
    // any password login changes its own; a wrong current password keeps every role's token alive for the rows after
    'POST /v1/auth/password': {
      expect: [401, 422, 422, 422, 422, 422, 422, 422, 403],
      req: () => ({ url: '/v1/auth/password', body: { currentPassword: 'not-it', newPassword: 'a-new-password-1' } }),
    },
    // a forgotten password: a wrong code answers every caller alike (the route is public)
    'POST /v1/auth/password/reset': {
      expect: all(401),
      req: () => ({ url: '/v1/auth/password/reset', body: { username: s.member.username, code: 'AAAA-AAAA-AAAA-AAAA', newPassword: 'a-new-password-1' } }),
    },
    'POST /v1/currencies': {
      expect: [401, 403, 403, 403, 403, 403, 201, 403, 403],
      req: () => ({ url: '/v1/currencies', body: { code: `C${u()}`.slice(0, 10), name: 'New Pound' } }),
    },
    'GET /v1/currencies/{code}': { expect: all(200), req: () => ({ url: `/v1/currencies/${s.code}` }) },
    'PATCH /v1/currencies/{code}': {
      // the currency has transfers: its issuers are told the zone is fixed
      expect: [401, 403, 403, 403, 403, 409, 409, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}`, body: { timeZone: 'Europe/London' } }),
    },
    'POST /v1/currencies/{code}/members': {
      expect: [401, 403, 403, 403, 403, 201, 201, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/members`, body: { name: 'M', postcode: 'BS6 5AB', username: `m-${u()}`, password: 'member-password' } }),
    },
    'POST /v1/currencies/{code}/businesses': {
      expect: [401, 403, 403, 403, 403, 201, 201, 403, 403],
      req: () => ({
        url: `/v1/currencies/${s.code}/businesses`,
        body: { tradingName: `Shop ${u()}`, sector: 'retail', postcode: 'BS1 4DJ', independent: true, username: `b-${u()}`, password: 'business-password' },
      }),
    },
    'GET /v1/currencies/{code}/businesses': { expect: all(200), req: () => ({ url: `/v1/currencies/${s.code}/businesses` }) },
    'POST /v1/currencies/{code}/researchers': {
      expect: [401, 403, 403, 403, 403, 201, 201, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/researchers`, body: staffBody() }),
    },
    'POST /v1/currencies/{code}/issuers': {
      expect: [401, 403, 403, 403, 403, 403, 201, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/issuers`, body: staffBody() }),
    },
    'GET /v1/currencies/{code}/staff': {
      expect: [401, 403, 403, 403, 403, 200, 200, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/staff` }),
    },
    // a researcher of the currency: its issuers and the platform issuer may suspend it; to anyone else it does not exist
    'PUT /v1/staff/{id}/suspension': {
      expect: [401, 404, 404, 404, 404, 200, 200, 404, 403],
      req: async () => ({ url: `/v1/staff/${await researcherId()}/suspension`, body: { reason: 'study ended' } }),
    },
    'DELETE /v1/staff/{id}/suspension': {
      expect: [401, 404, 404, 404, 404, 200, 200, 404, 403],
      req: async () => ({ url: `/v1/staff/${await researcherId()}/suspension` }),
    },
    'POST /v1/staff/{id}/password-reset': {
      expect: [401, 404, 404, 404, 404, 201, 201, 404, 403],
      req: async () => ({ url: `/v1/staff/${await researcherId()}/password-reset` }),
    },
    'GET /v1/participants/{id}': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 404],
      req: () => ({ url: `/v1/participants/${s.member.id}` }),
    },
    'GET /v1/accounts/{id}': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 404],
      req: () => ({ url: `/v1/accounts/${s.member.accountId}` }),
    },
    'PATCH /v1/accounts/{id}': {
      expect: [401, 403, 404, 404, 404, 200, 200, 403, 403],
      req: () => ({ url: `/v1/accounts/${s.member.accountId}`, body: { status: 'active' } }),
    },
    'GET /v1/accounts/{id}/statement': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 404],
      req: () => ({ url: `/v1/accounts/${s.member.accountId}/statement` }),
    },
    // an event stream that ends after a second (a 200 is a stream; ?maxSeconds lets the matrix read it to its end)
    'GET /v1/accounts/{id}/events': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 404],
      req: () => ({ url: `/v1/accounts/${s.member.accountId}/events?maxSeconds=1` }),
    },
    // webhooks: a business's own endpoints, an issuer's for the currency; never with an API key
    'POST /v1/webhooks': {
      expect: [401, 403, 403, 201, 404, 201, 201, 403, 403],
      req: () => ({ url: '/v1/webhooks', body: { url: 'https://93.184.216.34/hook', events: ['payment.received'], currency: s.code } }),
    },
    'GET /v1/webhooks': { expect: [401, 403, 403, 200, 200, 200, 200, 403, 403], req: () => ({ url: '/v1/webhooks' }) },
    'DELETE /v1/webhooks/{id}': {
      expect: [401, 403, 403, 204, 404, 404, 404, 403, 403],
      req: async () => ({ url: `/v1/webhooks/${await businessHook()}` }),
    },
    'POST /v1/webhooks/{id}/secret': {
      expect: [401, 403, 403, 200, 404, 404, 404, 403, 403],
      req: async () => ({ url: `/v1/webhooks/${await businessHook()}/secret`, key: `k-${u()}` }),
    },
    'GET /v1/webhooks/{id}/deliveries': {
      expect: [401, 403, 403, 200, 404, 404, 404, 403, 403],
      req: async () => ({ url: `/v1/webhooks/${await businessHook()}/deliveries` }),
    },
    'POST /v1/webhooks/{id}/deliveries/{deliveryId}/retry': {
      expect: [401, 403, 403, 202, 404, 404, 404, 403, 403],
      req: async () => {
        const hook = await businessHook()
        await pay()
        const d = await ctx.app.pool.query<{ id: string }>('SELECT id FROM webhook_delivery WHERE webhook_id = $1 LIMIT 1', [hook])
        return { url: `/v1/webhooks/${hook}/deliveries/${d.rows[0].id}/retry` }
      },
    },
    'POST /v1/currencies/{code}/payments': {
      expect: [401, 201, 404, 404, 403, 201, 201, 403, 404],
      req: () => ({
        url: `/v1/currencies/${s.code}/payments`, key: `k-${u()}`,
        body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
      }),
    },
    // atomic, so an item's refusal is the request's status and the row reads like the payments row above
    'POST /v1/currencies/{code}/transfers/batch': {
      expect: [401, 200, 404, 404, 403, 200, 200, 403, 404],
      req: () => ({
        url: `/v1/currencies/${s.code}/transfers/batch`,
        body: { atomic: true, items: [{ idempotencyKey: `k-${u()}`, fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' }] },
      }),
    },
    'POST /v1/currencies/{code}/issuances': {
      expect: [401, 403, 403, 403, 403, 201, 201, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/issuances`, key: `k-${u()}`, body: { toAccount: s.member.accountId, amount: '5.00', sterlingReference: `bank-${u()}` } }),
    },
    'POST /v1/currencies/{code}/redemptions': {
      expect: [401, 403, 403, 201, 403, 201, 201, 403, 201],
      req: () => ({ url: `/v1/currencies/${s.code}/redemptions`, key: `k-${u()}`, body: { fromAccount: s.business.accountId, amount: '1.00' } }),
    },
    'GET /v1/transfers/{id}': {
      expect: [401, 200, 404, 200, 404, 200, 200, 403, 200],
      req: () => ({ url: `/v1/transfers/${payment}` }),
    },
    // the payment's parties may read it, so they are told they may not reverse it; to anyone else it does not exist
    'POST /v1/transfers/{id}/reversal': {
      expect: [401, 403, 404, 403, 404, 201, 201, 403, 403],
      req: async () => ({ url: `/v1/transfers/${await pay()}/reversal`, key: `k-${u()}` }),
    },
    'GET /v1/currencies/{code}/transfers': {
      expect: [401, 403, 403, 403, 403, 200, 200, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/transfers` }),
    },
    // reports: the currency's researchers and issuers; microdata exports: its researchers only
    'GET /v1/currencies/{code}/reports/circulation': {
      expect: [401, 403, 403, 403, 403, 200, 200, 200, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/reports/circulation?interval=month` }),
    },
    'GET /v1/currencies/{code}/reports/flows': {
      expect: [401, 403, 403, 403, 403, 200, 200, 200, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/reports/flows?by=sector` }),
    },
    'GET /v1/currencies/{code}/exports/transfers': {
      expect: [401, 403, 403, 403, 403, 403, 403, 200, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/exports/transfers` }),
    },
    'GET /v1/currencies/{code}/exports/accounts': {
      expect: [401, 403, 403, 403, 403, 403, 403, 200, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/exports/accounts` }),
    },
    'POST /v1/api-keys': {
      expect: [401, 403, 403, 201, 403, 403, 403, 403, 403],
      req: () => ({ url: '/v1/api-keys', body: { name: 'web shop', scopes: ['statements:read'] } }),
    },
    'GET /v1/api-keys': { expect: [401, 403, 403, 200, 403, 403, 403, 403, 403], req: () => ({ url: '/v1/api-keys' }) },
    'DELETE /v1/api-keys/{id}': {
      expect: [401, 403, 403, 204, 403, 403, 403, 403, 403],
      req: async () => {
        const k = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'doomed', scopes: ['accounts:read'] } })
        return { url: `/v1/api-keys/${k.body.id as string}` }
      },
    },
    'GET /v1/currencies/{code}/audit': {
      expect: [401, 403, 403, 403, 403, 200, 200, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/audit` }),
    },
    'GET /v1/audit': { expect: [401, 403, 403, 403, 403, 403, 200, 403, 403], req: () => ({ url: '/v1/audit' }) },
    // a fresh member each time, so a suspension here never touches the tokens the other rows use
    'PUT /v1/participants/{id}/suspension': {
      expect: [401, 404, 404, 404, 404, 200, 200, 403, 403],
      req: async () => ({ url: `/v1/participants/${(await registerMember(ctx, s.code)).id}/suspension`, body: { reason: 'matrix' } }),
    },
    'DELETE /v1/participants/{id}/suspension': {
      expect: [401, 404, 404, 404, 404, 200, 200, 403, 403],
      req: async () => ({ url: `/v1/participants/${(await registerMember(ctx, s.code)).id}/suspension` }),
    },
    'POST /v1/participants/{id}/password-reset': {
      expect: [401, 404, 404, 404, 404, 201, 201, 403, 403],
      req: async () => ({ url: `/v1/participants/${(await registerMember(ctx, s.code)).id}/password-reset` }),
    },
    // paper notes: exchange points are the currency's issuer staff (and the platform issuer); the reserve's totals are
    // also the currency's researchers' (its reconciliation CSV is not)
    'POST /v1/currencies/{code}/notes/sales': {
      expect: [401, 403, 403, 403, 403, 201, 201, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/notes/sales`, key: `k-${u()}`, body: { amount: '25.00', denominations: { 5: 1, 20: 1 }, sterlingReference: `till-${u()}` } }),
    },
    'POST /v1/currencies/{code}/notes/deposits': {
      expect: [401, 403, 403, 403, 403, 201, 201, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/notes/deposits`, key: `k-${u()}`, body: { toAccount: s.business.accountId, amount: '5.00', denominations: { 5: 1 } } }),
    },
    'POST /v1/currencies/{code}/notes/buybacks': {
      expect: [401, 403, 403, 403, 403, 201, 201, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/notes/buybacks`, key: `k-${u()}`, body: { business: s.business.id, amount: '5.00', denominations: { 5: 1 }, sterlingReference: `bank-${u()}` } }),
    },
    'POST /v1/currencies/{code}/notes/withdrawals': {
      expect: [401, 403, 403, 403, 403, 201, 201, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/notes/withdrawals`, key: `k-${u()}`, body: { amount: '1.00', denominations: { 1: 1 }, reason: 'worn', sterlingReference: `void-${u()}` } }),
    },
    'GET /v1/currencies/{code}/reserve': {
      expect: [401, 403, 403, 403, 403, 200, 200, 200, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/reserve` }),
    },
    // pay by text: the webhook is off without SMS_AUTH_TOKEN (test/sms/ tests it signed); the outbox is issuers'
    'POST /v1/sms/inbound': { expect: all(404), req: () => ({ url: '/v1/sms/inbound' }) },
    'GET /v1/sms/outbox': {
      expect: [401, 403, 403, 403, 403, 200, 200, 403, 403],
      req: () => ({ url: `/v1/sms/outbox?currency=${s.code}` }),
    },
    // a participant's text settings: the participant itself and its currency's issuers
    'GET /v1/participants/{id}/phone': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 403],
      req: () => ({ url: `/v1/participants/${s.member.id}/phone` }),
    },
    // removing the phone: each caller its own fresh member's (nothing to remove answers the settings as they are)
    'DELETE /v1/participants/{id}/phone': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 403],
      req: async (role) => ({ url: `/v1/participants/${role === 'member' ? s.member.id : (await registerMember(ctx, s.code)).id}/phone` }),
    },
    // one code a minute per participant: the member asks for its own, everyone else for a fresh member's
    'PUT /v1/participants/{id}/phone': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 403],
      req: async (role) => ({
        url: `/v1/participants/${role === 'member' ? s.member.id : (await registerMember(ctx, s.code)).id}/phone`,
        body: { phone: `+4479111${String(n++ % 100000).padStart(5, '0')}` },
      }),
    },
    // a wrong code: those who may confirm are told so (422), the others learn nothing
    'POST /v1/participants/{id}/phone/verification': {
      expect: [401, 422, 404, 404, 404, 422, 422, 403, 403],
      req: () => ({ url: `/v1/participants/${s.member.id}/phone/verification`, body: { code: '000000' } }),
    },
    'PUT /v1/participants/{id}/text-pin': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 403],
      req: () => ({ url: `/v1/participants/${s.member.id}/text-pin`, body: { pin: '4321' } }),
    },
    // standing orders: the paying account's owner and its currency's issuers; to anyone else they do not exist
    'POST /v1/accounts/{id}/standing-orders': {
      expect: [401, 201, 404, 404, 404, 201, 201, 403, 403],
      req: () => ({ url: `/v1/accounts/${s.member.accountId}/standing-orders`, key: `k-${u()}`, body: orderBody() }),
    },
    'GET /v1/accounts/{id}/standing-orders': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 403],
      req: () => ({ url: `/v1/accounts/${s.member.accountId}/standing-orders` }),
    },
    'GET /v1/accounts/{id}/standing-orders/{orderId}': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 403],
      req: () => ({ url: `/v1/accounts/${s.member.accountId}/standing-orders/${order}` }),
    },
    'DELETE /v1/accounts/{id}/standing-orders/{orderId}': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 403],
      req: async () => ({ url: `/v1/accounts/${s.member.accountId}/standing-orders/${await newOrder()}` }),
    },
    'GET /v1/standing-orders/{id}/occurrences': {
      expect: [401, 200, 404, 404, 404, 200, 200, 403, 403],
      req: () => ({ url: `/v1/standing-orders/${order}/occurrences` }),
    },
    'PATCH /v1/participants/{id}': {
      expect: [401, 404, 404, 200, 404, 200, 200, 403, 403],
      req: () => ({ url: `/v1/participants/${s.business.id}`, body: { textCode: `T${u()}`.slice(0, 12) } }),
    },
    // payment requests (test/requests/): a fresh request of the business's for each call; the API key here lacks
    // requests:write. Paying: members pay from their own accounts, the business and its key from the payee's.
    'POST /v1/currencies/{code}/payment-requests': {
      expect: [401, 403, 403, 201, 403, 403, 403, 403, 403],
      req: () => ({ url: `/v1/currencies/${s.code}/payment-requests`, key: `k-${u()}`, body: { toAccount: s.business.accountId, amount: '1.00' } }),
    },
    'GET /v1/payment-requests/{id}': {
      expect: [401, 200, 200, 200, 404, 200, 200, 403, 403],
      req: async () => ({ url: `/v1/payment-requests/${await askPayment()}` }),
    },
    'GET /v1/payment-requests/{id}/qr.svg': {
      expect: [401, 200, 200, 200, 404, 200, 200, 403, 403],
      req: async () => ({ url: `/v1/payment-requests/${await askPayment()}/qr.svg` }),
    },
    'GET /v1/payment-requests/{id}/qr.png': {
      expect: [401, 200, 200, 200, 404, 200, 200, 403, 403],
      req: async () => ({ url: `/v1/payment-requests/${await askPayment()}/qr.png` }),
    },
    'POST /v1/payment-requests/{id}/payments': {
      expect: [401, 201, 201, 422, 404, 403, 403, 403, 422],
      req: async (role) => ({
        url: `/v1/payment-requests/${await askPayment()}/payments`, key: `k-${u()}`,
        body: { fromAccount: role === 'otherMember' ? other.accountId : role === 'business' || role === 'apiKey' ? s.business.accountId : s.member.accountId, channel: 'till' },
      }),
    },
    'POST /v1/payment-requests/{id}/cancel': {
      expect: [401, 403, 403, 200, 404, 403, 403, 403, 403],
      req: async () => ({ url: `/v1/payment-requests/${await askPayment()}/cancel` }),
    },
    'POST /v1/payment-requests/{id}/decline': {
      // addressed to the member's account: only its owner declines (an open request cannot be declined at all)
      expect: [401, 200, 403, 422, 404, 403, 403, 403, 422],
      req: async () => ({ url: `/v1/payment-requests/${await askPayment(s.member.accountId)}/decline` }),
    },
    'GET /v1/accounts/{id}/payment-requests': {
      expect: [401, 404, 404, 200, 404, 200, 200, 403, 200],
      req: () => ({ url: `/v1/accounts/${s.business.accountId}/payment-requests` }),
    },
  }

  const fromDoc = (doc: { paths: Record<string, Record<string, unknown>> }) =>
    Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map(m => `${m.toUpperCase()} ${p}`)).sort()
  const live = fromDoc(ctx.app.swagger() as unknown as { paths: Record<string, Record<string, unknown>> })
  const committed = fromDoc(loadDoc())
  t.same(committed, live, 'openapi.yaml lists exactly the routes the app serves')
  for (const op of live) t.ok(Object.hasOwn(table, op), `${op} has a row in the access matrix`)
  for (const op of Object.keys(table)) t.ok(live.includes(op), `${op} in the matrix is a route of the app`)

  for (const [op, row] of Object.entries(table)) {
    const method = op.split(' ')[0]
    for (const [i, role] of ROLES.entries()) {
      const r = await row.req(role)
      const res = await ctx.call(method, r.url, { token: tokens[role], body: r.body, key: r.key })
      const want = row.expect[i]
      t.equal(res.status, want, `${op} as ${role} → ${want}`, { body: res.body })
      if (res.status >= 400) {
        t.match(res.headers['content-type'], /^application\/problem\+json/, `${op} as ${role}: problem+json`)
        t.equal(res.body.status, res.status)
      }
    }
  }
})
