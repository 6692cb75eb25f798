import http from 'node:http'
import t from 'tap'
import { forgetWebhookHistory } from '../../src/webhooks/retention.js'
import { buildTestApp, issue, scenario } from '../helper.js'

// webhook_delivery and webhook_rotation were never pruned: every event sent to every endpoint, and every secret
// rotation, stayed for good. Now finished deliveries (delivered, failed) and rotation keys past
// WEBHOOK_RETENTION_DAYS are deleted; a pending delivery, one whose send is under way, one touched within the
// retention and the key of an endpoint's current secret are kept. The clock is moved, not waited for: forgetting
// is run as of a day 40 days from now, so what the service wrote today is 40 days old.

const DAY = 86_400_000
const POLICY = { WEBHOOK_ALLOW_HTTP: '1', WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_DELIVERY: '0' } as const

async function receiver (t: any): Promise<string> {
  const server = http.createServer((req, res) => { req.resume(); req.on('end', () => { res.statusCode = 204; res.end() }) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => { resolve() })))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks`
}

t.test('finished deliveries and rotation keys past the retention are deleted; pending, recent, in-flight and current ones stay', async (t) => {
  const ctx = await buildTestApp(t, POLICY)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const url = await receiver(t)
  const hook = (await ctx.call('POST', '/v1/webhooks', { token: s.business.token, body: { url, events: ['payment.received'] } })).body.id as string
  const pay = async (key: string) => t.equal((await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
  })).status, 201)
  for (let i = 1; i <= 6; i++) await pay(`ret-${i}`)
  const ids = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM webhook_delivery WHERE webhook_id = $1 ORDER BY id', [hook])).rows.map(r => r.id)
  t.equal(ids.length, 6)
  const now = new Date(Date.now() + 40 * DAY)
  const at = (days: number) => new Date(now.getTime() - days * DAY)
  const set = async (id: string, sql: string, args: unknown[] = []) =>
    await ctx.app.pool.query(`UPDATE webhook_delivery SET ${sql} WHERE id = $1`, [id, ...args])
  const [delivered, failed, pending, recent, retried, sending] = ids
  await set(delivered, `status = 'delivered', attempts = 1, last_attempt_at = now(), delivered_at = now(), last_status_code = 204`)
  await set(failed, `status = 'failed', attempts = 9, last_attempt_at = now(), last_error = 'the endpoint answered 500'`)
  // (pending: as written, attempts 0)
  await set(recent, `status = 'delivered', attempts = 1, last_attempt_at = $2, delivered_at = $2`, [at(29)])
  // an old delivery retried (POST .../retry) within the retention: its last attempt is what counts
  await set(retried, `status = 'failed', attempts = 4, last_attempt_at = $2, last_error = 'the endpoint answered 503'`, [at(1)])
  // failed while a send of it was under way (its endpoint deleted meanwhile): the send's outcome is still to come
  await set(sending, `status = 'failed', attempts = 1, last_attempt_at = now(), sending_until = $2`, [new Date(now.getTime() + 30_000)])

  // rotations: rot-1 replaced by rot-2 (the current secret); another endpoint rotated and then deleted
  const rotate = async (id: string, key: string) => await ctx.call('POST', `/v1/webhooks/${id}/secret`, { token: s.business.token, key })
  t.equal((await rotate(hook, 'rot-1')).status, 200)
  const current = await rotate(hook, 'rot-2')
  t.equal(current.status, 200)
  const gone = (await ctx.call('POST', '/v1/webhooks', { token: s.business.token, body: { url, events: ['payment.received'] } })).body.id as string
  t.equal((await rotate(gone, 'rot-3')).status, 200)
  t.equal((await ctx.call('DELETE', `/v1/webhooks/${gone}`, { token: s.business.token })).status, 204)

  const kept = async () => (await ctx.app.pool.query<{ id: string }>('SELECT id FROM webhook_delivery WHERE webhook_id = $1 ORDER BY id', [hook])).rows.map(r => r.id)
  const keys = async () => (await ctx.app.pool.query<{ k: string }>('SELECT idempotency_key AS k FROM webhook_rotation ORDER BY 1')).rows.map(r => r.k)

  t.same(await forgetWebhookHistory(ctx.app.pool, now, 50), { deliveries: 0, rotations: 0 }, 'a longer retention keeps everything')
  t.same(await forgetWebhookHistory(ctx.app.pool, new Date(), 30), { deliveries: 0, rotations: 0 }, 'nothing is past 30 days today')
  t.same((await kept()).length, 6)

  t.same(await forgetWebhookHistory(ctx.app.pool, now, 30), { deliveries: 2, rotations: 2 }, '40 days on: the old finished ones go')
  t.same(await kept(), [pending, recent, retried, sending], 'the pending, the recent, the retried and the one being sent stay')
  t.same(await keys(), ['rot-2'], 'the key of the current secret stays; the superseded one and the deleted endpoint\'s go')
  t.same(await forgetWebhookHistory(ctx.app.pool, now, 30), { deliveries: 0, rotations: 0 }, 'a second run finds nothing more')

  // what the owner sees: the delivery log without the deleted rows; the current rotation's retry still replayed
  const log = await ctx.call('GET', `/v1/webhooks/${hook}/deliveries`, { token: s.business.token })
  t.same(log.body.items.map((d: any) => d.id).sort(), [pending, recent, retried, sending].sort())
  const replay = await rotate(hook, 'rot-2')
  t.same([replay.status, replay.headers['idempotent-replayed'], replay.body.secret], [200, 'true', current.body.secret], 'a retry of the current rotation is still answered')
  const retry = await ctx.call('POST', `/v1/webhooks/${hook}/deliveries/${delivered}/retry`, { token: s.business.token })
  t.equal(retry.status, 404, 'a deleted delivery is not found')

  // the one under way ends (its lease cleared): then it goes too
  await set(sending, 'sending_until = NULL')
  t.same(await forgetWebhookHistory(ctx.app.pool, now, 30), { deliveries: 1, rotations: 0 })
  t.same(await kept(), [pending, recent, retried])
})

t.test('an instance that delivers webhooks forgets the old history when it starts', async (t) => {
  const ctx = await buildTestApp(t, POLICY)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  const hook = (await ctx.call('POST', '/v1/webhooks', { token: s.business.token, body: { url: await receiver(t), events: ['payment.received'] } })).body.id as string
  t.equal((await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'start-1', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
  })).status, 201)
  // a delivery finished 40 days ago, written then (its id is of then too)
  const old = new Date(Date.now() - 40 * DAY)
  await ctx.app.pool.query(`UPDATE webhook_delivery SET id = uuid_v7_at($2), status = 'delivered', attempts = 1, created_at = $2,
                                   last_attempt_at = $2, delivered_at = $2 WHERE webhook_id = $1`, [hook, old])
  const count = async () => (await ctx.app.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_delivery')).rows[0].n
  t.equal(await count(), 1)
  await buildTestApp(t, { ...POLICY, WEBHOOK_DELIVERY: '1' }, { db: ctx.db, keys: ctx.keys })
  // the first run starts when the instance is ready and runs beside its start: wait for its outcome, not for a time
  const deadline = Date.now() + 20_000
  while (await count() !== 0 && Date.now() < deadline) await new Promise(resolve => setImmediate(resolve))
  t.equal(await count(), 0, 'the delivering instance deleted it at start')
})
