import t from 'tap'
import { buildTestApp, scenario } from '../helper.js'

// Event-loop load shedding (plugins/pressure.ts). Every other test app turns it off (test/helper.ts): the test
// runner loads both cores, and a lagging machine would shed their requests. This test turns it on and makes the lag
// itself, far past anything a busy machine adds: the event loop is held in 300 ms slices until the service says it
// is under pressure, a request is refused with a 503 problem and Retry-After, and once the loop runs freely again
// requests are served. It waits on the service's own reading of the lag, never on a fixed sleep.

const LIMIT_MS = 100

/** Holds the event loop for `ms` (the work a CPU-bound handler would do), then lets it turn once. */
async function hold (ms: number): Promise<void> {
  const until = performance.now() + ms
  while (performance.now() < until) { /* busy */ }
  await new Promise(resolve => setImmediate(resolve))
}

t.test('a lagging event loop sheds new requests with 503 and Retry-After; served again once it recovers', async (t) => {
  const ctx = await buildTestApp(t, { PRESSURE_MAX_EVENT_LOOP_DELAY_MS: LIMIT_MS })
  const s = await scenario(ctx)
  const get = async () => await ctx.app.inject({ method: 'GET', url: `/v1/currencies/${s.code}`, headers: { authorization: `Bearer ${s.member.token}` } })

  const deadline = Date.now() + 30_000
  while (!ctx.app.isUnderPressure()) {
    if (Date.now() > deadline) throw new Error(`never under pressure (lag read: ${ctx.app.memoryUsage().eventLoopDelay} ms)`)
    await hold(300)
  }
  t.ok(ctx.app.memoryUsage().eventLoopDelay > LIMIT_MS, `the service read a lag past ${LIMIT_MS} ms (${Math.round(ctx.app.memoryUsage().eventLoopDelay)} ms)`)
  const shed = await get()
  t.equal(shed.statusCode, 503)
  t.match(shed.headers['content-type'], /^application\/problem\+json/)
  t.equal(shed.headers['retry-after'], '1')
  t.match(shed.json(), { status: 503, code: 'SERVICE_UNAVAILABLE' })

  // the loop runs freely again: within a few of the plugin's 1 s samples the lag is read as normal
  while (ctx.app.isUnderPressure()) {
    if (Date.now() > deadline + 30_000) throw new Error(`never recovered (lag read: ${ctx.app.memoryUsage().eventLoopDelay} ms)`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  const served = await get()
  t.equal(served.statusCode, 200, 'served again')
  t.equal(served.json().code, s.code)
})
