import pg from 'pg'
import t from 'tap'
import { Money } from '../../src/domain/money.js'
import { Prng } from '../../src/simulator/prng.js'
import { buildTestApp, issue, registerBusiness, registerMember, scenario } from '../helper.js'
import { assertInvariants, invariantViolations } from '../../support/invariants.js'
import { enrol, text, TOKEN, WEBHOOK } from '../sms/fixtures.js'

// Random sequences of every operation that moves money (payments, issuances, redemptions, reversals, note sales,
// deposits, buybacks and withdrawals, standing-order runs, text payments through the gateway's signed webhook, some
// retried, some with a wrong PIN, some unsigned), through HTTP with real tokens. After each step: the
// reserve's difference is zero, the reserve and the paper float equal what this test expects from the responses
// it got (its own model, not the service's), and the ledger's invariants hold. Now and then the reserve at an
// earlier step's time must still answer that step's figures.
const SEED = Number(process.env.PROPERTY_SEED ?? 20261214)
const STEPS = Number(process.env.PROPERTY_STEPS ?? 120)

t.test(`the reserve reconciles after every step of a random sequence (seed ${SEED}, ${STEPS} steps)`, async (t) => {
  const rng = new Prng(SEED)
  let now = new Date('2027-03-01T09:00:00Z')
  let codes = 0
  const ctx = await buildTestApp(t, { SCHEDULER_INTERVAL_MS: 0, SMS_AUTH_TOKEN: TOKEN, SMS_PUBLIC_URL: WEBHOOK },
    { clock: () => now, smsClock: () => now, smsCodes: () => String(100000 + codes++) })
  const s = await scenario(ctx)
  const c = s.currency
  const members = [s.member, await registerMember(ctx, s.code), await registerMember(ctx, s.code)]
  const businesses = [s.business, await registerBusiness(ctx, s.code, { tradingName: 'Corner Shop', sector: 'food', postcode: 'BS2 9AA' })]
  const parties = [...members, ...businesses]
  for (const p of parties) await issue(ctx, s.code, p.accountId, '200.00')
  const pool = new pg.Pool({ connectionString: ctx.db.url, max: 2 })
  pool.on('error', () => {})
  t.teardown(async () => { await pool.end() })

  // Pay by text: every member has a confirmed phone and a PIN (set through the API as the member would), both
  // businesses a text code. The model keeps each phone's wrong PINs in a row and its lock, and every signed text
  // sent so far (the gateway may deliver any of them again).
  const sms = { ctx, lastCode: () => String(100000 + codes - 1), now: { t: now.getTime() } }
  const texters: Array<typeof members[number] & { phone: string, pin: string, failures: number, locked: boolean }> = []
  for (const [i, m] of members.entries()) {
    // one after the other: each enrolment reads back the code just texted
    const phone = `+4479000000${String(i).padStart(2, '0')}`
    const pin = String(1000 + 1111 * i)
    await enrol(sms, m, phone, pin)
    texters.push({ ...m, phone, pin, failures: 0, locked: false })
  }
  const shops = [{ ...businesses[0], code: 'MONTPELIER' }, { ...businesses[1], code: 'CORNER' }]
  for (const b of shops) {
    const r = await ctx.call('PATCH', `/v1/participants/${b.id}`, { token: b.token, body: { textCode: b.code.toLowerCase() } })
    t.equal(r.status, 200, r.text)
  }
  await enrol(sms, shops[0], '+447900000099', '4321')
  const sent: Array<{ phone: string, body: string, sid: string }> = []
  const TEXT_FEE = new Money('0.02')
  const balanceOf = async (accountId: string) => (await ctx.call('GET', `/v1/accounts/${accountId}`, { token: ctx.issuerToken })).body.balance as string
  const inbound = async (sid: string) => (await pool.query<{ outcome: string, transfer_id: string | null }>(
    'SELECT outcome, transfer_id FROM sms_inbound WHERE message_sid = $1', [sid])).rows
  const pinState = async (phone: string) => (await pool.query<{ failures: number, locked: boolean }>(
    'SELECT pin_failures AS failures, locked_at IS NOT NULL AS locked FROM text_phone WHERE phone = $1', [phone])).rows[0]
  const inboundCount = async () => Number((await pool.query('SELECT count(*) AS n FROM sms_inbound')).rows[0].n)

  // the model: sterling held and notes out, from what the responses say
  let sterling = new Money('1000.00')
  let paper = new Money(0)
  /** per main transfer: what it did to sterling and paper, so a reversal can undo it in the model */
  const effects = new Map<string, { sterling: Money, paper: Money }>()
  const history: Array<{ at: string, sterling: string, paper: string }> = []
  const counts: Record<string, number> = {}
  let key = 0
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]
  const amount = (max: number) => `${1 + rng.int(max)}.${String(rng.int(100)).padStart(2, '0')}`
  const notesOf = (whole: number) => {
    const d: Record<string, number> = {}
    let left = whole
    for (const v of [20, 10, 5, 1]) { const n = Math.floor(left / v); if (n > 0) d[String(v)] = n; left -= n * v }
    return d
  }
  const post = async (path: string, body: unknown, token = ctx.issuerToken) => await ctx.call('POST', path, { token, key: `p-${key++}`, body })
  const posted = (op: string, r: { status: number, body: any }, st: Money, pp: Money) => {
    if (r.status !== 201) { counts[`${op} refused`] = (counts[`${op} refused`] ?? 0) + 1; return }
    counts[op] = (counts[op] ?? 0) + 1
    sterling = sterling.plus(st); paper = paper.plus(pp)
    effects.set(r.body.id, { sterling: st, paper: pp })
  }
  const orders: string[] = []

  for (let step = 0; step < STEPS; step++) {
    const op = rng.int(14)
    if (op <= 1) {
      const from = pick(parties); const to = pick(parties.filter(p => p !== from))
      posted('payment', await post(`/v1/currencies/${s.code}/payments`, { fromAccount: from.accountId, toAccount: to.accountId, amount: amount(60), channel: pick(['app', 'text', 'online', 'api', 'till']) }, from.token), new Money(0), new Money(0))
    } else if (op === 2) {
      const a = amount(100)
      posted('issuance', await post(`/v1/currencies/${s.code}/issuances`, { toAccount: pick(parties).accountId, amount: a, sterlingReference: `bank ${step}` }), new Money(a), new Money(0))
    } else if (op === 3) {
      const r = await post(`/v1/currencies/${s.code}/redemptions`, { fromAccount: pick(businesses).accountId, amount: amount(80) })
      posted('redemption', r, r.status === 201 ? new Money(r.body.amount).neg() : new Money(0), new Money(0))
    } else if (op === 4) {
      const ids = [...effects.keys()]
      if (ids.length === 0) continue
      const id = pick(ids)
      const r = await post(`/v1/transfers/${id}/reversal`, undefined)
      const e = effects.get(id)!
      if (r.status === 201) effects.delete(id)
      posted('reversal', r, e.sterling.neg(), e.paper.neg())
      if (r.status === 201) effects.delete(r.body.id)
    } else if (op === 5) {
      const whole = 5 + rng.int(120)
      posted('note sale', await post(`/v1/currencies/${s.code}/notes/sales`, { amount: `${whole}.00`, denominations: notesOf(whole), sterlingReference: `till ${step}` }), new Money(whole), new Money(whole))
    } else if (op === 6) {
      const whole = 1 + rng.int(60)
      posted('note deposit', await post(`/v1/currencies/${s.code}/notes/deposits`, { toAccount: pick(parties).accountId, amount: `${whole}.00`, denominations: notesOf(whole) }), new Money(0), new Money(-whole))
    } else if (op === 7) {
      const whole = 1 + rng.int(60)
      const r = await post(`/v1/currencies/${s.code}/notes/buybacks`, { business: pick(businesses).id, amount: `${whole}.00`, denominations: notesOf(whole), sterlingReference: `BACS ${step}` })
      posted('note buyback', r, r.status === 201 ? new Money(r.body.amount).neg() : new Money(0), new Money(-whole))
    } else if (op === 8) {
      const whole = 1 + rng.int(10)
      posted('note withdrawal', await post(`/v1/currencies/${s.code}/notes/withdrawals`, { amount: `${whole}.00`, denominations: notesOf(whole), reason: pick(['worn', 'lost']), sterlingReference: `scheme ${step}` }), new Money(-whole), new Money(-whole))
    } else if (op === 9) {
      const from = pick(parties); const to = pick(parties.filter(p => p !== from))
      const r = await ctx.call('POST', `/v1/accounts/${from.accountId}/standing-orders`, {
        key: `order-${step}`,
        token: from.token, body: { toAccount: to.accountId, amount: amount(40), reference: `order ${step}`, schedule: { every: 'week', day: 1 + rng.int(7) }, startsOn: now.toISOString().slice(0, 10) },
      })
      t.equal(r.status, 201, r.text)
      orders.push(r.body.id)
    } else if (op === 11 || op === 12) {
      // a text payment: signed as the gateway signs; now and then with a wrong PIN, now and then unsigned
      const payer = pick(texters); const shop = pick(shops)
      const a = amount(60)
      const variant = rng.int(10)
      const wrongPin = variant <= 2
      const pin = wrongPin ? String((Number(payer.pin) + 1 + rng.int(8000)) % 10000).padStart(4, '0') : payer.pin
      const body = `${pick(['pay', 'PAY', 'Pay'])}  ${pick([shop.code, shop.code.toLowerCase()])}   ${a} ${pin}`
      const before = { payer: await balanceOf(payer.accountId), shop: await balanceOf(shop.accountId), inbound: await inboundCount() }
      const r = await text(ctx, payer.phone, body, variant === 3 ? { signature: 'A'.repeat(28) } : {})
      const after = { payer: await balanceOf(payer.accountId), shop: await balanceOf(shop.accountId), inbound: await inboundCount() }
      let expected: string
      if (variant === 3) {
        t.equal(r.status, 403, `step ${step}: a badly signed text is refused`)
        t.same(after, before, `step ${step}: a badly signed text changes nothing`)
        counts['unsigned text'] = (counts['unsigned text'] ?? 0) + 1
        expected = 'none'
      } else {
        t.equal(r.status, 200, `step ${step}: ${r.text}`)
        sent.push({ phone: payer.phone, body, sid: r.sid })
        if (payer.locked) expected = 'locked'
        else if (wrongPin) {
          payer.failures++
          payer.locked = payer.failures >= 3
          expected = payer.locked ? 'wrong_pin_locked' : 'wrong_pin'
        } else {
          payer.failures = 0
          expected = new Money(before.payer).gte(a) ? 'paid' : 'insufficient_funds'
        }
        const [row] = await inbound(r.sid)
        t.equal(row.outcome, expected, `step ${step}: ${body.replace(/[0-9]+$/, '****')}`)
        if (expected === 'paid') {
          const fee = new Money(a).times(TEXT_FEE).toDecimalPlaces(2, Money.ROUND_HALF_UP)
          t.same(after, { payer: new Money(before.payer).minus(a).toFixed(2), shop: new Money(before.shop).plus(a).minus(fee).toFixed(2), inbound: before.inbound + 1 },
            `step ${step}: the text paid ${a} once, the shop paid the text fee`)
          effects.set(row.transfer_id!, { sterling: new Money(0), paper: new Money(0) })
          counts['text payment'] = (counts['text payment'] ?? 0) + 1
        } else {
          t.same(after, { ...before, inbound: before.inbound + 1 }, `step ${step}: a text that pays nothing (${expected}) moves no money`)
          t.equal(row.transfer_id, null)
          counts[`text ${expected}`] = (counts[`text ${expected}`] ?? 0) + 1
        }
      }
      t.same(await pinState(payer.phone), { failures: payer.failures, locked: payer.locked }, `step ${step}: the PIN count is as the model has it`)
    } else if (op === 13) {
      const locked = texters.filter(p => p.locked)
      if (locked.length > 0 && rng.chance(0.5)) {
        // the member sets a new PIN in the app, which lifts the lock
        const m = pick(locked)
        m.pin = String(1000 + rng.int(9000))
        const r = await ctx.call('PUT', `/v1/participants/${m.id}/text-pin`, { token: m.token, body: { pin: m.pin } })
        t.match(r.body, { locked: false, pinSet: true })
        m.failures = 0; m.locked = false
        counts['PIN reset'] = (counts['PIN reset'] ?? 0) + 1
      } else {
        // the gateway delivers an earlier text again: whatever it did the first time, it does nothing now
        if (sent.length === 0) continue
        const again = pick(sent)
        const payer = texters.find(p => p.phone === again.phone)!
        const balances = async () => await Promise.all([...parties.map(async p => await balanceOf(p.accountId)), inboundCount(), pinState(payer.phone)])
        const before = await balances()
        const r = await text(ctx, again.phone, again.body, { sid: again.sid })
        t.equal(r.status, 200)
        t.same(await balances(), before, `step ${step}: text ${again.sid} delivered again changes nothing`)
        counts['text retried'] = (counts['text retried'] ?? 0) + 1
      }
    } else {
      // a day passes and the scheduler runs (its payments move no sterling and no paper)
      now = new Date(now.getTime() + 86_400_000)
      const run = await ctx.app.scheduler.tick()
      counts['standing-order payments'] = (counts['standing-order payments'] ?? 0) + run.paid
      counts['standing-order refusals'] = (counts['standing-order refusals'] ?? 0) + run.retrying + run.failed
      t.equal(run.errors, 0)
    }

    const r = await ctx.call('GET', `/v1/currencies/${s.code}/reserve`, { token: ctx.issuerToken })
    const ok = r.body.difference === '0.00' && r.body.sterlingReserve === sterling.toFixed(2) && r.body.paperCirculation === paper.toFixed(2)
    if (!ok) t.fail(`step ${step}: the reserve does not reconcile`, { got: r.body, expected: { sterlingReserve: sterling.toFixed(2), paperCirculation: paper.toFixed(2) } })
    if (!assertInvariants(t, await invariantViolations(pool), `after step ${step}`)) break
    if (!ok) break
    history.push({ at: r.body.at, sterling: r.body.sterlingReserve, paper: r.body.paperCirculation })
    if (step % 20 === 19) {
      const then = pick(history)
      const past = await ctx.call('GET', `/v1/currencies/${s.code}/reserve?at=${encodeURIComponent(then.at)}`, { token: ctx.issuerToken })
      t.match(past.body, { sterlingReserve: then.sterling, paperCirculation: then.paper, difference: '0.00' }, `step ${step}: the reserve at ${then.at} is what it was then`)
    }
  }
  t.pass(`operations: ${JSON.stringify(counts)}`)
  for (const op of ['payment', 'issuance', 'redemption', 'reversal', 'note sale', 'note deposit', 'note buyback', 'note withdrawal', 'standing-order payments',
    'text payment', 'text retried', 'text wrong_pin', 'unsigned text']) {
    t.ok((counts[op] ?? 0) > 0, `the sequence had at least one ${op}`)
  }
  const csv = await ctx.call('GET', `/v1/currencies/${s.code}/reserve?format=csv`, { token: ctx.issuerToken })
  const last = csv.text.trim().split('\n').at(-1)!.split(',').at(-1)
  t.equal(last, sterling.toFixed(2), 'the reconciliation\'s last running total is the reserve')
  void c
})
