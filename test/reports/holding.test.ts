import assert from 'node:assert/strict'
import fc from 'fast-check'
import t from 'tap'
import { DAY_MS, splitPeriods } from '../../src/domain/periods.js'
import { catchUp } from '../../src/reports/aggregate.js'
import { circulationFigures, type PeriodFigures } from '../../src/reports/circulation.report.js'
import { clearGraphCache } from '../../src/reports/graph-cache.js'
import { holdingSumCounts, traceCounts, traceEndKey, traceHolding } from '../../src/reports/holding.js'
import { cached, clearReportCache, forget, keep } from '../../src/reports/report-cache.js'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import type { LegOut } from './ledger.js'
import { normFigures, recompute } from './recompute.js'

// The holding-period trace is kept incrementally: each catch-up replays from the last checkpoint before the
// earliest transfer it has not seen (reversals and backdated payments included). Over random ledgers with many
// transfers at the same instant, the figures kept that way equal a replay of the whole history from nothing, in
// batches of two transfers (so batches end inside an instant), and the plain recomputation (recompute.ts).

const JAN1 = Date.UTC(2026, 0, 1)
const SPAN_DAYS = 100

const Op = fc.record({
  type: fc.integer({ min: 0, max: 5 }),
  a: fc.nat(),
  b: fc.nat(),
  cents: fc.integer({ min: 1, max: 8_000 }),
  // midnights often, so that many transfers share an instant
  at: fc.oneof(fc.integer({ min: 0, max: SPAN_DAYS - 1 }).map(d => d * 86_400), fc.integer({ min: 0, max: SPAN_DAYS * 86_400 - 1 })),
  drain: fc.integer({ min: 0, max: 5 }).map(x => x === 0),
})
const Ledger = fc.record({
  members: fc.array(fc.constantFrom('BS6 5AB', 'BA1 1AA', 'BS3 1AA'), { minLength: 2, maxLength: 4 }),
  businesses: fc.array(fc.constantFrom('BS1 4DJ', 'BA2 3BB'), { minLength: 1, maxLength: 2 }),
  ops: fc.array(Op, { minLength: 10, maxLength: 40 }),
  split: fc.nat(),
  topUp: fc.array(fc.integer({ min: 1_000, max: 50_000 }), { minLength: 1, maxLength: 4 }),
})

const holdingOf = (fs: PeriodFigures[]) => fs.map(f => f.holding)
const normHolding = (fs: PeriodFigures[]) => fs.map(f => normFigures(f).holding)

/** Random moves on a report book, with balances kept so that no payment or reversal is refused: an issuance to
 *  parts[a], a payment parts[a] -> parts[b] of at most the payer's balance, a reversal of an earlier payment.
 *  Each says whether it posted anything (a payment to oneself, of nothing, or a reversal that cannot be, does not). */
function mover (book: Awaited<ReturnType<typeof reportBook>>, parts: string[]) {
  const bal = new Map(parts.map(a => [a, 0]))
  const payments: Array<{ legs: LegOut[], from: string, to: string, cents: number, reversed: boolean }> = []
  const amt = (c: number) => (c / 100).toFixed(2)
  return {
    payments,
    async issue (when: string, a: number, cents: number): Promise<boolean> {
      const to = parts[a % parts.length]
      await book.ledger.issue(when, to, amt(cents))
      bal.set(to, bal.get(to)! + cents)
      return true
    },
    async pay (when: string, a: number, b: number, want: number): Promise<boolean> {
      const from = parts[a % parts.length]
      const to = parts[b % parts.length]
      const cents = Math.min(want, bal.get(from)!)
      if (from === to || cents === 0) return false
      payments.push({ legs: await book.ledger.pay(when, from, to, amt(cents)), from, to, cents, reversed: false })
      bal.set(from, bal.get(from)! - cents)
      bal.set(to, bal.get(to)! + cents)
      return true
    },
    async reverse (when: string, a: number): Promise<boolean> {
      const p = payments[a % payments.length]
      if (p.reversed || bal.get(p.to)! < p.cents) return false
      await book.ledger.reverse(when, p.legs)
      p.reversed = true
      bal.set(p.to, bal.get(p.to)! - p.cents)
      bal.set(p.from, bal.get(p.from)! + p.cents)
      return true
    },
  }
}

t.test('the incrementally kept trace equals a full replay and the plain recomputation', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const pool = ctx.app.pool
  let run = 0
  let payments = 0
  let withPayments = 0
  let reversals = 0
  await fc.assert(fc.asyncProperty(Ledger, async (L) => {
    run++
    const code = `H${run}`
    const book = await reportBook(ctx, code)
    const members = await Promise.all(L.members.map(p => member(ctx, code, p)))
    const businesses = await Promise.all(L.businesses.map((p, i) => business(ctx, code, i % 2 === 0 ? 'food' : 'retail', p)))
    const move = mover(book, [...members, ...businesses].map(p => p.accountId))
    // everyone is issued money at the start (from empty accounts most payments were skipped, and many ledgers held
    // no payment at all, so the holding figures were compared at zero)
    const n = members.length + businesses.length
    for (let i = 0; i < n; i++) await move.issue(new Date(JAN1).toISOString(), i, L.topUp[i % L.topUp.length])
    const cut = L.split % (L.ops.length + 1)
    for (const ops of [L.ops.slice(0, cut), L.ops.slice(cut)].map(x => [...x].sort((p, q) => p.at - q.at))) {
      for (const op of ops) {
        const when = new Date(JAN1 + op.at * 1000).toISOString()
        let posted = true
        if (op.type <= 1) await move.issue(when, op.a, op.cents)
        else if (op.type <= 4) posted = await move.pay(when, op.a, op.b, op.cents)
        else if (move.payments.length > 0) posted = await move.reverse(when, op.a)
        if (!posted) continue
        if (op.drain) await catchUp(pool)
      }
      await catchUp(pool)
    }
    const periods = splitPeriods(JAN1, JAN1 + (SPAN_DAYS + 40) * DAY_MS, 'month')
    const kept = holdingOf(await circulationFigures(pool, book.currencyId, periods))
    payments += move.payments.length
    if (move.payments.length > 0) withPayments++
    reversals += move.payments.filter(p => p.reversed).length

    // everything traced again from nothing, two transfers a batch
    await pool.query('DELETE FROM circ_holding_day WHERE currency_id = $1', [book.currencyId])
    await pool.query('DELETE FROM circ_holding_checkpoint WHERE currency_id = $1', [book.currencyId])
    await pool.query(`INSERT INTO circ_holding_mark AS m (currency_id, at, version)
      SELECT currency_id, min(created_at), 1 FROM transfer WHERE currency_id = $1 GROUP BY 1
      ON CONFLICT (currency_id) DO UPDATE SET at = LEAST(m.at, excluded.at), version = m.version + 1`, [book.currencyId])
    await traceHolding(pool, 2)
    clearGraphCache()
    const fullFigures = await circulationFigures(pool, book.currencyId, periods)
    const full = holdingOf(fullFigures)
    assert.deepStrictEqual(kept, full, `${code}: the incrementally kept trace differs from a full replay`)
    assert.deepStrictEqual(normHolding(fullFigures), normHolding(await recompute(pool, book.currencyId, periods)), `${code}: differs from the plain recomputation`)
    // a replay keeps the state at the start of every month it passes through
    const months = (await pool.query<{ n: string }>(`SELECT count(*) AS n FROM circ_holding_checkpoint
      WHERE currency_id = $1 AND extract(day FROM day) = 1`, [book.currencyId])).rows[0].n
    const traced = (await pool.query<{ first: Date, last: Date }>(`SELECT min(created_at) AS first, max(created_at) AS last FROM transfer
      WHERE currency_id = $1`, [book.currencyId])).rows[0]
    if (traced.first != null) {
      const monthIndex = (d: Date) => d.getUTCFullYear() * 12 + d.getUTCMonth()
      assert.ok(Number(months) <= monthIndex(traced.last) - monthIndex(traced.first), `${code}: at most one checkpoint per month passed`)
    }
    return true
  }), {
    numRuns: Number(process.env.PROPERTY_RUNS ?? 8),
    // reported as found: a run costs about a second against the database, so shrinking would outlast tap's timeout
    // and hide the counterexample behind a bare "timeout!"
    endOnFailure: true,
    // found by fast-check: every transfer on the currency's first day, so the last traced day is the first; a
    // checkpoint of the empty state at its start was kept, which a replay from nothing does not write
    examples: [[JSON.parse('{"members":["BS6 5AB","BS6 5AB"],"businesses":["BS1 4DJ"],"ops":[{"type":2,"a":0,"b":0,"cents":1,"at":0,"drain":true},{"type":2,"a":0,"b":0,"cents":1,"at":0,"drain":true},{"type":2,"a":0,"b":0,"cents":1,"at":0,"drain":true},{"type":2,"a":0,"b":0,"cents":1,"at":0,"drain":true},{"type":2,"a":0,"b":0,"cents":1,"at":0,"drain":true},{"type":2,"a":0,"b":0,"cents":1,"at":0,"drain":true},{"type":2,"a":0,"b":0,"cents":1,"at":0,"drain":true},{"type":0,"a":0,"b":0,"cents":1,"at":0,"drain":true},{"type":0,"a":0,"b":0,"cents":1,"at":0,"drain":true},{"type":0,"a":0,"b":0,"cents":1,"at":0,"drain":true}],"split":0,"topUp":[1000]}')]],
  })
  t.pass(`${run} random ledgers agreed`)
  // the generator's own check: ledgers without payments leave the holding figures compared at zero. Counted by
  // ledger, not as an average (a bound of 3 payments a ledger failed once at 22 in 8: the fixed example holds none)
  t.ok(withPayments >= run / 2, `most ledgers hold payments (${withPayments} of ${run}, ${payments} payments)`)
  t.ok(reversals >= run / 2, `payments were reversed (${reversals} in ${run} ledgers)`)
})

// The drains leave one mark per currency (circ_holding_mark: the earliest instant their transfers change) and
// the trace takes it. A payment folded in by a drain that commits after the trace's snapshot was taken is not in
// that snapshot: its mark must survive the trace, and the next trace must count it.
t.test('a drain that commits while the trace replays leaves its mark for the next trace', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const pool = ctx.app.pool
  const book = await reportBook(ctx, 'HRACE')
  const m = await member(ctx, 'HRACE', 'BS6 5AB')
  const b = await business(ctx, 'HRACE', 'food', 'BS1 4DJ')
  const day = (h: number) => new Date(JAN1 + 10 * DAY_MS + h * 3_600_000).toISOString()
  await book.ledger.issue(day(0), m.accountId, '100.00')
  await book.ledger.pay(day(1), m.accountId, b.accountId, '10.00')
  await catchUp(pool)
  t.same((await pool.query('SELECT * FROM circ_holding_mark')).rows, [], 'a catch-up takes the mark its drain left')

  // a payment, drained: the mark the next trace starts from
  await book.ledger.pay(day(2), m.accountId, b.accountId, '20.00')
  await pool.query('SELECT circ_drain(1000)')
  // hold the trace inside its replay (after its snapshot): its rewrite of the day waits for this lock
  const blocker = await pool.connect()
  await blocker.query('BEGIN')
  await blocker.query('SELECT 1 FROM circ_holding_day WHERE currency_id = $1 FOR UPDATE', [book.currencyId])
  const tracing = traceHolding(pool)
  for (let i = 0; i < 200; i++) {
    const waiting = await pool.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM circ_holding_day%'`)
    if (waiting.rows.length > 0) break
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  // meanwhile another payment commits and a drain folds it in: the trace's snapshot holds neither
  await book.ledger.pay(day(3), m.accountId, b.accountId, '30.00')
  t.equal((await pool.query<{ n: number }>('SELECT circ_drain(1000) AS n')).rows[0].n, 1, 'the drain folded the late payment in')
  const moved = (await pool.query<{ version: string }>('SELECT version::text FROM circ_holding_mark WHERE currency_id = $1', [book.currencyId])).rows
  t.same(moved, [{ version: '2' }], 'the late drain moved the mark')
  await blocker.query('ROLLBACK')
  blocker.release()
  t.equal(await tracing, 1, 'the trace replayed the currency')
  t.same((await pool.query<{ version: string }>('SELECT version::text FROM circ_holding_mark WHERE currency_id = $1', [book.currencyId])).rows,
    [{ version: '2' }], 'the mark moved after the snapshot survives the trace')

  const periods = splitPeriods(JAN1, JAN1 + 31 * DAY_MS, 'month')
  const before = holdingOf(await circulationFigures(pool, book.currencyId, periods))
  t.equal(before[1].all.count, 2, 'the first trace saw the payments its snapshot held, not the late one')
  t.equal(await traceHolding(pool), 1, 'the next trace takes the mark')
  t.same((await pool.query('SELECT * FROM circ_holding_mark')).rows, [], 'and removes it')
  clearGraphCache()
  const after = await circulationFigures(pool, book.currencyId, periods)
  t.equal(after[1].holding.all.count, 3, 'the late payment is traced')
  t.same(normHolding(after), normHolding(await recompute(pool, book.currencyId, periods)), 'the figures equal the plain recomputation')
})

// A replay whose mark falls after the end of what this process last traced continues from the trace's state at
// that end, kept in memory (TraceEnd in holding.ts), and reads only the new transfers. Over random rounds of
// payments (forward in time; at the very instant last traced; backdated before it, as a transfer that commits out
// of order; reversals), each followed by a drain and a trace, a trace that runs before its transfers are drained,
// a fresh instance (an empty report cache), or an instance whose memory is stale (another traced in between), the
// rows and checkpoints written equal a replay of the same ledger from nothing.
const rowsOf = async (pool: import('pg').Pool, currencyId: string) => ({
  days: (await pool.query(`SELECT day::text AS day, figures, dormancy FROM circ_holding_day WHERE currency_id = $1 ORDER BY day`, [currencyId])).rows,
  checkpoints: (await pool.query(`SELECT day::text AS day, state FROM circ_holding_checkpoint WHERE currency_id = $1 ORDER BY day`, [currencyId])).rows,
})

async function fromNothing (pool: import('pg').Pool, currencyId: string): Promise<Awaited<ReturnType<typeof rowsOf>>> {
  await pool.query('DELETE FROM circ_holding_day WHERE currency_id = $1', [currencyId])
  await pool.query('DELETE FROM circ_holding_checkpoint WHERE currency_id = $1', [currencyId])
  await pool.query(`INSERT INTO circ_holding_mark AS m (currency_id, at, version)
    SELECT currency_id, min(created_at), 1 FROM transfer WHERE currency_id = $1 GROUP BY 1
    ON CONFLICT (currency_id) DO UPDATE SET at = LEAST(m.at, excluded.at), version = m.version + 1`, [currencyId])
  forget(traceEndKey(currencyId))
  await traceHolding(pool, 2)
  return await rowsOf(pool, currencyId)
}

const Move = fc.record({
  // 0-4 a payment, 5 an issuance, 6 a reversal
  type: fc.integer({ min: 0, max: 6 }),
  a: fc.nat(),
  b: fc.nat(),
  cents: fc.integer({ min: 1, max: 5_000 }),
  // when, from the latest transfer posted so far: the same instant, seconds or days later, or before it
  when: fc.oneof(
    { weight: 1, arbitrary: fc.constant(0) },
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 120_000 }) },
    { weight: 3, arbitrary: fc.integer({ min: 3_600_000, max: 4 * 86_400_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: -40 * 86_400_000, max: -1 }) }
  ),
})
const Round = fc.record({
  moves: fc.array(Move, { minLength: 1, maxLength: 4 }),
  then: fc.constantFrom('trace', 'trace', 'trace', 'undrained', 'instance', 'stale'),
  check: fc.integer({ min: 0, max: 3 }).map(x => x === 0),
})

t.test('the trace continued from its end in memory writes the same rows as a replay from nothing', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const pool = ctx.app.pool
  let run = 0
  let paid = 0
  let reversed = 0
  const counts0 = { ...traceCounts }
  await fc.assert(fc.asyncProperty(fc.array(Round, { minLength: 4, maxLength: 14 }), fc.constantFrom('UTC', 'Pacific/Auckland'), async (rounds, zone) => {
    run++
    const code = `HC${run}`
    const book = await reportBook(ctx, code)
    await pool.query('UPDATE currency SET time_zone = $2 WHERE id = $1', [book.currencyId, zone])
    const parts = [...await Promise.all(['BS6 5AB', 'BA1 1AA', 'BS3 1AA'].map(p => member(ctx, code, p))),
      ...await Promise.all(['BS1 4DJ', 'BA2 3BB'].map((p, i) => business(ctx, code, i === 0 ? 'food' : 'retail', p)))].map(p => p.accountId)
    const move = mover(book, parts)
    // late in a month, so that rounds cross into the next
    let latest = JAN1 + 24 * DAY_MS
    // everyone is issued money first (at the earliest instant a move may take), so that the payments below go through
    for (let i = 0; i < parts.length; i++) await move.issue(new Date(JAN1).toISOString(), i, 20_000)
    const trace = async () => { await pool.query('SELECT circ_drain(1000)'); await traceHolding(pool, 3) }
    for (const [k, round] of rounds.entries()) {
      for (const mv of round.moves) {
        const at = Math.max(JAN1, latest + mv.when)
        const when = new Date(at).toISOString()
        // (an issuance also where a reversal has no payment to reverse; before, any move before the first payment
        // was an issuance, and so was every move: no payment or reversal was ever posted)
        const posted = mv.type === 5 || (mv.type === 6 && move.payments.length === 0) ? await move.issue(when, mv.a, mv.cents)
          : mv.type < 5 ? await move.pay(when, mv.a, mv.b, mv.cents) : await move.reverse(when, mv.a)
        if (!posted) continue
        latest = Math.max(latest, at)
      }
      if (round.then === 'trace') {
        await trace()
      } else if (round.then === 'undrained') {
        // the trace runs before a drain has folded the new transfers in: it may see them, no mark says so
        await traceHolding(pool, 3)
      } else if (round.then === 'instance') {
        // another instance, with nothing in memory, takes the next trace
        clearReportCache()
        await trace()
      } else {
        // another instance traces; then this one, its memory now stale, traces again after the next moves
        const mine = cached<unknown>(traceEndKey(book.currencyId))
        clearReportCache()
        await trace()
        clearReportCache()
        if (mine != null) keep(traceEndKey(book.currencyId), mine, 1)
      }
      if (round.check || k === rounds.length - 1) {
        await trace()
        const kept = await rowsOf(pool, book.currencyId)
        assert.deepStrictEqual(kept, await fromNothing(pool, book.currencyId), `${code} (${zone}), round ${k}: the kept trace differs from a replay from nothing`)
      }
    }
    paid += move.payments.length
    reversed += move.payments.filter(p => p.reversed).length
    return true
  }), {
    numRuns: Number(process.env.PROPERTY_RUNS ?? 10),
    // reported as found: a run costs about a second against the database, so shrinking would outlast tap's timeout
    // and hide the counterexample behind a bare "timeout!"
    endOnFailure: true,
    // found by fast-check: the first trace ends on a month's first day, whose start (the empty state) was kept as
    // a checkpoint and then left as if it were a month start passed (its moves were issuances, as every move was
    // then: type 5 now)
    examples: [[JSON.parse('[{"moves":[{"type":5,"a":0,"b":0,"cents":1,"when":-1987200001}],"then":"trace","check":true},{"moves":[{"type":5,"a":0,"b":0,"cents":1,"when":3600000}],"then":"trace","check":true},{"moves":[{"type":5,"a":0,"b":0,"cents":1,"when":3600000}],"then":"trace","check":true},{"moves":[{"type":5,"a":0,"b":0,"cents":1,"when":3600000}],"then":"trace","check":true},{"moves":[{"type":5,"a":0,"b":0,"cents":1,"when":1}],"then":"trace","check":true}]'), 'UTC']],
  })
  // the generator's own check: the rounds hold payments and reversals, not only issuances
  t.ok(paid >= run * 3, `the rounds hold payments (${paid} in ${run} runs)`)
  t.ok(reversed > 0, `and reversals (${reversed})`)
  t.ok(traceCounts.continued > counts0.continued, `${traceCounts.continued - counts0.continued} traces continued from their end in memory`)
  t.ok(traceCounts.fromCheckpoint > counts0.fromCheckpoint, `${traceCounts.fromCheckpoint - counts0.fromCheckpoint} replayed from a checkpoint`)
})

t.test('which traces continue from the end in memory and which replay from a checkpoint', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const pool = ctx.app.pool
  const book = await reportBook(ctx, 'HPATH')
  const m = await member(ctx, 'HPATH', 'BS6 5AB')
  const b = await business(ctx, 'HPATH', 'food', 'BS1 4DJ')
  const at = (h: number) => new Date(JAN1 + 10 * DAY_MS + h * 3_600_000).toISOString()
  const path = async () => {
    const before = { ...traceCounts }
    await pool.query('SELECT circ_drain(1000)')
    await traceHolding(pool)
    return traceCounts.continued > before.continued ? 'continued' : traceCounts.fromCheckpoint > before.fromCheckpoint ? 'checkpoint' : 'none'
  }
  await book.ledger.issue(at(0), m.accountId, '100.00')
  await book.ledger.pay(at(1), m.accountId, b.accountId, '1.00')
  t.equal(await path(), 'checkpoint', 'the first trace has nothing in memory')
  await book.ledger.pay(at(2), m.accountId, b.accountId, '1.00')
  t.equal(await path(), 'continued', 'a payment after the traced end: continued')
  await book.ledger.pay(at(30), m.accountId, b.accountId, '1.00')
  t.equal(await path(), 'continued', 'on a later day too')
  await book.ledger.pay(at(29), m.accountId, b.accountId, '1.00')
  t.equal(await path(), 'checkpoint', 'a payment before the traced end (committed out of order): from the checkpoint')
  await book.ledger.pay(at(29), m.accountId, b.accountId, '1.00')
  t.equal(await path(), 'checkpoint', 'at the very instant last traced: from the checkpoint')
  await book.ledger.pay(at(31), m.accountId, b.accountId, '1.00')
  clearReportCache()
  t.equal(await path(), 'checkpoint', 'another instance, with nothing in memory: from the checkpoint')
  const mine = cached<unknown>(traceEndKey(book.currencyId))
  await book.ledger.pay(at(32), m.accountId, b.accountId, '1.00')
  clearReportCache()
  t.equal(await path(), 'checkpoint', 'and again, after yet another instance traced')
  await book.ledger.pay(at(33), m.accountId, b.accountId, '1.00')
  keep(traceEndKey(book.currencyId), mine, 1)
  t.equal(await path(), 'checkpoint', 'memory that another instance has overtaken is not used')
  await book.ledger.pay(at(34), m.accountId, b.accountId, '1.00')
  t.equal(await path(), 'continued', 'the memory of the replay that followed is')
  // an account opened since: read when first met
  const m2 = await member(ctx, 'HPATH', 'BA1 1AA')
  await book.ledger.pay(at(35), m.accountId, m2.accountId, '2.00')
  await book.ledger.pay(at(36), m2.accountId, b.accountId, '1.00')
  t.equal(await path(), 'continued', 'payments to and from a new account: continued')
  const periods = splitPeriods(JAN1, JAN1 + 31 * DAY_MS, 'month')
  clearGraphCache()
  t.same(normHolding(await circulationFigures(pool, book.currencyId, periods)), normHolding(await recompute(pool, book.currencyId, periods)),
    'the figures equal the plain recomputation')
})

// Found by the property above once it posted reversals: a replay after reversals left checkpoints that a replay
// from nothing does not write. The figures were right (a checkpoint holds the state at its day's start either way);
// the checkpoints kept differed, and they decide where the next replay starts.
t.test('after the last days are reversed, a replay keeps the checkpoints a replay from nothing keeps', async (t) => {
  const { pool, book, m, b } = await memberAndBusiness(t, 'HREV')
  const day = (d: number) => new Date(JAN1 + d * DAY_MS + 12 * 3_600_000).toISOString()
  const trace = async () => { await pool.query('SELECT circ_drain(1000)'); await traceHolding(pool) }
  const days = (rows: Awaited<ReturnType<typeof rowsOf>>) => rows.checkpoints.map(c => c.day as string)
  const checkpoints = async () => days(await rowsOf(pool, book.currencyId))
  const same = async (what: string) => {
    const kept = await rowsOf(pool, book.currencyId)
    t.same(kept, await fromNothing(pool, book.currencyId), what)
    return days(kept)
  }
  await book.ledger.issue(day(4), m.accountId, '100.00')
  await book.ledger.pay(day(24), m.accountId, b.accountId, '1.00')
  await trace()
  const march = await book.ledger.pay(day(68), m.accountId, b.accountId, '2.00')
  await trace()
  t.same(await checkpoints(), ['2026-02-01', '2026-03-01', '2026-03-10'], 'month starts, and the start of the last traced day')
  // the last traced day's only payment reversed, two days later
  await book.ledger.reverse(day(70), march)
  await trace()
  t.same(await same('the last day reversed: as from nothing'), ['2026-01-25'], 'only the start of the day now last')
  // a payment in February and one in April; then February's reversed: the replay starts from February's first day
  const february = await book.ledger.pay(day(40), m.accountId, b.accountId, '3.00')
  await book.ledger.pay(day(99), m.accountId, b.accountId, '4.00')
  await trace()
  await book.ledger.reverse(day(100), february)
  await trace()
  t.same(await same('a day between reversed: as from nothing'), ['2026-02-01', '2026-03-01', '2026-04-01', '2026-04-10'],
    'the month starts between the checkpoint and the next traced day, and the start of the last')
  // everything reversed but the issuance: one day left, and no state before it
  await book.ledger.reverse(day(101), (await book.ledger.pay(day(101), m.accountId, b.accountId, '5.00')))
  await trace()
  t.same(await same('a payment and its reversal on a new day: as from nothing'), ['2026-02-01', '2026-03-01', '2026-04-01', '2026-04-10'], 'nothing new')
})

/** An app of its own with a report book `code`, one member and one business. */
async function memberAndBusiness (t: Parameters<typeof buildTestApp>[0], code: string) {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx, code)
  return { pool: ctx.app.pool, book, m: await member(ctx, code, 'BS6 5AB'), b: await business(ctx, code, 'food', 'BS1 4DJ') }
}

// A period's sum of days and its payment figures are kept under the digest of its days (the whole range's too,
// summed from its periods): a report after a new payment must give what a report without any kept sums gives.
t.test('kept holding sums give what nothing kept gives, after each new payment', async (t) => {
  const { pool, book, m, b } = await memberAndBusiness(t, 'HSUM')
  const periods = splitPeriods(JAN1, JAN1 + 90 * DAY_MS, 'month')
  await book.ledger.issue(new Date(JAN1 + DAY_MS).toISOString(), m.accountId, '500.00')
  let changed = 0
  let before = holdingOf(await circulationFigures(pool, book.currencyId, periods))
  for (const [i, day] of [3, 40, 41, 70, 71, 72].entries()) {
    await book.ledger.pay(new Date(JAN1 + day * DAY_MS + i * 3_600_000).toISOString(), m.accountId, b.accountId, `${10 + i}.00`)
    if (i % 2 === 0) await book.ledger.pay(new Date(JAN1 + (day + 1) * DAY_MS).toISOString(), b.accountId, m.accountId, '3.00')
    await catchUp(pool)
    const kept = holdingOf(await circulationFigures(pool, book.currencyId, periods))
    t.same(holdingOf(await circulationFigures(pool, book.currencyId, periods)), kept, `payment ${i}: a warm report gives the same`)
    clearGraphCache()
    t.same(holdingOf(await circulationFigures(pool, book.currencyId, periods)), kept, `payment ${i}: as with nothing kept`)
    if (JSON.stringify(kept[0]) !== JSON.stringify(before[0])) changed++
    before = kept
  }
  t.equal(changed, 6, 'the whole range moved with every payment')
})

// A report of one period passes that period twice (as the whole range and as itself). Its kept sum is one entry,
// and it was changed once per copy: the new days went into it twice, and the period's own figures counted the
// latest day's payments twice after new payments (found by property.test.ts once its ledgers held payments).
t.test('a report of one period counts its new days once, in the range and in the period', async (t) => {
  const { pool, book, m, b } = await memberAndBusiness(t, 'HONE')
  const periods = splitPeriods(JAN1, JAN1 + 31 * DAY_MS, 'month')
  t.equal(periods.length, 1, 'one period')
  const at = (day: number, h: number) => new Date(JAN1 + day * DAY_MS + h * 3_600_000).toISOString()
  await book.ledger.issue(at(1, 0), m.accountId, '500.00')
  await catchUp(pool)
  await circulationFigures(pool, book.currencyId, periods)
  // the same latest day again and again (its kept sum changed by that day), then a new day
  for (const [i, [day, h]] of [[3, 1], [3, 2], [3, 5], [4, 1], [4, 2]].entries()) {
    await book.ledger.pay(at(day, h), m.accountId, b.accountId, `${5 + i}.00`)
    await catchUp(pool)
    const kept = await circulationFigures(pool, book.currencyId, periods)
    t.same(kept[1].holding, kept[0].holding, `payment ${i}: the period and the range agree`)
    t.same(normHolding(kept), normHolding(await recompute(pool, book.currencyId, periods)), `payment ${i}: as recomputed from the ledger`)
    t.equal(kept[1].holding.all.count, i + 1, `payment ${i}: every payment counted once`)
  }
})

// After new payments, a kept sum is changed rather than summed again: its base (every day but the latest) kept as
// it is while only the latest day changes, and the day that is no longer the latest added to it when a new day
// comes. Each report after a step is compared with the same report with nothing kept, figures and sums alike.
t.test('a kept sum changed by new days equals the sum from nothing', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const pool = ctx.app.pool
  const book = await reportBook(ctx, 'HINC')
  const ms = await Promise.all(['BS6 5AB', 'BA1 1AA', 'BS3 1AA'].map(p => member(ctx, 'HINC', p)))
  const bs = await Promise.all(['BS1 4DJ', 'BA2 3BB'].map((p, i) => business(ctx, 'HINC', i === 0 ? 'food' : 'retail', p)))
  const parts = [...ms, ...bs].map(p => p.accountId)
  const periods = splitPeriods(JAN1, JAN1 + 90 * DAY_MS, 'month')
  const at = (day: number, h: number) => new Date(JAN1 + day * DAY_MS + h * 3_600_000).toISOString()
  for (const [i, a] of parts.entries()) await book.ledger.issue(at(1, i), a, '400.00')
  // a sum as one sorted list of every entry (base and latest day together), to compare kept and fresh sums
  const flat = (s: any) => {
    const out = new Map<string, bigint>()
    for (const d of [s.base, s.last?.part].filter(x => x != null)) {
      for (const k of ['m', 'b']) {
        for (const f of ['w', 'wh', 'n']) out.set(`${k}.${f}`, (out.get(`${k}.${f}`) ?? 0n) + BigInt(d[k][f]))
        for (const [h, w] of d[k].hist) out.set(`${k}.h${h}`, (out.get(`${k}.h${h}`) ?? 0n) + w)
      }
      for (const side of ['leave', 'enter']) for (const [id, [p, r]] of d[side]) { out.set(`${side}.${id}.p`, (out.get(`${side}.${id}.p`) ?? 0n) + p); out.set(`${side}.${id}.r`, (out.get(`${side}.${id}.r`) ?? 0n) + r) }
      for (const [id, v] of d.issue) out.set(`issue.${id}`, (out.get(`issue.${id}`) ?? 0n) + v)
    }
    return [...out].sort((x, y) => x[0] < y[0] ? -1 : 1).map(([k, v]) => `${k}=${v}`)
  }
  const sums = () => [{ start: JAN1, end: JAN1 + 90 * DAY_MS }, ...periods].map(p => flat(cached(`holding-sum|${book.currencyId}|${p.start}|${p.end}`)))
  let pays = 0
  const pay = async (when: string, a: number, b: number, amount: string) => {
    await book.ledger.pay(when, parts[a % parts.length], parts[b % parts.length], amount)
    pays++
  }
  // each step's moves: the same day again and again, then the next days, a month's end, a backdated one
  const steps: Array<Array<[number, number, number, number, string]>> = [
    [[20, 1, 0, 3, '12.00']], [[20, 3, 1, 3, '7.50'], [20, 4, 3, 0, '2.25']], [[20, 6, 2, 4, '30.00']],
    [[21, 2, 3, 1, '4.00']], [[21, 5, 0, 1, '9.99']], [[23, 1, 4, 2, '15.00'], [23, 2, 2, 0, '1.00']],
    [[31, 23, 1, 3, '5.00']], [[32, 1, 3, 4, '6.00']], [[32, 9, 0, 3, '11.00']],
    [[10, 2, 2, 3, '3.00']], [[33, 0, 4, 1, '8.00']], [[61, 5, 1, 0, '20.00']], [[61, 6, 0, 2, '2.00']],
  ]
  const counts0 = { ...holdingSumCounts }
  const sumKeys = [{ start: JAN1, end: JAN1 + 90 * DAY_MS }, ...periods].map(p => `holding-sum|${book.currencyId}|${p.start}|${p.end}`)
  let shared = 0
  let medians = 0
  for (const [k, step] of steps.entries()) {
    for (const [day, h, a, b, amount] of step) await pay(at(day, h), a, b, amount)
    await catchUp(pool)
    const before = sumKeys.map(key => cached<any>(key))
    const kept = holdingOf(await circulationFigures(pool, book.currencyId, periods))
    const after = sumKeys.map(key => cached<any>(key))
    shared += after.filter((s, j) => before[j] != null && s !== before[j] && s.base === before[j].base).length
    medians += kept.filter(f => f.all.medianHours != null).length
    const keptSums = sums()
    const mine = [...sumKeys, traceEndKey(book.currencyId)].map(key => [key, cached<unknown>(key)] as const)
    clearReportCache()
    const fresh = holdingOf(await circulationFigures(pool, book.currencyId, periods))
    assert.deepStrictEqual(kept, fresh, `step ${k}: the figures from kept sums differ from those with nothing kept`)
    assert.deepStrictEqual(keptSums, sums(), `step ${k}: a kept sum differs from the sum of its days from nothing`)
    // mostly back to what this process kept, so that the kept sums are changed step after step; now and then the
    // fresh sums are the ones changed
    if (k % 4 === 3) continue
    clearReportCache()
    for (const [key, value] of mine) if (value != null) keep(key, value, 1)
  }
  t.equal(pays, steps.flat().length, 'every payment posted')
  t.ok(holdingSumCounts.changed - counts0.changed >= steps.length, `${holdingSumCounts.changed - counts0.changed} kept sums changed by their new days`)
  t.ok(shared > 0, `${shared} times a changed sum kept its base as it was`)
  t.ok(medians > steps.length, 'medians to compare')
})
