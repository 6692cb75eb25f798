import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { generateJwk } from '../src/auth/keys.js'
import { haproxyConfig } from '../support/cluster.js'
import { seedEconomy } from '../support/economy.js'
import { call } from '../support/http.js'
import { accepting, freePort } from '../support/ports.js'
import { startPostgres } from '../support/postgres.js'
import { ensureBuilt, startService, type Service } from '../support/service.js'
import { checkExactlyOnce, paymentLoad, sleep } from '../support/payment-load.js'

// Three service processes behind HAProxy (Debian's, config generated here), sharing one PostgreSQL and one Redis:
// payments through the balancer; one instance killed with kill -9 mid-load; every payment answered 201 is in the
// ledger exactly once, every other attempt posts exactly once when retried, the invariants hold; the money limit
// is exact across the three. scripts/ensure-cluster-tools.sh installs HAProxy (CI runs it).

const has = (cmd: string) => spawnSync(cmd, ['-v'], { stdio: 'ignore' }).status === 0

t.test('three instances behind HAProxy: kill -9 one under load, nothing acknowledged is lost', {
  skip: !has('haproxy') ? 'haproxy is not installed (scripts/ensure-cluster-tools.sh)' : !(await accepting(6379)) ? 'no Redis on 127.0.0.1:6379' : false,
  timeout: 240_000,
}, async (t) => {
  ensureBuilt()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-cluster-'))
  const server = await startPostgres()
  const services: Service[] = []
  let lb: ChildProcess | null = null
  t.teardown(async () => {
    lb?.kill('SIGKILL')
    for (const s of services) await s.kill()
    await server.stop()
    fs.rmSync(work, { recursive: true, force: true })
  })
  const databaseUrl = await server.createDatabase(`circulate_cluster_${process.pid}`)
  // one signing key for all three: a token from one instance is good on the others
  const env = { JWT_PRIVATE_KEYS: JSON.stringify([await generateJwk()]), REDIS_URL: 'redis://127.0.0.1:6379', REDIS_PREFIX: `cluster${process.pid}:`, TRUST_PROXY: 'true', RATE_LIMIT_MONEY_PER_MINUTE: '60' }
  for (let i = 0; i < 3; i++) {
    services.push(await startService({ databaseUrl, env, logFile: path.join(work, `s${i}.log`), dataDir: path.join(work, `d${i}`) }))
  }
  const port = await freePort()
  fs.writeFileSync(path.join(work, 'haproxy.cfg'), haproxyConfig(port, services.map(s => s.port)))
  lb = spawn('haproxy', ['-f', path.join(work, 'haproxy.cfg'), '-db'], { stdio: 'ignore' })
  const base = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) { try { if ((await fetch(`${base}/ready`)).status === 200) break } catch {} await sleep(100) }

  // The limit is 60 money movements a minute per caller. Members enough that the load (about five seconds, as fast
  // as the machine goes) keeps each under it (with 20, a quiet machine's 1,000 payments took some past it), and few
  // enough that the issuer's issuances (one per member, and one more below) stay under it too.
  const e = await seedEconomy(base, { code: 'CLU', members: 40, funds: '100000.00' })
  const load = paymentLoad(() => base, e, 6, 'cluster')
  await sleep(2500)
  const killed = services[1]!
  await killed.kill()
  t.pass(`instance 2 (pid ${killed.pid}) killed with kill -9 after ${load.attempts.filter(a => a.status === 201).length} payments`)
  await sleep(2500)
  await load.stop()
  const outcome = new Map<string, number>()
  for (const a of load.attempts) { const k = a.status == null ? 'unanswered' : String(a.status); outcome.set(k, (outcome.get(k) ?? 0) + 1) }
  t.comment(`attempts by outcome: ${JSON.stringify(Object.fromEntries(outcome))}`)
  t.notOk(load.attempts.some(a => a.status != null && a.status >= 500 && a.status !== 502 && a.status !== 503),
    'no 500: only 201, or 502/503 from the balancer for requests in flight on the killed instance')
  t.notOk(load.attempts.some(a => a.status === 429), 'no member reached the limit during the load')
  await checkExactlyOnce(t, base, databaseUrl, e.code, load.attempts)

  // the limit through the balancer, over the two surviving instances: exactly 60 a minute for a fresh caller
  const reg = await call(base, 'POST', `/v1/currencies/${e.code}/members`, {
    token: e.issuerToken, body: { name: 'Fresh', postcode: 'BS6 5AB', username: 'clu-fresh', password: 'member-password' },
  })
  t.equal(reg.status, 201)
  t.equal((await call(base, 'POST', `/v1/currencies/${e.code}/issuances`, {
    token: e.issuerToken, key: 'fresh-funds', body: { toAccount: reg.body.accountId, amount: '100.00', sterlingReference: 'fresh' },
  })).status, 201)
  const token = (await call(base, 'POST', '/v1/auth/token', { body: { username: 'clu-fresh', password: 'member-password' } })).body.accessToken as string
  const codes: number[] = []
  for (let i = 0; i < 64; i++) {
    codes.push((await call(base, 'POST', `/v1/currencies/${e.code}/payments`, {
      token, key: `limit-${i}`, body: { fromAccount: reg.body.accountId, toAccount: e.members[1]!.accountId, amount: '0.01', channel: 'app' },
    })).status)
  }
  t.equal(codes.filter(c => c === 201).length, 60, 'exactly 60 of 64 pass through the balancer to two instances (limit 60 a minute)')
  t.equal(codes.filter(c => c === 429).length, 4, 'the rest are 429')
})
