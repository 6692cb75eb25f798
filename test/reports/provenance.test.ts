import t from 'tap'
import { RULES } from '../../src/domain/disclosure.js'
import { splitPeriods } from '../../src/domain/periods.js'
import { circulationMetrics } from '../../src/reports/circulation.metrics.js'
import { DEFINITIONS_VERSION, ledgerPosition } from '../../src/reports/provenance.js'
import { buildTestApp } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { recompute } from './recompute.js'

// Every report says what it was computed from: the time (asOf), the last transfer it includes (asOfTransfer) and
// the definitions' version, in the JSON and on every CSV row. A figure cited with them can be reproduced after a
// later reversal has changed the period it describes.

t.test('reports carry their ledger position and definitions version, and a cited figure can be reproduced', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  // five members paying two businesses alike: enough accounts for January's figures to be published
  const M = await Promise.all([1, 2, 3, 4, 5].map(() => member(ctx, 'BRS', 'BS6 5AB')))
  const B1 = await business(ctx, 'BRS', 'food', 'BS1 4DJ')
  const B2 = await business(ctx, 'BRS', 'retail', 'BS2 0AA')
  const L = book.ledger
  const q = '?from=2026-01-01&to=2026-03-01&interval=month'

  const empty = await ctx.call('GET', `/v1/currencies/BRS/reports/circulation${q}`, { token: ctx.issuerToken })
  t.equal(empty.status, 200)
  t.equal(empty.body.asOfTransfer, null, 'no transfer yet')
  t.equal(empty.body.definitionsVersion, DEFINITIONS_VERSION)

  for (const m of M) await L.issue('2026-01-01T00:00:00Z', m.accountId, '100')
  const pays = []
  for (const m of M) {
    pays.push(await L.pay('2026-01-11T00:00:00Z', m.accountId, B1.accountId, '10'))
    await L.pay('2026-01-12T00:00:00Z', m.accountId, B2.accountId, '10')
  }
  const last = await L.pay('2026-02-11T00:00:00.123Z', M[0].accountId, B1.accountId, '5')

  const cited = await ctx.call('GET', `/v1/currencies/BRS/reports/circulation${q}`, { token: ctx.issuerToken })
  t.equal(cited.status, 200)
  t.same(cited.body.asOfTransfer, { id: last[0].id, createdAt: '2026-02-11T00:00:00.123000Z' }, 'the latest transfer, to the microsecond')
  t.equal(cited.body.total.metrics.volume.value, '105.00', 'the range\'s volume is published (its months hide each other)')

  for (const path of [`circulation${q}`, 'flows?from=2026-01-01&to=2026-03-01']) {
    const csv = await ctx.call('GET', `/v1/currencies/BRS/reports/${path}&format=csv`, { token: ctx.issuerToken })
    const json = await ctx.call('GET', `/v1/currencies/BRS/reports/${path}`, { token: ctx.issuerToken })
    const [head, ...rows] = csv.text.trim().split('\n').map((l: string) => l.split(','))
    t.same(head.slice(-4), ['asOf', 'asOfTransfer', 'asOfTransferAt', 'definitionsVersion'], `${path}: CSV columns`)
    // a flows cell the rules hide is not listed, and every flows cell here is hidden (one business each):
    // test/reports/flows-listing.test.ts checks the provenance of listed flows cells
    t.equal(rows.length, path.startsWith('flows') ? json.body.cells.length : json.body.periods.length + 1, `${path}: a row per cell or period`)
    for (const r of rows) {
      t.same(r.slice(-3), [json.body.asOfTransfer.id, json.body.asOfTransfer.createdAt, String(DEFINITIONS_VERSION)], `${path}: on every row`)
      t.equal(r[r.length - 4], csv.headers['x-as-of'])
    }
  }

  // a reversal later takes one of January's payments away: the figures change ...
  await L.reverse('2026-03-05T00:00:00Z', pays[0])
  const later = await ctx.call('GET', `/v1/currencies/BRS/reports/circulation${q}`, { token: ctx.issuerToken })
  t.equal(later.body.total.metrics.volume.value, '95.00')
  t.not(later.body.asOfTransfer.id, cited.body.asOfTransfer.id, 'the position moved on')
  // ... and the cited ones are recomputed from the ledger cut at the cited position
  const periods = splitPeriods(Date.UTC(2026, 0, 1), Date.UTC(2026, 2, 1), 'month')
  const again = circulationMetrics(await recompute(ctx.app.pool, book.currencyId, periods, cited.body.asOfTransfer), 2, RULES)
  t.same(again[1], cited.body.periods[0].metrics, 'January, every cell as cited')
  t.same(again[0], cited.body.total.metrics, 'the whole range as cited')
  t.not(again[0].volume.value, later.body.total.metrics.volume.value, 'not as it reads now')

  // a transfer not yet folded into the aggregates is not part of the position
  const before = await ledgerPosition(ctx.app.pool, book.currencyId)
  await L.pay('2026-03-06T00:00:00Z', B1.accountId, M[0].accountId, '1')
  t.same(await ledgerPosition(ctx.app.pool, book.currencyId), before, 'still queued: not included')
})
