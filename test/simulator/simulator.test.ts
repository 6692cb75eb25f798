import pg from 'pg'
import t from 'tap'
import { issuance, payment } from '../../src/domain/movements.js'
import { postMovements } from '../../src/ledger/post.js'
import { Money } from '../../src/domain/money.js'
import { DEFAULT_PARAMETERS, withOverrides, type SimulationParameters } from '../../src/simulator/parameters.js'
import { Prng } from '../../src/simulator/prng.js'
import { generate, prepareSimulation, simulatorPool } from '../../src/simulator/run.js'
import { createTestDb } from '../../support/postgres.js'
import { assertInvariants, invariantViolations } from '../../support/invariants.js'

const END = new Date('2026-06-01T00:00:00Z')

function small (code: string, over: Record<string, string> = {}): SimulationParameters {
  const p = withOverrides(DEFAULT_PARAMETERS, over)
  p.scale = { members: 60, businesses: 20, days: 75 }
  p.currency.code = code
  return p
}

const fingerprint = (events: ReturnType<typeof generate>['events']) =>
  events.map(e => `${e.at.toISOString()} ${e.kind} ${e.purpose} ${e.from} ${e.to} ${e.amount.toFixed()} ${e.fee.toFixed()} ${e.channel}`)

t.test('the random generator is a pure function of its seed', async (t) => {
  const a = new Prng(42); const b = new Prng(42); const c = new Prng(43)
  const xs = Array.from({ length: 100 }, () => a.u32())
  t.same(Array.from({ length: 100 }, () => b.u32()), xs, 'same seed, same stream')
  t.not(Array.from({ length: 100 }, () => c.u32()).join(), xs.join(), 'another seed, another stream')
})

t.test('the simulation is deterministic for a seed', async (t) => {
  const one = generate({ seed: 7, end: END, params: small('SIMA') })
  const two = generate({ seed: 7, end: END, params: small('SIMA') })
  const other = generate({ seed: 8, end: END, params: small('SIMA') })
  t.ok(one.events.length > 300, `a small economy still trades (${one.events.length} movements)`)
  t.same(fingerprint(two.events), fingerprint(one.events), 'same seed: the same movements, to the penny and the second')
  t.same(two.summary, one.summary)
  t.not(fingerprint(other.events).join('\n'), fingerprint(one.events).join('\n'), 'another seed: another economy')
  t.same(one.economy.agents.map(a => a.name), two.economy.agents.map(a => a.name), 'same participants')
})

t.test('simulated time stays inside the period, in order', async (t) => {
  const { events, economy } = generate({ seed: 3, end: END, params: small('SIMT') })
  const times = events.map(e => e.at.getTime())
  t.ok(times.every((x, i) => i === 0 || times[i - 1] <= x), 'movements come in time order')
  t.ok(times[0] >= economy.start.getTime() && times.at(-1)! < END.getTime(), 'all within [start, end)')
  const purposes = new Set(events.map(e => e.purpose))
  for (const p of ['top-up', 'purchase', 'redemption']) t.ok(purposes.has(p as never), `the economy has ${p} movements`)
})

t.test('at full scale the economy matches the published Bristol figures', async (t) => {
  const { summary } = generate({ seed: 1, end: END })
  t.equal(summary.members, 1400)
  t.equal(summary.businesses, 620)
  t.same(Object.keys(summary.byPurpose).sort(), ['council', 'peer', 'purchase', 'rates', 'redemption', 'supplier', 'top-up', 'wages'],
    'members top up, shop and pay each other; businesses buy from each other, pay wages and rates, redeem; the council buys')
  t.ok(summary.payments >= 20_000 && summary.payments < 100_000, `tens of thousands of payments a year (${summary.payments})`)
  const peak = new Money(summary.peakSupply)
  t.ok(peak.gte(800_000) && peak.lte(1_200_000), `peak circulation about 1 million (${summary.peakSupply})`)
})

t.test('what-if: a redemption fee of 0% makes businesses redeem more', async (t) => {
  const base = generate({ seed: 5, end: END, params: small('W1') }).summary
  const free = generate({ seed: 5, end: END, params: small('W2', { 'currency.redemptionFee': '0' }) }).summary
  t.ok(new Money(free.redeemed).gt(base.redeemed), `redeemed ${free.redeemed} at 0% > ${base.redeemed} at 3%`)
  t.throws(() => withOverrides(DEFAULT_PARAMETERS, { 'currency.redemptionFees': '0' }), /unknown parameter/)
  t.throws(() => withOverrides(DEFAULT_PARAMETERS, { 'members.topUpMedian': 'lots' }), /must be a number/)
})

t.test('a simulation posted through the write path keeps every invariant, reproducibly', async (t) => {
  const db = await createTestDb()
  const pool = simulatorPool(db.url)
  pool.on('error', () => {}) // as in the clock test below: the forced drop may meet a connection still closing
  t.teardown(async () => { await pool.end(); await db.drop() })

  const load = async (code: string) => {
    const sim = await prepareSimulation(pool, { seed: 11, end: END, params: small(code) })
    const r = await sim.post()
    t.same(r, { posted: sim.total, complete: true }, `${code}: every movement posted`)
    return sim
  }
  const a = await load('SIMA')
  const b = await load('SIMB')
  await t.rejects(prepareSimulation(pool, { seed: 11, end: END, params: small('SIMA') }), /already exists/, 'a taken code is refused')

  assertInvariants(t, await invariantViolations(pool), 'after two simulations')
  const unordered = await pool.query(`SELECT count(*)::int AS n FROM (
      SELECT created_at, lag(created_at) OVER (PARTITION BY account_id ORDER BY id) AS prev FROM entry) e
    WHERE prev > created_at`)
  t.equal(unordered.rows[0].n, 0, 'every account\'s entries are in time order as well as posting order')

  // the same seed gave the same ledger: transfers compared by participants' positions, amounts and times
  const ledger = async (currencyId: string) => (await pool.query(`
      SELECT t.kind, t.channel, t.amount::text, t.created_at, t.reference,
             fp.ord AS payer, tp.ord AS payee
        FROM transfer t
        LEFT JOIN (SELECT a.id, row_number() OVER (PARTITION BY p.currency_id ORDER BY p.created_at, p.name, p.postcode) AS ord
                     FROM account a JOIN participant p ON p.id = a.participant_id) fp ON fp.id = t.from_account_id
        LEFT JOIN (SELECT a.id, row_number() OVER (PARTITION BY p.currency_id ORDER BY p.created_at, p.name, p.postcode) AS ord
                     FROM account a JOIN participant p ON p.id = a.participant_id) tp ON tp.id = t.to_account_id
       WHERE t.currency_id = $1
       ORDER BY t.created_at, t.kind, t.amount, fp.ord NULLS FIRST, tp.ord NULLS FIRST`, [currencyId])).rows
  const la = await ledger(a.currency.id)
  const lb = await ledger(b.currency.id)
  t.ok(la.length > 600, `${la.length} transfers`)
  t.same(lb, la, 'two runs with one seed wrote the same transfers')
  // wages and business rates went out by standing order, paid by the scheduler's code at simulated mornings
  const so = a.summary.standingOrders
  t.ok(so.wages > 0 && so.rates > 0 && so.paid > 0, `standing orders: ${JSON.stringify(so)}`)
  t.same(b.summary.standingOrders, so, 'the same seed made the same orders')
  const orders = await pool.query(`SELECT reference LIKE 'wages%' AS wages, count(*)::int AS n FROM standing_order
    WHERE currency_id = $1 AND created_by = 'simulator' GROUP BY 1 ORDER BY 1`, [a.currency.id])
  t.same(orders.rows, [{ wages: false, n: so.rates }, { wages: true, n: so.wages }], 'every order the economy made exists')
  const occ = await pool.query(`SELECT o.status, count(*)::int AS n, count(*) FILTER (WHERE t.kind = 'payment' AND t.channel = 'online'
      AND t.created_at = o.due_on + interval '6 hours' AND t.from_account_id = s.from_account_id AND t.amount = s.amount)::int AS matching
    FROM standing_order_occurrence o JOIN standing_order s ON s.id = o.standing_order_id LEFT JOIN transfer t ON t.id = o.transfer_id
    WHERE s.currency_id = $1 GROUP BY 1 ORDER BY 1`, [a.currency.id])
  const byStatus = Object.fromEntries(occ.rows.map(r => [r.status, r.n]))
  t.equal(byStatus.paid, so.paid, 'each occurrence the economy paid is paid')
  t.equal(occ.rows.find(r => r.status === 'paid')?.matching, so.paid, 'by its payment, at 06:00 on its due date, from the order\'s account')
  t.equal(byStatus.failed ?? 0, so.failed, 'refused twice: failed')
  const paidRows = await pool.query(`SELECT count(*)::int AS n FROM transfer WHERE currency_id = $1 AND parent_id IS NULL
    AND metadata ? 'standingOrder'`, [a.currency.id])
  t.equal(paidRows.rows[0].n, so.paid, 'no other payment claims an order')
  t.equal(a.summary.byPurpose.wages + (a.summary.byPurpose.rates ?? 0), so.paid, 'the wages and rates of the year are the orders\' payments')
  const sims = await pool.query(`SELECT count(*)::int AS n, min(created_at) AS first, max(created_at) AS last
    FROM transfer WHERE currency_id = $1`, [a.currency.id])
  t.ok(sims.rows[0].last < END && sims.rows[0].first >= new Date(END.getTime() - 75 * 86_400_000), 'transfers carry simulated times')
})

t.test('the ledger clock serves the seeding tool only, never in the future, never behind the latest transfer', async (t) => {
  const db = await createTestDb()
  const sim = simulatorPool(db.url)
  const api = new pg.Pool({ connectionString: db.url, max: 1, application_name: 'circulate' })
  // end() resolves before its connections have closed, so the database's forced drop can reach one still closing;
  // the pool then reports the termination as an error, which here is only the teardown's (a fresh-clone run met it)
  for (const p of [sim, api]) p.on('error', () => {})
  t.teardown(async () => { await sim.end(); await api.end(); await db.drop() })
  const prepared = await prepareSimulation(sim, { seed: 2, end: END, params: small('CLK') })
  const currencyId = prepared.currency.id
  const [m1, m2] = prepared.participants.filter(p => p.kind === 'member')
  const issuanceAccount = (await sim.query(`SELECT id FROM account WHERE currency_id = $1 AND system_kind = 'issuance'`, [currencyId])).rows[0].id as string
  const c = { id: currencyId, decimals: 2, fees: { text: new Money(0), app: new Money(0), online: new Money(0), api: new Money(0), till: new Money(0) }, redemptionFee: new Money(0), system: { issuance: issuanceAccount, fees: '', paper: '' } }
  const on = (m: ReturnType<typeof issuance>) => ({ ...m, scope: 'test', idempotencyKey: null, requestHash: '', createdBy: 'test', owner: null })
  const issue = (at: Date[] | null, pool: pg.Pool, n = 1) => postMovements(pool, currencyId,
    Array.from({ length: n }, () => on(issuance(c, { to: m1.accountId, amount: new Money('10.00'), sterlingReference: null }))), { at })

  const past = new Date('2026-01-10T12:00:00Z')
  const first = await issue([past], sim)
  const legs = first.results[0].ok ? first.results[0].legs : []
  t.equal(legs[0].createdAt, '2026-01-10T12:00:00.000Z', 'posted at the simulated time')
  t.equal(legs[0].id.replace('-', '').slice(0, 12), '019ba7c71200', 'its id carries the simulated time (UUIDv7)')
  const day = [new Date('2026-01-11T08:00:00Z'), new Date('2026-01-11T09:30:00Z'), new Date('2026-01-11T17:45:00Z')]
  const three = await issue(day, sim, 3)
  t.same(three.results.map(r => r.ok ? r.legs[0].createdAt : null), day.map(d => d.toISOString()), 'one call, each movement at its own time')
  await t.rejects(issue([new Date('2026-01-09T00:00:00Z')], sim), /before the currency's latest transfer/, 'the clock never goes back')
  await t.rejects(issue([day[2], day[0]], sim, 2), /must not go back within a call/, 'nor within one call')
  await t.rejects(issue([new Date(Date.now() + 3_600_000)], sim), /in the future/, 'never in the future')
  await t.rejects(issue([past], api), /tooling only/, 'the service\'s own sessions cannot set it')
  // nor can they use a clock set by hand: the posting call itself checks who set it
  const client = await api.connect()
  try {
    await client.query('BEGIN')
    await client.query(`SELECT set_config('circulate.ledger_clock', $1, true)`, [`${currencyId}|{"2026-01-12 00:00:00+00"}`])
    await t.rejects(postMovements(client, currencyId, [on(issuance(c, { to: m1.accountId, amount: new Money('1.00'), sterlingReference: null }))]), /tooling only/)
  } finally {
    await client.query('ROLLBACK')
    client.release()
  }

  // the setting lasts one call of one transaction: the next plain call on the same connection is back on now()
  const now = await postMovements(sim, currencyId, [on(payment(c, { from: m1.accountId, to: m2.accountId, amount: new Money('1.00'), channel: 'app' }))])
  const legsNow = now.results[0].ok ? now.results[0].legs : []
  t.ok(Math.abs(Date.parse(legsNow[0].createdAt) - Date.now()) < 60_000, 'a call without times is at now()')
  assertInvariants(t, await invariantViolations(sim), 'after clock tests')
})
