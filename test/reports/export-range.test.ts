import t from 'tap'
import { microsIso, parseInstant, parseInstantMicros } from '../../src/domain/periods.js'
import { parseTime } from '../../src/services/account.service.js'
import { buildTestApp, issue, scenario } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { createResearcher } from './ledger.js'

// A range is refused the same way wherever one is asked (docs/api.md, "Reports and exports"): from after to, or
// equal, is 400 INVALID_QUERY "from must be before to" on the reports and on the transfers export, which answered
// 200 with an empty file and recorded a new export each time; and a time that RFC 3339 does not allow (24:00, an
// hour it has no such thing as) names the parameter, where Date.parse read it as the next day's midnight.

t.test('times RFC 3339 has no such thing as are refused, naming the parameter', async (t) => {
  for (const raw of ['2026-01-01T24:00:00Z', '2026-01-01T24:00Z', '2026-01-01T23:60:00Z', '2026-01-01T12:00:00+24:00', '2026-01-01T12:00:00+01:60']) {
    t.throws(() => parseInstant(raw, 'from'), { code: 'INVALID_QUERY', message: /^from must be a date/ }, raw)
  }
  t.equal(parseInstant('2026-01-01T23:59:59.999+14:00', 'to'), Date.parse('2026-01-01T09:59:59.999Z'), 'the last instant of a day is fine')
  t.equal(parseInstant('2026-01-01T00:00:00-12:00', 'to'), Date.parse('2026-01-01T12:00:00Z'))
  // V8's Date.parse reads a fraction of ten digits or more wrongly (.0810440001 as .810): cut to milliseconds first
  t.equal(parseInstant('2026-12-04T20:05:40.0810440001Z', 'from'), Date.parse('2026-12-04T20:05:40.081Z'))
  t.equal(parseInstant('2026-12-04T20:05:40.99999999999+01:00', 'from'), Date.parse('2026-12-04T19:05:40.999Z'))
  // and so do the statements', the transfer search's and the audit trail's from and to
  t.equal(parseTime('2026-12-04T20:05:40.0810440001Z', 'from')?.toISOString(), '2026-12-04T20:05:40.081Z')
})

t.test('the transfers export refuses a backward or empty range as the reports do, recording no export', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx, 'BRS')
  const m = await member(ctx, 'BRS', 'BS6 5AB'); const b = await business(ctx, 'BRS', 'food', 'BS1 4DJ')
  await book.ledger.issue('2026-01-05T12:00:00Z', m.accountId, '100')
  await book.ledger.pay('2026-01-06T12:00:00Z', m.accountId, b.accountId, '10')
  await createResearcher(ctx.app.pool, book.currencyId, 'res', 'researcher-password')
  const token = await ctx.token('res', 'researcher-password')
  const exports = async () => (await ctx.app.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM research_export')).rows[0].n
  const get = async (path: string, q: string) => await ctx.call('GET', `/v1/currencies/BRS/${path}?${q}`, { token })
  const problem = (r: { status: number, body: Record<string, unknown> }) => ({ status: r.status, code: r.body.code, title: r.body.title, detail: r.body.detail })
  const before = await exports()

  for (const q of ['from=2026-02-01&to=2026-01-01', 'from=2026-01-01&to=2026-01-01', 'from=2026-01-06T12:00:00Z&to=2026-01-06T11:00:00Z']) {
    const report = await get('reports/flows', q.replace(/T1\dZ?[^&]*/g, ''))
    t.same(problem(report), { status: 400, code: 'INVALID_QUERY', title: 'Bad Request', detail: 'from must be before to' }, `the flows report: ${q}`)
    for (const dialect of ['circulate', 'sarafu']) {
      const r = await get('exports/transfers', `${q}&dialect=${dialect}`)
      t.same(problem(r), problem(report), `the ${dialect} transfers export answers ${q} as the report does`)
      t.equal(r.headers['x-export-id'], undefined, 'and names no export')
    }
  }
  t.equal(await exports(), before, 'no export was recorded')

  for (const [path, field] of [['reports/circulation', 'from'], ['reports/flows', 'from'], ['exports/transfers', 'from'], ['exports/transfers', 'to']]) {
    const r = await get(path, `${field}=2026-01-01T24:00:00Z`)
    t.equal(r.status, 400, `${path} ${field}=...T24:00:00Z`)
    t.equal(r.body.code, 'INVALID_QUERY')
    t.match(r.body.detail, new RegExp(`^${field} must be a date`), 'naming the parameter')
  }
  const reserve = await ctx.call('GET', '/v1/currencies/BRS/reserve?at=2026-01-01T24:00:00Z', { token: ctx.issuerToken })
  t.same([reserve.status, reserve.body.code], [400, 'INVALID_QUERY'], 'the reserve\'s at too')
  t.match(reserve.body.detail, /^at must be a date/)
  t.equal(await exports(), before, 'still no export recorded')

  // a forward range is still an export of what lies in it
  const ok = await get('exports/transfers', 'from=2026-01-06&to=2026-01-07')
  t.equal(ok.status, 200)
  t.equal(ok.text.trim().split('\n').length, 1 + 1, 'the header and the payment')
  t.equal(await exports(), before + 1)
})

// The ledger keeps times to the microsecond, and the export writes them so (timeset). A bound was cut to the
// millisecond (Date.parse), so a researcher resuming from a timeset got again, or lost, the transfers of that
// millisecond before or after it. Now a bound is taken to the microsecond (periods.ts, parseInstantMicros).
t.test('the transfers export takes from and to to the microsecond, as its timeset writes times', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  // posted one at a time at the database's own clock: times with microseconds of their own
  for (let i = 0; i < 6; i++) {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: s.member.token, key: `us-${i}`, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
    })
    t.equal(r.status, 201)
  }
  const currencyId = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [s.code])).rows[0].id
  await createResearcher(ctx.app.pool, currencyId, 'res-us', 'researcher-password')
  const token = await ctx.token('res-us', 'researcher-password')
  const first = await ctx.call('GET', `/v1/currencies/${s.code}/exports/transfers`, { token })
  t.equal(first.status, 200)
  const exportId = String(first.headers['x-export-id'])
  const rows = (text: string) => text.trim().split('\n').slice(1).map(l => { const [id, timeset] = l.split(','); return { id, timeset } })
  const all = rows(first.text)
  // the transfers of one instant (a payment and its fee leg) inside its millisecond, not on its edge: the cut moved
  // such a bound; with transfers before and after them
  const k = all.findIndex((r, i) => i > 0 && !/(000|999)$/.test(r.timeset) && all[i - 1].timeset !== r.timeset && all.at(-1)!.timeset !== r.timeset)
  t.ok(k > 0, `transfers inside their millisecond: ${all.map(r => r.timeset).join(', ')}`)
  const after = k + all.filter(r => r.timeset === all[k].timeset).length
  const at = parseInstantMicros(`${all[k].timeset.replace(' ', 'T')}Z`, 'from')!
  const ids = async (q: string) => {
    const r = await ctx.call('GET', `/v1/currencies/${s.code}/exports/transfers?export=${exportId}&${q}`, { token })
    t.equal(r.status, 200, `${q}: ${r.text.slice(0, 200)}`)
    return rows(r.text).map(r => r.id)
  }
  const iso = (us: bigint) => encodeURIComponent(microsIso(us))
  t.same(await ids(`from=${iso(at)}`), all.slice(k).map(r => r.id), 'from their own time: they and what follows')
  t.same(await ids(`from=${iso(at + 1n)}`), all.slice(after).map(r => r.id), 'from a microsecond later: what follows them')
  t.same(await ids(`to=${iso(at)}`), all.slice(0, k).map(r => r.id), 'to their own time: what came before them')
  t.same(await ids(`to=${iso(at + 1n)}`), all.slice(0, after).map(r => r.id), 'to a microsecond later: they too')
  // digits past the sixth round the bound up: from .xxxxxx0001 leaves the transfers at .xxxxxx out
  t.same(await ids(`from=${iso(at).replace('Z', '0001Z')}`), all.slice(after).map(r => r.id), 'a seventh digit rounds the bound up')
  t.equal(microsIso(parseInstantMicros('0001-01-01T00:00:00.000001Z', 'from')!), '0001-01-01T00:00:00.000001Z', 'before 1970 too')
  t.equal(microsIso(parseInstantMicros('2026-01-01T01:00:00.1234567+01:00', 'from')!), '2026-01-01T00:00:00.123457Z')
})
