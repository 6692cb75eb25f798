// npm run bench:cluster [-- --duration S] [-- --no-failover]
//
// Many instances, one ledger, measured in one run on this machine (support/ starts everything; figures
// as ratios to pgbench measured in the same run, since absolute numbers on a shared machine mean little):
//   1. pgbench (scale 10, 64 clients, prepared) on the same PostgreSQL
//   2. payments (autocannon, 64 connections, 50 members) straight to one instance
//   3. the same through HAProxy to three instances (one signing key, Redis-shared limits when Redis answers on
//      127.0.0.1:6379); the issue's bar: >= 0.8x one instance, 0 errors
//   4. through HAProxy to the three, one instance killed with kill -9 half-way: acknowledged payments lost (must be
//      0: each 201's key is looked up in the ledger) and requests refused meanwhile
//   5. pg_auto_failover (support/cluster.ts): a monitor, a primary and a synchronous secondary, two instances
//      behind HAProxy with both nodes in DATABASE_URL; the primary (postgres and keeper) killed with kill -9:
//      time until the secondary accepts writes, until payments resume, requests refused, acknowledged lost
//      (--no-failover skips it)
// Writes bench/cluster.json and prints a markdown table.
import autocannon, { type Request as AcRequest, type Result } from 'autocannon'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { generateJwk } from '../src/auth/keys.js'
import { migrate } from '../src/db/migrate.js'
import { failOver, formationUnavailable, hasHaproxy, startFormation, startHaproxy, type Balancer } from '../support/cluster.js'
import { seedEconomy, type Economy } from '../support/economy.js'
import { paymentLoad, sleep, type Attempt } from '../support/payment-load.js'
import { accepting } from '../support/ports.js'
import { startPostgres } from '../support/postgres.js'
import { buildService, ROOT, startService, type Service } from '../support/service.js'

const args = process.argv.slice(2)
const option = (name: string): string | undefined => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : undefined }
const PHASE_S = Number(option('duration') ?? 15)
const CONNECTIONS = 64
const MEMBERS = 50
const OUT = path.resolve(ROOT, option('out') ?? 'bench/cluster.json')
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-bench-cluster-'))
fs.chmodSync(work, 0o755)
const log = (msg: string) => { process.stderr.write(`[bench:cluster ${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }

function pgbench (url: string, seconds: number): number {
  const r = spawnSync('pgbench', ['-c', String(CONNECTIONS), '-j', '2', '-T', String(seconds), '-M', 'prepared', url], { encoding: 'utf8' })
  const tps = /tps = ([\d.]+)/.exec(r.stdout)?.[1]
  if (r.status !== 0 || tps == null) throw new Error(`pgbench failed: ${r.stdout}\n${r.stderr}`)
  return Number(tps)
}

let seq = 0
const pick = (n: number, not = -1) => { for (;;) { const i = Math.floor(Math.random() * n); if (i !== not) return i } }
function paymentRequests (e: Economy, tag: string): AcRequest[] {
  return [{
    method: 'POST',
    path: `/v1/currencies/${e.code}/payments`,
    setupRequest: (req) => {
      const a = pick(e.members.length); const b = pick(e.members.length, a)
      req.headers = { 'content-type': 'application/json', authorization: `Bearer ${e.members[a].token}`, 'idempotency-key': `${tag}-${process.pid}-${seq++}` }
      req.body = JSON.stringify({ fromAccount: e.members[a].accountId, toAccount: e.members[b].accountId, amount: `${1 + (seq % 9)}.${String(seq % 100).padStart(2, '0')}`, channel: 'app', reference: 'bench' })
      return req
    },
  }]
}

/** The keys answered 201 whose transfer is not in the ledger under that key (must be none). */
async function lostAcknowledged (url: string, attempts: Attempt[]): Promise<number> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const acked = attempts.filter(a => a.status === 201)
    const rows = (await c.query<{ key: string, transfer_id: string }>('SELECT key, transfer_id::text FROM idempotency_key WHERE key = ANY($1)', [acked.map(a => a.key)])).rows
    const byKey = new Map(rows.map(r => [r.key, r.transfer_id]))
    return acked.filter(a => byKey.get(a.key) !== a.transferId).length
  } finally { await c.end() }
}

const outcomes = (attempts: Attempt[]) => {
  const m: Record<string, number> = {}
  for (const a of attempts) { const k = a.status == null ? 'unanswered' : String(a.status); m[k] = (m[k] ?? 0) + 1 }
  return m
}

async function throughput (url: string, e: Economy, tag: string): Promise<{ paymentsPerS: number, p50: number, p99: number, non2xx: number, errors: number, timeouts: number }> {
  await autocannon({ url, connections: CONNECTIONS, duration: 3, timeout: 30, requests: paymentRequests(e, `${tag}-warm`) })
  const r: Result = await autocannon({ url, connections: CONNECTIONS, duration: PHASE_S, timeout: 30, requests: paymentRequests(e, tag) })
  const seconds = (r.finish.getTime() - r.start.getTime()) / 1000
  // autocannon counts 2xx answers (201 here) though its types omit the field
  const ok = (r as unknown as { '2xx': number })['2xx']
  return { paymentsPerS: ok / seconds, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts }
}

async function main () {
  if (!hasHaproxy()) throw new Error('haproxy is not installed: bash scripts/ensure-cluster-tools.sh')
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  log(`work folder ${work}; load average ${load}`)
  const server = await startPostgres()
  const services: Service[] = []
  let lb: Balancer | null = null
  const results: Record<string, unknown> = { date: new Date().toISOString(), loadAverageAtStart: load, phaseSeconds: PHASE_S, connections: CONNECTIONS }
  try {
    log('building (npm run build)')
    buildService()
    const pgbenchUrl = await server.createDatabase('circulate_pgbench', { migrate: false })
    const init = spawnSync('pgbench', ['-i', '-s', '10', '-q', pgbenchUrl], { encoding: 'utf8' })
    if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`)
    const pgb = pgbench(pgbenchUrl, PHASE_S)
    log(`pgbench: ${pgb.toFixed(0)} tps`)

    const dbUrl = await server.createDatabase('circulate_cluster')
    const redis = await accepting(6379)
    const env: Record<string, string> = {
      JWT_PRIVATE_KEYS: JSON.stringify([await generateJwk()]), TRUST_PROXY: 'true',
      ...(redis ? { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_PREFIX: `benchcluster${process.pid}:` } : {}),
    }
    log(`three instances${redis ? ' sharing Redis on 127.0.0.1:6379' : ' (no Redis on 127.0.0.1:6379: per-instance limits)'}`)
    for (let i = 0; i < 3; i++) services.push(await startService({ databaseUrl: dbUrl, env, logFile: path.join(work, `s${i}.log`), dataDir: path.join(work, `d${i}`), readyTimeoutMs: 150_000 }))
    lb = await startHaproxy(work, services.map(s => s.port))
    const e = await seedEconomy(lb.url, { code: 'CLB', members: MEMBERS, funds: '1000000.00' })

    const one = await throughput(services[0]!.url, e, 'one')
    log(`one instance: ${one.paymentsPerS.toFixed(0)} payments/s, p99 ${one.p99} ms, non-2xx ${one.non2xx}, errors ${one.errors}`)
    const three = await throughput(lb.url, e, 'three')
    log(`HAProxy + three instances: ${three.paymentsPerS.toFixed(0)} payments/s, p99 ${three.p99} ms, non-2xx ${three.non2xx}, errors ${three.errors}`)

    // one instance killed half-way through a load whose every answer is kept
    const kl = paymentLoad(() => lb!.url, e, 16, 'kill')
    await sleep(PHASE_S * 500)
    await services[2]!.kill()
    await sleep(PHASE_S * 500)
    await kl.stop()
    const killLost = await lostAcknowledged(dbUrl, kl.attempts)
    const killOutcomes = outcomes(kl.attempts)
    log(`one of three killed mid-run: ${JSON.stringify(killOutcomes)}; acknowledged lost: ${killLost}`)
    lb.stop(); lb = null
    for (const s of services.splice(0)) await s.kill()

    let failover: Record<string, unknown> | null = null
    const why = formationUnavailable()
    if (args.includes('--no-failover') || why != null) {
      log(`pg_auto_failover phase skipped${why != null ? `: ${why}` : ''}`)
    } else {
      // a failure here (the formation, or seeding on it, on a loaded machine) must not lose the figures above
      failover = await failoverPhase().catch((err: unknown) => {
        log(`pg_auto_failover phase failed: ${(err as Error).message}`)
        return { error: (err as Error).message }
      })
    }

    results.pgbenchTps = pgb
    results.one = one
    results.three = three
    results.threeToOne = three.paymentsPerS / one.paymentsPerS
    results.killOne = { outcomes: killOutcomes, acknowledgedLost: killLost }
    results.failover = failover
    fs.mkdirSync(path.dirname(OUT), { recursive: true })
    fs.writeFileSync(OUT, JSON.stringify(results, null, 2))
    const fmt = (n: number) => n.toFixed(0)
    console.log([
      `bench:cluster, ${results.date as string}, load average at start ${load}, ${PHASE_S} s phases, ${CONNECTIONS} connections`,
      '', '| figure | value | ratio to pgbench |', '| --- | --- | --- |',
      `| pgbench TPC-B-like (baseline) | ${fmt(pgb)} tps | 1 |`,
      `| payments, one instance | ${fmt(one.paymentsPerS)}/s (p99 ${one.p99} ms, non-2xx ${one.non2xx}, errors ${one.errors}) | ${(one.paymentsPerS / pgb).toFixed(2)} |`,
      `| payments, HAProxy + 3 instances | ${fmt(three.paymentsPerS)}/s (p99 ${three.p99} ms, non-2xx ${three.non2xx}, errors ${three.errors}) | ${(three.paymentsPerS / pgb).toFixed(2)} |`,
      `| 3 instances / 1 instance | ${(three.paymentsPerS / one.paymentsPerS).toFixed(2)}x | |`,
      `| one of 3 killed mid-run | ${JSON.stringify(killOutcomes)}; acknowledged lost ${killLost} | |`,
      failover == null ? '| pg_auto_failover | skipped | |' : `| pg_auto_failover, primary killed | ${JSON.stringify(failover)} | |`,
    ].join('\n'))
  } finally {
    lb?.stop()
    for (const s of services) await s.kill()
    await server.stop()
    fs.rmSync(work, { recursive: true, force: true })
  }
}

/** Two instances behind HAProxy on a pg_auto_failover formation; the primary killed under load. */
async function failoverPhase (): Promise<Record<string, unknown>> {
  log('pg_auto_failover: creating a monitor, a primary and a secondary')
  const f = await startFormation(path.join(work, 'pg'))
  const services: Service[] = []
  let lb: Balancer | null = null
  try {
    await migrate(f.multiHostUrl)
    const env = { JWT_PRIVATE_KEYS: JSON.stringify([await generateJwk()]), TRUST_PROXY: 'true' }
    for (let i = 0; i < 2; i++) services.push(await startService({ databaseUrl: f.multiHostUrl, env, logFile: path.join(work, `f${i}.log`), dataDir: path.join(work, `fd${i}`), readyTimeoutMs: 150_000 }))
    lb = await startHaproxy(work, services.map(s => s.port))
    const e = await seedEconomy(lb.url, { code: 'FOB', members: 20, funds: '100000.00' })
    const primary = (await f.primary())!
    const standby = f.nodes.find(n => n !== primary)!
    const load = paymentLoad(() => lb!.url, e, 16, 'failover')
    await sleep(5000)
    const { writableMs, resumedMs } = await failOver(f, primary, standby, load.attempts)
    await sleep(3000)
    await load.stop()
    const lost = await lostAcknowledged(standby.url, load.attempts)
    const o = outcomes(load.attempts)
    log(`pg_auto_failover: writable after ${writableMs} ms, payments resumed after ${resumedMs} ms, ${JSON.stringify(o)}, acknowledged lost ${lost}`)
    return { newPrimaryWritableMs: writableMs, paymentsResumedMs: resumedMs, refused503: load.attempts.filter(a => a.status === 503).length, outcomes: o, acknowledgedLost: lost }
  } finally {
    lb?.stop()
    for (const s of services) await s.kill()
    f.destroy()
  }
}

main().catch((err: unknown) => { console.error(err); process.exitCode = 1 })
