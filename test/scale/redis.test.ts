import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyReply, FastifyRequest } from 'fastify'
import t from 'tap'
import { freePort } from '../../support/ports.js'
import { hasRedis, startRedis } from '../../support/redis.js'
import { buildTestApp, issue, scenario, type TestContext } from '../helper.js'
import { handlerDone } from '../../src/plugins/held-places.js'

// Two instances of the service on one database and one Redis (a redis-server of this test's own, on a free port):
// the money rate limit, the read budget and revocations hold across both; with Redis killed mid-test every request
// still gets a real answer (never a 500), each instance limiting on its own; when Redis is back, limits are shared
// again. The two instances are two apps in this process (the HAProxy test runs them as separate processes).

t.test('two instances, one Redis', { skip: hasRedis() ? false : 'redis-server is not installed' }, async (t) => {
  const port = await freePort()
  let redis = await startRedis(port)
  t.teardown(() => { redis.kill('SIGKILL') })
  const env = {
    REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_PREFIX: `t${process.pid}:`, RATE_LIMIT_MONEY_PER_MINUTE: 10,
    // long enough that only Redis can carry a revocation to the other instance within this test
    API_KEY_CHECK_MS: 600_000, LOGIN_CHECK_MS: 600_000, TOKEN_CACHE_MS: 600_000, READS_PER_CALLER: 1,
  }
  const a = await buildTestApp(t, env)
  const b = await buildTestApp(t, env, { db: a.db, keys: a.keys })
  t.same([a.app.shared.up(), b.app.shared.up()], [true, true], 'both instances are connected to Redis')
  const s = await scenario(a)
  await issue(a, s.code, s.member.accountId, '1000.00')
  let n = 0
  const pay = async (ctx: TestContext, token = s.member.token) => await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token, key: `p-${n++}`, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
  })

  await t.test('the money limit is exact across instances', async (t) => {
    const codes: number[] = []
    for (let i = 0; i < 14; i++) codes.push((await pay(i % 2 === 0 ? a : b)).status)
    t.equal(codes.filter(c => c === 201).length, 10, `10 of 14 alternating between the instances pass (${codes.join(' ')})`)
    t.equal(codes.filter(c => c === 429).length, 4, 'the rest are 429')
    const r = await pay(b)
    t.equal(r.status, 429)
    t.match(String(r.headers['retry-after']), /^\d+$/, 'with Retry-After')
  })

  await t.test('a revoked API key and a suspended login stop working on the other instance at once', async (t) => {
    const created = await a.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till', scopes: ['statements:read'] } })
    t.equal(created.status, 201)
    const tok = (await a.call('POST', '/v1/auth/token', { body: { apiKey: created.body.key } })).body.accessToken as string
    const stmt = `/v1/accounts/${s.business.accountId}/statement`
    t.equal((await b.call('GET', stmt, { token: tok })).status, 200, 'instance b has seen the key active')
    t.equal((await a.call('DELETE', `/v1/api-keys/${created.body.id as string}`, { token: s.business.token })).status, 204)
    let status = 0
    for (let i = 0; i < 40 && status !== 401; i++) { status = (await b.call('GET', stmt, { token: tok })).status; if (status !== 401) await sleep(25) }
    t.equal(status, 401, 'instance b refuses the revoked key (API_KEY_CHECK_MS is 10 minutes: only Redis told it)')

    t.equal((await b.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })).status, 200)
    t.equal((await a.call('PUT', `/v1/participants/${s.member.id}/suspension`, { token: a.issuerToken, body: { reason: 'lost phone' } })).status, 200)
    status = 0
    for (let i = 0; i < 40 && status !== 401; i++) { status = (await b.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })).status; if (status !== 401) await sleep(25) }
    t.equal(status, 401, 'instance b refuses the suspended login\'s token')
    t.equal((await a.call('DELETE', `/v1/participants/${s.member.id}/suspension`, { token: a.issuerToken })).status, 200)
  })

  await t.test('the read budget holds across instances', async (t) => {
    const fake = () => {
      const raw = new EventEmitter()
      const request = { principal: { userId: 'researcher-1' }, ip: '10.0.0.1', log: { info: () => {} } } as unknown as FastifyRequest
      return {
        request, reply: { raw } as unknown as FastifyReply,
        hangUp: () => { raw.emit('close') },
        // the read is over: its handler done and its response closed
        close: () => { handlerDone(request); raw.emit('close') },
      }
    }
    const r1 = fake(); const r2 = fake(); const r3 = fake()
    await a.app.readBudget(r1.request, r1.reply) // runs on a
    let second = false
    const p2 = b.app.readBudget(r2.request, r2.reply).then(() => { second = true }) // waits on b: one may run in all
    // the second holds its place in Redis (running or waiting: two leases) before anything is asserted
    for (const deadline = Date.now() + 10_000; await a.app.shared.redis!.zcard('reads:all:researcher-1') < 2;) {
      if (Date.now() > deadline) throw new Error('the second read never took its place')
      await sleep(10)
    }
    t.equal(await a.app.shared.redis!.zcard('reads:run:researcher-1'), 1, 'one read runs')
    t.notOk(second, 'the second read (other instance) waits for the first')
    const third = await a.app.readBudget(r3.request, r3.reply).then(() => null, (err: Error) => err)
    t.match(third, { code: 'RATE_LIMITED' }, 'a third (one running, one waiting) is refused')
    // its client gone, the first read's work goes on: it keeps its place (the 'leave' would come before this count)
    r1.hangUp()
    t.equal(await a.app.shared.redis!.zcard('reads:run:researcher-1'), 1, 'a hang-up alone gives no place back')
    handlerDone(r1.request)
    await p2
    t.equal(second, true, 'the second runs once the first is done')
    r2.close()
  })

  await t.test('Redis dies mid-test: no 500, each instance limits alone; Redis back: shared again', async (t) => {
    redis.kill('SIGKILL')
    await new Promise(resolve => redis.once('exit', resolve))
    for (let i = 0; i < 50 && (a.app.shared.up() || b.app.shared.up()); i++) await sleep(20)
    const other = await (await import('../helper.js')).registerMember(a, s.code)
    await issue(a, s.code, other.accountId, '100.00')
    const codes: number[] = []
    n += 100
    for (let i = 0; i < 24; i++) {
      const r = await a.call('POST', `/v1/currencies/${s.code}/payments`, {
        token: other.token, key: `down-${i}`, body: { fromAccount: other.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
      })
      codes.push(r.status)
      const q = await b.call('POST', `/v1/currencies/${s.code}/payments`, {
        token: other.token, key: `down-b-${i}`, body: { fromAccount: other.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
      })
      codes.push(q.status)
    }
    t.equal(codes.filter(c => c === 201).length, 20, `each instance allows the limit on its own: 2 x 10 (${codes.join(' ')})`)
    t.equal(codes.filter(c => c === 429).length, 28, 'and refuses the rest with 429: nothing else while Redis is down')
    const r1 = { principal: { userId: 'r2' }, ip: '1', log: { info: () => {} } } as unknown as FastifyRequest
    const raw = new EventEmitter()
    await a.app.readBudget(r1, { raw } as unknown as FastifyReply)
    t.pass('the read budget falls back to the instance\'s own')
    raw.emit('close')

    redis = await startRedis(port)
    for (let i = 0; i < 200 && !(a.app.shared.up() && b.app.shared.up()); i++) await sleep(25)
    t.same([a.app.shared.up(), b.app.shared.up()], [true, true], 'both instances reconnect by themselves')
    const third = await registerAndFund(a, s.code)
    const back: number[] = []
    for (let i = 0; i < 14; i++) {
      back.push((await (i % 2 === 0 ? a : b).call('POST', `/v1/currencies/${s.code}/payments`, {
        token: third.token, key: `back-${i}`, body: { fromAccount: third.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
      })).status)
    }
    t.equal(back.filter(c => c === 201).length, 10, `shared again: 10 of 14 (${back.join(' ')})`)
  })
})

async function registerAndFund (ctx: TestContext, code: string) {
  const m = await (await import('../helper.js')).registerMember(ctx, code)
  await issue(ctx, code, m.accountId, '100.00')
  return m
}

t.test('REDIS_URL pointing at nothing: the service starts and answers, limiting per instance', async (t) => {
  const ctx = await buildTestApp(t, { REDIS_URL: `redis://127.0.0.1:${await freePort()}`, RATE_LIMIT_MONEY_PER_MINUTE: 3, REDIS_COMMAND_TIMEOUT_MS: 100 })
  t.notOk(ctx.app.shared.up())
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const codes: number[] = []
  for (let i = 0; i < 5; i++) {
    codes.push((await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: s.member.token, key: `x-${i}`, body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app' },
    })).status)
  }
  t.same(codes, [201, 201, 201, 429, 429])
})
