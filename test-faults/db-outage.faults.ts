import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { seedEconomy } from '../support/economy.js'
import { call } from '../support/http.js'
import { startPostgres } from '../support/postgres.js'
import { ensureBuilt, startService, type Service } from '../support/service.js'
import { checkExactlyOnce, paymentLoad, sleep } from '../support/payment-load.js'

// PostgreSQL stops under load (a fast shutdown, then an immediate one, as after a crash) and starts again:
// meanwhile every route answers 503 problem+json and /ready says not ready; afterwards the same service process
// serves again without a restart, and nothing is half-written.
t.test('the database goes away under load and comes back', async (t) => {
  ensureBuilt()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-outage-'))
  const server = await startPostgres({ embedded: true })
  let svc: Service | null = null
  t.teardown(async () => { await svc?.kill(); await server.stop(); if (process.env.KEEP_WORK == null) fs.rmSync(work, { recursive: true, force: true }); else t.comment(`kept ${work}`) })

  const databaseUrl = await server.createDatabase('circulate_outage')
  svc = await startService({
    databaseUrl, logFile: path.join(work, 'service.log'), dataDir: path.join(work, 'data'),
    env: { DB_ACQUIRE_TIMEOUT_MS: '1000' },
  })
  const base = svc.url
  const e = await seedEconomy(base, { code: 'OUT', members: 12, funds: '100000.00' })
  const [m] = e.members
  const paid = await call(base, 'POST', `/v1/currencies/${e.code}/payments`, { token: m.token, key: 'before', body: { fromAccount: m.accountId, toAccount: e.members[1].accountId, amount: '1.00', channel: 'app', reference: 'probe' } })
  t.equal(paid.status, 201)

  // every kind of route: the write path, the batch path, Prisma reads, login, readiness
  const probes: Array<[string, () => Promise<{ status: number, body: any, headers: Headers }>]> = [
    ['GET /ready', async () => await call(base, 'GET', '/ready')],
    ['POST payment', async () => await call(base, 'POST', `/v1/currencies/${e.code}/payments`, { token: m.token, key: `probe-${Math.random()}`, body: { fromAccount: m.accountId, toAccount: e.members[2].accountId, amount: '1.00', channel: 'app', reference: 'probe' } })],
    ['POST batch', async () => await call(base, 'POST', `/v1/currencies/${e.code}/transfers/batch`, { token: m.token, body: { items: [{ idempotencyKey: `probe-${Math.random()}`, fromAccount: m.accountId, toAccount: e.members[2].accountId, amount: '1.00', channel: 'app', reference: 'probe' }] } })],
    ['POST issuance', async () => await call(base, 'POST', `/v1/currencies/${e.code}/issuances`, { token: e.issuerToken, key: `probe-${Math.random()}`, body: { toAccount: m.accountId, amount: '1.00', sterlingReference: 'probe' } })],
    ['POST reversal', async () => await call(base, 'POST', `/v1/transfers/${paid.body.id}/reversal`, { token: e.issuerToken, key: `probe-${Math.random()}` })],
    ['GET account', async () => await call(base, 'GET', `/v1/accounts/${m.accountId}`, { token: m.token })],
    ['GET statement', async () => await call(base, 'GET', `/v1/accounts/${m.accountId}/statement`, { token: m.token })],
    ['GET transfer', async () => await call(base, 'GET', `/v1/transfers/${paid.body.id}`, { token: m.token })],
    ['GET currency', async () => await call(base, 'GET', `/v1/currencies/${e.code}`)],
    ['GET directory', async () => await call(base, 'GET', `/v1/currencies/${e.code}/businesses`)],
    ['GET participant', async () => await call(base, 'GET', `/v1/participants/${m.id}`, { token: m.token })],
    ['POST token', async () => await call(base, 'POST', '/v1/auth/token', { body: { username: 'out-m0', password: 'member-password' } })],
  ]

  const attempts = []
  for (const mode of ['fast', 'immediate'] as const) {
    const load = paymentLoad(() => base, e, 16, `outage-${mode}`)
    await sleep(1500)
    await server.halt!(mode)
    await sleep(300)
    for (const [name, probe] of probes) {
      const r = await probe()
      t.equal(r.status, 503, `${mode} shutdown: ${name} answers 503`)
      t.match(r.headers.get('content-type'), /^application\/problem\+json/, `${mode} shutdown: ${name} is problem+json`)
      t.equal(r.body?.code, 'SERVICE_UNAVAILABLE', `${mode} shutdown: ${name} says SERVICE_UNAVAILABLE`)
    }
    await sleep(1500)
    await server.resume!()
    const deadline = Date.now() + 20_000
    let ready = 0
    while (Date.now() < deadline && ready !== 200) { ready = (await call(base, 'GET', '/ready')).status; if (ready !== 200) await sleep(200) }
    t.equal(ready, 200, `${mode} shutdown: ready again once the database is back, without a restart`)
    await sleep(1500)
    await load.stop()
    t.equal(svc.proc.exitCode, null, 'the service process kept running')
    for (const [name, probe] of probes.slice(0, 4)) {
      const r = await probe()
      t.ok(r.status < 300, `${mode} shutdown, afterwards: ${name} answers ${r.status}`)
    }
    const bad = load.attempts.filter(a => a.status != null && a.status !== 201 && (a.status !== 503 || !/problem\+json/.test(a.contentType ?? '')))
    t.same(bad.map(a => [a.status, a.code]), [], `${mode} shutdown: under load every refusal was a 503 problem+json`)
    const outcome = new Map<string, number>()
    for (const a of load.attempts) { const k = a.status == null ? 'unanswered' : String(a.status); outcome.set(k, (outcome.get(k) ?? 0) + 1) }
    t.comment(`${mode} shutdown, attempts by outcome: ${JSON.stringify(Object.fromEntries(outcome))}`)
    attempts.push(...load.attempts)
  }
  await checkExactlyOnce(t, base, databaseUrl, e.code, attempts.filter(a => a.body.reference.startsWith('outage-')))
})
