// npx tsx scripts/disclosure-loss.ts [seed]
//
// What a researcher loses to disclosure control on the demo year (docs/disclosure.md): loads the simulated
// Bristol year (default parameters: 1,400 members, 620 businesses, 365 days; seed 1 unless given) into a fresh
// database on the machine's PostgreSQL (as the tests do), then, for the flows report by sector and by district
// (each month and the whole year) and the circulation report (months, weeks, days), counts the cells hidden and
// measures how far the published (perturbed) flows cells are from the truth, and what the rule for lone days the
// exports do not give hides; and the year's holding figures by participant kind. Prints markdown tables.
import pg from 'pg'
import { RULES, NO_RULES } from '../src/domain/disclosure.js'
import { splitPeriods, tile, type Interval } from '../src/domain/periods.js'
import { catchUp } from '../src/reports/aggregate.js'
import { circulationMetrics, METRICS } from '../src/reports/circulation.metrics.js'
import { circulationFigures } from '../src/reports/circulation.report.js'
import { disclosureKey } from '../src/reports/disclosure-key.js'
import { flowFigures, publishFlows } from '../src/reports/flows.report.js'
import { toMicros } from '../src/reports/stat.js'
import { prepareSimulation, simulatorPool } from '../src/simulator/run.js'
import { createTestDb } from '../support/postgres.js'

const END = new Date('2026-11-01T00:00:00Z')
const seed = Number(process.argv[2] ?? 1)

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
    const prepared = await prepareSimulation(sim, { seed, end: END })
    await prepared.post()
    const pool = new pg.Pool({ connectionString: db.url, max: 2 })
    await catchUp(pool)
    console.error(`loaded ${prepared.total} movements in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
    const id = prepared.currency.id
    const localAreas = (await pool.query<{ local_areas: string[] }>('SELECT local_areas FROM currency WHERE id = $1', [id])).rows[0].local_areas
    const key = await disclosureKey(pool, id)
    let byKind: string[] = []
    const start = END.getTime() - 365 * 86_400_000
    const months = splitPeriods(Date.UTC(new Date(start).getUTCFullYear(), new Date(start).getUTCMonth() + 1, 1), END.getTime(), 'month')

    console.log(`Demo year: seed ${seed}, ${prepared.summary.members} members, ${prepared.summary.businesses} businesses, ${prepared.summary.payments} payments, ${prepared.summary.start} to ${prepared.summary.end}\n`)
    console.log('| flows report | cells | hidden cells | volume in hidden cells | published cells: median error | 90th percentile | cells of 1,000+: median error | hidden for a lone day the exports do not give (cells, volume) |')
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for (const by of ['sector', 'district'] as const) {
      for (const [label, periods] of [['each month', months.map(m => ({ from: m.start, to: m.end }))], ['the year', [{ from: months[0].start, to: END.getTime() }]]] as const) {
        let cells = 0; let hidden = 0; let vol = 0n; let hiddenVol = 0n; let lone = 0; let loneVol = 0n
        const errs: number[] = []; const bigErrs: number[] = []
        for (const p of periods) {
          const figures = await flowFigures(pool, id, tile(p.from, p.to), by)
          const pub = publishFlows(key, figures, by, localAreas, RULES)
          // the same without the rule for lone days the exports do not give (docs/disclosure.md): what it hides
          const before = publishFlows(key, figures.map(f => ({ ...f, days: f.days.map(d => ({ ...d, given: true })) })), by, localAreas, RULES)
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
    console.log('\n| circulation report | periods | cells hidden (all metrics) | volume hidden | issued hidden | supply hidden |')
    console.log('| --- | --- | --- | --- | --- | --- |')
    for (const interval of ['month', 'week', 'day'] as Interval[]) {
      const periods = splitPeriods(months[0].start, END.getTime(), interval)
      const figures = await circulationFigures(pool, id, periods)
      const metrics = circulationMetrics(figures, 2, RULES).slice(1)
      const raw = circulationMetrics(figures, 2, NO_RULES).slice(1)
      const all = metrics.flatMap((m, k) => METRICS.filter(x => raw[k][x].value != null).map(x => m[x].value == null))
      const share = (name: typeof METRICS[number]) => pct(metrics.filter(m => m[name].value == null).length / metrics.length)
      console.log(`| ${interval}s | ${periods.length} | ${pct(all.filter(Boolean).length / all.length)} | ${share('volume')} | ${share('issued')} | ${share('supply')} |`)
      if (interval === 'month') {
        const total = circulationMetrics(figures, 2, RULES)[0]
        byKind = ['holdingDays', 'holdingVelocity', 'effectiveShare', 'dormantShare'].map(m =>
          `| ${m} | ${[m, `${m}Member`, `${m}Business`].map(x => total[x as typeof METRICS[number]].value ?? 'hidden').join(' | ')} |`)
        byKind.unshift(`\nHolding figures by kind, the ${periods.length} months as a whole (velocityAnnualised ${total.velocityAnnualised.value ?? 'hidden'}):\n`,
          '| metric | all | members | businesses |', '| --- | --- | --- | --- |')
      }
    }
    console.log(byKind.join('\n'))
    await pool.end()
  } finally {
    await sim.end()
    await db.drop()
  }
}

main().catch((err) => { console.error(err); process.exit(1) })
