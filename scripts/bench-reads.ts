// npm run bench:reads [-- --duration 15] [-- --rate 200] [-- --members 300] [-- --flood 200] [-- --embedded]
//
// Expensive reads cannot starve the ledger. Payments arrive at a fixed rate (autocannon), first alone, then while
// ten researchers each keep asking for the widest reports the API allows (the circulation report by day over a
// year of simulated history: 366 periods; the flows by postcode district over ten years), in alternating rounds
// (alone, with reports, alone, with reports; after a warm-up) so the machine's noise falls on both. Measured:
// payments refused (any non-201) and the payments' p99 latency with and without the reports (the mean of each
// kind's two rounds), as a ratio within this run.
// Target: 0 refused; p99 with reports at most 2x the p99 alone.
//
// With --flood N, two more rounds: one member (who makes no payment of the load) keeps N JSON statement pages in
// flight, each asked again as soon as it is answered, while the payments arrive as before: what one caller's cheap
// reads do to everyone else's payments (the caller share, CALLS_PER_CALLER, bounds them; --env CALLS_PER_CALLER=0
// measures without it).
//
// The service runs as `node dist/server.js` with its defaults (DB_POOL_MAX and READ_POOL_MAX as src/config.ts sets them) on a database of
// its own; the year is the simulator's (src/simulator), loaded through the ledger's write path before the service
// starts. Also run by test-faults/reads.faults.ts (shorter, asserting the refusals only: timing is for the bench).
import autocannon, { type Request as AcRequest } from 'autocannon'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { hashPassword } from '../src/auth/password.js'
import { DEFAULT_PARAMETERS } from '../src/simulator/parameters.js'
import { prepareSimulation, simulatorPool } from '../src/simulator/run.js'
import { seedEconomy } from '../support/economy.js'
import { call } from '../support/http.js'
import { startPostgres, type PgServer } from '../support/postgres.js'
import { buildService, ROOT, startService, type Service } from '../support/service.js'

export interface ReadsBenchOptions {
  /** seconds per round (four rounds) */
  seconds?: number
  /** payments per second offered (fixed arrival rate) */
  rate?: number
  /** researchers, each asking for one wide report after another */
  readers?: number
  /** reads one member keeps in flight in the flood rounds (0: no flood rounds) */
  flood?: number
  /** the simulated year's size */
  members?: number
  businesses?: number
  embedded?: boolean
  /** build dist/ first (the bench does; the faults suite has built it) */
  build?: boolean
  /** the service's environment beyond its defaults */
  env?: Record<string, string>
  log?: (line: string) => void
}

export interface RoundFigures {
  withReports: boolean
  /** the flood round: one member's statement pages kept in flight (answered, and by status) */
  flood?: { answered: number, statuses: Record<string, number> }
  payments: number
  refused: number
  statuses: Record<string, number>
  p50Ms: number
  p99Ms: number
  maxMs: number
  reports: { answered: number, statuses: Record<string, number>, medianMs: number | null }
}

export interface ReadsBenchFigures {
  rate: number
  seconds: number
  readers: number
  simulated: { members: number, businesses: number, movements: number, loadSeconds: number }
  rounds: RoundFigures[]
  refusedWithReports: number
  p99AloneMs: number
  p99WithReportsMs: number
  p99Ratio: number
  /** with --flood: the flood rounds' mean p50 and p99 */
  flood?: { inFlight: number, p50AloneMs: number, p50Ms: number, p99Ms: number }
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? null : s[Math.floor(s.length / 2)] }
const DAY = 86_400_000
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10)

export async function runReadsBench (o: ReadsBenchOptions = {}): Promise<ReadsBenchFigures> {
  const seconds = o.seconds ?? 15
  const rate = o.rate ?? 200
  const readers = o.readers ?? 10
  const log = o.log ?? ((line: string) => { process.stderr.write(`[bench:reads] ${line}\n`) })
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-bench-reads-'))
  let server: PgServer | null = null
  let svc: Service | null = null
  try {
    if (o.build !== false) { log('building (npm run build)'); buildService() }
    server = await startPostgres({ embedded: o.embedded })
    const dbUrl = await server.createDatabase('circulate_reads')

    // a year of history for the reports to chew on, through the ledger's own write path
    const members = o.members ?? 300
    const businesses = o.businesses ?? Math.round(members * 0.44)
    log(`simulating a year: ${members} members, ${businesses} businesses`)
    const t0 = Date.now()
    const sim = simulatorPool(dbUrl)
    const params = structuredClone(DEFAULT_PARAMETERS)
    params.scale = { members, businesses, days: 365 }
    const prepared = await prepareSimulation(sim, { seed: 11, params })
    await prepared.post()
    const loadSeconds = (Date.now() - t0) / 1000
    const movements = prepared.summary.movements
    log(`simulated: ${movements} movements in ${loadSeconds.toFixed(0)} s (currency ${prepared.currency.code})`)
    const hash = await hashPassword('researcher-password', 1024)
    for (let i = 0; i < readers; i++) {
      await sim.query(`INSERT INTO app_user (username, password_hash, role, name, currency_id) VALUES ($1, $2, 'researcher', 'R', $3)`,
        [`reader-${i}`, hash, prepared.currency.id])
    }
    await sim.end()

    svc = await startService({ databaseUrl: dbUrl, logFile: path.join(work, 'service.log'), dataDir: path.join(work, 'data'), env: o.env })
    log(`service on ${svc.url}; seeding 200 payers`)
    const e = await seedEconomy(svc.url, { code: 'PAY', members: 200, funds: '1000000.00' })
    const tokens: string[] = []
    for (let i = 0; i < readers; i++) {
      const r = await call(svc.url, 'POST', '/v1/auth/token', { body: { username: `reader-${i}`, password: 'researcher-password' } })
      if (r.status !== 200) throw new Error(`reader ${i}: ${r.status} ${JSON.stringify(r.body)}`)
      tokens.push(r.body.accessToken as string)
    }
    const code = prepared.currency.code
    const end = Date.parse(prepared.summary.end)
    // the widest the API allows: a year of days (366 periods), and ten years of flows
    const wide = [
      `/v1/currencies/${code}/reports/circulation?interval=day&from=${isoDay(end - 365 * DAY)}&to=${isoDay(end + DAY)}`,
      `/v1/currencies/${code}/reports/flows?by=district&from=${isoDay(end - 3659 * DAY)}&to=${isoDay(end + DAY)}`,
    ]
    for (const url of wide) {
      const r = await call(svc.url, 'GET', url, { token: tokens[0], timeoutMs: 120_000 })
      if (r.status !== 200) throw new Error(`warm-up ${url}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`)
    }

    let seq = 0
    // member 0 pays nothing: it is the flood rounds' caller, whose own requests wait behind its reads
    const pick = (n: number, not = -1) => { for (;;) { const i = 1 + Math.floor(Math.random() * (n - 1)); if (i !== not) return i } }
    const payments: AcRequest[] = [{
      method: 'POST',
      path: `/v1/currencies/${e.code}/payments`,
      setupRequest: (req) => {
        const a = pick(e.members.length); const b = pick(e.members.length, a)
        req.headers = { 'content-type': 'application/json', authorization: `Bearer ${e.members[a].token}`, 'idempotency-key': `rd-${process.pid}-${seq++}` }
        req.body = JSON.stringify({ fromAccount: e.members[a].accountId, toAccount: e.members[b].accountId, amount: `1.${String(seq % 100).padStart(2, '0')}`, channel: 'app', reference: 'bench reads' })
        return req
      },
    }]

    log(`warm-up: ${Math.min(seconds, 5)} s of payments`)
    await autocannon({ url: svc.url, connections: 32, duration: Math.min(seconds, 5), timeout: 30, overallRate: rate, requests: payments })

    const rounds: RoundFigures[] = []
    const flood = o.flood ?? 0
    const flooder = e.members[0]
    const kinds = ['alone', 'reports', 'alone', 'reports', ...(flood > 0 ? ['flood', 'flood'] : [])] as const
    for (const kind of kinds) {
      const withReports = kind === 'reports'
      let running = true
      const reportStatuses: Record<string, number> = {}
      const reportMs: number[] = []
      const loops = withReports
        ? tokens.map(async (token, i) => {
          // eslint-disable-next-line no-unmodified-loop-condition -- set to false when the round ends
          for (let k = i; running; k++) {
            const started = Date.now()
            try {
              const r = await call(svc!.url, 'GET', wide[k % wide.length], { token, timeoutMs: 120_000 })
              reportStatuses[r.status] = (reportStatuses[r.status] ?? 0) + 1
              if (r.status === 200) reportMs.push(Date.now() - started)
              else if (r.status === 429 || r.status === 503) await new Promise(resolve => setTimeout(resolve, 1000))
            } catch (err) {
              reportStatuses.error = (reportStatuses.error ?? 0) + 1
            }
          }
        })
        : []
      const flooding = kind === 'flood'
        ? autocannon({
          url: svc.url, connections: flood, duration: seconds, timeout: 30,
          requests: [{ method: 'GET', path: `/v1/accounts/${flooder.accountId}/statement?limit=100`, headers: { authorization: `Bearer ${flooder.token}` } }],
        })
        : null
      const r = await autocannon({ url: svc.url, connections: 32, duration: seconds, timeout: 30, overallRate: rate, requests: payments })
      running = false
      await Promise.all(loops)
      const fl = flooding == null ? null : await flooding
      const floodStatuses = fl == null ? null : Object.fromEntries(Object.entries(fl.statusCodeStats).map(([st, v]) => [st, (v as { count: number }).count]))
      const statuses = Object.fromEntries(Object.entries(r.statusCodeStats).map(([s, v]) => [s, (v as { count: number }).count]))
      const payments201 = statuses['201'] ?? 0
      const round: RoundFigures = {
        withReports,
        payments: payments201,
        refused: r.non2xx + r.errors + r.timeouts,
        statuses,
        p50Ms: r.latency.p50,
        p99Ms: r.latency.p99,
        maxMs: r.latency.max,
        reports: { answered: reportMs.length, statuses: reportStatuses, medianMs: median(reportMs) },
        ...(floodStatuses != null ? { flood: { answered: floodStatuses['200'] ?? 0, statuses: floodStatuses } } : {}),
      }
      rounds.push(round)
      log(`${withReports ? `with ${readers} wide reports` : kind === 'flood' ? `with one member's ${flood} reads in flight (${JSON.stringify(floodStatuses)})` : 'alone'}: ${payments201} payments (${(payments201 / seconds).toFixed(0)}/s), refused ${round.refused}, p50 ${round.p50Ms} ms, p99 ${round.p99Ms} ms, max ${round.maxMs} ms` +
        (withReports ? `; reports ${JSON.stringify(reportStatuses)}, median ${String(round.reports.medianMs)} ms` : ''))
    }
    const alone = rounds.filter(r => !r.withReports && r.flood == null)
    const loaded = rounds.filter(r => r.withReports)
    const flooded = rounds.filter(r => r.flood != null)
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    const p99AloneMs = mean(alone.map(r => r.p99Ms))
    const p99WithReportsMs = mean(loaded.map(r => r.p99Ms))
    return {
      rate, seconds, readers,
      simulated: { members, businesses, movements, loadSeconds },
      rounds,
      refusedWithReports: loaded.reduce((a, r) => a + r.refused, 0),
      p99AloneMs, p99WithReportsMs, p99Ratio: p99WithReportsMs / Math.max(1, p99AloneMs),
      ...(flooded.length > 0
        ? { flood: { inFlight: flood, p50AloneMs: mean(alone.map(r => r.p50Ms)), p50Ms: mean(flooded.map(r => r.p50Ms)), p99Ms: mean(flooded.map(r => r.p99Ms)) } }
        : {}),
    }
  } finally {
    await svc?.kill().catch(() => {})
    await server?.stop()
    fs.rmSync(work, { recursive: true, force: true })
  }
}

// npm run bench:reads
if (process.argv[1] != null && path.resolve(process.argv[1]) === path.join(ROOT, 'scripts', 'bench-reads.ts')) {
  const args = process.argv.slice(2)
  const option = (name: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : undefined }
  const f = await runReadsBench({
    seconds: Number(option('duration') ?? 15), rate: Number(option('rate') ?? 200), members: Number(option('members') ?? 300),
    embedded: args.includes('--embedded'), flood: Number(option('flood') ?? 0),
    env: Object.fromEntries(args.flatMap((a, i) => a === '--env' ? [args[i + 1].split('=') as [string, string]] : [])),
  })
  console.log(JSON.stringify({ ...f, rounds: f.rounds.map(r => ({ ...r })) }, null, 2))
  console.log(`payments refused while the reports ran: ${f.refusedWithReports} (target 0); p99 alone ${f.p99AloneMs} ms, with reports ${f.p99WithReportsMs} ms: ${f.p99Ratio.toFixed(2)}x (target <= 2)`)
  if (f.flood != null) console.log(`with one member's ${f.flood.inFlight} reads in flight: p50 ${f.flood.p50Ms} ms (alone ${f.flood.p50AloneMs} ms), p99 ${f.flood.p99Ms} ms (alone ${f.p99AloneMs} ms)`)
}
