import pg from 'pg'
import { inUtc } from '../db/session.js'
import { Money, parseRate } from '../domain/money.js'
import { issuance, payment, redemption, type LedgerCurrency, type Movement } from '../domain/movements.js'
import { parseLocalAreas, parsePostcode } from '../domain/postcode.js'
import { firstDue } from '../domain/schedule.js'
import { knownToIntl } from '../domain/zone.js'
import { postMovements, type MovementItem } from '../ledger/post.js'
import { lockSimulation, standingOrderScheduler, unlockSimulation } from '../scheduler/standing-orders.js'
import type { Channel } from '../schemas/ledger.js'
import { Economy, type Purpose, type SimEvent } from './economy.js'
import { DEFAULT_PARAMETERS, type SimulationParameters } from './parameters.js'

// Loads a simulated economy into the ledger. Participants and their accounts are inserted in one statement each
// (they move no money); every money movement is built by src/domain/movements.ts, as the API builds it, and
// posted through the ledger's one write path (src/ledger/post.ts) at its simulated time, through the ledger
// clock (see prisma/migrations/*_one_money_path). Movements go in time order, many per call (POST_CHUNK), each
// call set-based and each movement at its own time: the clock only moves forward, so each account's entries are
// in time order as well as posting order, and the whole run is reproducible from its seed.
//
// Wages and business rates are standing orders: created with the participants, and paid by the service's own
// scheduler code (src/scheduler/standing-orders.ts), which the runner calls at each simulated morning the economy
// has something due, posting through the ledger clock at that instant. What the scheduler paid, refused and will
// retry must be what the economy expected, or the run stops. While the run loads, its session holds the
// simulation lock on the currency, so a service running on the same database leaves these orders alone.

/** The session name the ledger clock insists on. */
export const SIMULATOR_APPLICATION_NAME = 'circulate-simulator'

/** Movements per ledger call: about a week of the full-scale economy. */
const POST_CHUNK = 1000
/** After how many movements the load refreshes the database's statistics (and once more at the end). */
const ANALYZE_AT = [1000, 8000]

/** A pool for the simulator: its own session name, and commits that do not wait for the disk (a crash loses at
 *  most the last movements of a run that is restarted anyway; it can never corrupt the ledger). */
export function simulatorPool (databaseUrl: string): pg.Pool {
  const pool = new pg.Pool({
    // one session for the whole run, never closed while idle: it holds the currency's simulation lock
    connectionString: inUtc(databaseUrl, '-c synchronous_commit=off'), max: 1, idleTimeoutMillis: 0, application_name: SIMULATOR_APPLICATION_NAME,
  })
  // its session lost while idle (the database stopping or restarting): the next query fails and says so; with no
  // listener the pool's error event would throw, and take the whole service down with it during the demo's load
  pool.on('error', () => {})
  return pool
}

export interface SimulationOptions {
  seed: number
  /** end of the simulated period (exclusive); default: the most recent UTC midnight */
  end?: Date
  params?: SimulationParameters
}

export interface SimulatedParticipant { participantId: string, accountId: string, name: string, kind: 'member' | 'business' }

/** The year in figures, as the simulator kept them (the reports compute the same from the ledger). */
export interface SimulationSummary {
  currency: string
  start: string
  end: string
  members: number
  businesses: number
  movements: number
  byPurpose: Record<string, number>
  payments: number
  issued: string
  /** taken out of accounts by redemptions, the redemption fee included (as the reports count it) */
  redeemed: string
  paymentVolume: string
  /** receivers' payment fees and redemption fees */
  fees: string
  /** held by participants at the end: issued - redeemed - payment fees */
  supplyAtEnd: string
  /** the highest end-of-day supply */
  peakSupply: string
  /** wages and business rates by standing order: orders made, occurrences paid, refused once (tried again the
   *  next day) and refused for good */
  standingOrders: { wages: number, rates: number, paid: number, retried: number, failed: number }
}

export interface PreparedSimulation {
  currency: { id: string, code: string }
  participants: SimulatedParticipant[]
  /** a busy member and a busy cafe, for demo logins that show real statements */
  showcase: { member: SimulatedParticipant, business: SimulatedParticipant }
  /** movements to post */
  total: number
  summary: SimulationSummary
  /** Posts every movement in time order; onProgress(done) now and then. Stops early (and says so) on abort. */
  post: (onProgress?: (done: number) => void, signal?: AbortSignal) => Promise<{ posted: number, complete: boolean }>
}

const DAY_MS = 86_400_000

export function lastMidnight (now = new Date()): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()))
}

export interface Generated { economy: Economy, events: SimEvent[], summary: SimulationSummary }

/** Runs the economy in memory (no database): its movements and the summary figures of the year. */
export function generate (opts: SimulationOptions): Generated {
  const steps = generating(opts)
  let step = steps.next()
  while (step.done !== true) step = steps.next()
  return step.value
}

/** As generate(), but gives the event loop a turn after every simulated day: a server making its demo year
 *  keeps answering (a year takes about a second of CPU, longer on a busy machine). */
export async function generateInTurns (opts: SimulationOptions): Promise<Generated> {
  const steps = generating(opts)
  let step = steps.next()
  while (step.done !== true) {
    await new Promise(resolve => setImmediate(resolve))
    step = steps.next()
  }
  return step.value
}

function * generating (opts: SimulationOptions): Generator<void, Generated> {
  const params = opts.params ?? DEFAULT_PARAMETERS
  const end = opts.end ?? lastMidnight()
  const economy = new Economy(params, { seed: opts.seed, end })
  const events: SimEvent[] = []
  const byPurpose: Record<string, number> = {}
  const zero = new Money(0)
  let issued = zero; let redeemed = zero; let volume = zero; let fees = zero; let supply = zero; let peak = zero
  let payments = 0
  for (const day of economy.run()) {
    for (const e of day) {
      events.push(e)
      byPurpose[e.purpose] = (byPurpose[e.purpose] ?? 0) + 1
      fees = fees.plus(e.fee)
      if (e.kind === 'issuance') { issued = issued.plus(e.amount); supply = supply.plus(e.amount) }
      if (e.kind === 'redemption') { redeemed = redeemed.plus(e.amount); supply = supply.minus(e.amount) }
      if (e.kind === 'payment') { payments++; volume = volume.plus(e.amount); supply = supply.minus(e.fee) }
    }
    if (supply.gt(peak)) peak = supply
    yield
  }
  const d = params.currency.decimals
  const summary: SimulationSummary = {
    currency: params.currency.code.toUpperCase(),
    start: economy.start.toISOString(), end: end.toISOString(),
    members: economy.agents.filter(a => a.kind === 'member').length,
    businesses: economy.agents.filter(a => a.kind === 'business').length,
    movements: events.length, byPurpose, payments,
    issued: issued.toFixed(d), redeemed: redeemed.toFixed(d), paymentVolume: volume.toFixed(d), fees: fees.toFixed(d),
    supplyAtEnd: supply.toFixed(d), peakSupply: peak.toFixed(d),
    standingOrders: {
      wages: economy.orders.filter(o => o.purpose === 'wages').length,
      rates: economy.orders.filter(o => o.purpose === 'rates').length,
      paid: economy.orderRuns.reduce((n, r) => n + r.paid, 0),
      retried: economy.orderRuns.reduce((n, r) => n + r.retrying, 0),
      failed: economy.orderRuns.reduce((n, r) => n + r.failed, 0),
    },
  }
  return { economy, events, summary }
}

/**
 * Creates the currency and its participants, and returns the movements ready to post. The pool must come from
 * simulatorPool() (the ledger clock refuses any other session). Fails if the currency code is taken: a what-if
 * run goes into a currency of its own, next to the original, so the two can be compared.
 */
export async function prepareSimulation (pool: pg.Pool, opts: SimulationOptions): Promise<PreparedSimulation> {
  const params = opts.params ?? DEFAULT_PARAMETERS
  const { economy, events, summary } = await generateInTurns(opts)
  const c = params.currency
  const code = c.code.toUpperCase()
  const start = economy.start

  const exists = await pool.query('SELECT 1 FROM currency WHERE code = $1', [code])
  if (exists.rowCount !== 0) throw new Error(`currency ${code} already exists; simulate into another code (--currency)`)
  // the zone as the currency service checks it: known to PostgreSQL under this name, and to this runtime
  if (!knownToIntl(c.timeZone) || (await pool.query('SELECT 1 FROM pg_timezone_names WHERE name = $1', [c.timeZone])).rowCount === 0) {
    throw new Error(`currency.timeZone ${JSON.stringify(c.timeZone)} is not an IANA time zone name (e.g. Europe/London, UTC)`)
  }
  const sys = await pool.query<{ id: string, system_kind: string, currency_id: string }>(`
    WITH c AS (
      INSERT INTO currency (id, code, name, backing, decimals, fee_text, fee_app, fee_online, fee_api, fee_till,
                            redemption_fee, local_areas, created_at, time_zone)
      VALUES (uuid_v7_at($12), $1, $2, 'GBP', $3, $4, $5, $6, $7, $8, $9, $10::text[], $12, $13) RETURNING id, created_at)
    INSERT INTO account (id, currency_id, system_kind, floor, ceiling, created_at, updated_at)
    SELECT uuid_v7_at(c.created_at), c.id, k, CASE WHEN k = 'issuance' THEN NULL ELSE 0 END,
           CASE WHEN k = 'issuance' THEN 0 END, c.created_at, c.created_at
      FROM c, unnest($11::text[]) AS k
    RETURNING id, system_kind, currency_id`,
  [code, c.name, c.decimals, ...(['text', 'app', 'online', 'api', 'till'] as const).map(k => parseRate(c.fees[k], `fees.${k}`).toFixed()),
    parseRate(c.redemptionFee, 'redemptionFee').toFixed(), parseLocalAreas(c.localAreas), ['issuance', 'fees', 'paper'], start, c.timeZone])
  const currencyId = sys.rows[0].currency_id
  // before any order exists: no other session's scheduler may pay this currency's orders while it loads
  if (!await lockSimulation(pool, currencyId)) throw new Error(`currency ${code} is being loaded by another session`)
  const system = Object.fromEntries(sys.rows.map(r => [r.system_kind, r.id])) as Record<'issuance' | 'fees' | 'paper', string>

  const agents = economy.agents
  const joined = agents.map(a => new Date(start.getTime() + a.joinDay * DAY_MS))
  const ins = await pool.query<{ ord: string, pid: string, aid: string }>(`
    WITH input AS (
      SELECT u.*, gen_random_uuid() AS pid, uuid_v7_at(u.created_at) AS aid
        FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[], $8::timestamptz[])
             WITH ORDINALITY AS u(kind, name, postcode, district, sector, independent, created_at, ord)),
    p AS (
      INSERT INTO participant (id, currency_id, kind, name, postcode, district, sector, independent, created_at)
      SELECT pid, $1, kind, name, postcode, district, sector, independent, created_at FROM input),
    a AS (
      INSERT INTO account (id, currency_id, participant_id, floor, created_at, updated_at)
      SELECT aid, $1, pid, 0, created_at, created_at FROM input)
    SELECT ord, pid, aid FROM input ORDER BY ord`,
  [currencyId, agents.map(a => a.kind), agents.map(a => a.name), agents.map(a => parsePostcode(a.postcode).full),
    agents.map(a => parsePostcode(a.postcode).district), agents.map(a => a.sector), agents.map(a => a.independent), joined])
  const participants: SimulatedParticipant[] = ins.rows.map((r, i) => ({
    participantId: r.pid, accountId: r.aid, name: agents[i].name, kind: agents[i].kind,
  }))
  // the standing orders, as the API would have made them on the first simulated day (by the simulator)
  const orders = economy.orders
  await pool.query(`
    INSERT INTO standing_order (id, currency_id, from_account_id, to_account_id, payer_id, amount, reference, every, day,
                                starts_on, ends_on, next_due, created_by, created_at)
    SELECT uuid_v7_at($2), $1, f, t, p, a, r, 'month', d, s, e, s_first, 'simulator', $2
      FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::numeric[], $7::text[], $8::int[], $9::date[], $10::date[], $11::date[])
           AS u(f, t, p, a, r, d, s, e, s_first)`,
  [currencyId, start, orders.map(o => participants[o.from].accountId), orders.map(o => participants[o.to].accountId),
    orders.map(o => participants[o.from].participantId), orders.map(o => o.amount.toFixed()), orders.map(o => o.reference),
    orders.map(o => o.schedule.day), orders.map(o => o.startsOn), orders.map(o => o.endsOn), orders.map(o => firstDue(o.schedule, o.startsOn))])
  await pool.query('ANALYZE participant, account, standing_order')
  const account = (i: number | null) => participants[i!].accountId
  const showcase = economy.showcase()
  const currency: LedgerCurrency = {
    id: currencyId, decimals: c.decimals, system,
    fees: Object.fromEntries(Object.entries(c.fees).map(([k, v]) => [k, new Money(v)])) as Record<Channel, Money>,
    redemptionFee: new Money(c.redemptionFee),
  }

  // as the API builds them: a payment with the receiver's fee for the channel; an issuance with the sterling
  // received; a redemption whose fee goes to fee income and whose net goes back to the issuance account
  const movement = (e: SimEvent): MovementItem => {
    let m: Movement
    if (e.kind === 'issuance') m = issuance(currency, { to: account(e.to), amount: e.amount, sterlingReference: e.reference })
    else if (e.kind === 'redemption') m = redemption(currency, { from: account(e.from), amount: e.amount, sterlingReference: e.reference })
    else m = payment(currency, { from: account(e.from), to: account(e.to), amount: e.amount, channel: e.channel!, reference: e.reference })
    return { ...m, scope: 'simulator', idempotencyKey: null, requestHash: '', createdBy: 'simulator', owner: null }
  }

  // the service's scheduler, on this session, posting at the instant of each look
  const scheduler = standingOrderScheduler(pool, { resolveId: async () => currency }, { ledgerClock: true })
  const runs = economy.orderRuns

  const post: PreparedSimulation['post'] = async (onProgress, signal) => {
    let done = 0
    let next = 0
    let run = 0
    const analyzeAt = [...ANALYZE_AT]
    while (next < events.length || run < runs.length) {
      if (signal?.aborted === true) return { posted: done, complete: false }
      // the movements before the scheduler's next look (its own payments are its to post)
      const until = runs[run]?.at.getTime() ?? Infinity
      const chunk: SimEvent[] = []
      while (next < events.length && chunk.length < POST_CHUNK && events[next].at.getTime() < until) {
        if (events[next].order == null) chunk.push(events[next])
        next++
      }
      if (chunk.length > 0) {
        const out = await postMovements(pool, currencyId, chunk.map(movement), { at: chunk.map(e => e.at) })
        const refused = out.results.findIndex(r => !r.ok)
        if (refused >= 0) {
          const r = out.results[refused]
          throw new Error(`the ledger refused simulated movement ${done + refused + 1} (${chunk[refused].purpose}): ${r.ok ? '' : r.error.code}`)
        }
        done += chunk.length
      } else if (run < runs.length && (next >= events.length || events[next].at.getTime() >= until)) {
        const want = runs[run++]
        const got = await scheduler.tick(want.at)
        if (got.paid !== want.paid || got.retrying !== want.retrying || got.failed !== want.failed || got.errors !== 0) {
          throw new Error(`the scheduler's look at ${want.at.toISOString()} paid ${got.paid}, refused ${got.retrying} (retrying) and ` +
            `${got.failed} (for good) with ${got.errors} errors; the simulation expected ${want.paid}, ${want.retrying} and ${want.failed}`)
        }
        done += got.paid
      }
      onProgress?.(done)
      // The tables grow from nothing to ~100k rows in seconds, faster than autovacuum (when it is on at all)
      // refreshes their statistics, and autovacuum never analyzes a partitioned table's parent (the reports'
      // aggregates are partitioned). Plans made while the tables were empty (sequential scans, nested loops) stay
      // cached and get slower as the tables grow, and a report over the year times out. ANALYZE of the whole
      // database, as any bulk load should, refreshes the statistics and invalidates those plans: once the tables
      // have some rows, once they have many, and at the end.
      if (analyzeAt.length > 0 && done >= analyzeAt[0]) {
        analyzeAt.shift()
        await pool.query('ANALYZE')
      }
    }
    await pool.query('ANALYZE')
    await unlockSimulation(pool, currencyId)
    onProgress?.(done)
    // The simulator kept every balance itself; the ledger must agree to the last penny.
    const rows = await pool.query<{ id: string, balance: string }>(
      'SELECT id, balance::text FROM account WHERE currency_id = $1 AND participant_id IS NOT NULL', [currencyId])
    const byId = new Map(rows.rows.map(r => [r.id, new Money(r.balance)]))
    const wrong = participants.filter((p, i) => !(byId.get(p.accountId)?.eq(economy.balances[i]) ?? false))
    if (wrong.length > 0) throw new Error(`ledger and simulator disagree on ${wrong.length} balances (first: ${wrong[0].accountId})`)
    return { posted: done, complete: true }
  }

  return {
    currency: { id: currencyId, code },
    participants,
    showcase: { member: participants[showcase.member], business: participants[showcase.business] },
    total: events.length,
    summary,
    post,
  }
}

export type { Purpose }
