import { createHash } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import t from 'tap'
import { complement, direction, judge, NO_RULES, RULES, type Slot } from '../../src/domain/disclosure.js'
import { formatMoney } from '../../src/domain/money.js'
import { DAY_MS, isoDate, tile } from '../../src/domain/periods.js'
import { flowFigures, marginClass, publishFlows, type FlowFigure, type FlowsBy } from '../../src/reports/flows.report.js'
import { toMicros } from '../../src/reports/stat.js'
import { DEFAULT_PARAMETERS } from '../../src/simulator/parameters.js'
import { prepareSimulation, simulatorPool } from '../../src/simulator/run.js'
import { createTestDb } from '../../support/postgres.js'
import { buildTestApp } from '../helper.js'
import { accountParts, attack, exposed, rangeKey, truthOf, type Published, type Truth } from '../../support/attack.js'
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
//
// A currency's perturbation secret is random, and how close an attack gets depends on it (which way each cell's
// noise goes). So the attack runs over SECRETS distinct secrets, derived from a fixed phrase so that a run is
// repeatable, on the same economy: the API serves the first (pinned in the database), and the others are
// published by the report's own function (publishFlows), which the first secret shows to be what the API serves.

const END = new Date('2026-03-02T00:00:00Z')
const W = 14
const SECRETS = 8
const secret = (i: number) => createHash('sha256').update(`circulate attack suite|${i}`).digest()

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
  // the first secret, so a run is reproducible (the currency's own is random)
  await ctx.app.pool.query('UPDATE disclosure_key SET secret = $2 WHERE currency_id = $1', [currencyId, secret(0)])
  const decimals = (await ctx.app.pool.query<{ decimals: number }>('SELECT decimals FROM currency WHERE id = $1', [currencyId])).rows[0].decimals
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
  const publish = (key: Buffer, figures: FlowFigure[], by: FlowsBy): Map<string, bigint | null> => {
    const p = publishFlows(key, figures, by, localAreas, RULES, decimals)
    return new Map(figures.map((f, i) => [`${f.payer}>${f.payee}`, p[i].verdict != null ? null : toMicros(formatMoney(p[i].value, decimals))]))
  }
  const rows = (csv: string) => csv.trim().split('\n').slice(1).map(l => l.split(','))
  const accounts = new Map(rows(acc.text).map(r => [r[0], { area: r[3], type: r[4], role: r[5], btype: r[6] }]))
  const classOf = (by: FlowsBy, pseudonym: string): string | null => {
    const a = accounts.get(pseudonym)
    // withheld (k-anonymity, an empty field): the researcher cannot place the account in a group
    if (a == null || a.role === 'ADMIN' || a.role === '') return null
    if (by === 'sector') return a.role === 'BENEFICIARY' ? 'member' : 'business'
    return a.area === '' || a.type === '' ? null : `${a.area}:${a.type}`
  }
  // a report brings the aggregates up to date first (REPORTS_AGGREGATE_INTERVAL_MS: 0): the truth below is read
  // straight from them, and must be what the reports read
  t.equal((await ctx.call('GET', `/v1/currencies/ATK/reports/flows?from=${day(0)}&to=${day(W)}`, { token })).status, 200)
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
    const figuresOf = new Map<string, FlowFigure[]>()
    let requests = 0
    let mirrored = 0
    for (let a = 0; a < W; a++) {
      for (let b = a + 1; b <= W; b++) {
        const m = new Map<string, bigint>()
        for (let k = a; k < b; k++) for (const [g, v] of perDay[k]) m.set(g, (m.get(g) ?? 0n) + v)
        margins.set(rangeKey(a, b), m)
        // the truth, straight from the aggregates
        const figures = await flowFigures(ctx.app.pool, currencyId, tile(day0 + a * DAY_MS, day0 + b * DAY_MS), by)
        figuresOf.set(rangeKey(a, b), figures)
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
        // The API leaves hidden cells out. The attack below is given their names anyway (as nulls, from what
        // publishFlows gives with the currency's secret): a stronger researcher than the API makes, so a pass here
        // holds for the real one.
        const listed = new Map<string, bigint | null>(r.body.cells.map((c: any) => [`${c.payer}>${c.payee}`, c.volume.value == null ? null : toMicros(c.volume.value)]))
        const full = publish(secret(0), figures, by)
        published.set(rangeKey(a, b), full)
        if (isDeepStrictEqual(listed, new Map([...full].filter(([, v]) => v != null)))) mirrored++
        if (b - a === 1 || b - a === W) {
          // CSV says the same as JSON
          const csv = await ctx.call('GET', `/v1/currencies/ATK/reports/flows?by=${by}&from=${day(a)}&to=${day(b)}&format=csv`, { token })
          requests++
          const fromCsv = csv.text.trim().split('\n').slice(1).map(l => l.split(',')).map(x => [`${x[0]}>${x[1]}`, x[2] === 'suppressed' ? null : toMicros(x[2])])
          t.same(new Map(fromCsv as Array<[string, bigint | null]>), listed, `CSV = JSON, ${by} ${day(a)}..${day(b)}`)
        }
      }
    }
    t.equal(mirrored, W * (W + 1) / 2, `${by}: the API publishes what publishFlows gives with the currency's secret, hidden cells left out`)
    const protectedCells = [...truth.values()].reduce((s, m) => s + [...m.values()].filter(x => x.protected).length, 0)
    t.ok(protectedCells > 100, `${by}: ${protectedCells} protected (range, cell)s over ${requests} requests`)

    // what the exports give: a cell is exact on a day it is alone in its margin group
    const parts = await accountParts(ctx.app.pool, currencyId, day(0), W, by)
    const alone = new Map<string, boolean[]>()
    for (let k = 0; k < W; k++) {
      const cells = figuresOf.get(rangeKey(k, k + 1))!
      const group = (f: FlowFigure) => `${marginClass(by, f.payer, localAreas)}>${marginClass(by, f.payee, localAreas)}`
      for (const f of cells) {
        const lone = alone.get(`${f.payer}>${f.payee}`) ?? Array<boolean>(W).fill(false)
        lone[k] = cells.filter(x => group(x) === group(f)).length === 1
        alone.set(`${f.payer}>${f.payee}`, lone)
      }
    }
    // ... but only when the exports do give it: the accounts export withholds the area (or, rarely, the role) of
    // some accounts for k-anonymity, and a researcher cannot place their payments in a group. Such a day is given
    // only if the group's total from the exports is the cell's whole value that day. A lone day the exports do not
    // give is public only if the cell passes the rules on its own that day (a single day's report shows it);
    // otherwise it is part of what the rules protect, and the attack tries to recover it.
    let lone = 0; let notGiven = 0; let sensitive = 0
    const known = new Map<string, boolean[]>()
    for (const [cell, days] of alone) {
      known.set(cell, days.map((a, k) => {
        if (!a) return false
        lone++
        const t = truth.get(rangeKey(k, k + 1))!.get(cell)!
        if (perDay[k].get(t.group) === t.value) return true
        notGiven++
        if (t.protected) sensitive++
        return !t.protected
      }))
    }
    // (the role, which places an account for the sector groups, is the last field k-anonymity withholds)
    t.ok(by === 'sector' || sensitive > 0, `${by}: ${lone} (cell, day)s alone in their margin group; the exports do not give ${notGiven} of them, and ${sensitive} of those fail the rules on their own`)
    const judged = new Map([...truth].map(([key, cells]) => { const [a, b] = key.split(':').map(Number); return [key, exposed(cells, parts, known, a, b)] }))

    const control = attack(W, judged, exact, margins)
    t.ok(control.exact > 50, `${by}, control (as published before: exact, each request suppressed on its own): ${control.exact} of ${control.attacked} protected cells recovered exactly`)
    if (sensitive > 0) {
      // a second control: published as before lone days the exports do not give were hidden (such a day exact, as
      // if the exports gave it), the protected cells' own range sums come within the level; here every range
      // holding such a day is hidden by the rules anyway, so the attack forms no estimate from them (the next
      // test shows a cell that is not so lucky)
      const given = (figures: FlowFigure[]) => figures.map(f => ({ ...f, days: f.days.map(d => ({ ...d, given: true })) }))
      const before = attack(W, judged, new Map([...figuresOf].map(([k, figures]) => [k, publish(secret(0), given(figures), by)])), margins)
      let weak = 0
      for (const [rk, figures] of figuresOf) {
        const sums = publishFlows(secret(0), given(figures), by, localAreas, RULES, decimals)
        figures.forEach((f, j) => {
          const x = judged.get(rk)!.get(`${f.payer}>${f.payee}`)!
          const err = toMicros(sums[j].value) - x.value
          if (x.protected && x.byExports !== true && (err < 0n ? -err : err) * 1_000_000n < x.x1 * BigInt(Math.round(RULES.p * 1e6))) weak++
        })
      }
      t.ok(weak > 0, `${by}, control (lone days exact whether or not the exports give them): ${weak} protected (range, cell)s within the level by their own sums; the attack recovered ${before.recovered.length}, ${before.exact} exactly`)
    }

    // every secret: the attack, and the stronger check that no protected cell's own published sum over a range is
    // within the level, whether or not a researcher could form it (every estimate the attack forms equals that
    // sum, because the noises of a margin group add to zero), unless the cell is hidden in every range holding it
    const patterns = new Set<string>()
    for (let i = 0; i < SECRETS; i++) {
      const key = secret(i)
      const mine = i === 0 ? published : new Map([...figuresOf].map(([k, figures]) => [k, publish(key, figures, by)]))
      const result = attack(W, judged, mine, margins)
      if (i === 0) t.ok(result.attacked > 50, `${by}: ${result.attacked} protected cells attacked (${result.byExports} more are given by the exports)`)
      t.same(result.recovered.slice(0, 5), [], `${by}, secret ${i}: no protected cell recovered within the protection level (${result.recovered.length} of ${result.attacked} were)`)
      t.equal(result.exact, 0, `${by}, secret ${i}: none recovered exactly`)
      const poisoned = new Map<string, boolean[]>()
      for (let k = 0; k < W; k++) {
        const figures = figuresOf.get(rangeKey(k, k + 1))!
        publishFlows(key, figures, by, localAreas, RULES, decimals).forEach((p, j) => {
          const cell = `${figures[j].payer}>${figures[j].payee}`
          const days = poisoned.get(cell) ?? Array<boolean>(W).fill(false)
          days[k] = p.unbalanced === true
          poisoned.set(cell, days)
        })
      }
      let weak = 0; let checked = 0; let hiddenEverywhere = 0
      for (const [rk, figures] of figuresOf) {
        const [a, b] = rk.split(':').map(Number)
        const sums = publishFlows(key, figures, by, localAreas, RULES, decimals)
        const cells = judged.get(rk)!
        figures.forEach((f, j) => {
          const cell = `${f.payer}>${f.payee}`
          const x = cells.get(cell)!
          if (!x.protected || x.byExports === true) return
          if (poisoned.get(cell)!.slice(a, b).some(Boolean)) { hiddenEverywhere++; return }
          checked++
          const err = toMicros(sums[j].value) - x.value
          if ((err < 0n ? -err : err) * 1_000_000n < x.x1 * BigInt(Math.round(RULES.p * 1e6))) weak++
        })
      }
      t.equal(weak, 0, `${by}, secret ${i}: every protected cell's range sum stays outside the level (${checked} checked, ${hiddenEverywhere} hidden in every range holding a day it could not be balanced)`)
      patterns.add([...alone.keys()].map(c => direction(key, `flows|${by}|${c.replace('>', '|')}`) > 0n ? '+' : '-').join(''))
    }
    t.equal(patterns.size, SECRETS, `${by}: the secrets give ${SECRETS} different direction patterns`)

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

// A cell busy enough to be published over most ranges, alone in its margin group on one day, with an account the
// accounts export withholds (so the exports do not give that day): published exactly, that day would come out of
// two published ranges exactly; it is hidden in every range holding it instead.
t.test('a lone day the exports do not give is hidden, not published exactly', async (t) => {
  // a secret under which the two cells go opposite ways, so that days 1 to 3 balance without hiding anything
  const key = (() => { for (let i = 0; ; i++) { const k = secret(100 + i); if (direction(k, 'flows|district|BS6|BS3') !== direction(k, 'flows|district|BS6|BS4')) return k } })()
  const M = 1_000_000n
  const part = (x: bigint) => (x / M).toString()
  // BS6 -> BS3 and BS6 -> BS4 share the group BS:local>BS:local; on day 3 only BS6 -> BS3 trades, one payment
  const day = (k: number, value: bigint, n: number, given: boolean) => ({
    day: `2026-01-0${k + 1}`, value: part(value), count: n === 1 ? 1 : n, top: `acct${k}`, x1: part(value / BigInt(Math.max(1, n - 1))),
    n: n === 1 ? 2 : n, tops: n === 1 ? [part(value), part(value)] : [part(value / 8n), part(value / 8n), part(value / 8n)], given,
  })
  const figures = (days: number, given: boolean): FlowFigure[] => {
    const mine = [0, 1, 2].filter(k => k < days).map(k => day(k, 800n * M, 8, true))
    if (days > 3) mine.push(day(3, 40n * M, 1, given))
    const total = mine.reduce((s, d) => s + toMicros(d.value), 0n)
    const other = [0, 1, 2].filter(k => k < days).map(k => day(k, 500n * M, 8, true))
    return [
      { payer: 'BS6', payee: 'BS3', volume: { value: part(total), n: 24, max: '100', biz: false }, count: '25', tops: ['100', '100', '100'], days: mine },
      { payer: 'BS6', payee: 'BS4', volume: { value: '1500', n: 24, max: '62', biz: false }, count: '24', tops: ['62', '62', '62'], days: other },
    ]
  }
  const published = (days: number, given: boolean) => publishFlows(key, figures(days, given), 'district', ['BS'], RULES, 2)[0]
  const three = published(3, true)
  t.equal(three.verdict, null, 'the first three days are published')
  const asBefore = published(4, true)
  t.equal(asBefore.verdict, null, 'with day 4 taken as given by the exports, the four days are published too')
  t.equal(toMicros(asBefore.value) - toMicros(three.value), 40n * M, '... and their difference is day 4\'s one payment, exactly')
  const now = published(4, false)
  t.same(now.verdict, { reason: 'threshold', complementary: true }, 'not given by the exports: hidden in the four days')
  t.equal(now.unbalanced, true)
  t.same(published(3, false), three, 'ranges without the day are as they were')
})
