// npx tsx scripts/bench-holding.ts [members] [businesses] [days]
//
// What the holding-period trace costs (docs/metrics.md, "Holding time"): loads a simulated economy (the default
// parameters at the given scale; the whole demo year unless told) into a fresh database on the machine's
// PostgreSQL (as the tests do), then times a replay of the whole history from nothing, a replay after one new
// payment today's way (from the last checkpoint), and the holding figures of a 12-month report read cold and
// warm. Prints one line per figure.
import { DAY_MS, splitPeriods, tile } from '../src/domain/periods.js'
import { catchUp } from '../src/reports/aggregate.js'
import { clearGraphCache } from '../src/reports/graph-cache.js'
import { holdingFigures, traceHolding } from '../src/reports/holding.js'
import { DEFAULT_PARAMETERS } from '../src/simulator/parameters.js'
import { prepareSimulation, simulatorPool } from '../src/simulator/run.js'
import { createTestDb } from '../support/postgres.js'

const END = new Date('2026-11-01T00:00:00Z')
const [members = 1400, businesses = 620, days = 365] = process.argv.slice(2).map(Number)

async function main (): Promise<void> {
  const db = await createTestDb()
  const pool = simulatorPool(db.url)
  try {
    const params = structuredClone(DEFAULT_PARAMETERS)
    params.scale = { members, businesses, days }
    const prepared = await prepareSimulation(pool, { seed: 1, end: END, params })
    await prepared.post()
    const currencyId = prepared.currency.id
    await catchUp(pool)
    const n = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM transfer WHERE currency_id = $1', [currencyId])).rows[0].n)
    const time = async (f: () => Promise<unknown>) => { const t0 = performance.now(); await f(); return Math.round(performance.now() - t0) }

    await pool.query('DELETE FROM circ_holding_day WHERE currency_id = $1', [currencyId])
    await pool.query('DELETE FROM circ_holding_checkpoint WHERE currency_id = $1', [currencyId])
    await pool.query(`INSERT INTO circ_holding_mark AS m (currency_id, at, version)
      SELECT currency_id, min(created_at), 1 FROM transfer WHERE currency_id = $1 GROUP BY 1
      ON CONFLICT (currency_id) DO UPDATE SET at = LEAST(m.at, excluded.at), version = m.version + 1`, [currencyId])
    const full = await time(() => traceHolding(pool))
    // one new transfer on the last traced day: the replay starts at that day's checkpoint
    await pool.query(`INSERT INTO circ_holding_mark AS m (currency_id, at, version)
      SELECT currency_id, max(created_at), 1 FROM transfer WHERE currency_id = $1 GROUP BY 1
      ON CONFLICT (currency_id) DO UPDATE SET at = LEAST(m.at, excluded.at), version = m.version + 1`, [currencyId])
    const today = await time(() => traceHolding(pool))
    const checkpoints = (await pool.query<{ n: string, bytes: string }>(`SELECT count(*) AS n, sum(pg_column_size(state)) AS bytes
      FROM circ_holding_checkpoint WHERE currency_id = $1`, [currencyId])).rows[0]
    const stored = (await pool.query<{ n: string, bytes: string }>(`SELECT count(*) AS n, sum(pg_column_size(figures) + pg_column_size(dormancy)) AS bytes
      FROM circ_holding_day WHERE currency_id = $1`, [currencyId])).rows[0]

    const from = END.getTime() - 365 * DAY_MS
    const first = Date.UTC(new Date(from).getUTCFullYear(), new Date(from).getUTCMonth() + 1, 1)
    const periods = splitPeriods(first, Date.UTC(END.getUTCFullYear(), END.getUTCMonth(), 1), 'month')
    const all = [{ start: periods[0].start, end: periods[periods.length - 1].end, buckets: tile(periods[0].start, periods[periods.length - 1].end) }, ...periods]
    clearGraphCache()
    const cold = await time(() => holdingFigures(pool, currencyId, all))
    const warm = await time(() => holdingFigures(pool, currencyId, all))

    console.log(`transfers: ${n} (${members} members, ${businesses} businesses, ${days} days)`)
    console.log(`full replay from nothing: ${full} ms`)
    console.log(`replay after a new transfer on the last day: ${today} ms`)
    console.log(`checkpoints: ${checkpoints.n}, ${Math.round(Number(checkpoints.bytes) / 1024)} kB; traced days: ${stored.n}, ${Math.round(Number(stored.bytes) / 1024)} kB`)
    console.log(`holding figures of a ${periods.length}-month report and its total: cold ${cold} ms, warm ${warm} ms`)
  } finally {
    await pool.end()
    await db.drop()
  }
}

await main()
