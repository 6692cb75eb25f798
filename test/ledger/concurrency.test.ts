import { Decimal } from 'decimal.js'
import t from 'tap'
import { buildTestApp, issue, registerMember, scenario } from '../helper.js'
import { assertInvariants, invariantViolations } from '../../support/invariants.js'

// Through a real listening server: simultaneous requests contend for the same account rows.
t.test('96 simultaneous payments over 3 hot accounts: no 5xx, no overdraft, every 201 one transfer', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const hot = [s.member, await registerMember(ctx, s.code), await registerMember(ctx, s.code)]
  for (const h of hot) await issue(ctx, s.code, h.accountId, '100.00')
  const base = await ctx.app.listen({ port: 0, host: '127.0.0.1' })

  const N = 96
  const results = await Promise.all(Array.from({ length: N }, async (_, i) => {
    // two payers drain into the third, paying each other now and then: they run dry mid-way
    const from = hot[i % 2]
    const to = i % 4 === 3 ? hot[1 - (i % 2)] : hot[2]
    const res = await fetch(`${base}/v1/currencies/${s.code}/payments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${from.token}`, 'idempotency-key': `c-${i}` },
      // large enough that some payers run dry and are refused while others pay them back
      body: JSON.stringify({ fromAccount: from.accountId, toAccount: to.accountId, amount: `${7 + (i % 5)}.${String(i % 100).padStart(2, '0')}`, channel: 'app' }),
    })
    return { status: res.status, body: await res.json() as any }
  }))

  const statuses = results.map(r => r.status)
  t.equal(statuses.filter(x => x >= 500).length, 0, 'no 5xx')
  t.same(statuses.filter(x => x !== 201 && x !== 422), [], 'every answer is 201 or 422')
  t.same(results.filter(r => r.status === 422 && r.body.code !== 'INSUFFICIENT_FUNDS').map(r => r.body), [], 'refusals are for funds')
  const ok = results.filter(r => r.status === 201)
  t.ok(ok.length > 10 && ok.length < N, `some payments went through and some were refused (${ok.length} of ${N})`)

  const ids = ok.map(r => r.body.id as string)
  t.equal(new Set(ids).size, ids.length, 'every 201 names its own transfer')
  const { rows } = await ctx.app.pool.query<{ id: string }>(`SELECT id FROM transfer WHERE kind = 'payment'`)
  t.same(rows.map(r => r.id).sort(), [...ids].sort(), 'every 201 matches exactly one transfer, and no other payment exists')

  const bal = await ctx.app.pool.query<{ balance: string, floor: string }>('SELECT balance::text, floor::text FROM account WHERE id = ANY($1)', [hot.map(h => h.accountId)])
  t.ok(bal.rows.every(b => new Decimal(b.balance).gte(b.floor)), 'no balance below its floor')
  const fees = ok.reduce((sum, r) => sum.plus(r.body.related[0]?.amount ?? 0), new Decimal(0))
  const total = bal.rows.reduce((sum, b) => sum.plus(b.balance), new Decimal(0))
  t.equal(total.plus(fees).toFixed(2), '300.00', 'totals conserved: the hot accounts plus the fees they paid')
  assertInvariants(t, await invariantViolations(ctx.app.pool))
})

t.test('20 simultaneous requests with one key create exactly one transfer', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const base = await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const body = JSON.stringify({ fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '5.00', channel: 'app' })
  const send = async () => {
    const res = await fetch(`${base}/v1/currencies/${s.code}/payments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${s.member.token}`, 'idempotency-key': 'same-key' },
      body,
    })
    return { status: res.status, text: await res.text(), type: res.headers.get('content-type') }
  }
  const results = await Promise.all(Array.from({ length: 20 }, send))
  const created = results.filter(r => r.status === 201)
  const inFlight = results.filter(r => r.status === 409)
  t.equal(created.length + inFlight.length, 20, `each answer is 201 or 409 (${results.map(r => r.status).join(',')})`)
  t.not(created.length, 0, 'at least one got the movement')
  t.same(inFlight.filter(r => !(r.type?.startsWith('application/problem+json') === true && JSON.parse(r.text).code === 'IDEMPOTENCY_IN_FLIGHT')).map(r => r.text), [],
    '409s say the key is in flight')
  t.equal(new Set(created.map(r => r.text)).size, 1, 'every 201 is byte-identical')
  const { rows } = await ctx.app.pool.query(`SELECT count(*)::int AS n FROM transfer WHERE kind = 'payment'`)
  t.equal(rows[0].n, 1, 'exactly one payment exists')
  const after = await send()
  t.equal(after.status, 201, 'once settled, a retry replays')
  t.equal(after.text, created[0].text, 'byte-identical')
  const other = await fetch(`${base}/v1/currencies/${s.code}/payments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${s.member.token}`, 'idempotency-key': 'same-key' },
    body: body.replace('5.00', '6.00'),
  })
  t.equal(other.status, 422, 'the same key with another body is refused')
  t.equal(((await other.json()) as any).code, 'IDEMPOTENCY_KEY_REUSED')
})
