// npm run bench:reports [-- 100000,1000000]
//
// How fast the circulation report answers over a large ledger, and what keeping its aggregates costs the write
// path. For each size it builds a fresh database (the machine's PostgreSQL on 127.0.0.1:5432, TEST_DATABASE_URL,
// or an embedded PostgreSQL: the same provisioning as the tests), loads a Bristol-sized economy through the
// ledger, folds it into the aggregates, and times the monthly report over the 12 months through the HTTP layer
// (app.inject: routing, auth, validation, serialisation included).
//
// Honesty notes:
// - Every movement is built by src/domain/movements.ts and posted through the ledger's one write path
//   (src/ledger/post.ts), with an idempotency key, as the service posts it, a few hundred movements per call.
//   Participants and their accounts are plain inserts (they move no money).
// - The year of history needs past timestamps: the load runs on a tooling session and sets each movement's time
//   through the ledger clock (the same mechanism as the demo's simulator). Load speed here is not the service's
//   (commits do not wait for the disk, calls are large); the write-path overhead of the aggregates is measured
//   separately, at the service's own settings.
// - Each timed request drains what is queued (nothing, except after the new payments) and reads what the
//   aggregates and the report caches hold: bucket summaries, whole-range figures kept until a drain touches the
//   range, and the settled buckets' links and per-account sums kept in memory (src/reports/graph-cache.ts,
//   account-cache.ts); the after-new-payments rounds check that the report counted every new payment.
import Fastify from 'fastify'
import { performance } from 'node:perf_hooks'
import v8 from 'node:v8'
import vm from 'node:vm'
import pg from 'pg'
import app, { serverOptions } from '../src/app.js'
import { generateJwk, keySetFromJwks } from '../src/auth/keys.js'
import { loadConfig } from '../src/config.js'
import { Money } from '../src/domain/money.js'
import { issuance, payment, redemption, reversal, type LedgerCurrency, type Movement } from '../src/domain/movements.js'
import type { TransferRow } from '../src/domain/transfer-view.js'
import { postMovement, postMovements, type MovementItem } from '../src/ledger/post.js'
import { catchUp } from '../src/reports/aggregate.js'
import { budgetBytes, entries, heldBytes } from '../src/reports/report-cache.js'
import type { Channel } from '../src/schemas/ledger.js'
import { SIMULATOR_APPLICATION_NAME } from '../src/simulator/run.js'
import { createTestDb } from '../support/postgres.js'
import { startProfile } from './cpu-profile.js'

type LegOut = TransferRow

/** A full garbage collection, without starting node with --expose-gc. */
v8.setFlagsFromString('--expose-gc')
const collect = vm.runInNewContext('gc') as () => void

export interface LatencyFigures { firstMs: number, medianMs: number, p95Ms: number, runs: number }
export interface SizeFigures {
  transfers: number
  loadSeconds: number
  /** simulated clock installed: not the service's write throughput */
  loadTransfersPerSecond: number
  aggregateSeconds: number
  aggregateTransfersPerSecond: number
  accountBucketRows: number
  pairBucketRows: number
  /** whole-range figures cached (the common case: the background aggregator refreshes them after new transfers) */
  monthly12: LatencyFigures
  /** whole-range figures computed by the request (the first request after new transfers in the range) */
  monthly12Cold: LatencyFigures
  /** the first request after 100 new payments landed in the range's last month: it catches the aggregates up
   *  (drain, the dirty buckets' summaries) and recomputes the whole-range figures, all inside the request */
  monthly12AfterPayments: LatencyFigures
  weekly52: LatencyFigures
  flowsBySector12: LatencyFigures
}
export interface WriteOverheadFigures {
  /** the queue trigger alone, per INSERT statement, server side (measured in the synchronous_commit off round) */
  triggerPerInsertUs: number | null
  synchronousCommit: boolean
  /** median per-call latency of posting one payment (with its fee leg), one client, microseconds */
  sequentialWithoutUs: number
  sequentialWithUs: number
  /** 8 clients in parallel, transfers (legs) per second */
  parallelWithout: number
  parallelWith: number
  callsPerSide: number
}
export interface ReportsBenchFigures { sizes: SizeFigures[], writeOverhead: WriteOverheadFigures[] }

export interface ReportsBenchOptions {
  sizes?: number[]
  requests?: number
  overhead?: boolean
  log?: (line: string) => void
}

const START = Date.UTC(2025, 10, 1) // 12 whole months: 2025-11-01 .. 2026-11-01
const DAYS = 365
const DAY = 86_400_000
const CODE = 'BENCH'
const MEMBERS = 1400 // Bristol's published figures: about 1,400 personal and 620 business accounts
const BUSINESSES = 620
const SECTORS = ['food', 'cafes-pubs', 'retail', 'services', 'trades', 'arts', 'health', 'other']
const SECTOR_WEIGHTS = [20, 18, 22, 14, 10, 5, 6, 5]
const LOCAL = ['BS1', 'BS2', 'BS3', 'BS4', 'BS5', 'BS6', 'BS7', 'BS8', 'BS9', 'BS13', 'BS14', 'BS16']
const AWAY = ['BA1', 'BA2', 'GL1', 'NP20', 'TA1']

/** Deterministic randomness, so two runs build the same economy. */
function rng (seed: number) {
  let s = seed >>> 0
  const next = () => {
    s = (s + 0x6D2B79F5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)],
    weighted: (w: readonly number[]) => {
      let r = next() * w.reduce((a, b) => a + b, 0)
      for (let i = 0; i < w.length; i++) { r -= w[i]; if (r < 0) return i }
      return w.length - 1
    },
    /** pence, roughly log-normal around `mean` pounds */
    amount: (mean: number, min = 1) => Math.max(min * 100, Math.round(mean * 100 * Math.exp((next() + next() + next() - 1.5) * 1.2) / 1.27)),
  }
}

interface Economy {
  currencyId: string
  currency: LedgerCurrency
  system: { issuance: string, fees: string, paper: string }
  members: string[]
  businesses: string[]
}

async function createEconomy (pool: pg.Pool, r: ReturnType<typeof rng>): Promise<Economy> {
  const c = await pool.query<{ id: string }>(`INSERT INTO currency (code, name, backing, decimals, fee_text, fee_app, fee_online, fee_api, fee_till, redemption_fee, local_areas)
    VALUES ($1, 'Bench Pound', 'GBP', 2, 0.02, 0.02, 0.01, 0.01, 0.01, 0.03, '{BS}') RETURNING id`, [CODE])
  const currencyId = c.rows[0].id
  const sys = await pool.query<{ id: string, system_kind: string }>(`INSERT INTO account (currency_id, system_kind, floor, ceiling)
    VALUES ($1, 'issuance', NULL, 0), ($1, 'fees', 0, NULL), ($1, 'paper', 0, NULL) RETURNING id, system_kind`, [currencyId])
  const system = Object.fromEntries(sys.rows.map(a => [a.system_kind, a.id])) as Economy['system']
  const joined = new Date(START - 30 * DAY).toISOString()
  const insert = async (kind: 'member' | 'business', n: number) => {
    const districts = Array.from({ length: n }, () => r.next() < (kind === 'member' ? 0.9 : 0.95) ? r.pick(LOCAL) : r.pick(AWAY))
    const sectors = Array.from({ length: n }, () => kind === 'business' ? SECTORS[r.weighted(SECTOR_WEIGHTS)] : null)
    const rows = await pool.query<{ id: string }>(`
      WITH p AS (
        INSERT INTO participant (currency_id, kind, name, postcode, district, sector, independent, created_at)
        SELECT $1, $2, $2 || ' ' || i, d || ' 1AA', d, s, CASE WHEN s IS NULL THEN NULL ELSE true END, $5
          FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS x (d, s, i)
        RETURNING id
      )
      INSERT INTO account (currency_id, participant_id, floor, created_at) SELECT $1, id, 0, $5 FROM p RETURNING id`,
    [currencyId, kind, districts, sectors, joined])
    return rows.rows.map(x => x.id)
  }
  return { currencyId, currency: benchCurrency(currencyId, system), system, members: await insert('member', MEMBERS), businesses: await insert('business', BUSINESSES) }
}

/** The currency as createEconomy() makes it, for src/domain/movements.ts. */
function benchCurrency (id: string, system: Economy['system']): LedgerCurrency {
  const m = (x: string) => new Money(x)
  return { id, decimals: 2, system, redemptionFee: m('0.03'), fees: { text: m('0.02'), app: m('0.02'), online: m('0.01'), api: m('0.01'), till: m('0.01') } }
}

const bench = (m: Movement, key: string | null): MovementItem => ({ ...m, scope: 'bench', idempotencyKey: key, requestHash: 'h', createdBy: 'bench', owner: null })

type Kind = 'issue' | 'm2b' | 'm2m' | 'b2b' | 'wage' | 'redeem' | 'reverse'
interface Planned { kind: Kind, at: number, from?: string, to?: string, of?: Posted }
interface Posted { payer: string, payee: string, pence: number, feePence: number, legs?: LegOut[] }

/** Loads about `target` transfers over the 12 months through the ledger's write path; returns how many it wrote. */
async function load (pool: pg.Pool, e: Economy, target: number, log: (s: string) => void): Promise<number> {
  const r = rng(target)
  // who buys where: a few regular shops each, drawn by popularity; a couple of friends; suppliers; staff
  const popularity = e.businesses.map((_, i) => 1 / (i + 8))
  const favourites = new Map(e.members.map(m => [m, Array.from({ length: 3 + r.int(6) }, () => e.businesses[r.weighted(popularity)])]))
  const friends = new Map(e.members.map(m => [m, Array.from({ length: 2 }, () => r.pick(e.members))]))
  const suppliers = new Map(e.businesses.map(b => [b, Array.from({ length: 2 + r.int(4) }, () => e.businesses[r.weighted(popularity)])]))
  const staff = new Map(e.businesses.map(b => [b, Array.from({ length: 1 + r.int(3) }, () => r.pick(e.members))]))
  const topUpDay = new Map(e.members.map(m => [m, r.int(28)]))
  const redeemDay = new Map(e.businesses.map(b => [b, r.int(28)]))

  // economic payments: about two transfers each (the payment and its fee), after the monthly top-ups and redemptions
  const payments = Math.max(1000, Math.round((target - MEMBERS * 12 - BUSINESSES * 12 * 2) / 2.02))
  const memberSpendPerMonth = payments * 0.75 / MEMBERS / 12 * 14
  const spendable = new Map<string, number>()
  const pending = new Map<string, number>()
  const credit = (a: string, p: number) => pending.set(a, (pending.get(a) ?? 0) + p)
  const take = (a: string, want: number) => { const have = spendable.get(a) ?? 0; const p = Math.min(want, have); spendable.set(a, have - p); return p }
  const later: Planned[][] = Array.from({ length: DAYS + 4 }, () => [])

  let written = 0
  let fixedWritten = 0
  let paymentsPosted = 0
  let paymentLegs = 0
  let seq = 0
  let nextLog = 0.1
  for (let d = 0; d < DAYS; d++) {
    const day0 = START + d * DAY
    const dom = new Date(day0).getUTCDate() - 1
    const weekday = new Date(day0).getUTCDay()
    const plan: Planned[] = [...later[d]]
    for (const m of e.members) if (topUpDay.get(m) === dom) plan.push({ kind: 'issue', at: day0 + 9 * 3_600_000 + r.int(8 * 3_600_000), to: m })
    for (const b of e.businesses) if (redeemDay.get(b) === dom) plan.push({ kind: 'redeem', at: day0 + 17 * 3_600_000 + r.int(3_600_000), from: b })
    // steer towards the target: what is left, less the top-ups and redemptions still to come, over the days left
    const fixedPerDay = d > 0 ? fixedWritten / d : (MEMBERS * 12 + BUSINESSES * 24) / DAYS
    const legsPerPayment = paymentsPosted > 0 ? paymentLegs / paymentsPosted : 2
    const perDay = Math.max(0, (target - written) / (DAYS - d) - fixedPerDay) / legsPerPayment
    const today = Math.round(perDay * (weekday === 6 ? 1.3 : weekday === 0 ? 0.7 : 1))
    for (let i = 0; i < today; i++) {
      const at = day0 + 7 * 3_600_000 + r.int(14 * 3_600_000)
      const x = r.next()
      if (x < 0.70) { const m = r.pick(e.members); plan.push({ kind: 'm2b', at, from: m, to: r.next() < 0.9 ? r.pick(favourites.get(m)!) : r.pick(e.businesses) }) } else if (x < 0.75) { const m = r.pick(e.members); plan.push({ kind: 'm2m', at, from: m, to: r.pick(friends.get(m)!) }) } else if (x < 0.88) { const b = r.pick(e.businesses); plan.push({ kind: 'b2b', at, from: b, to: r.pick(suppliers.get(b)!) }) } else { const b = r.pick(e.businesses); plan.push({ kind: 'wage', at, from: b, to: r.pick(staff.get(b)!) }) }
    }
    plan.sort((a, b) => a.at - b.at)

    // post in chunks, one ledger call each, in time order; money received in a chunk becomes spendable in the next
    const c = e.currency
    for (let i = 0; i < plan.length; i += 256) {
      const items: MovementItem[] = []
      const times: Date[] = []
      const after: Array<(legs: LegOut[]) => void> = []
      const add = (p: Planned, m: Movement, then: (legs: LegOut[]) => void) => {
        items.push(bench(m, `bench-${++seq}`)); times.push(new Date(p.at)); after.push(then)
      }
      const money = (pence: number) => new Money(pence).div(100)
      const pence = (m: Money) => m.times(100).toNumber()
      for (const p of plan.slice(i, i + 256)) {
        const kind = p.kind
        const count = (legs: LegOut[]) => {
          written += legs.length
          if (kind === 'issue' || kind === 'redeem') fixedWritten += legs.length
          else if (kind !== 'reverse') { paymentsPosted++; paymentLegs += legs.length }
        }
        if (p.kind === 'issue') {
          const amount = Math.round(memberSpendPerMonth * 100 * (0.6 + r.next()))
          credit(p.to!, amount)
          add(p, issuance(c, { to: p.to!, amount: money(amount), sterlingReference: null }), count)
        } else if (p.kind === 'redeem') {
          const gross = take(p.from!, Math.floor((spendable.get(p.from!) ?? 0) * 0.6))
          if (gross < 10_000) { spendable.set(p.from!, (spendable.get(p.from!) ?? 0) + gross); continue }
          add(p, redemption(c, { from: p.from!, amount: money(gross) }), count)
        } else if (p.kind === 'reverse') {
          const o = p.of!
          if (o.legs == null) continue
          const back = take(o.payee, o.pence - o.feePence)
          if (back < o.pence - o.feePence) { spendable.set(o.payee, (spendable.get(o.payee) ?? 0) + back); continue }
          credit(o.payer, o.pence)
          add(p, reversal(c, o.legs), count)
        } else {
          if (p.from === p.to) continue
          const mean = p.kind === 'm2b' ? 12 : p.kind === 'm2m' ? 15 : p.kind === 'b2b' ? 25 : 30
          const paid = take(p.from!, r.amount(mean))
          if (paid < 50) { spendable.set(p.from!, (spendable.get(p.from!) ?? 0) + paid); continue }
          const channel: Channel = p.kind === 'm2b' ? (r.next() < 0.55 ? 'till' : r.next() < 0.8 ? 'app' : 'text') : 'online'
          const m = payment(c, { from: p.from!, to: p.to!, amount: money(paid), channel })
          const feePence = m.legs.length > 1 ? pence(m.legs[1].amount) : 0
          credit(p.to!, paid - feePence)
          const posted: Posted = { payer: p.from!, payee: p.to!, pence: paid, feePence }
          add(p, m, (legs) => { count(legs); posted.legs = legs })
          // a few mistakes are put right a day or two later
          // (planned on the day its time falls in: the ledger clock only moves forward)
          if (r.next() < 0.002) { const at = p.at + DAY + r.int(DAY); later[Math.floor((at - START) / DAY)].push({ kind: 'reverse', at, of: posted }) }
        }
      }
      const out = await postMovements(pool, e.currencyId, items, { at: times })
      out.results.forEach((res, k) => {
        if (!res.ok) throw new Error(`the ledger refused a planned movement: ${res.error.code} ${res.error.message}`)
        after[k](res.legs)
      })
      for (const [a, p] of pending) spendable.set(a, (spendable.get(a) ?? 0) + p)
      pending.clear()
    }
    if (written >= target * nextLog) { log(`  ${written.toLocaleString('en-GB')} transfers (day ${d + 1} of ${DAYS})`); nextLog += 0.1 }
  }
  return written
}

function latency (ms: number[], first: number): LatencyFigures {
  const s = [...ms].sort((a, b) => a - b)
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]
  return { firstMs: round(first), medianMs: round(q(0.5)), p95Ms: round(q(0.95)), runs: ms.length }
}
const round = (x: number) => Math.round(x * 10) / 10

async function timeRequests (server: ReturnType<typeof Fastify>, url: string, token: string, n: number): Promise<LatencyFigures> {
  const once = async () => {
    const t0 = performance.now()
    const res = await server.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })
    const ms = performance.now() - t0
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body.slice(0, 300)}`)
    return ms
  }
  const first = await once()
  const ms: number[] = []
  for (let i = 0; i < n; i++) ms.push(await once())
  return latency(ms, first)
}

/** BENCH_REUSE=<database url> (a database kept with BENCH_KEEP=1): measure the reports again without loading. */
async function measureExisting (url: string, o: Required<ReportsBenchOptions>): Promise<SizeFigures> {
  const pool = new pg.Pool({ connectionString: url, max: 2, application_name: SIMULATOR_APPLICATION_NAME })
  pool.on('error', () => {})
  try {
    const economy = await existingEconomy(pool)
    const rows = (await pool.query<{ t: string, a: string, p: string }>(`SELECT (SELECT count(*) FROM transfer) AS t,
      (SELECT count(*) FROM circ_account_bucket) AS a, (SELECT count(*) FROM circ_pair_bucket) AS p`)).rows[0]
    o.log(`reusing ${url}: ${Number(rows.t).toLocaleString('en-GB')} transfers`)
    await catchUp(pool)
    const timed = await measureReports(url, economy.currencyId, o, pool, economy)
    return {
      transfers: Number(rows.t), loadSeconds: 0, loadTransfersPerSecond: 0, aggregateSeconds: 0, aggregateTransfersPerSecond: 0,
      accountBucketRows: Number(rows.a), pairBucketRows: Number(rows.p), ...timed,
    }
  } finally {
    await pool.end()
  }
}

async function measureSize (transfers: number, o: Required<ReportsBenchOptions>): Promise<SizeFigures> {
  const db = await createTestDb()
  // Commits here do not wait for the WAL to reach the disk: every payment locks the currency's fee account, so
  // with the default each one would wait its turn for an fsync, and loading a million would take hours on this
  // kind of machine. The write path runs unchanged; only durability of this throwaway database is given up.
  const admin = new pg.Client({ connectionString: db.url })
  await admin.connect()
  await admin.query(`ALTER DATABASE ${new URL(db.url).pathname.slice(1)} SET synchronous_commit = off`)
  await admin.end()
  // a tooling session: the only kind the ledger clock serves
  const pool = new pg.Pool({ connectionString: db.url, max: 2, application_name: SIMULATOR_APPLICATION_NAME })
  pool.on('error', () => {})
  try {
    const economy = await createEconomy(pool, rng(1))
    o.log(`size ${transfers.toLocaleString('en-GB')}: loading through the ledger's write path, 256 movements per call`)
    let t0 = performance.now()
    const written = await load(pool, economy, transfers, o.log)
    const loadSeconds = (performance.now() - t0) / 1000
    o.log(`  loaded ${written.toLocaleString('en-GB')} transfers in ${loadSeconds.toFixed(0)} s; aggregating`)
    if (process.env.BENCH_LOAD_ONLY === '1') throw new Error(`BENCH_LOAD_ONLY: stopped after loading ${db.url}`)
    t0 = performance.now()
    const caught = await catchUp(pool)
    const aggregateSeconds = (performance.now() - t0) / 1000
    await pool.query('VACUUM ANALYZE')
    const rows = (await pool.query<{ a: string, p: string }>(
      'SELECT (SELECT count(*) FROM circ_account_bucket) AS a, (SELECT count(*) FROM circ_pair_bucket) AS p')).rows[0]

    const timed = await measureReports(db.url, economy.currencyId, o, pool, economy)
    return {
      transfers: written,
      loadSeconds: round(loadSeconds),
      loadTransfersPerSecond: Math.round(written / loadSeconds),
      aggregateSeconds: round(aggregateSeconds),
      aggregateTransfersPerSecond: Math.round(caught.transfers / aggregateSeconds),
      accountBucketRows: Number(rows.a),
      pairBucketRows: Number(rows.p),
      ...timed,
    }
  } finally {
    await pool.end()
    if (process.env.BENCH_KEEP === '1') o.log(`  kept the database: ${db.url}`)
    else await db.drop()
  }
}

/** Times the reports over the 12 months through the whole HTTP layer (app.inject), as a researcher. pool: a
 *  tooling session on the database, to post new payments into the range's last day (through the ledger clock). */
export async function measureReports (databaseUrl: string, currencyId: string, o: Pick<Required<ReportsBenchOptions>, 'requests' | 'log'>,
  pool: pg.Pool, e: Economy) {
  // the event-loop guard off: on a busy shared machine it would answer 503 for reasons that are not the reports'
  const config = loadConfig({}, { DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent', REPORTS_AGGREGATE_INTERVAL_MS: 0, PRESSURE_MAX_EVENT_LOOP_DELAY_MS: 0 })
  const server = Fastify({ ...serverOptions(config), logger: false })
  // The reports run as of the simulated year's last day (just after its latest transfer), so that the new
  // payments below land in the currency's today, as payments do in service: today is still under way, read on
  // every request, and the days before it stay settled. With BENCH_REPORT_CLOCK=wall they run at the wall clock,
  // where the year is long over and each new payment lands in a day already settled (a backdated posting, which
  // makes the settled days' kept merges be done again).
  let clockAt = (await pool.query<{ t: Date }>('SELECT max(created_at) AS t FROM transfer WHERE currency_id = $1', [currencyId])).rows[0].t.getTime() + 1000
  const reportClock = process.env.BENCH_REPORT_CLOCK === 'wall' ? undefined : () => new Date(clockAt)
  await server.register(app, { config, databaseUrl, keys: await keySetFromJwks([await generateJwk()]), reportClock })
  await server.ready()
  // what the report caches hold (report-cache.ts): the heap after the runs less before them, both after a full
  // collection (without one, heapUsed counts garbage not yet collected: a figure several times the real one)
  const heap = () => { collect(); return process.memoryUsage().heapUsed }
  const heapBefore = heap()
  try {
    const { accessToken } = await server.tokens.sign({ userId: crypto.randomUUID(), role: 'researcher', currencyId, participantId: null })
    const range = `from=${new Date(START).toISOString().slice(0, 10)}&to=${new Date(START + DAYS * DAY).toISOString().slice(0, 10)}`
    const monthlyUrl = `/v1/currencies/${CODE}/reports/circulation?${range}&interval=month`
    // cold: as right after new transfers landed in the range, before the background aggregator refreshed the
    // whole-range figures: the request computes them itself
    const cold: number[] = []
    // the whole range's payment count, so that each round below proves the report counted its 100 new payments
    const countOf = (body: string) => Number((JSON.parse(body) as { total: { metrics: { count: { value?: string } } } }).total.metrics.count.value)
    let count = 0
    for (let i = 0; i < 5; i++) {
      await server.pool.query('UPDATE circ_composite SET figures = NULL')
      const t0 = performance.now()
      const res = await server.inject({ method: 'GET', url: monthlyUrl, headers: { authorization: `Bearer ${accessToken}` } })
      cold.push(performance.now() - t0)
      if (res.statusCode !== 200) throw new Error(`${monthlyUrl}: ${res.statusCode} ${res.body.slice(0, 300)}`)
      count = countOf(res.body)
    }
    const monthly12Cold = latency(cold, cold[0])
    o.log(`  monthly report, 12 months, whole-range figures recomputed: median ${monthly12Cold.medianMs} ms, max ${Math.max(...cold).toFixed(1)} ms (5 requests)`)
    // right after new payments: 100 payments land in the range's last day, then the report is asked for; it
    // drains them, computes their month and the whole range (and keeps both), and must count all 100
    const after: number[] = []
    const payers = (await pool.query<{ id: string }>(`SELECT a.id FROM account a JOIN participant p ON p.id = a.participant_id
      WHERE a.currency_id = $1 AND p.kind = 'member' ORDER BY a.balance DESC LIMIT 200`, [currencyId])).rows.map(r => r.id)
    const runId = Date.now().toString(36) // fresh keys on every run, or a second run on a kept database would replay
    // BENCH_PROFILE=<file>: a CPU profile over these rounds (cpu-profile.ts), summarised over the requests alone; the
    // sampling slows them, so a profiled run's latencies are not the figures
    const profiler = process.env.BENCH_PROFILE != null ? await startProfile() : null
    for (let round = 0; round < 5; round++) {
      const latest = (await pool.query<{ t: Date }>('SELECT max(created_at) AS t FROM transfer WHERE currency_id = $1', [currencyId])).rows[0].t.getTime()
      const items = Array.from({ length: 100 }, (_, i) => bench(payment(e.currency, {
        from: payers[(round * 100 + i) % payers.length], to: e.businesses[(round * 37 + i * 7) % e.businesses.length], amount: new Money('1.50'), channel: 'till',
      }), `after-${runId}-${round}-${i}`))
      const out = await postMovements(pool, currencyId, items, { at: items.map((_, i) => new Date(latest + 1000 + i)) })
      clockAt = Math.max(clockAt, latest + 1000 + items.length)
      if (out.results.some(r => !r.ok || r.replayed)) throw new Error('a payment after the load was refused or replayed')
      const ask = async () => await server.inject({ method: 'GET', url: monthlyUrl, headers: { authorization: `Bearer ${accessToken}` } })
      const t0 = performance.now()
      // the first round is not profiled: it builds what this process keeps, once
      const res = profiler != null && round > 0 ? await profiler.window(ask) : await ask()
      after.push(performance.now() - t0)
      if (res.statusCode !== 200) throw new Error(`${monthlyUrl}: ${res.statusCode}`)
      if (countOf(res.body) !== count + 100) throw new Error(`the report after 100 new payments counts ${countOf(res.body) - count} new ones`)
      count += 100
    }
    if (profiler != null) for (const line of await profiler.stop(process.env.BENCH_PROFILE!)) o.log(`    ${line}`)
    const monthly12AfterPayments = latency(after, after[0])
    o.log(`  monthly report, 12 months, first request after 100 new payments in the range: median ${monthly12AfterPayments.medianMs} ms, ` +
      `first ${monthly12AfterPayments.firstMs} ms, max ${Math.max(...after).toFixed(1)} ms (5 rounds)`)
    const monthly12 = await timeRequests(server, monthlyUrl, accessToken, o.requests)
    o.log(`  monthly report, 12 months: first ${monthly12.firstMs} ms, median ${monthly12.medianMs} ms, p95 ${monthly12.p95Ms} ms (${monthly12.runs} requests)`)
    const weekly52 = await timeRequests(server, `/v1/currencies/${CODE}/reports/circulation?${range}&interval=week`, accessToken, 5)
    o.log(`  weekly report, 12 months: first ${weekly52.firstMs} ms, median ${weekly52.medianMs} ms`)
    const flowsBySector12 = await timeRequests(server, `/v1/currencies/${CODE}/reports/flows?${range}&by=sector`, accessToken, 5)
    o.log(`  flows by sector, 12 months: first ${flowsBySector12.firstMs} ms, median ${flowsBySector12.medianMs} ms`)
    o.log(`  report caches: ${((heap() - heapBefore) / 1e6).toFixed(1)} MB of heap after these runs (counted by the caches: ${(heldBytes() / 1e6).toFixed(1)} MB in ${entries()} entries, budget ${(budgetBytes() / 1e6).toFixed(1)} MB); ` +
      `process RSS ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`)
    return { monthly12, monthly12Cold, monthly12AfterPayments, weekly52, flowsBySector12 }
  } finally {
    await server.close()
  }
}

/**
 * What the aggregates cost one posting call: the same payments (with their fee leg) with the queue trigger
 * enabled and disabled, alternating in one run, on the same database, without the simulated clock. Twice: with
 * the default synchronous commit (what the service runs with; the WAL flush dominates) and without it (so the
 * CPU the trigger adds is not hidden behind the flush).
 */
async function measureWriteOverhead (o: Required<ReportsBenchOptions>): Promise<WriteOverheadFigures[]> {
  const db = await createTestDb()
  const out: WriteOverheadFigures[] = []
  try {
    for (const synchronousCommit of [true, false]) {
      const pool = new pg.Pool({ connectionString: db.url, max: 10, options: synchronousCommit ? undefined : '-c synchronous_commit=off' })
      pool.on('error', () => {})
      try {
        out.push(await overheadRound(pool, synchronousCommit, o))
      } finally {
        await pool.end()
      }
    }
  } finally {
    await db.drop()
  }
  return out
}

async function overheadRound (pool: pg.Pool, synchronousCommit: boolean, o: Required<ReportsBenchOptions>): Promise<WriteOverheadFigures> {
  const r = rng(7)
  const e = (await pool.query(`SELECT id FROM currency WHERE code = $1`, [CODE])).rows.length > 0
    ? await existingEconomy(pool)
    : await createEconomy(pool, r)
  const accounts = [...e.members.slice(0, 400), ...e.businesses.slice(0, 100)]
  await postMovements(pool, e.currencyId, accounts.map(a => bench(issuance(e.currency, { to: a, amount: new Money(100000), sterlingReference: null }), null)))
  let seq = 0
  const pay = async () => {
    const a = r.pick(accounts)
    let b = r.pick(accounts)
    while (b === a) b = r.pick(accounts)
    await postMovement(pool, e.currencyId, bench(payment(e.currency, { from: a, to: b, amount: new Money('1.26'), channel: 'till' }), `w-${synchronousCommit ? 's' : 'a'}-${++seq}`))
  }
  const trigger = async (on: boolean) => await pool.query(`ALTER TABLE transfer ${on ? 'ENABLE' : 'DISABLE'} TRIGGER circ_enqueue`)
  const calls = 1000
  for (let i = 0; i < 300; i++) await pay() // warm up: plans, buffers
  const seqMs: Record<'with' | 'without', number[]> = { with: [], without: [] }
  const par: Record<'with' | 'without', number[]> = { with: [], without: [] }
  for (let round = 0; round < 4; round++) {
    for (const on of round % 2 === 0 ? [false, true] : [true, false]) {
      await trigger(on)
      for (let i = 0; i < calls; i++) {
        const t0 = performance.now()
        await pay()
        seqMs[on ? 'with' : 'without'].push(performance.now() - t0)
      }
      const t0 = performance.now()
      let n = 0
      await Promise.all(Array.from({ length: 8 }, async () => { while (performance.now() - t0 < 3000) { await pay(); n += 2 } }))
      par[on ? 'with' : 'without'].push(n / ((performance.now() - t0) / 1000))
    }
  }
  await trigger(true)
  const median = (xs: number[]) => { const s = [...xs].sort((x, y) => x - y); return s[Math.floor(s.length / 2)] }
  const f: WriteOverheadFigures = {
    triggerPerInsertUs: synchronousCommit ? null : await triggerPerInsert(pool, e, accounts),
    synchronousCommit,
    sequentialWithoutUs: Math.round(median(seqMs.without) * 1000),
    sequentialWithUs: Math.round(median(seqMs.with) * 1000),
    parallelWithout: Math.round(median(par.without)),
    parallelWith: Math.round(median(par.with)),
    callsPerSide: seqMs.with.length,
  }
  o.log(`write path (synchronous_commit ${synchronousCommit ? 'on' : 'off'}): one payment (with its fee leg), median of ${f.callsPerSide} calls: ` +
    `${f.sequentialWithoutUs} µs without the queue trigger, ${f.sequentialWithUs} µs with it; 8 clients: ${f.parallelWithout} vs ${f.parallelWith} transfers/s` +
    (f.triggerPerInsertUs == null ? '' : `; the trigger alone, per INSERT statement, server side: ${f.triggerPerInsertUs} µs`))
  return f
}

/**
 * The trigger's own cost, without the network and the rest of the posting call around it: single-row INSERT
 * statements on transfer inside the server, 40 rounds of 1000 alternating trigger off and on; the median of the
 * paired differences per statement. A posting call makes one INSERT statement for all its transfers.
 */
async function triggerPerInsert (pool: pg.Pool, e: Economy, accounts: string[]): Promise<number> {
  const client = await pool.connect()
  let last = 0
  client.on('notice', (m: { message?: string }) => { last = Number(String(m.message).split(' ')[1]) })
  const us: Record<'on' | 'off', number[]> = { on: [], off: [] }
  try {
    for (let round = 0; round < 40; round++) {
      for (const on of round % 2 === 0 ? [false, true] : [true, false]) {
        await client.query(`ALTER TABLE transfer ${on ? 'ENABLE' : 'DISABLE'} TRIGGER circ_enqueue`)
        await client.query(`DO $$
          DECLARE a uuid[] := '{${accounts.slice(0, 200).join(',')}}'; t0 timestamptz := clock_timestamp(); x uuid; y uuid;
          BEGIN
            FOR i IN 1..1000 LOOP
              x := a[1 + (i * 7) % 200]; y := a[1 + (i * 13 + 1) % 200];
              IF x = y THEN y := a[1 + (i * 13 + 2) % 200]; END IF;
              INSERT INTO transfer (currency_id, kind, from_account_id, to_account_id, amount, created_by)
              VALUES ('${e.currencyId}', 'payment', x, y, 1.26, 'bench');
            END LOOP;
            RAISE NOTICE 'us %', extract(epoch FROM clock_timestamp() - t0) * 1000000 / 1000;
            RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'rollback';
          END $$`).catch((err: { message?: string }) => { if (err.message !== 'rollback') throw err })
        us[on ? 'on' : 'off'].push(last)
      }
    }
    await client.query('ALTER TABLE transfer ENABLE TRIGGER circ_enqueue')
  } finally {
    client.release()
  }
  const diffs = us.on.map((v, i) => v - us.off[i]).sort((x, y) => x - y)
  return Math.round(diffs[Math.floor(diffs.length / 2)] * 10) / 10
}

async function existingEconomy (pool: pg.Pool): Promise<Economy> {
  const c = (await pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [CODE])).rows[0].id
  const sys = await pool.query<{ id: string, system_kind: string }>('SELECT id, system_kind FROM account WHERE currency_id = $1 AND system_kind IS NOT NULL', [c])
  const parts = await pool.query<{ id: string, kind: string }>(`SELECT a.id, p.kind FROM account a JOIN participant p ON p.id = a.participant_id
    WHERE a.currency_id = $1 ORDER BY a.created_at, a.id`, [c])
  const system = Object.fromEntries(sys.rows.map(a => [a.system_kind, a.id])) as Economy['system']
  return {
    currencyId: c,
    currency: benchCurrency(c, system),
    system,
    members: parts.rows.filter(p => p.kind === 'member').map(p => p.id),
    businesses: parts.rows.filter(p => p.kind === 'business').map(p => p.id),
  }
}

export async function runReportsBench (opts: ReportsBenchOptions = {}): Promise<ReportsBenchFigures> {
  const o: Required<ReportsBenchOptions> = {
    sizes: opts.sizes ?? [100_000, 1_000_000],
    requests: opts.requests ?? 20,
    overhead: opts.overhead ?? true,
    log: opts.log ?? ((s: string) => console.log(s)),
  }
  const writeOverhead = o.overhead ? await measureWriteOverhead(o) : []
  const sizes: SizeFigures[] = []
  if (process.env.BENCH_REUSE != null) sizes.push(await measureExisting(process.env.BENCH_REUSE, o))
  else for (const n of o.sizes) sizes.push(await measureSize(n, o))
  return { sizes, writeOverhead }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv[2] != null ? process.argv[2].split(',').map(Number) : undefined
  const figures = await runReportsBench({ sizes, overhead: process.env.BENCH_OVERHEAD !== '0' })
  console.log(JSON.stringify(figures, null, 2))
}
