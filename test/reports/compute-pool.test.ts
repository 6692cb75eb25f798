import t from 'tap'
import { DomainError } from '../../src/domain/errors.js'
import { splitPeriods } from '../../src/domain/periods.js'
import { circulationFigures } from '../../src/reports/circulation.report.js'
import { computePool, slotOf } from '../../src/reports/compute-pool.js'
import { solveOn } from '../../src/reports/kept-circulation.js'
import { plainRules, runTask, type CirculationInput, type FlowsInput } from '../../src/reports/compute-tasks.js'
import { buildTestApp, type TestContext } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { createResearcher } from './ledger.js'

// Reports' metrics, flows and CSV are computed on a worker thread (src/reports/compute-pool.ts), off the event
// loop. The documents must be byte for byte what the same code gives on the event loop (REPORT_WORKERS=0), and a
// worker that dies must fail only its report, with a 503 problem, never a 500 or a request left hanging.

/** A year of payments between five members and five businesses in two places and two sectors. */
async function economy (ctx: TestContext) {
  const book = await reportBook(ctx)
  const ms: Array<Awaited<ReturnType<typeof member>>> = []
  for (let i = 0; i < 5; i++) ms.push(await member(ctx, 'BRS', i < 3 ? 'BS6 5AB' : 'BA1 1AA'))
  const bs: Array<Awaited<ReturnType<typeof business>>> = []
  for (let i = 0; i < 5; i++) bs.push(await business(ctx, 'BRS', i < 3 ? 'food' : 'trades', i < 4 ? 'BS1 4DJ' : 'BA2 3QQ'))
  for (const p of [...ms, ...bs]) await book.ledger.issue('2026-01-02T09:00:00Z', p.accountId, '500')
  let day = 3
  for (let k = 0; k < 40; k++) {
    const at = new Date(Date.UTC(2026, 0, day, 10 + (k % 7))).toISOString()
    const m = ms[k % 5]; const b = bs[(k * 3) % 5]; const c = bs[(k * 3 + 1) % 5]
    await book.ledger.pay(at, m.accountId, b.accountId, `${3 + (k % 11)}.${String(k % 100).padStart(2, '0')}`, '0.00')
    if (k % 3 === 0) await book.ledger.pay(at, b.accountId, c.accountId, '2.50', '0.00')
    if (k % 4 === 0) await book.ledger.pay(at, b.accountId, ms[(k + 2) % 5].accountId, '1.25', '0.00')
    day += 7
  }
  await createResearcher(ctx.app.pool, book.currencyId, 'res-brs', 'researcher-password')
  return { ...book, members: ms, businesses: bs }
}

const REPORTS = [
  '/v1/currencies/BRS/reports/circulation?interval=month&from=2026-01-01&to=2027-01-01',
  '/v1/currencies/BRS/reports/circulation?interval=day&from=2026-03-01&to=2026-05-01',
  '/v1/currencies/BRS/reports/circulation?interval=week&from=2026-01-01&to=2026-07-01&format=csv',
  '/v1/currencies/BRS/reports/flows?by=sector&from=2026-01-01&to=2027-01-01',
  '/v1/currencies/BRS/reports/flows?by=district&from=2026-01-01&to=2027-01-01&format=csv',
]

t.test('a report computed on a worker thread is the one computed on the event loop', async (t) => {
  // the fee rate is zero so that the ledger's fees do not depend on the channel
  const worker = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0, REPORT_WORKERS: 1 })
  const book = await economy(worker)
  const inProcess = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0, REPORT_WORKERS: 0 }, { db: worker.db })
  const tw = await worker.token('res-brs', 'researcher-password')
  const tp = await inProcess.token('res-brs', 'researcher-password')
  for (const url of REPORTS) {
    const a = await worker.call('GET', url, { token: tw })
    const b = await inProcess.call('GET', url, { token: tp })
    t.equal(a.status, 200, url)
    t.equal(b.status, 200, url)
    // the only difference allowed is the instant each read was taken at
    const same = (r: typeof a) => r.text.replaceAll(String(r.headers['x-as-of']), 'AS-OF')
    t.equal(same(a), same(b), `${url}: the same document, byte for byte`)
    t.equal(a.headers['content-type'], b.headers['content-type'])
  }
  t.equal(worker.app.services.reports.compute.threads().length, 1, 'the reports ran on the worker')
  t.equal(inProcess.app.services.reports.compute.threads().length, 0, 'and on the event loop')

  // new payments that close cycles (a member pays a business that pays the member back): the worker's kept solvers
  // are brought up to date from where the first reports left them, the in-process ones likewise, and a third app
  // starts cold; all three agree
  const [m, b, c] = [book.members[0], book.businesses[1], book.businesses[2]]
  for (let k = 0; k < 6; k++) {
    const at = `2026-11-${String(10 + k).padStart(2, '0')}T12:00:00Z`
    await book.ledger.pay(at, m.accountId, b.accountId, `${7 + k}.00`, '0.00')
    await book.ledger.pay(at, b.accountId, c.accountId, `${5 + k}.00`, '0.00')
    await book.ledger.pay(at, c.accountId, m.accountId, `${3 + k}.50`, '0.00')
  }
  const cold = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0, REPORT_WORKERS: 1 }, { db: worker.db })
  const tc = await cold.token('res-brs', 'researcher-password')
  for (const url of REPORTS.slice(0, 3)) {
    const a = await worker.call('GET', url, { token: tw })
    const b = await inProcess.call('GET', url, { token: tp })
    const z = await cold.call('GET', url, { token: tc })
    const same = (r: typeof a) => r.text.replaceAll(String(r.headers['x-as-of']), 'AS-OF')
    t.equal(same(a), same(b), `${url} after new payments: the kept solvers on the worker and in the process agree`)
    t.equal(same(a), same(z), `${url} after new payments: and agree with solvers started cold`)
  }
})

t.test('a key\'s jobs run on one worker, which keeps their state; a replaced worker starts without it', async (t) => {
  const pool = computePool({ workers: 2, heapMb: 64 })
  t.teardown(async () => { await pool.close() })
  // two keys for each of the two workers
  const keys: string[][] = [[], []]
  for (let i = 0; keys[0].length < 2 || keys[1].length < 2; i++) {
    const k = `c|2026-01-01/2026-02-${i}`
    if (keys[slotOf(k, 2)].length < 2) keys[slotOf(k, 2)].push(k)
  }
  // a cycle of three accounts; its largest circulation is its smallest link
  const links = (v: bigint) => ({ from: new Int32Array([1, 2, 3]), to: new Int32Array([2, 3, 1]), vol: BigInt64Array.from([v, v + 5n, v + 9n]) })
  const run = async (key: string, v: bigint) => await pool.runOn(key, 'circulate', { key, ...links(v) })
  t.same(await run(keys[0][0], 10n), { total: 30n, held: 1 }, 'the first key: one solver kept')
  t.same(await run(keys[0][1], 20n), { total: 60n, held: 2 }, 'a second key on the same worker: two')
  t.same(await run(keys[1][0], 30n), { total: 90n, held: 1 }, 'a key of the other worker: one there')
  t.same(await run(keys[0][0], 40n), { total: 120n, held: 2 }, 'the first key again: its solver found and brought up to date')
  t.equal(pool.threads().length, 2)
  // the worker of keys[0] is replaced: its solvers are gone, the answers are not
  const before = pool.threads()
  await before[0].terminate()
  t.same(await run(keys[0][0], 50n), { total: 150n, held: 1 }, 'a new worker starts cold, with the same answer')
  t.equal(pool.threads().length, 2)
  t.ok(pool.threads().includes(before[1]), 'the other worker kept its place')
  t.same(await run(keys[1][0], 60n), { total: 180n, held: 1 }, 'and its solver')
  // with no workers, the same answers in the process
  const inProcess = computePool({ workers: 0, heapMb: 0 })
  t.equal((await inProcess.runOn(keys[1][1], 'circulate', { key: keys[1][1], ...links(70n) })).total, 210n)
  // a worker too small to solve (here, even to start): the report's solve is done in the process instead
  const tiny = computePool({ workers: 1, heapMb: 1 })
  t.teardown(async () => { await tiny.close() })
  const failed = await tiny.runOn(keys[0][0], 'circulate', { key: keys[0][0], ...links(80n) }).then(() => null, (e: unknown) => e)
  t.ok(failed instanceof DomainError && failed.code === 'SERVICE_UNAVAILABLE', 'the job itself fails as unavailable')
  const l = links(80n)
  t.equal(await solveOn(tiny)(keys[0][0], { from: l.from, to: l.to, vol: Array.from(l.vol) }), 240n, 'solveOn answers all the same')
})

t.test('a job waiting for its own worker does not hold up jobs any worker can run', async (t) => {
  const pool = computePool({ workers: 2, heapMb: 64 })
  t.teardown(async () => { await pool.close() })
  const key = 'c|busy'
  const cycle = { key, from: new Int32Array([1, 2]), to: new Int32Array([2, 1]), vol: BigInt64Array.from([5n, 7n]) }
  const jobs = [
    pool.runOn(key, 'circulate', cycle),
    pool.runOn(key, 'circulate', cycle),
    pool.run('flows', flowsInput(1)),
  ] as const
  // jobs are handed out as they are submitted: the second job of the key waits for its worker, and the third,
  // behind it, went to a second worker at once rather than waiting with it
  t.equal(pool.threads().length, 2, 'the job behind the waiting one started a second worker')
  const [a, b, c] = await Promise.all(jobs)
  t.same([a.total, b.total], [10n, 10n])
  t.same(c, runTask('flows', flowsInput(1)))
})

t.test('a worker that dies fails its report with a 503 problem; the next report gets a new worker', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0, REPORT_WORKERS: 1 })
  const book = await economy(ctx)
  const token = await ctx.token('res-brs', 'researcher-password')
  const url = REPORTS[0]
  const first = await ctx.call('GET', url, { token })
  t.equal(first.status, 200)

  // a worker too small to hold the report (or even to start) runs out of memory: the report is a 503 problem
  const tiny = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0, REPORT_WORKERS: 1, REPORT_WORKER_HEAP_MB: 1 }, { db: ctx.db })
  const tinyToken = await tiny.token('res-brs', 'researcher-password')
  for (const u of [url, REPORTS[3]]) {
    // (the test helper's call() fails every 5xx: this one is expected)
    const r = await tiny.app.inject({ method: 'GET', url: u, headers: { authorization: `Bearer ${tinyToken}` } })
    t.equal(r.statusCode, 503, `${u}: 503, not a 500 or a hang`)
    t.match(r.headers['content-type'], /^application\/problem\+json/)
    t.equal(r.json().code, 'SERVICE_UNAVAILABLE')
    t.match(r.json().detail, /out of memory|the worker/)
    t.equal(r.headers['retry-after'], '1')
  }

  // a worker ended while it computes: that job fails, the next one runs on a new worker, with the same figures
  const compute = ctx.app.services.reports.compute
  const periods = splitPeriods(Date.parse('2026-01-01T00:00:00Z'), Date.parse('2027-01-01T00:00:00Z'), 'month')
  const figures = await circulationFigures(ctx.app.readPool, book.currencyId, periods)
  const input: CirculationInput = {
    head: { currency: 'BRS', asOf: '2027-01-01T00:00:00.000Z', asOfTransfer: null, definitionsVersion: 1, timeZone: 'Europe/London', from: '2026-01-01T00:00:00.000Z', to: '2027-01-01T00:00:00.000Z', interval: 'month' },
    periods: periods.map(p => ({ start: new Date(p.start).toISOString(), end: new Date(p.end).toISOString() })),
    total: { start: '2026-01-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' },
    figures, decimals: 2, rules: plainRules(), csv: false,
  }
  const running = compute.run('circulation', input)
  const [thread] = compute.threads()
  await thread.terminate()
  const failed = await running.then(() => null, (err: unknown) => err)
  t.ok(failed instanceof DomainError && failed.code === 'SERVICE_UNAVAILABLE', 'the job it was running fails as unavailable')
  t.same(await compute.run('circulation', input), runTask('circulation', input), 'the next job: a new worker, the in-process figures')
  t.not(compute.threads()[0], thread, 'a new worker')
  const again = await ctx.call('GET', url, { token })
  t.equal(again.status, 200)
  t.equal(again.text.replaceAll(String(again.headers['x-as-of']), 'AS-OF'), first.text.replaceAll(String(first.headers['x-as-of']), 'AS-OF'), 'and the report as before')
})

// flows without cells: what each job answers is its own head
const flowsInput = (i: number): FlowsInput => ({
  head: { currency: 'BRS', asOf: `2027-01-0${i}T00:00:00.000Z`, asOfTransfer: null, definitionsVersion: 1, timeZone: 'Europe/London', by: 'sector', from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000Z' },
  inputs: { days: [], perDay: [], rows: new Map(), biz: new Map(), known: new Set(), ids: new Map() }, key: new Uint8Array(32), localAreas: ['BS'], decimals: 2, rules: plainRules(), csv: i % 2 === 0,
})

t.test('a pool of two runs jobs side by side and in order; close fails what waits', async (t) => {
  const pool = computePool({ workers: 2, heapMb: 64 })
  const input = flowsInput
  const jobs = [1, 2, 3, 4, 5].map(async i => await pool.run('flows', input(i)))
  t.ok(pool.threads().length <= 2, 'at most two workers')
  const docs = await Promise.all(jobs)
  t.same(docs, [1, 2, 3, 4, 5].map(i => runTask('flows', input(i))), 'each job its own answer')
  // two run, one waits; each outcome is taken as it comes
  const late = [6, 7, 8].map(async i => await pool.run('flows', input(i)).then(() => null, (e: unknown) => e))
  await pool.close()
  const unavailable = (e: unknown) => e instanceof DomainError && e.code === 'SERVICE_UNAVAILABLE'
  const [a, b, c] = await Promise.all(late)
  t.ok((a === null || unavailable(a)) && (b === null || unavailable(b)), 'a running job finishes or fails as unavailable')
  t.ok(unavailable(c), 'a waiting job fails as unavailable')
  t.ok(unavailable(await pool.run('flows', input(9)).then(() => null, (e: unknown) => e)), 'and so does a job after close')
})
