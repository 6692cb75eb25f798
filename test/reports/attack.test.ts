import { createHash } from 'node:crypto'
import t from 'tap'
import { complement, judge, NO_RULES, RULES, type Slot } from '../../src/domain/disclosure.js'
import { DAY_MS, isoDate, tile } from '../../src/domain/periods.js'
import { flowFigures, type FlowsBy } from '../../src/reports/flows.report.js'
import { toMicros } from '../../src/reports/stat.js'
import { DEFAULT_PARAMETERS } from '../../src/simulator/parameters.js'
import { prepareSimulation, simulatorPool } from '../../src/simulator/run.js'
import { createTestDb } from '../../support/postgres.js'
import { buildTestApp } from '../helper.js'
import { attack, rangeKey, truthOf, type Published, type Truth } from './attack.js'
import { createResearcher } from './ledger.js'

// The attack suite of docs/disclosure.md. A researcher of a simulated economy asks for the flows by sector and by
// postcode district over every range of days in a two-week window (JSON and CSV), downloads both exports, and
// tries to recover every cell the disclosure rules protect: by differencing overlapping and nested ranges, by
// adding adjacent ones, and by taking the exact totals the exports give (members vs businesses and sector group;
// postcode area and local or not) less the other published cells of the same total. It must recover no protected
// cell within the protection level (10% of the cell's largest account's part). The same attack against the same
// figures published as the flows report did before this design (exact values, each request suppressed on its own
// terms with complementary suppression in rows and columns) recovers protected cells exactly: that control shows
// the attack has teeth.

const END = new Date('2026-03-02T00:00:00Z')
const W = 14

t.test('a researcher with every flows request and both exports recovers no protected cell', async (t) => {
  const db = await createTestDb()
  const sim = simulatorPool(db.url)
  const params = structuredClone(DEFAULT_PARAMETERS)
  params.scale = { members: 500, businesses: 180, days: 30 }
  params.currency.code = 'ATK'
  // The usefulness checks below need published district cells of 1,000 or more, which an economy of this size has
  // in 14 days only for some seeds: seed 13 had 5 until the simulator paid wages by standing order, then none (the
  // draws changed); seed 14 has 12. The protection checks hold for every seed tried (12, 13, 14).
  const prepared = await prepareSimulation(sim, { seed: 14, end: END, params })
  await prepared.post()
  await sim.end()
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 }, { db })
  t.teardown(() => db.drop())
  const currencyId = prepared.currency.id
  // A fixed perturbation secret, so a run is reproducible: the currency's own is random, and with it the figures
  // (and how close an attack gets) change from run to run. docs/disclosure.md says what random secrets showed.
  await ctx.app.pool.query('UPDATE disclosure_key SET secret = $2 WHERE currency_id = $1', [currencyId, createHash('sha256').update('circulate attack suite').digest()])
  const localAreas = (await ctx.app.pool.query<{ local_areas: string[] }>('SELECT local_areas FROM currency WHERE id = $1', [currencyId])).rows[0].local_areas
  await createResearcher(ctx.app.pool, currencyId, 'attacker', 'attacker-password')
  const token = await ctx.token('attacker', 'attacker-password')
  const day0 = END.getTime() - W * DAY_MS
  const day = (k: number) => isoDate(day0 + k * DAY_MS)

  // the exports: every payment with its pseudonyms, and each pseudonym's kind, sector group, area and locality
  const tx = await ctx.call('GET', '/v1/currencies/ATK/exports/transfers', { token })
  t.equal(tx.status, 200)
  const acc = await ctx.call('GET', `/v1/currencies/ATK/exports/accounts?export=${tx.headers['x-export-id'] as string}`, { token })
  t.equal(acc.status, 200)
  const rows = (csv: string) => csv.trim().split('\n').slice(1).map(l => l.split(','))
  const accounts = new Map(rows(acc.text).map(r => [r[0], { area: r[3], type: r[4], role: r[5], btype: r[6] }]))
  const classOf = (by: FlowsBy, pseudonym: string): string | null => {
    const a = accounts.get(pseudonym)
    // withheld (k-anonymity, an empty field): the researcher cannot place the account in a group
    if (a == null || a.role === 'ADMIN' || a.role === '') return null
    if (by === 'sector') return a.role === 'BENEFICIARY' ? 'member' : 'business'
    return a.area === '' || a.type === '' ? null : `${a.area}:${a.type}`
  }
  const payments = rows(tx.text).filter(r => r[2] === 'STANDARD')
  t.ok(payments.length > 500, `the economy trades (${payments.length} payments exported)`)

  for (const by of ['sector', 'district'] as const) {
    // what the exports give exactly: per range, the total of each margin group
    const perDay = Array.from({ length: W }, () => new Map<string, bigint>())
    for (const r of payments) {
      const k = Math.floor((Date.parse(`${r[1].replace(' ', 'T')}Z`) - day0) / DAY_MS)
      if (k < 0 || k >= W) continue
      const from = classOf(by, r[3]); const to = classOf(by, r[4])
      if (from == null || to == null) continue
      const g = `${from}>${to}`
      perDay[k].set(g, (perDay[k].get(g) ?? 0n) + toMicros(r[5]))
    }
    const margins = new Map<string, Map<string, bigint>>()
    const truth = new Map<string, Map<string, Truth>>()
    const published: Published = new Map()
    const exact: Published = new Map()
    let requests = 0
    for (let a = 0; a < W; a++) {
      for (let b = a + 1; b <= W; b++) {
        const m = new Map<string, bigint>()
        for (let k = a; k < b; k++) for (const [g, v] of perDay[k]) m.set(g, (m.get(g) ?? 0n) + v)
        margins.set(rangeKey(a, b), m)
        // the truth, straight from the aggregates
        const figures = await flowFigures(ctx.app.pool, currencyId, tile(day0 + a * DAY_MS, day0 + b * DAY_MS), by)
        truth.set(rangeKey(a, b), truthOf(figures, by, localAreas))
        // the control: the same figures as the flows report published them before this design: exact values,
        // each request suppressed on its own terms (threshold, one account over 85%, a partner for a lone hidden
        // cell in a row or column)
        const slots = figures.map(f => ({ value: f.volume.value, n: f.volume.n, verdict: judge(f.volume, RULES) }) satisfies Slot)
        const lines = (k: 'payer' | 'payee') => [...new Set(figures.map(f => f[k]))].map(g => ({ parent: null, children: slots.filter((_, i) => figures[i][k] === g) }))
        complement([...lines('payer'), ...lines('payee')])
        exact.set(rangeKey(a, b), new Map(figures.map((f, i) => [`${f.payer}>${f.payee}`, slots[i].verdict != null ? null : toMicros(f.volume.value)])))
        // what the researcher is given
        const r = await ctx.call('GET', `/v1/currencies/ATK/reports/flows?by=${by}&from=${day(a)}&to=${day(b)}`, { token })
        requests++
        if (r.status !== 200) { t.fail(`flows ${by} ${day(a)}..${day(b)}: ${r.status}`); continue }
        published.set(rangeKey(a, b), new Map(r.body.cells.map((c: any) => [`${c.payer}>${c.payee}`, c.volume.value == null ? null : toMicros(c.volume.value)])))
        if (b - a === 1 || b - a === W) {
          // CSV says the same as JSON, hidden cells included
          const csv = await ctx.call('GET', `/v1/currencies/ATK/reports/flows?by=${by}&from=${day(a)}&to=${day(b)}&format=csv`, { token })
          requests++
          const fromCsv = csv.text.trim().split('\n').slice(1).map(l => l.split(',')).map(x => [`${x[0]}>${x[1]}`, x[2] === 'suppressed' ? null : toMicros(x[2])])
          t.same(new Map(fromCsv as Array<[string, bigint | null]>), published.get(rangeKey(a, b)), `CSV = JSON, ${by} ${day(a)}..${day(b)}`)
        }
      }
    }
    const protectedCells = [...truth.values()].reduce((s, m) => s + [...m.values()].filter(x => x.protected).length, 0)
    t.ok(protectedCells > 100, `${by}: ${protectedCells} protected (range, cell)s over ${requests} requests`)

    const control = attack(W, truth, exact, margins)
    t.ok(control.exact > 50, `${by}, control (as published before: exact, each request suppressed on its own): ${control.exact} of ${control.attacked} protected cells recovered exactly`)

    const result = attack(W, truth, published, margins)
    t.ok(result.attacked > 50, `${by}: ${result.attacked} protected cells attacked (${result.byExports} more are whole margins the exports give)`)

    t.same(result.recovered.slice(0, 5), [], `${by}: no protected cell recovered within the protection level (${result.recovered.length} were)`)
    t.equal(result.exact, 0, `${by}: none recovered exactly`)

    // the figures stay close to the truth where the rules publish them: the error, by cell size
    const errors: Array<{ share: number, size: bigint }> = []
    for (const [key, cells] of truth) {
      for (const [cell, x] of cells) {
        const v = published.get(key)?.get(cell)
        if (x.protected || v == null || x.value === 0n) continue
        errors.push({ share: Number(v > x.value ? v - x.value : x.value - v) / Number(x.value), size: x.value })
      }
    }
    const big = errors.filter(e => e.size >= 1_000_000_000n).map(e => e.share).sort((x, y) => x - y)
    const q = (f: number) => big.length === 0 ? 0 : big[Math.min(big.length - 1, Math.floor(f * big.length))]
    t.ok(big.length > 3 && q(0.5) < 0.15, `${by}: published cells of 1,000 or more (${big.length}): median error ${(q(0.5) * 100).toFixed(2)}%, 90th percentile ${(q(0.9) * 100).toFixed(2)}%, worst ${(q(1) * 100).toFixed(2)}%`)
  }
  // NO_RULES is what the control publishes for the cells it does not hide
  t.equal(NO_RULES.perturb, false)
})
