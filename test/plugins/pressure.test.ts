import Fastify from 'fastify'
import t from 'tap'
import app, { serverOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { buildTestApp } from '../helper.js'

// Event-loop load shedding (plugins/pressure.ts). Every other test app turns it off (test/helper.ts): the test
// runner loads both cores, and a lagging machine would shed their requests. This test turns it on in a second
// instance of the service and makes the lag itself, well past what a busy machine adds: the event loop is held in
// 400 ms slices until the service reads the lag, a request is refused with a 503 problem and Retry-After, and once
// the loop runs freely requests are served again. It waits on the service's own reading of the lag (sampled each
// second), never on a fixed sleep; start-up's own lag (schema compilation) is waited out the same way.

const LIMIT_MS = 250

/** Holds the event loop for `ms`, as a CPU-bound handler would, then lets timers run once. */
async function hold (ms: number): Promise<void> {
  const until = performance.now() + ms
  while (performance.now() < until) { /* busy */ }
  await new Promise(resolve => setTimeout(resolve, 0))
}

async function until (ok: () => boolean, what: string, ms = 60_000, step = async () => { await new Promise(resolve => setTimeout(resolve, 50)) }) {
  for (const deadline = Date.now() + ms; !ok();) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await step()
  }
}

t.test('a lagging event loop sheds new requests with 503 and Retry-After; served again once it recovers', async (t) => {
  const ctx = await buildTestApp(t)
  const config = loadConfig({}, { DATABASE_URL: ctx.db.url, SCRYPT_COST: 1024, LOG_LEVEL: 'silent', PRESSURE_MAX_EVENT_LOOP_DELAY_MS: LIMIT_MS })
  const server = Fastify({ ...serverOptions(config), logger: false })
  await server.register(app, { config, databaseUrl: ctx.db.url, keys: ctx.keys })
  await server.ready()
  t.teardown(async () => await server.close())
  const get = async () => await server.inject({ method: 'GET', url: '/v1/audit?limit=1', headers: { authorization: `Bearer ${ctx.issuerToken}` } })
  const lag = () => Math.round(server.memoryUsage().eventLoopDelay)

  await until(() => !server.isUnderPressure(), 'start-up\'s lag has passed')
  t.equal((await get()).statusCode, 200, 'served while the loop runs freely')

  await until(() => server.isUnderPressure(), 'the service reads the lag', 60_000, async () => { await hold(400) })
  t.ok(lag() > LIMIT_MS, `the service read a lag past ${LIMIT_MS} ms (${lag()} ms)`)
  const shed = await get()
  t.equal(shed.statusCode, 503)
  t.match(shed.headers['content-type'], /^application\/problem\+json/)
  t.equal(shed.headers['retry-after'], '1')
  t.match(shed.json(), { status: 503, code: 'SERVICE_UNAVAILABLE' })

  await until(() => !server.isUnderPressure(), 'the lag read falls back under the limit')
  t.equal((await get()).statusCode, 200, 'served again')
})
