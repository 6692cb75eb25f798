import cliProgress from 'cli-progress'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { loadConfig } from '../config.js'
import { startEmbeddedPostgres, type EmbeddedDb } from '../db/embedded.js'
import { migrate } from '../db/migrate.js'
import { DEFAULT_PARAMETERS, withOverrides } from './parameters.js'
import { generate, prepareSimulation, simulatorPool, type SimulationSummary } from './run.js'

// npm run simulate -- --members N --businesses N --days N --seed N [--currency CODE] [--set path=value ...]
//                     [--end YYYY-MM-DD] [--database-url URL] [--dry-run]
// Loads a simulated economy into a new currency. Without --database-url (or DATABASE_URL) it uses the embedded
// PostgreSQL of DATA_DIR: the running `npm start` one if it is up, else it starts it for the run.

const HELP = `Usage: npm run simulate -- [options]
  --members N          members (default ${DEFAULT_PARAMETERS.scale.members})
  --businesses N       businesses, the council included (default ${DEFAULT_PARAMETERS.scale.businesses})
  --days N             days simulated, ending at --end (default ${DEFAULT_PARAMETERS.scale.days})
  --seed N             seed of the random generator: same seed, same economy (default 1)
  --currency CODE      currency to create (default ${DEFAULT_PARAMETERS.currency.code}); must not exist yet
  --name NAME          its display name
  --set path=value     override a parameter of src/simulator/parameters.ts, e.g. --set currency.redemptionFee=0
  --end YYYY-MM-DD     the day after the last simulated day (default: today, UTC)
  --database-url URL   PostgreSQL to load into (default: DATABASE_URL, else the embedded database of DATA_DIR)
  --dry-run            simulate in memory and print the figures; write nothing
`

function fail (msg: string): never {
  process.stderr.write(`simulate: ${msg}\n\n${HELP}`)
  process.exit(2)
}

function intOption (v: string | undefined, name: string, min: number): number | undefined {
  if (v == null) return undefined
  if (!/^[0-9]+$/.test(v) || Number(v) < min) fail(`--${name} must be a whole number >= ${min}`)
  return Number(v)
}

const { values } = parseArgs({
  options: {
    members: { type: 'string' }, businesses: { type: 'string' }, days: { type: 'string' }, seed: { type: 'string' },
    currency: { type: 'string' }, name: { type: 'string' }, set: { type: 'string', multiple: true },
    end: { type: 'string' }, 'database-url': { type: 'string' }, 'dry-run': { type: 'boolean' }, help: { type: 'boolean' },
  },
  strict: true,
})
if (values.help === true) { process.stdout.write(HELP); process.exit(0) }

const overrides: Record<string, string> = {}
for (const s of values.set ?? []) {
  const i = s.indexOf('=')
  if (i <= 0) fail(`--set wants path=value, got ${s}`)
  overrides[s.slice(0, i)] = s.slice(i + 1)
}
let params
try { params = withOverrides(DEFAULT_PARAMETERS, overrides) } catch (err) { fail((err as Error).message) }
params.scale.members = intOption(values.members, 'members', 2) ?? params.scale.members
params.scale.businesses = intOption(values.businesses, 'businesses', 2) ?? params.scale.businesses
params.scale.days = intOption(values.days, 'days', 1) ?? params.scale.days
if (values.currency != null) params.currency.code = values.currency.toUpperCase()
if (values.name != null) params.currency.name = values.name
const seed = intOption(values.seed, 'seed', 0) ?? 1
let end: Date | undefined
if (values.end != null) {
  end = new Date(`${values.end}T00:00:00Z`)
  if (!/^\d{4}-\d{2}-\d{2}$/.test(values.end) || Number.isNaN(end.getTime())) fail('--end must be a date such as 2026-11-27')
  if (end.getTime() > Date.now()) fail('--end must not be in the future: the ledger never dates a transfer ahead')
}

function print (s: SimulationSummary, seconds?: number) {
  const rows = Object.entries(s.byPurpose).sort((a, b) => b[1] - a[1]).map(([k, v]) => `    ${k.padEnd(12)} ${String(v).padStart(7)}`)
  process.stdout.write(`\n${s.currency}: ${s.members} members, ${s.businesses} businesses, ${s.start.slice(0, 10)} to ${s.end.slice(0, 10)}\n` +
    `  movements ${s.movements} (payments ${s.payments})${seconds != null ? ` in ${seconds.toFixed(1)} s` : ''}\n${rows.join('\n')}\n` +
    `  issued ${s.issued}, redeemed ${s.redeemed} (fee included), payment volume ${s.paymentVolume}, fees ${s.fees}\n` +
    `  in circulation at the end ${s.supplyAtEnd}, peak ${s.peakSupply}\n` +
    `  standing orders: ${s.standingOrders.wages} for wages, ${s.standingOrders.rates} for business rates; occurrences paid ` +
    `${s.standingOrders.paid}, refused once ${s.standingOrders.retried}, failed ${s.standingOrders.failed}\n`)
}

if (values['dry-run'] === true) {
  print(generate({ seed, end, params }).summary)
  process.exit(0)
}

const config = loadConfig()
let embedded: EmbeddedDb | null = null
let url = values['database-url'] ?? config.DATABASE_URL
if (url == null) {
  const running = `postgresql://postgres:postgres@127.0.0.1:${config.EMBEDDED_PG_PORT}/circulate`
  const probe = new pg.Client({ connectionString: running, connectionTimeoutMillis: 1000 })
  const up = await probe.connect().then(() => true, () => false)
  await probe.end().catch(() => {})
  if (up) url = running
  else {
    embedded = await startEmbeddedPostgres(config.DATA_DIR, config.EMBEDDED_PG_PORT, m => process.stderr.write(`${m}\n`))
    url = embedded.url
  }
}
await migrate(url)
const pool = simulatorPool(url)
const controller = new AbortController()
process.once('SIGINT', () => { controller.abort() })
const started = Date.now()
try {
  const sim = await prepareSimulation(pool, { seed, end, params })
  const bar = new cliProgress.SingleBar({
    format: 'simulating {bar} {percentage}% | {value}/{total} movements | {eta_formatted} left',
    noTTYOutput: true, notTTYSchedule: 5000,
  }, cliProgress.Presets.shades_classic)
  bar.start(sim.total, 0)
  const r = await sim.post(done => { bar.update(done) }, controller.signal)
  bar.stop()
  if (!r.complete) {
    process.stdout.write(`interrupted after ${r.posted} of ${sim.total} movements; ${sim.currency.code} holds them\n`)
    process.exitCode = 130
  } else {
    print(sim.summary, (Date.now() - started) / 1000)
  }
} catch (err) {
  process.stderr.write(`simulate: ${(err as Error).message}\n`)
  process.exitCode = 1
} finally {
  await pool.end()
  await embedded?.stop()
}
