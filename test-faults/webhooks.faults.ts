import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { Webhook } from 'standardwebhooks'
import t from 'tap'
import { seedEconomy } from '../support/economy.js'
import { call } from '../support/http.js'
import { freePort } from '../support/ports.js'
import { startPostgres } from '../support/postgres.js'
import { ensureBuilt, startService, type Service } from '../support/service.js'
import { paymentLoad, sleep } from '../support/payment-load.js'

// The webhooks' outbox survives kill -9 of the service (issue 11): payments are posted while the shop's receiver
// is failing (it accepts one attempt in three, so most events pile up in the outbox and a few are being sent at
// the moment of the kill), the service is killed with SIGKILL under load, restarted, and the receiver comes up.
// Then: every committed payment's two events (payment.sent, payment.received) reach the receiver, every request
// verifies with the Standard Webhooks algorithm (the standardwebhooks package), nothing is lost, the delivery log
// (GET /v1/webhooks/{id}/deliveries) says delivered for each and agrees with what the receiver saw, and an event
// arrives twice only where at-least-once allows it: its first accepted attempt was in flight when the service died
// (accepted by the receiver, not yet recorded), so the restarted service sent it again when its lease ended.
//
// Time: the lease of a delivery in flight at the kill is WEBHOOK_TIMEOUT_MS + 30 s (src/webhooks/worker.ts), so
// the wait after the restart is bounded by about 35 s.

interface Hit { id: string, status: number, at: number, body: string, verified: boolean, error?: string }

t.test('kill -9 after payments commit and before their webhooks are delivered: every event delivered after restart', { timeout: 280_000 }, async (t) => {
  ensureBuilt()
  const t0 = Date.now()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-webhooks-'))
  const server = await startPostgres({ embedded: true })
  let svc: Service | null = null

  // the shop's receiver: failing at first (503 for two attempts in three), then up (204); it verifies every request
  let mode: 'failing' | 'up' = 'failing'
  let secret = ''
  const hits: Hit[] = []
  let n = 0
  const rx = http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => { body += c })
    req.on('end', () => {
      const id = String(req.headers['webhook-id'])
      let verified = false
      let error: string | undefined
      try {
        new Webhook(secret).verify(body, {
          'webhook-id': id, 'webhook-timestamp': String(req.headers['webhook-timestamp']), 'webhook-signature': String(req.headers['webhook-signature']),
        })
        verified = true
      } catch (err) { error = (err as Error).message }
      const status = mode === 'up' || ++n % 3 === 0 ? 204 : 503
      // a short pause before answering: a kill may land between the receiver's acceptance and the service recording it
      setTimeout(() => {
        hits.push({ id, status, at: Date.now(), body, verified, error })
        res.statusCode = status
        res.end()
      }, 15)
    })
  })
  await new Promise<void>(resolve => rx.listen(0, '127.0.0.1', resolve))
  const rxUrl = `http://127.0.0.1:${(rx.address() as { port: number }).port}/hooks/circulate`

  t.teardown(async () => {
    await svc?.kill()
    await new Promise<void>(resolve => rx.close(() => { resolve() }))
    await server.stop()
    if (process.env.KEEP_WORK == null) fs.rmSync(work, { recursive: true, force: true }); else t.comment(`kept ${work}`)
  })

  const databaseUrl = await server.createDatabase('circulate_webhooks')
  const port = await freePort()
  const env = { WEBHOOK_ALLOW_HTTP: '1', WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_TIMEOUT_MS: '5000' }
  const start = async () => await startService({ databaseUrl, port, env, logFile: path.join(work, 'service.log'), dataDir: path.join(work, 'data') })
  svc = await start()
  const base = svc.url
  const e = await seedEconomy(base, { code: 'HOOK', members: 12, funds: '100000.00' })
  const stage = (what: string) => { t.comment(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`) }
  stage('PostgreSQL up, service up, economy seeded')

  // the issuer's endpoint: every account of the currency, both payment events (registered after the seeding, so
  // the events it gets are exactly those of the payments below)
  const hook = await call(base, 'POST', '/v1/webhooks', {
    token: e.issuerToken, body: { url: rxUrl, events: ['payment.sent', 'payment.received'], currency: e.code, description: 'faults suite' },
  })
  t.equal(hook.status, 201, 'webhook registered')
  secret = hook.body.secret
  const hookId = hook.body.id as string

  const load = paymentLoad(() => base, e, 8, 'hooks')
  await sleep(2500)
  const answeredBeforeKill = load.attempts.filter(a => a.status === 201).length
  const killedAt = Date.now()
  await svc.kill()
  await load.stop()
  t.ok(answeredBeforeKill > 0, `${answeredBeforeKill} payments answered 201 before kill -9`)

  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  t.teardown(async () => { await db.end() })
  const byStatus = async () => Object.fromEntries((await db.query<{ status: string, n: number }>(
    'SELECT status, count(*)::int AS n FROM webhook_delivery WHERE webhook_id = $1 GROUP BY status ORDER BY status', [hookId])).rows.map(r => [r.status, r.n]))
  const atKill = await byStatus()
  t.comment(`outbox at the kill: ${JSON.stringify(atKill)}; receiver: ${hits.filter(h => h.status === 204).length} accepted, ${hits.filter(h => h.status !== 204).length} refused`)
  t.ok((atKill.pending ?? 0) > 0, 'events were left undelivered in the outbox when the service died')

  // committed payments (whether or not their 201 reached the client) and the events they must produce
  const committed = (await db.query<{ id: string, from_account_id: string, to_account_id: string }>(
    `SELECT id, from_account_id, to_account_id FROM transfer WHERE kind = 'payment' AND parent_id IS NULL AND reference = 'hooks'`)).rows
  const answered = load.attempts.filter(a => a.status === 201)
  const committedIds = new Set(committed.map(c => c.id))
  t.same(answered.filter(a => !committedIds.has(a.transferId!)).map(a => a.key), [], 'every payment answered 201 is committed')
  t.comment(`${committed.length} payments committed, ${answered.length} of them answered 201 before the kill`)

  // restart; the receiver comes up
  mode = 'up'
  const restartedAt = Date.now()
  svc = await start()
  stage('service restarted, receiver up')
  const expected = committed.length * 2
  const deadline = Date.now() + 45_000
  let st = await byStatus()
  while ((st.delivered ?? 0) < expected || (st.pending ?? 0) > 0) {
    if (Date.now() > deadline) break
    await sleep(250)
    st = await byStatus()
  }
  const allDeliveredAfterS = (Date.now() - restartedAt) / 1000
  t.same(st, { delivered: expected }, `every delivery delivered ${allDeliveredAfterS.toFixed(1)} s after the restart (2 events x ${committed.length} payments)`)

  // the delivery log through the API, every page
  const log: Array<{ id: string, eventId: string, eventType: string, status: string, attempts: number, lastStatusCode: number | null }> = []
  for (let cursor: string | null = null; ;) {
    const page = await call(svc.url, 'GET', `/v1/webhooks/${hookId}/deliveries?limit=100${cursor == null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`, { token: e.issuerToken })
    t.equal(page.status, 200)
    log.push(...page.body.items)
    cursor = page.body.nextCursor
    if (cursor == null) break
  }
  t.equal(log.length, expected, 'the delivery log has one delivery per event')
  t.same(log.filter(d => d.status !== 'delivered' || d.lastStatusCode !== 204), [], 'the log says delivered (204) for each')

  t.same(hits.filter(h => !h.verified).map(h => [h.id, h.error]), [], `all ${hits.length} requests verify (standardwebhooks)`)
  const accepted = hits.filter(h => h.status === 204)
  const events = new Map<string, { type: string, transferId: string, accountId: string }>()
  for (const h of accepted) {
    const b = JSON.parse(h.body)
    events.set(h.id, { type: b.type, transferId: b.data.transferId, accountId: b.data.accountId })
  }
  // no event lost: each committed payment's payment.sent (payer) and payment.received (payee) were accepted
  const got = new Set([...events.values()].map(v => `${v.transferId} ${v.type} ${v.accountId}`))
  const missing = committed.flatMap(c => [`${c.id} payment.sent ${c.from_account_id}`, `${c.id} payment.received ${c.to_account_id}`]).filter(k => !got.has(k))
  t.same(missing, [], 'every committed payment\'s two events reached the receiver')
  t.same([...events.keys()].sort(), log.map(d => d.id).sort(), 'the receiver accepted exactly the deliveries in the log')

  // the log agrees with the receiver: no delivery was seen more times than the log counts attempts
  const seen = new Map<string, number>()
  for (const h of hits) seen.set(h.id, (seen.get(h.id) ?? 0) + 1)
  t.same(log.filter(d => (seen.get(d.id) ?? 0) > d.attempts).map(d => d.id), [], 'no delivery reached the receiver more often than its attempts in the log')

  // duplicates: only where the first acceptance was in flight when the service was killed
  const firstAccepted = new Map<string, number>()
  const dupes = new Map<string, number>()
  for (const h of accepted) {
    if (!firstAccepted.has(h.id)) firstAccepted.set(h.id, h.at)
    else dupes.set(h.id, (dupes.get(h.id) ?? 1) + 1)
  }
  t.comment(`duplicates (at-least-once): ${dupes.size} of ${expected} deliveries accepted more than once`)
  t.same([...dupes.keys()].filter(id => firstAccepted.get(id)! > killedAt + 100), [],
    'an event is accepted twice only if its first acceptance came before the kill (in flight, not yet recorded)')
  t.comment(`whole test ${((Date.now() - t0) / 1000).toFixed(1)} s`)
})
