import { Decimal } from 'decimal.js'
import fc from 'fast-check'
import t from 'tap'
import { buildTestApp, registerBusiness, registerMember, scenario, type TestContext } from '../helper.js'
import { assertInvariants, invariantViolations } from '../../support/invariants.js'

// 1,000 random operations (payments, issuances, redemptions, reversals, replays, bad requests), checking the
// ledger's invariants after every step, that the accepted moves alone explain every final balance, and that each
// payment, issuance, redemption and reversal is accepted or refused, with the legs and the code, as the balances
// before it say (an oracle of its own, so a wrong refusal or a wrong fee is caught, not only a broken ledger).
const STEPS = Number(process.env.PROPERTY_STEPS ?? 1000)
const SEED = Number(process.env.PROPERTY_SEED ?? Date.now() % 1_000_000)

type Op =
  | { op: 'pay', from: number, to: number, cents: number, channel: string, asIssuer: boolean, asStranger: boolean, all: boolean }
  | { op: 'issue', to: number, cents: number }
  | { op: 'redeem', from: number, cents: number, asIssuer: boolean }
  | { op: 'reverse', pick: number }
  | { op: 'replay', pick: number, sameBody: boolean }
  | { op: 'bad', kind: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ op: fc.constant('pay' as const), from: fc.nat(7), to: fc.nat(7), cents: fc.integer({ min: 1, max: 6000 }), channel: fc.constantFrom('text', 'app', 'online', 'api', 'till'), asIssuer: fc.boolean(), asStranger: fc.boolean(), all: fc.constant(false) }) },
  // the payer's whole balance, down to its floor exactly: random amounts never land on a limit
  { weight: 2, arbitrary: fc.record({ op: fc.constant('pay' as const), from: fc.nat(7), to: fc.nat(7), cents: fc.constant(0), channel: fc.constantFrom('text', 'app', 'online', 'api', 'till'), asIssuer: fc.constant(true), asStranger: fc.constant(false), all: fc.constant(true) }) },
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
  t.equal((await ctx.call('PATCH', `/v1/accounts/${people[2].accountId}`, { token: ctx.issuerToken, body: { ceiling: '150.00' } })).status, 200)
  const sys = s.currency.systemAccounts as { issuance: string, fees: string }
  // the currency's own rates, as the scenario made it
  const fees = s.currency.fees as Record<string, string>
  const redemptionFee = s.currency.redemptionFee as string

  const model = new Map<string, Decimal>()
  const apply = (legs: Array<{ fromAccount: string, toAccount: string, amount: string }>) => {
    for (const l of legs) {
      model.set(l.fromAccount, (model.get(l.fromAccount) ?? new Decimal(0)).minus(l.amount))
      model.set(l.toAccount, (model.get(l.toAccount) ?? new Decimal(0)).plus(l.amount))
    }
  }
  const accepted: Array<{ id: string, reversible: boolean, legs: Array<{ fromAccount: string, toAccount: string, amount: string }> }> = []
  const sent: Array<{ url: string, key: string, body: unknown, token: string, text: string }> = []
  const tally: Record<string, number> = {}
  const money = (cents: number) => new Decimal(cents).div(100).toFixed(2)
  const fee = (amount: Decimal, rate: string) => amount.times(rate).toDecimalPlaces(2, Decimal.ROUND_HALF_UP)
  const bal = (a: string) => model.get(a) ?? new Decimal(0)
  // what should happen, from the balances before: the legs in apply order, or the first limit a leg breaks
  type Move = [string, string, Decimal]
  const limits = (moves: Move[]): string | null => {
    const m = new Map(model)
    const at = (a: string) => m.get(a) ?? new Decimal(0)
    for (const [from, to, amount] of moves) {
      m.set(from, at(from).minus(amount)); m.set(to, at(to).plus(amount))
      if (from !== sys.issuance && at(from).lt(0)) return 'INSUFFICIENT_FUNDS'
      if (to === people[2].accountId && at(to).gt(150)) return 'CEILING_EXCEEDED'
      if (from === people[2].accountId && at(from).gt(150)) return 'CEILING_EXCEEDED'
    }
    return null
  }
  const expected = (o: Op): { code: string, legs?: Move[] } | null => {
    const outcome = (legs: Move[]) => ({ code: limits(legs) ?? '201', legs })
    switch (o.op) {
      case 'pay': {
        const from = people[o.from].accountId; const to = people[o.to].accountId
        const amount = o.all ? bal(from) : new Decimal(o.cents).div(100)
        if (amount.isZero()) return null
        // only the SMS gateway names text; an issuer may record one by hand (payment-rules.ts)
        if (o.channel === 'text' && !o.asIssuer) return { code: 'CHANNEL_RESERVED' }
        if (o.from === o.to) return { code: 'SAME_ACCOUNT' }
        if (!o.asIssuer && o.asStranger) return { code: 'ACCOUNT_NOT_FOUND' }
        const f = fee(amount, fees[o.channel])
        return outcome([[from, to, amount], ...(f.gt(0) ? [[to, sys.fees, f] as Move] : [])])
      }
      case 'issue': return outcome([[sys.issuance, people[o.to].accountId, new Decimal(o.cents).div(100)]])
      case 'redeem': {
        const p = people[o.from]
        if (p.kind !== 'business') return { code: o.asIssuer ? 'NOT_REDEEMABLE' : 'FORBIDDEN' }
        const amount = new Decimal(o.cents).div(100); const f = fee(amount, redemptionFee)
        return outcome([[p.accountId, sys.issuance, amount.minus(f)], ...(f.gt(0) ? [[p.accountId, sys.fees, f] as Move] : [])])
      }
      case 'reverse': {
        if (accepted.length === 0) return null
        const target = accepted[o.pick % accepted.length]
        if (!target.reversible) return null // a reversal (NOT_REVERSIBLE) or reversed already (ALREADY_REVERSED)
        return outcome(target.legs.map((l): Move => [l.toAccount, l.fromAccount, new Decimal(l.amount)]).reverse())
      }
      default: return null
    }
  }

  const last: { code: string, legs: unknown[] } = { code: '', legs: [] }
  const ops = fc.sample(fc.array(opArb, { minLength: STEPS, maxLength: STEPS }), { seed: SEED, numRuns: 1 })[0]
  let step = 0
  for (const o of ops) {
    step++
    const want = expected(o)
    const r = await run(ctx, o)
    const op = o.op === 'pay' && o.all ? 'payAll' : o.op
    tally[`${op}:${r}`] = (tally[`${op}:${r}`] ?? 0) + 1
    if (want != null) {
      tally[`${op}:${r}:${last.code}`] = (tally[`${op}:${r}:${last.code}`] ?? 0) + 1
      t.equal(r === 201 ? '201' : last.code, want.code, `step ${step} (${JSON.stringify(o)}): as the balances say, seed ${SEED}`)
      if (r === 201 && want.legs != null) {
        t.same(last.legs, want.legs.map(([f, to, a]) => [f, to, a.toFixed(2)]), `step ${step}: the legs, in apply order, seed ${SEED}`)
      }
    }
    if (!assertInvariants(t, await invariantViolations(ctx.app.pool), `after step ${step} (${JSON.stringify(o)}), seed ${SEED}`)) break
  }

  // the accepted moves, and nothing else, explain every balance
  const { rows } = await ctx.app.pool.query<{ id: string, balance: string }>('SELECT id, balance::text FROM account')
  const wrong = rows.filter(a => !(model.get(a.id) ?? new Decimal(0)).eq(a.balance))
  t.same(wrong, [], 'every balance equals the sum of the accepted moves')
  t.ok(Object.keys(tally).some(k => k.startsWith('pay:201')), 'some payments went through')
  t.ok(Object.keys(tally).some(k => k.startsWith('reverse:201')), 'some reversals went through')
  t.ok(Object.keys(tally).some(k => k.endsWith(':422')), 'some requests were refused')
  // the generator reaches the limits themselves, not only either side of them
  for (const k of ['payAll:201:', 'pay:422:INSUFFICIENT_FUNDS', 'redeem:201:', 'reverse:201:']) {
    t.ok((tally[k] ?? 0) > 0, `the generator produced ${k}`)
  }
  t.ok(Object.keys(tally).some(k => k.endsWith(':CEILING_EXCEEDED')), 'the generator reached the ceiling')
  t.comment(JSON.stringify(tally))

  async function run (ctx: TestContext, o: Op): Promise<number> {
    last.code = ''; last.legs = []
    const post = async (url: string, token: string, body: unknown, key = `k${step}`) => {
      const r = await ctx.call('POST', url, { token, key, body })
      sent.push({ url, key, body, token, text: r.text })
      if (r.status === 201) {
        apply([r.body, ...r.body.related])
        accepted.push({ id: r.body.id, reversible: r.body.kind !== 'reversal', legs: [r.body, ...r.body.related] })
        // the legs in the order they moved balances: a reversal gives a fee back first
        const legs = [r.body, ...r.body.related].map(l => [l.fromAccount, l.toAccount, l.amount])
        last.legs = r.body.kind === 'reversal' ? legs.reverse() : legs
      } else {
        last.code = r.body.code
        t.ok(r.status >= 400 && r.status < 500, `step ${step}: a client error, not ${r.status}`)
      }
      return r.status
    }
    switch (o.op) {
      case 'pay': {
        const from = people[o.from]; const to = people[o.to]
        const token = o.asIssuer ? ctx.issuerToken : o.asStranger ? people[(o.from + 1) % people.length].token : from.token
        const amount = o.all ? bal(from.accountId).toFixed(2) : money(o.cents)
        if (amount === '0.00') return 0
        return await post(`/v1/currencies/${s.code}/payments`, token, { fromAccount: from.accountId, toAccount: to.accountId, amount, channel: o.channel })
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
          accepted.push({ id: r.body.id, reversible: r.body.kind !== 'reversal', legs: [r.body, ...r.body.related] })
          if (r.body.kind === 'reversal') { const tg = accepted.find(a => a.id === r.body.reversesId); if (tg != null) tg.reversible = false }
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
