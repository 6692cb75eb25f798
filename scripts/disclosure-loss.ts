// npx tsx scripts/disclosure-loss.ts [seed] [time zone]
//
// What a researcher loses to disclosure control on the demo year (docs/disclosure.md): loads the simulated
// Bristol year (default parameters: 1,400 members, 620 businesses, 365 days; seed 1 unless given) into a fresh
// database on the machine's PostgreSQL (as the tests do), then, for the flows report by sector and by district
// (each month and the whole year) and the circulation report (months, weeks, days), counts the cells hidden and
// measures how far the published (perturbed) flows cells are from the truth, and what the rule for lone days the
// exports do not give hides; and the year's holding figures by participant kind. Prints markdown tables. The time
// zone, if given, replaces the simulated currency's own (Europe/London), to see what the zone changes.
import pg from 'pg'
import { RULES, NO_RULES, judge } from '../src/domain/disclosure.js'
import { splitPeriods, tile, type Interval } from '../src/domain/periods.js'
import { catchUp } from '../src/reports/aggregate.js'
import { circulationMetrics, METRICS } from '../src/reports/circulation.metrics.js'
import { circulationFigures } from '../src/reports/circulation.report.js'
import { disclosureKey } from '../src/reports/disclosure-key.js'
import { flowFigures, publishFlows } from '../src/reports/flows.report.js'
import { toMicros } from '../src/reports/stat.js'
import { DEFAULT_PARAMETERS } from '../src/simulator/parameters.js'
import { prepareSimulation, simulatorPool } from '../src/simulator/run.js'
import { createTestDb } from '../support/postgres.js'

const END = new Date('2026-11-01T00:00:00Z')
const seed = Number(process.argv[2] ?? 1)
const params = structuredClone(DEFAULT_PARAMETERS)
params.currency.timeZone = process.argv[3] ?? params.currency.timeZone

const pct = (x: number) => `${(x * 100).toFixed(1)}%`
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]
}

async function main (): Promise<void> {
  const db = await createTestDb()
  const sim = simulatorPool(db.url)
  try {
    const t0 = Date.now()
    const prepared = await prepareSimulation(sim, { seed, end: END, params })
    await prepared.post()
    const pool = new pg.Pool({ connectionString: db.url, max: 2 })
    await catchUp(pool)
    console.error(`loaded ${prepared.total} movements in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
    const id = prepared.currency.id
    const { local_areas: localAreas, decimals } = (await pool.query<{ local_areas: string[], decimals: number }>('SELECT local_areas, decimals FROM currency WHERE id = $1', [id])).rows[0]
    const key = await disclosureKey(pool, id)
    let byKind: string[] = []
    const perMetric: string[] = []
    const start = END.getTime() - 365 * 86_400_000
    const months = splitPeriods(Date.UTC(new Date(start).getUTCFullYear(), new Date(start).getUTCMonth() + 1, 1), END.getTime(), 'month')

    console.log(`Demo year: seed ${seed}, ${params.currency.timeZone}, ${prepared.summary.members} members, ${prepared.summary.businesses} businesses, ${prepared.summary.payments} payments, ${prepared.summary.start} to ${prepared.summary.end}\n`)
    console.log('| flows report | cells | hidden cells | volume in hidden cells | published cells: median error | 90th percentile | cells of 1,000+: median error | hidden for a lone day the exports do not give (cells, volume) |')
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for (const by of ['sector', 'district'] as const) {
      for (const [label, periods] of [['each month', months.map(m => ({ from: m.start, to: m.end }))], ['the year', [{ from: months[0].start, to: END.getTime() }]]] as const) {
        let cells = 0; let hidden = 0; let vol = 0n; let hiddenVol = 0n; let lone = 0; let loneVol = 0n
        const errs: number[] = []; const bigErrs: number[] = []
        for (const p of periods) {
          const figures = await flowFigures(pool, id, tile(p.from, p.to), by)
          const pub = publishFlows(key, figures, by, localAreas, RULES, decimals)
          // the same without the rule for lone days the exports do not give (docs/disclosure.md): what it hides
          const before = publishFlows(key, figures.map(f => ({ ...f, days: f.days.map(d => ({ ...d, given: true })) })), by, localAreas, RULES, decimals)
          figures.forEach((f, i) => {
            const v = toMicros(f.volume.value)
            cells++; vol += v
            if (pub[i].verdict != null && before[i].verdict == null) { lone++; loneVol += v }
            if (pub[i].verdict != null) { hidden++; hiddenVol += v; return }
            const e = Math.abs(Number(toMicros(pub[i].value) - v)) / Number(v)
            errs.push(e)
            if (v >= 1_000_000_000n) bigErrs.push(e)
          })
        }
        console.log(`| by ${by}, ${label} | ${cells} | ${pct(hidden / cells)} | ${pct(Number(hiddenVol) / Number(vol))} | ${pct(quantile(errs, 0.5))} | ${pct(quantile(errs, 0.9))} | ${pct(quantile(bigErrs, 0.5))} (${bigErrs.length} cells) | ${lone} (${pct(lone / cells)}), ${pct(Number(loneVol) / Number(vol))} |`)
      }
    }
    // issued hidden on its own (fewer than 5 recipients, or one business over the dominance share), and issued
    // hidden only by complementary suppression in the period just before one of those (a period's total issued
    // since the start is the previous period's plus its issuance)
    console.log('\n| circulation report | periods | cells hidden (all metrics) | volume hidden | issued hidden | issued hidden on its own | issued hidden the period before one | supply hidden |')
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for (const interval of ['month', 'week', 'day'] as Interval[]) {
      const periods = splitPeriods(months[0].start, END.getTime(), interval)
      const figures = await circulationFigures(pool, id, periods)
      const metrics = circulationMetrics(figures, 2, RULES).slice(1)
      const raw = circulationMetrics(figures, 2, NO_RULES).slice(1)
      const all = metrics.flatMap((m, k) => METRICS.filter(x => raw[k][x].value != null).map(x => m[x].value == null))
      const share = (name: typeof METRICS[number]) => pct(metrics.filter(m => m[name].value == null).length / metrics.length)
      const own = figures.slice(1).map(f => judge(f.issued, RULES) != null)
      const before = metrics.filter((m, k) => m.issued.value == null && !own[k] && own[k + 1] === true).length
      console.log(`| ${interval}s | ${periods.length} | ${pct(all.filter(Boolean).length / all.length)} | ${share('volume')} | ${share('issued')} | ` +
        `${pct(own.filter(Boolean).length / metrics.length)} | ${pct(before / metrics.length)} | ${share('supply')} |`)
      perMetric.push(`${interval}s: ${METRICS.map(x => [x, metrics.filter((m, k) => m[x].value == null && raw[k][x].value != null).length] as const)
        .filter(([, n]) => n > 0).map(([x, n]) => `${x} ${n}`).join(', ')}`)
      if (interval === 'month') {
        const total = circulationMetrics(figures, 2, RULES)[0]
        byKind = ['holdingDays', 'holdingVelocity', 'effectiveShare', 'dormantShare'].map(m =>
          `| ${m} | ${[m, `${m}Member`, `${m}Business`].map(x => total[x as typeof METRICS[number]].value ?? 'hidden').join(' | ')} |`)
        byKind.unshift(`\nHolding figures by kind, the ${periods.length} months as a whole (velocityAnnualised ${total.velocityAnnualised.value ?? 'hidden'}):\n`,
          '| metric | all | members | businesses |', '| --- | --- | --- | --- |')
      }
    }
    console.log(`\nCells hidden per metric (periods):\n\n${perMetric.map(l => `- ${l}`).join('\n')}`)
    console.log(byKind.join('\n'))
    await pool.end()
  } finally {
    await sim.end()
    await db.drop()
  }
}

main().catch((err) => { console.error(err); process.exit(1) })
