import cliProgress from 'cli-progress'
import fs from 'node:fs'
import path from 'node:path'
import type pg from 'pg'
import { hashPassword } from '../auth/password.js'
import { DEFAULT_PARAMETERS, type SimulationParameters } from '../simulator/parameters.js'
import { prepareSimulation, simulatorPool } from '../simulator/run.js'
import { demoLogins, savedDemoLogins, type DemoLogins } from './credentials.js'

// The demo's simulated year, loaded by `npm start` when its database has no currency yet. The service listens
// first and loads the year in the background (about 48,000 movements at full scale, each through the ledger's
// write path, which takes longer than anyone should wait for /health): the dashboard fills up while it runs,
// and a progress bar shows how far it is. A second start finds the currency and loads nothing.

/** What the data folder remembers of the demo, so a second start can print the same logins and notice an
 *  interrupted load. */
export interface DemoState {
  status: 'loading' | 'complete'
  currency: string
  total: number
  posted: number
  member: string
  business: string
}

const stateFile = (dataDir: string) => path.resolve(dataDir, 'demo-seed.json')

const isDemoState = (s: unknown): s is DemoState => {
  const o = s as Record<string, unknown> | null
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0
  return typeof o === 'object' && o != null && (o.status === 'loading' || o.status === 'complete') && typeof o.currency === 'string' &&
    count(o.total) && count(o.posted) && typeof o.member === 'string' && typeof o.business === 'string'
}

/**
 * The demo's state as the data folder remembers it, or null when there is none. A file that cannot be read (cut
 * short, edited, not the demo's) is told to `warn`, with what to do, and taken as none: it only describes the demo
 * for the start-up summary, so a start does not fail for it (it did: the summary threw after the service listened).
 */
export function readDemoState (dataDir: string, warn: (msg: string) => void = () => {}): DemoState | null {
  const f = stateFile(dataDir)
  if (!fs.existsSync(f)) return null
  let s: unknown
  let why = 'it is not the demo\'s state'
  try { s = JSON.parse(fs.readFileSync(f, 'utf8')) } catch (err) { why = (err as Error).message }
  if (isDemoState(s)) return s
  warn(`the demo's state file ${f} cannot be read (${why}); starting without it. It only remembers which simulated year ` +
    'was loaded and how far, for this summary: the data in the database is as it was. To load a fresh demo, stop Circulate and ' +
    `delete the data folder ${path.resolve(dataDir)}; to keep this one and stop this warning, delete just that file (its logins are ` +
    'then no longer printed at start-up, and an interrupted load is no longer noticed).')
  return null
}

function writeDemoState (dataDir: string, s: DemoState) {
  fs.writeFileSync(stateFile(dataDir), JSON.stringify(s, null, 2))
}

/** Movements the simulator posted into a currency (a hard kill leaves the state file behind the database). */
export async function postedMovements (pool: pg.Pool, code: string): Promise<number> {
  const r = await pool.query(`SELECT count(*)::int AS n FROM transfer t JOIN currency c ON c.id = t.currency_id
    WHERE c.code = $1 AND t.parent_id IS NULL AND t.created_by = 'simulator'`, [code])
  return r.rows[0].n as number
}

/**
 * What a start that loads nothing prints of the demo (src/server.ts): its state, with how far an interrupted load
 * got, and the logins kept by the start that loaded it. A file of the data folder that cannot be read is told to
 * `warn` and left out; the start goes on.
 */
export async function rememberedDemo (pool: pg.Pool, dataDir: string, warn: (msg: string) => void): Promise<{ state: DemoState | null, logins: DemoLogins | null }> {
  let unreadable = false
  const state = readDemoState(dataDir, (msg) => { unreadable = true; warn(msg) })
  if (state?.status === 'loading') state.posted = await postedMovements(pool, state.currency)
  // the logins are made before the state is first written: shown when the state says a demo was loaded, or could not say
  return { state, logins: state != null || unreadable ? savedDemoLogins(dataDir, warn) : null }
}

export async function hasCurrency (pool: pg.Pool): Promise<boolean> {
  return (await pool.query('SELECT EXISTS (SELECT 1 FROM currency) AS e')).rows[0].e as boolean
}

/** The full-scale parameters, scaled down for a quicker demo when asked. */
export function demoParameters (scale: number): SimulationParameters {
  const p = structuredClone(DEFAULT_PARAMETERS)
  p.scale.members = Math.max(2, Math.round(p.scale.members * scale))
  p.scale.businesses = Math.max(2, Math.round(p.scale.businesses * scale))
  return p
}

export interface DemoSeedOptions {
  databaseUrl: string
  dataDir: string
  scryptCost: number
  seed: number
  scale: number
  /** called once the currency, its participants and the logins exist, before the movements are posted */
  onReady: (logins: DemoLogins, state: DemoState) => void
  /** called when every movement is posted */
  onDone: (state: DemoState, seconds: number) => void
  warn: (msg: string, err?: unknown) => void
}

export interface DemoSeed {
  /** settles when the load has finished, failed or been stopped */
  done: Promise<void>
  /** stops the load between two movements (at shutdown) and waits for it */
  stop: () => Promise<void>
}

export function startDemoSeed (o: DemoSeedOptions): DemoSeed {
  const pool = simulatorPool(o.databaseUrl)
  const controller = new AbortController()
  const started = Date.now()
  let bar: cliProgress.SingleBar | null = null

  const run = async () => {
    const params = demoParameters(o.scale)
    const sim = await prepareSimulation(pool, { seed: o.seed, params })
    const logins = demoLogins(o.dataDir, sim.currency.code)
    await createLogins(pool, sim.currency.id, logins, sim.showcase, o.scryptCost)
    const where = async (participantId: string) => {
      const r = await pool.query('SELECT name, postcode, sector FROM participant WHERE id = $1', [participantId])
      const p = r.rows[0] as { name: string, postcode: string, sector: string | null }
      return `${p.name}, ${p.postcode}${p.sector != null ? `, ${p.sector}` : ''}`
    }
    const state: DemoState = {
      status: 'loading', currency: sim.currency.code, total: sim.total, posted: 0,
      member: await where(sim.showcase.member.participantId), business: await where(sim.showcase.business.participantId),
    }
    writeDemoState(o.dataDir, state)
    o.onReady(logins, state)

    bar = new cliProgress.SingleBar({
      format: 'loading a simulated year {bar} {percentage}% | {value}/{total} movements | {eta_formatted} left',
      noTTYOutput: true, notTTYSchedule: 5000, etaBuffer: 2000,
    }, cliProgress.Presets.shades_classic)
    bar.start(sim.total, 0)
    const r = await sim.post(done => { bar?.update(done) }, controller.signal)
    bar.stop()
    state.posted = r.posted
    if (r.complete) {
      state.status = 'complete'
      writeDemoState(o.dataDir, state)
      o.onDone(state, (Date.now() - started) / 1000)
    } else {
      writeDemoState(o.dataDir, state)
      o.warn(`stopped loading the simulated year after ${r.posted} of ${sim.total} movements`)
    }
  }

  const done = run()
    .catch(err => { bar?.stop(); o.warn('loading the simulated year failed', err) })
    .finally(() => pool.end().catch(() => {}))
  return {
    done,
    stop: async () => { controller.abort(); await done },
  }
}

/** Logins for the demo's roles: an issuer and a researcher of the simulated currency, and the showcase member and
 *  business. (Simulated participants have no logins of their own: the simulator makes none.) */
async function createLogins (pool: pg.Pool, currencyId: string, l: DemoLogins,
  showcase: { member: { participantId: string }, business: { participantId: string } }, cost: number) {
  const rows: Array<[DemoLogins[keyof DemoLogins], string, string, string | null]> = [
    [l.currencyIssuer, 'issuer', 'Demo currency issuer', null],
    [l.researcher, 'researcher', 'Demo researcher', null],
    [l.member, 'member', 'Demo member', showcase.member.participantId],
    [l.business, 'business', 'Demo business', showcase.business.participantId],
  ]
  for (const [cred, role, name, participantId] of rows) {
    await pool.query(`INSERT INTO app_user (username, password_hash, role, name, currency_id, participant_id)
      VALUES ($1, $2, $3, $4, $5, $6)`, [cred.username, await hashPassword(cred.password, cost), role, name, currencyId, participantId])
  }
}
