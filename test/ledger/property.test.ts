import { Decimal } from 'decimal.js'
import fc from 'fast-check'
import t from 'tap'
import { buildTestApp, registerBusiness, registerMember, scenario, type TestContext } from '../helper.js'
import { assertInvariants, invariantViolations } from '../../support/invariants.js'

// 1,000 random operations (payments, issuances, redemptions, reversals, replays, bad requests), checking the
// ledger's invariants after every step, and that the accepted moves alone explain every final balance.
const STEPS = Number(process.env.PROPERTY_STEPS ?? 1000)
const SEED = Number(process.env.PROPERTY_SEED ?? Date.now() % 1_000_000)

type Op =
  | { op: 'pay', from: number, to: number, cents: number, channel: string, asIssuer: boolean, asStranger: boolean }
  | { op: 'issue', to: number, cents: number }
  | { op: 'redeem', from: number, cents: number, asIssuer: boolean }
  | { op: 'reverse', pick: number }
  | { op: 'replay', pick: number, sameBody: boolean }
  | { op: 'bad', kind: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ op: fc.constant('pay' as const), from: fc.nat(7), to: fc.nat(7), cents: fc.integer({ min: 1, max: 6000 }), channel: fc.constantFrom('text', 'app', 'online', 'api', 'till'), asIssuer: fc.boolean(), asStranger: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('issue' as const), to: fc.nat(7), cents: fc.integer({ min: 1, max: 10000 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('redeem' as const), from: fc.nat(7), cents: fc.integer({ min: 1, max: 4000 }), asIssuer: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('reverse' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('replay' as const), pick: fc.nat(), sameBody: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('bad' as const), kind: fc.nat(5) }) }
)

t.test(`${STEPS} random operations keep every invariant (seed ${SEED})`, async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const people = [
    { ...s.member, kind: 'member' }, { ...s.business, kind: 'business' },
    ...await Promise.all([0, 1, 2].map(async () => ({ ...await registerMember(ctx, s.code), kind: 'member' }))),
    ...await Promise.all([0, 1, 2].map(async (i) => ({ ...await registerBusiness(ctx, s.code, { tradingName: `Shop ${i}`, sector: 'retail', postcode: 'BS2 0AA' }), kind: 'business' }))),
  ]
  // one account with a ceiling, so ceilings get exercised too
  await ctx.call('PATCH', `/v1/accounts/${people[2].accountId}`, { token: ctx.issuerToken, body: { ceiling: '150.00' } })

  const model = new Map<string, Decimal>()
  const apply = (legs: Array<{ fromAccount: string, toAccount: string, amount: string }>) => {
    for (const l of legs) {
      model.set(l.fromAccount, (model.get(l.fromAccount) ?? new Decimal(0)).minus(l.amount))
      model.set(l.toAccount, (model.get(l.toAccount) ?? new Decimal(0)).plus(l.amount))
    }
  }
  const accepted: Array<{ id: string, reversible: boolean }> = []
  const sent: Array<{ url: string, key: string, body: unknown, token: string, text: string }> = []
  const tally: Record<string, number> = {}
  const money = (cents: number) => new Decimal(cents).div(100).toFixed(2)

  const ops = fc.sample(fc.array(opArb, { minLength: STEPS, maxLength: STEPS }), { seed: SEED, numRuns: 1 })[0]
  let step = 0
  for (const o of ops) {
    step++
    const r = await run(ctx, o)
    tally[`${o.op}:${r}`] = (tally[`${o.op}:${r}`] ?? 0) + 1
    if (!assertInvariants(t, await invariantViolations(ctx.app.pool), `after step ${step} (${JSON.stringify(o)}), seed ${SEED}`)) break
  }

  // the accepted moves, and nothing else, explain every balance
  const { rows } = await ctx.app.pool.query<{ id: string, balance: string }>('SELECT id, balance::text FROM account')
  const wrong = rows.filter(a => !(model.get(a.id) ?? new Decimal(0)).eq(a.balance))
  t.same(wrong, [], 'every balance equals the sum of the accepted moves')
  t.ok(Object.keys(tally).some(k => k.startsWith('pay:201')), 'some payments went through')
  t.ok(Object.keys(tally).some(k => k.startsWith('reverse:201')), 'some reversals went through')
  t.ok(Object.keys(tally).some(k => k.endsWith(':422')), 'some requests were refused')
  t.comment(JSON.stringify(tally))

  async function run (ctx: TestContext, o: Op): Promise<number> {
    const post = async (url: string, token: string, body: unknown, key = `k${step}`) => {
      const r = await ctx.call('POST', url, { token, key, body })
      sent.push({ url, key, body, token, text: r.text })
      if (r.status === 201) {
        apply([r.body, ...r.body.related])
        accepted.push({ id: r.body.id, reversible: r.body.kind !== 'reversal' })
      } else {
        t.ok(r.status >= 400 && r.status < 500, `step ${step}: a client error, not ${r.status}`)
      }
      return r.status
    }
    switch (o.op) {
      case 'pay': {
        const from = people[o.from]; const to = people[o.to]
        const token = o.asIssuer ? ctx.issuerToken : o.asStranger ? people[(o.from + 1) % people.length].token : from.token
        return await post(`/v1/currencies/${s.code}/payments`, token, { fromAccount: from.accountId, toAccount: to.accountId, amount: money(o.cents), channel: o.channel })
      }
      case 'issue':
        return await post(`/v1/currencies/${s.code}/issuances`, ctx.issuerToken, { toAccount: people[o.to].accountId, amount: money(o.cents), sterlingReference: `s${step}` })
      case 'redeem': {
        const p = people[o.from]
        return await post(`/v1/currencies/${s.code}/redemptions`, o.asIssuer ? ctx.issuerToken : p.token, { fromAccount: p.accountId, amount: money(o.cents) })
      }
      case 'reverse': {
        if (accepted.length === 0) return 0
        const target = accepted[o.pick % accepted.length]
        const r = await post(`/v1/transfers/${target.id}/reversal`, ctx.issuerToken, undefined)
        if (!target.reversible || r === 201) target.reversible = false
        return r
      }
      case 'replay': {
        if (sent.length === 0) return 0
        const prior = sent[o.pick % sent.length]
        const body = o.sameBody ? prior.body : { ...(prior.body as object ?? {}), reference: `changed at step ${step}` }
        const r = await ctx.call('POST', prior.url, { token: prior.token, key: prior.key, body })
        const firstWas201 = prior.text.includes('"related"')
        if (o.sameBody && firstWas201) t.equal(r.text, prior.text, `step ${step}: a replay answers the first response byte for byte`)
        if (!o.sameBody && firstWas201) t.equal(r.status, 422, `step ${step}: a reused key with another body is refused (${prior.url} ${r.text})`)
        if (o.sameBody && firstWas201) t.equal(r.headers['idempotent-replayed'], 'true')
        // a key whose first use was refused was never claimed: this request ran as a new one
        if (r.status === 201 && r.headers['idempotent-replayed'] === 'false') {
          t.notOk(firstWas201, `step ${step}: a claimed key never runs twice`)
          apply([r.body, ...r.body.related])
          accepted.push({ id: r.body.id, reversible: r.body.kind !== 'reversal' })
          Object.assign(prior, { body, text: r.text })
        }
        return r.status
      }
      case 'bad': {
        const bodies = [
          { fromAccount: people[0].accountId, toAccount: people[1].accountId, amount: 5, channel: 'app' },
          { fromAccount: people[0].accountId, toAccount: people[1].accountId, amount: '1.001', channel: 'app' },
          { fromAccount: people[0].accountId, toAccount: people[0].accountId, amount: '1.00', channel: 'app' },
          { fromAccount: people[0].accountId, toAccount: people[1].accountId, amount: '-1.00', channel: 'app' },
          { fromAccount: people[0].accountId, amount: '1.00', channel: 'app' },
          { fromAccount: people[0].accountId, toAccount: people[1].accountId, amount: '1.00', channel: 'app', extra: true },
        ]
        return await post(`/v1/currencies/${s.code}/payments`, people[0].token, bodies[o.kind])
      }
    }
  }
})
