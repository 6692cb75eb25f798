import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { generateJwk } from '../src/auth/keys.js'
import { migrate } from '../src/db/migrate.js'
import { failOver, formationUnavailable, hasHaproxy, startFormation, startHaproxy, type Balancer, type Formation } from '../support/cluster.js'
import { seedEconomy } from '../support/economy.js'
import { checkExactlyOnce, paymentLoad, sleep } from '../support/payment-load.js'
import { ensureBuilt, startService, type Service } from '../support/service.js'

// The primary dies: a pg_auto_failover formation (monitor, primary, secondary with synchronous replication; Debian's
// postgresql-15-auto-failover, installed by scripts/ensure-cluster-tools.sh), two service instances behind HAProxy
// given both nodes in one DATABASE_URL (src/db/hosts.ts finds the writable one). Payments flow through the
// balancer; the primary's postgres and its keeper are killed with kill -9; the monitor promotes the secondary.
// Every payment answered 201 is in the new primary exactly once, every other attempt posts exactly once when
// retried with its key (a replay when it had committed), the invariants hold, and payments resume. The failover
// time and the number of requests refused meanwhile are reported.

const unavailable = formationUnavailable() ?? (hasHaproxy() ? null : 'haproxy is not installed (scripts/ensure-cluster-tools.sh)')

t.test('pg_auto_failover: kill -9 the primary under load through HAProxy, nothing acknowledged is lost', {
  skip: unavailable ?? false, timeout: 280_000,
}, async (t) => {
  ensureBuilt()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-failover-'))
  // the postgres user runs the formation in a folder below this one
  fs.chmodSync(work, 0o755)
  let formation: Formation | null = null
  let lb: Balancer | null = null
  const services: Service[] = []
  t.teardown(async () => {
    lb?.stop()
    for (const s of services) await s.kill()
    // the logs (instances, pg_autoctl) stay for a failed run
    formation?.destroy(!t.passing())
    if (t.passing()) fs.rmSync(work, { recursive: true, force: true }); else t.comment(`logs kept in ${work}`)
  })
  const started = Date.now()
  formation = await startFormation(path.join(work, 'pg'))
  const f = formation
  const primary = (await f.primary())!
  const standby = f.nodes.find(n => n !== primary)!
  t.pass(`formation ready in ${((Date.now() - started) / 1000).toFixed(0)} s: ${primary.name} primary, ${standby.name} secondary`)
  await migrate(f.multiHostUrl)
  t.comment(`migrated at ${((Date.now() - started) / 1000).toFixed(0)} s`)

  // load shedding off: on a shared CI machine it refuses requests at random (503 under pressure), and what is under
  // test here is the failover's 503s, not the shedding's
  const env = { JWT_PRIVATE_KEYS: JSON.stringify([await generateJwk()]), TRUST_PROXY: 'true', PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0' }
  // both at once (each kept as it comes up, so the teardown stops it even if the other fails)
  await Promise.all([0, 1].map(async i => {
    services.push(await startService({ databaseUrl: f.multiHostUrl, env, logFile: path.join(work, `s${i}.log`), dataDir: path.join(work, `d${i}`), readyTimeoutMs: 150_000 }))
  }))
  lb = await startHaproxy(work, services.map(s => s.port))
  const base = lb.url
  const e = await seedEconomy(base, { code: 'FOV', members: 20, funds: '100000.00' })
  t.comment(`two instances behind HAProxy, economy seeded at ${((Date.now() - started) / 1000).toFixed(0)} s`)

  const load = paymentLoad(() => base, e, 6, 'failover')
  await sleep(3000)
  const before = load.attempts.filter(a => a.status === 201).length
  const { firstAfter, writableMs, resumedMs } = await failOver(f, primary, standby, load.attempts)
  t.pass(`${primary.name} (postgres and its pg_autoctl keeper) killed with kill -9 after ${before} payments`)
  await sleep(2000)
  await load.stop()

  t.not(resumedMs, null, 'payments resume through the balancer after the failover')
  const states = await f.state()
  const promoted = states.find(s => s.port === standby.port)
  t.ok(promoted != null && ['wait_primary', 'primary'].includes(promoted.reported), `the monitor has ${standby.name} as the primary (${promoted?.reported})`)
  const after = load.attempts.slice(firstAfter)
  const outcome = new Map<string, number>()
  for (const a of load.attempts) { const k = a.status == null ? 'unanswered' : String(a.status); outcome.set(k, (outcome.get(k) ?? 0) + 1) }
  const refused = load.attempts.filter(a => a.status === 503).length
  t.comment(`failover: new primary writable ${(writableMs / 1000).toFixed(1)} s after the kill; first payment answered 201 ` +
    `${((resumedMs ?? NaN) / 1000).toFixed(1)} s after; ${refused} requests refused with 503 meanwhile; ` +
    `attempts by outcome: ${JSON.stringify(Object.fromEntries(outcome))} (${after.length} started after the kill)`)
  t.notOk(load.attempts.some(a => a.status != null && a.status !== 201 && a.status !== 502 && a.status !== 503),
    'every attempt answered 201, or refused with 503 (or 502 from the balancer) while there was no primary')
  t.ok(load.attempts.filter(a => a.status === 503).every(a => a.contentType?.startsWith('application/problem+json') === true || a.contentType?.startsWith('text/html') === true),
    'a 503 is the service\'s problem document, or HAProxy\'s page while no instance was ready')
  // checked on the new primary itself
  await checkExactlyOnce(t, base, standby.url, e.code, load.attempts)
})
