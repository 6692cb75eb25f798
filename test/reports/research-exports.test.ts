import t from 'tap'
import { NO_RULES } from '../../src/domain/disclosure.js'
import { feeFor, Money } from '../../src/domain/money.js'
import { splitPeriods } from '../../src/domain/periods.js'
import { isLocal } from '../../src/domain/postcode.js'
import type { TransferRow } from '../../src/domain/transfer-view.js'
import { comboKey, K } from '../../src/reports/anonymise.js'
import { openExport } from '../../src/reports/pseudonym.js'
import { transfersCsv } from '../../src/reports/transfers.export.js'
import { circulationMetrics, METRICS, type MetricName } from '../../src/reports/circulation.metrics.js'
import { areaOf } from '../../src/reports/flows.report.js'
import { DEFAULT_PARAMETERS } from '../../src/simulator/parameters.js'
import { prepareSimulation, simulatorPool } from '../../src/simulator/run.js'
import { createTestDb } from '../../support/postgres.js'
import { buildTestApp } from '../helper.js'
import { createResearcher, ledger, type Book } from './ledger.js'
import { recomputeFrom } from './recompute.js'
import { ledgerFromExports, parseCsv, timesetMicros } from './recompute-exports.js'

// The research exports on a simulated economy (src/simulator) with reversals (one of a standing order's recurring
// same-amount payments among them), fees, and closed accounts:
//   - part 3 of issue 13: a researcher with the two exports alone recomputes every published circulation figure,
//     and gets the API's value to the last digit;
//   - part 2: the linkage attack. With the public business directory (over HTTP) and with everything an outsider
//     could know of a member (postcode, month and day of joining, closed or not), no account of the export can be
//     narrowed to fewer than K candidates, so no one is re-identified.

const END = new Date('2026-03-01T00:00:00Z')
const CODE = 'RSX'

t.test('research exports of a simulated economy', async (t) => {
  const db = await createTestDb()
  const sim = simulatorPool(db.url)
  const params = structuredClone(DEFAULT_PARAMETERS)
  params.scale = { members: 300, businesses: 100, days: 59 }
  params.currency.code = CODE
  const prepared = await prepareSimulation(sim, { seed: 5, end: END, params })
  await prepared.post()
  await sim.end()
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 }, { db })
  t.teardown(() => db.drop())
  const pool = ctx.app.pool
  const currencyId = prepared.currency.id
  const cur = (await pool.query<{ decimals: number, fees: Record<string, string>, redemption_fee: string, local_areas: string[] }>(`
    SELECT decimals, json_build_object('text', fee_text::text, 'app', fee_app::text, 'online', fee_online::text, 'api', fee_api::text,
           'till', fee_till::text) AS fees, redemption_fee::text, local_areas FROM currency WHERE id = $1`, [currencyId])).rows[0]
  const system = Object.fromEntries((await pool.query<{ system_kind: string, id: string }>(
    'SELECT system_kind, id FROM account WHERE currency_id = $1 AND system_kind IS NOT NULL', [currencyId])).rows.map(r => [r.system_kind, r.id]))
  const book: Book = {
    pool, tooling: ctx.tooling(), currencyId, code: CODE, system: system as Book['system'],
    currency: { decimals: cur.decimals, fees: cur.fees, redemptionFee: cur.redemption_fee },
  }
  const led = ledger(book)

  // reversals, an hour after the transfer they undo, of transfers whose receiver can still give the money back
  const legsOf = async (id: string): Promise<TransferRow[]> => (await pool.query(`
    SELECT t.id, t.kind, t.from_account_id, t.to_account_id, t.amount::text, t.parent_id, t.reverses_id, t.created_at
      FROM transfer t WHERE t.id = $1 OR t.parent_id = $1 ORDER BY t.parent_id NULLS FIRST, t.id`, [id])).rows.map(r => ({
    id: r.id, kind: r.kind, channel: null, fromAccount: r.from_account_id, toAccount: r.to_account_id, amount: r.amount,
    reference: null, metadata: {}, parentId: r.parent_id, reversesId: r.reverses_id, createdAt: (r.created_at as Date).toISOString(),
  }))
  const candidate = async (where: string, not: string[]) => (await pool.query<{ id: string, at: Date }>(`
    SELECT t.id, t.created_at AS at FROM transfer t JOIN account r ON r.id = t.to_account_id
     WHERE t.currency_id = $1 AND t.parent_id IS NULL AND ${where} AND r.balance > t.amount * 3 AND r.participant_id IS NOT NULL
       AND t.created_at < $2 AND t.id <> ALL ($3::uuid[]) ORDER BY t.created_at DESC LIMIT 1`,
  [currencyId, new Date(END.getTime() - 2 * 86_400_000), not])).rows[0]
  const reversed: string[] = []
  for (const where of [
    `t.kind = 'payment' AND EXISTS (SELECT 1 FROM transfer f WHERE f.parent_id = t.id)`, // with its fee
    // one of a run of same-amount payments between the same two accounts (a standing order): the case that made
    // volume come out wrong when reversals did not say which transfer they undo
    `t.kind = 'payment' AND (SELECT count(*) FROM transfer s WHERE s.from_account_id = t.from_account_id AND s.to_account_id = t.to_account_id AND s.amount = t.amount) > 1`,
    `t.kind = 'issuance'`,
  ]) {
    const c = await candidate(where, reversed)
    if (c == null) throw new Error(`no transfer to reverse: ${where}`)
    await led.reverse(new Date(c.at.getTime() + 3_600_000).toISOString(), await legsOf(c.id))
    reversed.push(c.id)
  }
  // closed accounts: five members who joined in the same month and live in the local area (so that k-anonymity
  // can keep their status); they stay in every report of the periods they were active in
  const closing = (await pool.query<{ id: string }>(`
    SELECT a.id FROM account a JOIN participant p ON p.id = a.participant_id
     WHERE a.currency_id = $1 AND p.kind = 'member' AND p.district = ANY ($2) AND a.created_at < '2026-01-02'
     ORDER BY a.id LIMIT 5`, [currencyId, cur.local_areas])).rows
  t.equal(closing.length, 5)
  // an account closes only when empty: each member leaving first spends what is left at a local business, just
  // after the economy's last transfer
  const shop = (await pool.query<{ id: string }>(`
    SELECT a.id FROM account a JOIN participant p ON p.id = a.participant_id
     WHERE a.currency_id = $1 AND p.kind = 'business' AND p.district = ANY ($2) AND a.status = 'active' AND a.ceiling IS NULL
     ORDER BY a.id LIMIT 1`, [currencyId, cur.local_areas])).rows[0].id
  const last = (await pool.query<{ at: Date }>('SELECT max(created_at) AS at FROM transfer WHERE currency_id = $1', [currencyId])).rows[0].at
  let emptied = 0
  // paid on the channel that charges least (the test ledger finds the channel by its fee)
  const fees = Object.values((await ctx.call('GET', `/v1/currencies/${CODE}`)).body.fees as Record<string, string>)
  const cheapest = fees.reduce((a, b) => new Money(a).lte(b) ? a : b)
  for (const a of closing) {
    const left = (await pool.query<{ balance: string }>('SELECT balance::text FROM account WHERE id = $1', [a.id])).rows[0].balance
    if (new Money(left).isZero()) continue
    const early = await ctx.call('PATCH', `/v1/accounts/${a.id}`, { token: ctx.issuerToken, body: { status: 'closed' } })
    t.match([early.status, early.body.code], [409, 'ACCOUNT_NOT_EMPTY'], 'not while it holds money')
    const fee = feeFor(new Money(left), new Money(cheapest), cur.decimals)
    await led.pay(new Date(last.getTime() + 1000 * ++emptied).toISOString(), a.id, shop, new Money(left).toFixed(cur.decimals), fee.toFixed(cur.decimals))
  }
  for (const a of closing) t.equal((await ctx.call('PATCH', `/v1/accounts/${a.id}`, { token: ctx.issuerToken, body: { status: 'closed' } })).status, 200)

  await createResearcher(pool, currencyId, 'res-rsx', 'researcher-password')
  const token = await ctx.token('res-rsx', 'researcher-password')
  const tx = await ctx.call('GET', `/v1/currencies/${CODE}/exports/transfers`, { token })
  t.equal(tx.status, 200)
  const ac = await ctx.call('GET', `/v1/currencies/${CODE}/exports/accounts?export=${String(tx.headers['x-export-id'])}`, { token })
  t.equal(ac.status, 200)
  const accounts = parseCsv(ac.text)
  const transfers = parseCsv(tx.text)
  t.equal(transfers.filter(r => r.transfer_subtype === 'REVERSAL' && r.parent_id === '').length, 3, 'three reversals')
  const inLedger = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM transfer WHERE currency_id = $1', [currencyId])).rows[0].n)
  t.equal(transfers.length, inLedger, 'every transfer')
  t.equal(new Set(transfers.map(r => r.id)).size, inLedger, 'no transfer twice')
  // the export's keyset pages at the microsecond: the same file read in pages of 997 rows (legs of one movement
  // share their time, so pages end inside movements)
  const researcher = (await pool.query<{ id: string }>(`SELECT id FROM app_user WHERE username = 'res-rsx'`)).rows[0].id
  const session = await openExport(pool, currencyId, researcher, String(tx.headers['x-export-id']))
  let paged = ''
  for await (const chunk of transfersCsv(pool, { currencyId, code: CODE, decimals: cur.decimals, dialect: 'circulate', page: 997 }, session)) paged += String(chunk)
  t.ok(inLedger > 2 * 997, `${inLedger} transfers: several pages`)
  t.equal(paged, tx.text, 'read in small pages, the same file')

  t.test('part 3: every published circulation figure, recomputed from the exports alone', async (t) => {
    const raw = ledgerFromExports(tx.text, ac.text)
    // What k-anonymity withheld, and the figures that need it (docs/research-exports.md): those are recomputed
    // exactly only once the withheld fields are put back (below), which shows they are the only difference.
    const participants = accounts.filter(a => a.held_roles !== 'ADMIN')
    const withheld = (col: string) => participants.filter(a => a[col] === '').length
    const needs: Array<[string, MetricName[]]> = [
      ['area_type', ['localityShare', 'localMultiplier', 'paidToNonLocal', 'paidFromNonLocal', 'issuedNonLocal']],
      ['held_roles', ['b2bShare', 'm2bShare', 'b2mShare', 'm2mShare', 'respendRate', 'localMultiplier', 'holdingDaysMember',
        'holdingDaysBusiness', 'medianHoldingDaysMember', 'medianHoldingDaysBusiness']],
      ['start', ['activeShare', 'gini', 'top10Share']],
      ['status', ['activeShare']],
    ]
    const affected = new Set(needs.filter(([col]) => withheld(col) > 0).flatMap(([, ms]) => ms))
    t.comment(`withheld for k-anonymity, of ${participants.length} participants: ${needs.map(([col]) => `${col} ${withheld(col)}`).join(', ')}; ` +
      `figures that need them: ${[...affected].join(', ') || 'none'}`)
    t.ok(withheld('area_name') > 0, 'the economy has rare combinations (else the test shows nothing of k-anonymity)')

    // the withheld fields put back, from the ledger, through this export's own pseudonyms
    const restored = ledgerFromExports(tx.text, ac.text)
    for (const a of (await pool.query<{ id: string, kind: string, district: string, status: string, created_at: Date }>(`
      SELECT a.id, p.kind, p.district, a.status, a.created_at FROM account a JOIN participant p ON p.id = a.participant_id
       WHERE a.currency_id = $1`, [currencyId])).rows) {
      const p = session.pseudonym(a.id)
      const month = Date.UTC(a.created_at.getUTCFullYear(), a.created_at.getUTCMonth(), 1) * 1000
      restored.accounts.set(p, { ...restored.accounts.get(p)!, kind: a.kind, local: isLocal(a.district, cur.local_areas), status: a.status, pCreated: month })
      restored.accountCreated.set(p, month)
    }

    // month: every figure. week and day: all but those that need the day an account joined (activeShare's open
    // accounts, Gini's and top 10%'s participants); the export gives the month, docs/research-exports.md
    const needJoin: MetricName[] = ['activeShare', 'gini', 'top10Share']
    for (const [interval, from, to, skip] of [
      ['month', '2026-01-01', '2026-03-01', []], ['week', '2026-01-05', '2026-03-02', needJoin], ['day', '2026-02-10', '2026-02-20', needJoin],
    ] as Array<[('month' | 'week' | 'day'), string, string, MetricName[]]>) {
      const r = await ctx.call('GET', `/v1/currencies/${CODE}/reports/circulation?from=${from}&to=${to}&interval=${interval}`, { token })
      t.equal(r.status, 200)
      const api = [r.body.total, ...r.body.periods] as Array<{ metrics: Record<string, { value: string | null, suppressed?: boolean }> }>
      const periods = splitPeriods(Date.parse(from), Date.parse(to), interval)
      const mine = circulationMetrics(recomputeFrom(raw, periods), cur.decimals, NO_RULES)
      const whole = circulationMetrics(recomputeFrom(restored, periods), cur.decimals, NO_RULES)
      let compared = 0
      let hidden = 0
      let moved = 0
      for (const [k, p] of api.entries()) {
        for (const m of METRICS) {
          if (skip.includes(m)) continue
          const published = p.metrics[m]
          if (published.suppressed === true) { hidden++; continue }
          compared++
          const where = `${interval} ${k === 0 ? 'total' : `period ${k}`} ${m}: API ${published.value}`
          if (published.value !== whole[k][m].value) t.fail(`${where}, from the exports with the withheld fields put back ${whole[k][m].value}`)
          if (affected.has(m)) { if (published.value !== mine[k][m].value) moved++; continue }
          if (published.value !== mine[k][m].value) t.fail(`${where}, from the exports ${mine[k][m].value}`)
        }
      }
      t.ok(compared > METRICS.length * 2, `${interval}: ${compared} published cells recomputed from the exports (${hidden} hidden by the report's rules)`)
      t.comment(`${interval}: ${moved} cells differ from the API's, all of figures that need a withheld field`)
      t.ok(api.some(p => Number(p.metrics.volume.value) > 0), `${interval}: the economy trades`)
    }
    t.ok(transfers.filter(r => r.transfer_subtype === 'REVERSAL').length >= 4, 'reversals of fees are in the export too')
  })

  t.test('part 2: the linkage attack re-identifies no one', async (t) => {
    const participants = accounts.filter(a => a.held_roles !== 'ADMIN')
    // every published combination of quasi-identifiers is shared by at least K accounts
    const sizes = new Map<string, number>()
    const combo = (a: Record<string, string>) => comboKey({ start: a.start, area: a.area_name, areaType: a.area_type, role: a.held_roles, status: a.status })
    for (const a of participants) sizes.set(combo(a), (sizes.get(combo(a)) ?? 0) + 1)
    t.ok(sizes.size > 3, `${sizes.size} combinations published`)
    t.ok(Math.min(...sizes.values()) >= K, `every combination holds at least ${K} accounts (fewest: ${Math.min(...sizes.values())})`)

    // the attacker's background knowledge: the public directory, read over HTTP like anyone
    const directory: Array<{ tradingName: string, district: string, local: boolean }> = []
    for (let cursor: string | null = ''; cursor != null;) {
      const r: { status: number, body: { items: typeof directory, nextCursor: string | null } } = await ctx.call('GET', `/v1/currencies/${CODE}/businesses?limit=200${cursor === '' ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)
      t.equal(r.status, 200)
      directory.push(...r.body.items)
      cursor = r.body.nextCursor
    }
    const listed = (await pool.query<{ n: string }>(`SELECT count(*) AS n FROM participant WHERE currency_id = $1 AND kind = 'business'`, [currencyId])).rows[0].n
    t.equal(directory.length, Number(listed), 'every business is listed')
    const role = (kind: string) => kind === 'business' ? 'VENDOR' : 'BENEFICIARY'
    const fits = (a: Record<string, string>, k: { area?: string, areaType?: string, role?: string, start?: string, status?: string }) =>
      (k.area == null || a.area_name === '' || a.area_name === k.area) &&
      (k.areaType == null || a.area_type === '' || a.area_type === k.areaType) &&
      (k.role == null || a.held_roles === '' || a.held_roles === k.role) &&
      (k.start == null || a.start === '' || a.start === k.start) &&
      (k.status == null || a.status === '' || a.status === k.status)
    let fewest = Infinity
    for (const b of directory) {
      const n = participants.filter(a => fits(a, { area: areaOf(b.district), areaType: b.local ? 'local' : 'non-local', role: 'VENDOR' })).length
      fewest = Math.min(fewest, n)
    }
    t.ok(fewest >= K, `each business in the directory fits at least ${K} accounts of the export (fewest: ${fewest})`)

    // everything an outsider could know of anyone: where, member or business, when it joined, closed or not
    const truth = (await pool.query<{ kind: string, district: string, created_at: Date, status: string }>(`
      SELECT p.kind, p.district, a.created_at, a.status FROM account a JOIN participant p ON p.id = a.participant_id
       WHERE a.currency_id = $1`, [currencyId])).rows
    let reidentified = 0
    let fewestAll = Infinity
    const firstTransfer = new Map<string, number>()
    for (const r of transfers) for (const a of [r.source, r.target]) if (!firstTransfer.has(a)) firstTransfer.set(a, timesetMicros(r.timeset))
    let byFirstDay = 0
    for (const p of truth) {
      const known = {
        area: areaOf(p.district), areaType: isLocal(p.district, cur.local_areas) ? 'local' : 'non-local', role: role(p.kind),
        start: p.created_at.toISOString().slice(0, 7), status: p.status === 'closed' ? 'closed' : 'open',
      }
      const candidates = participants.filter(a => fits(a, known))
      fewestAll = Math.min(fewestAll, candidates.length)
      if (candidates.length === 1) reidentified++
      // what precise transfer times add: candidates whose first movement falls on the day the person joined
      const day = p.created_at.getTime() * 1000
      if (candidates.filter(a => (firstTransfer.get(a.id) ?? Infinity) >= day && (firstTransfer.get(a.id) ?? Infinity) < day + 86_400_000_000).length === 1) byFirstDay++
    }
    t.equal(reidentified, 0, 're-identifies no one by the quasi-identifiers')
    t.ok(fewestAll >= K, `everyone fits at least ${K} accounts (fewest: ${fewestAll})`)
    t.comment(`with the day of joining and the exact times of the transfers export, ${byFirstDay} of ${truth.length} participants are the only candidate whose first transfer falls on that day (docs/disclosure.md)`)
  })
})
