import t from 'tap'
import { DAY_MS, splitPeriods } from '../../src/domain/periods.js'
import { catchUp } from '../../src/reports/aggregate.js'
import { circulationFigures, periodFigures } from '../../src/reports/circulation.report.js'
import { clearGraphCache } from '../../src/reports/graph-cache.js'
import { readDrains } from '../../src/reports/tail-rows.js'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { normFigures, recompute } from './recompute.js'

// Today's rows are kept between reports and brought forward by the rows later drains wrote (src/reports/
// tail-rows.ts). The figures must equal a plain recomputation after each drain: when the drain added pairs and
// changed accounts, when it deleted a pair of today's (every payment on it reversed), and a report in a snapshot
// older than what is kept must see what its snapshot holds, not the kept rows.

t.test('today brought forward from the kept rows equals a plain recomputation, through a deleted pair and an older snapshot', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  clearGraphCache()
  const book = await reportBook(ctx, 'TRW')
  const L = book.ledger
  const pool = ctx.app.pool
  const since = '2025-01-01T00:00:00Z'
  const [m1, m2] = await Promise.all(['BS1 1AA', 'BS6 2BB'].map(pc => member(ctx, 'TRW', pc, since)))
  const [b1, b2] = await Promise.all([business(ctx, 'TRW', 'food', 'BS1 3CC', since), business(ctx, 'TRW', 'retail', 'BS16 1DD', since)])
  // "today" is injected: a UTC day that has begun at least two hours ago, whatever the wall clock says
  const day = Math.floor((Date.now() - 2 * 3600_000) / DAY_MS) * DAY_MS
  const now = day + 23 * 3600_000
  const at = (minutes: number) => new Date(day + 3600_000 + minutes * 60_000).toISOString()
  const x = new Date(day)
  const from = Date.UTC(x.getUTCFullYear(), x.getUTCMonth() - 1, 1)
  const periods = splitPeriods(from, Date.UTC(x.getUTCFullYear(), x.getUTCMonth() + 1, 1), 'month')
  const check = async (what: string) => {
    await catchUp(pool)
    const fast = await circulationFigures(pool, book.currencyId, periods, pool, {}, now)
    t.same(fast.map(normFigures), (await recompute(pool, book.currencyId, periods)).map(normFigures), what)
    return fast
  }

  for (const p of [m1, m2, b1, b2]) await L.issue(new Date(day - 40 * DAY_MS).toISOString(), p.accountId, '200.00')
  await L.pay(new Date(day - 30 * DAY_MS).toISOString(), m1.accountId, b2.accountId, '9.00')
  // today: cycles m1 -> b1 -> m1 and m1 -> b1 -> b2 -> m1
  await L.pay(at(1), m1.accountId, b1.accountId, '20.00')
  const back = await L.pay(at(2), b1.accountId, m1.accountId, '6.00')
  await L.pay(at(3), b1.accountId, b2.accountId, '4.00')
  await L.pay(at(3), b2.accountId, m1.accountId, '2.00')
  const first = await check('after today\'s first payments (read whole)')
  t.not(first[0].cycle.value, '0.000000', 'today has volume on a cycle')

  // a new pair and more on a kept one: only the drain's rows are read
  await L.pay(at(4), m2.accountId, b2.accountId, '3.50')
  await L.pay(at(5), m1.accountId, b1.accountId, '1.25')
  const more = await check('after more payments today (brought forward)')

  // the pair b1 -> m1 loses its only payment: the drain deletes its row, which no changed row tells (a kept copy
  // of it would still count on the cycle, whose other accounts pay and receive as before)
  await L.reverse(at(6), back)
  const broken = await check('after the reversal of the only payment on a kept pair (deleted)')
  t.not(broken[0].cycle.value, more[0].cycle.value, 'the pair\'s volume is gone from the cycle figures')
  t.not(broken[0].cycle.value, '0.000000', 'and the cycle through b2 is still there')

  // a snapshot older than the kept rows: it must not be handed them
  const old = await pool.connect()
  try {
    await old.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const seen = await readDrains(old, book.currencyId)
    await L.pay(at(7), m2.accountId, b1.accountId, '2.00')
    await L.pay(at(8), b1.accountId, m2.accountId, '1.00')
    const newer = await check('after payments the older snapshot does not see')
    t.ok((await readDrains(pool, book.currencyId)).version > seen.version, 'a drain ran after the older snapshot began')
    const last = periods[periods.length - 1]
    const inOld = await periodFigures(old, book.currencyId, last, { now, drains: seen })
    const { open: _o, holding: _h, ...before } = broken[broken.length - 1]
    const norm = (f: typeof inOld) => normFigures(f as Parameters<typeof normFigures>[0])
    t.same(norm(inOld), norm(before), 'the older snapshot sees its own rows')
    t.not(inOld.count, newer[newer.length - 1].count, 'and not the newer payments')
    await old.query('COMMIT')
  } finally {
    old.release()
  }
  await check('read again after the older snapshot')

  // the next report is sent only what the drain since the last one changed
  await L.pay(at(9), m2.accountId, b2.accountId, '0.75')
  await catchUp(pool)
  const client = await pool.connect()
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const drains = await readDrains(client, book.currencyId)
    const since: string[] = []
    const spy = {
      query: async (text: string, values?: unknown[]) => {
        if (text.includes('r.seq > $3')) since.push(String(values?.[2]))
        return await client.query(text, values)
      },
    }
    await periodFigures(spy as unknown as typeof client, book.currencyId, periods[periods.length - 1], { now, drains })
    t.same(since, [String(drains.version - 1n), String(drains.version - 1n)], 'accounts and pairs since the last drain, not whole')
    await client.query('COMMIT')
  } finally {
    client.release()
  }
})

t.test('two currencies, drained apart and together, keep their own drain numbers', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  clearGraphCache()
  const pool = ctx.app.pool
  const day = Math.floor((Date.now() - 2 * 3600_000) / DAY_MS) * DAY_MS
  const now = day + 23 * 3600_000
  const at = (minutes: number) => new Date(day + 3600_000 + minutes * 60_000).toISOString()
  const x = new Date(day)
  const periods = splitPeriods(Date.UTC(x.getUTCFullYear(), x.getUTCMonth(), 1), Date.UTC(x.getUTCFullYear(), x.getUTCMonth() + 1, 1), 'month')
  const books = await Promise.all(['TRA', 'TRB'].map(async code => {
    const book = await reportBook(ctx, code)
    const [m, b] = await Promise.all([member(ctx, code, 'BS1 1AA', '2025-01-01T00:00:00Z'), business(ctx, code, 'food', 'BS1 3CC', '2025-01-01T00:00:00Z')])
    await book.ledger.issue(new Date(day - DAY_MS).toISOString(), m.accountId, '100.00')
    return { book, m, b }
  }))
  // one currency drained more often than the other (their versions drift apart), and both in one drain
  for (const [round, which] of [[0], [0, 1], [0], [1, 0], [1]].entries()) {
    for (const k of which) {
      const { book, m, b } = books[k]
      await book.ledger.pay(at(round * 2), m.accountId, b.accountId, '5.00')
      await book.ledger.pay(at(round * 2 + 1), b.accountId, m.accountId, '2.00')
    }
    await catchUp(pool)
    for (const { book: each } of books) {
      const fast = await circulationFigures(pool, each.currencyId, periods, pool, {}, now)
      t.same(fast.map(normFigures), (await recompute(pool, each.currencyId, periods)).map(normFigures), `round ${round}, ${each.code}`)
    }
  }
})

t.test('a bucket row written without a newer drain number is refused', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx, 'TRZ')
  const [m, b] = await Promise.all([member(ctx, 'TRZ', 'BS1 1AA'), business(ctx, 'TRZ', 'food', 'BS1 3CC')])
  await book.ledger.issue(new Date(Date.now() - DAY_MS).toISOString(), m.accountId, '10.00')
  await book.ledger.pay(new Date(Date.now() - DAY_MS + 60_000).toISOString(), m.accountId, b.accountId, '1.00')
  await catchUp(ctx.app.pool)
  const pool = ctx.app.pool
  await t.rejects(pool.query(`UPDATE circ_pair_bucket SET volume = volume + 1 WHERE currency_id = $1`, [book.currencyId]), /without a newer drain number/, 'an update that keeps seq')
  await t.rejects(pool.query(`UPDATE circ_account_bucket SET issued = 0 WHERE currency_id = $1`, [book.currencyId]), /without a newer drain number/, 'on the accounts too')
  await t.rejects(pool.query(`INSERT INTO circ_pair_bucket (currency_id, grain, start, payer, payee, volume, n)
    VALUES ($1, 'd', '2020-01-01', $2, $3, 1, 1)`, [book.currencyId, m.accountId, b.accountId]), /without a newer drain number/, 'an insert without one')
  await t.resolves(pool.query(`UPDATE circ_pair_bucket SET seq = seq + 1 WHERE currency_id = $1`, [book.currencyId]), 'an update that moves seq on is let through')
})
