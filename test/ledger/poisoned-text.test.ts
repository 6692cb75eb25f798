import type { AddressInfo } from 'node:net'
import pg from 'pg'
import t from 'tap'
import { buildTestApp, issue, registerMember, scenario } from '../helper.js'
import { ledgerViolations } from '../../support/invariants.js'

// One client's input must never change another's outcome. Concurrent payments are coalesced into one database
// call (src/ledger/coalescer.ts), so a payment carrying text the database cannot store used to fail every honest
// payment posted with it. Text is now refused at the boundary, field by field (src/domain/text.ts): here honest
// payers and a poisoner pay at the same moment, over real HTTP, with coalescing on.

const POISONS: Array<{ name: string, field: string, pointer: string, extra: Record<string, unknown> }> = [
  { name: 'NUL in reference', field: 'reference', pointer: '/reference', extra: { reference: 'till\u0000receipt' } },
  { name: 'lone high surrogate in reference', field: 'reference', pointer: '/reference', extra: { reference: 'caf\uD800e' } },
  { name: 'lone low surrogate in reference', field: 'reference', pointer: '/reference', extra: { reference: '\uDC00' } },
  { name: 'escape in reference', field: 'reference', pointer: '/reference', extra: { reference: 'a\u001b[31mred' } },
  { name: 'line feed in reference', field: 'reference', pointer: '/reference', extra: { reference: 'two\nlines' } },
  { name: 'DEL in reference', field: 'reference', pointer: '/reference', extra: { reference: 'x\u007f' } },
  { name: 'C1 control in reference', field: 'reference', pointer: '/reference', extra: { reference: 'x\u0085y' } },
  { name: 'right-to-left override in reference', field: 'reference', pointer: '/reference', extra: { reference: 'refund \u202E00.001' } },
  { name: 'NUL in a metadata value', field: 'metadata', pointer: '/metadata/receipt', extra: { metadata: { receipt: '\u0000' } } },
  { name: 'lone surrogate in a metadata value', field: 'metadata', pointer: '/metadata/receipt', extra: { metadata: { receipt: '\uDBFF' } } },
  { name: 'NUL in a metadata key', field: 'metadata', pointer: '/metadata/re\u0000ceipt', extra: { metadata: { 're\u0000ceipt': '1' } } },
  { name: 'lone surrogate in a metadata key', field: 'metadata', pointer: '/metadata/\uD83D', extra: { metadata: { '\uD83D': '1' } } },
]

interface Answer { status: number, body: any }

t.test('honest payers and a poisoner at once over HTTP: every honest payment 201, each poisoned one its own 422', async (t) => {
  const ctx = await buildTestApp(t, { PAYMENT_COALESCE_MAX: 256 })
  const s = await scenario(ctx)
  const honest = [s.member, ...await Promise.all(Array.from({ length: 7 }, async () => await registerMember(ctx, s.code)))]
  const poisoner = await registerMember(ctx, s.code)
  for (const m of [...honest, poisoner]) await issue(ctx, s.code, m.accountId, '100.00')
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`

  // JSON.stringify writes a lone surrogate as a \ud800 escape, so it reaches the server as the client meant it
  const post = async (token: string, key: string, body: unknown): Promise<Answer> => {
    const r = await fetch(`${base}/v1/currencies/${s.code}/payments`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'idempotency-key': key, 'content-type': 'application/json' }, body: JSON.stringify(body),
    })
    return { status: r.status, body: await r.json() }
  }
  const ROUNDS = 20
  const honestCalls = honest.flatMap((m, i) => Array.from({ length: ROUNDS }, (_, k) => async () =>
    await post(m.token, `h-${i}-${k}`, { fromAccount: m.accountId, toAccount: s.business.accountId, amount: '1.25', channel: 'app', reference: `coffee ${k}`, metadata: { note: 'line one\nline two' } })))
  const poisonCalls = Array.from({ length: ROUNDS }, (_, k) => POISONS[k % POISONS.length]).map((p, k) => async () =>
    await post(poisoner.token, `p-${k}`, { fromAccount: poisoner.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app', ...p.extra }))
  // interleaved (a poisoned payment after every eighth honest one), all in flight together
  const every = honestCalls.length / poisonCalls.length
  const [honestAnswers, poisonAnswers] = await (async () => {
    const h: Array<Promise<Answer>> = []
    const p: Array<Promise<Answer>> = []
    honestCalls.forEach((c, i) => { h.push(c()); if (i % every === 0) p.push(poisonCalls[i / every]()) })
    return await Promise.all([Promise.all(h), Promise.all(p)])
  })()

  t.equal(honestAnswers.length, honest.length * ROUNDS)
  t.same(honestAnswers.filter(a => a.status !== 201).map(a => [a.status, a.body.code]), [], 'every honest payment is 201')
  poisonAnswers.forEach((a, k) => {
    const p = POISONS[k % POISONS.length]
    t.equal(a.status, 422, `${p.name}: 422`)
    t.equal(a.body.code, 'INVALID_TEXT', `${p.name}: INVALID_TEXT`)
    t.same(a.body.errors?.map((e: any) => e.pointer), [p.pointer], `${p.name}: names ${p.pointer}`)
    t.ok(String(a.body.detail).includes(p.field), `${p.name}: the detail names the field`)
  })

  for (const m of honest) t.equal((await ctx.call('GET', `/v1/accounts/${m.accountId}`, { token: m.token })).body.balance, '75.00', 'each honest payer paid 20 x 1.25')
  t.equal((await ctx.call('GET', `/v1/accounts/${poisoner.accountId}`, { token: poisoner.token })).body.balance, '100.00', 'nothing of the poisoner was posted')
  // Coalescing was at work: some database transactions carried several of these payments.
  const db = new pg.Client({ connectionString: ctx.db.url })
  await db.connect()
  const shared = await db.query<{ n: string }>(`SELECT count(*) AS n FROM (SELECT xmin::text AS tx FROM transfer WHERE kind = 'payment' AND reference LIKE 'coffee %') x
    GROUP BY tx HAVING count(*) > 1`).finally(async () => { await db.end() })
  t.ok(shared.rows.length > 0, `${shared.rows.length} database calls carried more than one honest payment`)
  t.same(await ledgerViolations(ctx.db.url), [])
})

t.test('POST .../transfers/batch: a poisoned item fails only itself, also next to honest batches', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const other = await registerMember(ctx, s.code)
  await issue(ctx, s.code, s.member.accountId, '100.00')
  await issue(ctx, s.code, other.accountId, '100.00')
  const item = (k: string, extra: Record<string, unknown> = {}) =>
    ({ idempotencyKey: k, fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '1.00', channel: 'app', reference: 'ok', ...extra })
  const items = POISONS.flatMap((p, i) => [item(`good-${i}`), item(`bad-${i}`, p.extra)])
  const honestBatch = (k: number) => ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, {
    token: other.token,
    body: { items: Array.from({ length: 10 }, (_, i) => ({ idempotencyKey: `o-${k}-${i}`, fromAccount: other.accountId, toAccount: s.business.accountId, amount: '0.50', channel: 'app' })) },
  })
  const [mixed, ...others] = await Promise.all([
    ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, { token: s.member.token, body: { items } }),
    honestBatch(1), honestBatch(2), honestBatch(3),
  ])
  t.equal(mixed.status, 200)
  t.same([mixed.body.posted, mixed.body.failed], [POISONS.length, POISONS.length])
  POISONS.forEach((p, i) => {
    t.equal(mixed.body.items[2 * i].status, 201, `the good item next to "${p.name}" is posted`)
    const bad = mixed.body.items[2 * i + 1]
    t.equal(bad.status, 422, p.name)
    t.equal(bad.problem.code, 'INVALID_TEXT', p.name)
    t.same(bad.problem.errors.map((e: any) => e.pointer), [`/items/${2 * i + 1}${p.pointer}`], p.name)
  })
  for (const o of others) t.same([o.status, o.body.posted, o.body.failed], [200, 10, 0], 'an honest batch at the same time is untouched')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.member.accountId}`, { token: s.member.token })).body.balance, `${100 - POISONS.length}.00`)
  const atomic = await ctx.call('POST', `/v1/currencies/${s.code}/transfers/batch`, { token: s.member.token, body: { atomic: true, items: [item('a-1'), item('a-2', POISONS[0].extra)] } })
  t.equal(atomic.status, 422, 'an atomic batch with a poisoned item is refused whole, as atomic promises')
  t.equal(atomic.body.code, 'INVALID_TEXT')
  t.same(atomic.body.errors.map((e: any) => e.pointer), ['/items/1/reference'])
  t.same(await ledgerViolations(ctx.db.url), [])
})
