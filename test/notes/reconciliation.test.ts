import http from 'node:http'
import t from 'tap'
import { text } from 'node:stream/consumers'
import { balance, betweenPages, buildTestApp, issue, registerMember, scenario } from '../helper.js'
import { reconciliation } from '../../src/services/notes.service.js'
import { Money } from '../../src/domain/money.js'
import { issuance } from '../../src/domain/movements.js'
import { postMovement } from '../../src/ledger/post.js'

// The reserve's reconciliation CSV is streamed a page at a time, so a scheme's whole history never sits in memory:
// the pages join into the same file whatever their size, the running total runs on across them, and `at` cuts it.

t.test('the reconciliation streams in pages that join into one file', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const m = await registerMember(ctx, s.code)
  for (const amount of ['10.00', '2.50', '7.25']) await issue(ctx, s.code, s.member.accountId, amount)
  await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'p', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '15.00', channel: 'online' },
  })
  const r = await ctx.call('POST', `/v1/currencies/${s.code}/redemptions`, {
    token: s.business.token, key: 'r', body: { fromAccount: s.business.accountId, amount: '10.00', sterlingReference: '=HYPERLINK("x")' },
  })
  t.equal(r.status, 201, r.text)
  const middle = (await ctx.app.pool.query<{ now: Date }>('SELECT now()')).rows[0].now
  for (const amount of ['1.00', '3.00']) await issue(ctx, s.code, m.accountId, amount)

  const whole = await ctx.call('GET', `/v1/currencies/${s.code}/reserve?format=csv`, { token: ctx.issuerToken })
  t.equal(whole.status, 200)
  const lines = whole.text.trim().split('\n')
  t.equal(lines.length, 1 + 6, 'a header and six sterling movements')
  t.same(lines.slice(1).map(l => l.split(',').slice(-2)), [
    ['10.00', '10.00'], ['2.50', '12.50'], ['7.25', '19.75'], ['-9.70', '10.05'], ['1.00', '11.05'], ['3.00', '14.05'],
  ], 'amounts and the running total')
  t.match(lines[4], /,"'=HYPERLINK\(""x""\)",/, 'a reference that would be a formula is written as text')
  const json = await ctx.call('GET', `/v1/currencies/${s.code}/reserve`, { token: ctx.issuerToken })
  t.equal(json.body.sterlingReserve, '14.05', 'the last running total is the reserve')

  const c = await ctx.app.services.currencies.resolve(s.code)
  for (const page of [1, 2, 5, 6, 7]) {
    t.equal(await text(reconciliation(ctx.app.pool, c, undefined, page)), whole.text, `pages of ${page}: the same file`)
  }
  const cut = (await text(reconciliation(ctx.app.pool, c, middle.getTime(), 2))).trim().split('\n')
  t.equal(cut.length, 1 + 4, '`at` leaves out what was recorded after it')
  t.equal(cut.at(-1)!.split(',').at(-1), '10.05')
  // a movement recorded after the file has started is not in it, even when its page has not been read yet
  const lines2: string[] = []
  let added = false
  for await (const chunk of reconciliation(ctx.app.pool, c, undefined, 1)) {
    lines2.push(String(chunk))
    if (!added) { added = true; await issue(ctx, s.code, m.accountId, '4.00') }
  }
  t.equal(lines2.join(''), whole.text, 'recorded while it streamed: left out')
  // and one whose transaction began before the file's moment (its time is before it) but that was recorded while
  // the file streamed: left out by its id, where its time alone would let it in
  const client = await ctx.app.pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT now()')
    const lines3: string[] = []
    let posted = false
    for await (const chunk of reconciliation(ctx.app.pool, c, undefined, 1)) {
      lines3.push(String(chunk))
      if (!posted) {
        posted = true
        await postMovement(client, c.id, {
          ...issuance(c, { to: m.accountId, amount: new Money('6.00'), sterlingReference: 'late' }),
          scope: 'test', idempotencyKey: null, requestHash: 'late', createdBy: 'test', owner: null,
        })
        await client.query('COMMIT')
      }
    }
    const withLate = await ctx.call('GET', `/v1/currencies/${s.code}/reserve?format=csv`, { token: ctx.issuerToken })
    t.match(withLate.text, /,late,6\.00,/, 'it is there for a file started after it')
    t.notMatch(lines3.join(''), /,late,/, 'begun before the file, recorded while it streamed: left out')
  } finally {
    client.release()
  }
  const asOf = await ctx.call('GET', `/v1/currencies/${s.code}/reserve?format=csv&at=${encodeURIComponent(middle.toISOString())}`, { token: ctx.issuerToken })
  t.equal(asOf.text, cut.join('\n') + '\n', 'and the route says the same')
})

t.test('a reversal may name the sterling payment that puts it right, and say why', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const issued = await issue(ctx, s.code, s.member.accountId, '25.00')
  const reverse = async (id: string, key: string, body?: unknown) =>
    await ctx.call('POST', `/v1/transfers/${id}/reversal`, { token: ctx.issuerToken, key, ...(body === undefined ? {} : { body }) })

  const bad = await reverse(issued.id, 'x', { sterlingReference: 'BACS 1', note: 'what' })
  t.same([bad.status, bad.body.errors?.[0]?.pointer], [422, '/note'], 'an unknown field is refused')
  t.equal((await reverse(issued.id, 'y', { sterlingReference: '' })).status, 422, 'an empty reference is refused')

  const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'p', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '5.00', channel: 'app' },
  })
  const noSterling = await reverse(pay.body.id, 'z', { sterlingReference: 'BACS 2' })
  t.same([noSterling.status, noSterling.body.code, noSterling.body.errors?.[0]?.pointer], [422, 'VALIDATION_FAILED', '/sterlingReference'], 'a payment moved no sterling')
  const plain = await reverse(pay.body.id, 'z2', { reason: 'charged twice' })
  t.equal(plain.status, 201, plain.text)
  t.equal(await balance(ctx, s.member.accountId), '25.00', 'the payment is back')

  const back = await reverse(issued.id, 'r', { sterlingReference: 'BACS REFUND 77', reason: 'bank transfer bounced' })
  t.equal(back.status, 201, back.text)
  const replay = await reverse(issued.id, 'r', { reason: 'bank transfer bounced', sterlingReference: 'BACS REFUND 77' })
  t.same([replay.status, replay.headers['idempotent-replayed'], replay.body.id], [201, 'true', back.body.id], 'a retry replays')
  const csv = (await ctx.call('GET', `/v1/currencies/${s.code}/reserve?format=csv`, { token: ctx.issuerToken })).text.trim().split('\n')
  t.same(csv.slice(1).map(l => l.split(',').slice(2)), [['issuance', issued.reference, '25.00', '25.00'], ['reversal', 'BACS REFUND 77', '-25.00', '0.00']])
  const trail = await ctx.call('GET', `/v1/currencies/${s.code}/audit?action=transfer.reverse&limit=10`, { token: ctx.issuerToken })
  t.same(trail.body.items.map((x: any) => [x.detail.reason ?? null, x.detail.sterlingReference ?? null]),
    [['charged twice', null], ['bank transfer bounced', 'BACS REFUND 77']], 'the reason and the reference are in the audit trail')
  // without a body, as before
  const again = await issue(ctx, s.code, s.member.accountId, '1.00')
  t.equal((await reverse(again.id, 'nobody')).status, 201)
  const same = await reverse(again.id, 'nobody', {})
  t.same([same.status, same.headers['idempotent-replayed']], [201, 'true'], 'an empty body is the same request as none')
})

// A database failure while the file streams must end the response as failed (the client sees a cut connection, not
// a file that looks whole), never leave it hanging, and never crash the process with an unhandled stream error.
t.test('a database failure fails the file: mid-stream the stream errors, before the first row the answer is 503', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  for (const amount of ['10.00', '2.50']) await issue(ctx, s.code, s.member.accountId, amount)
  const c = await ctx.app.services.currencies.resolve(s.code)
  const lost = () => Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' })

  // pages of one: the first page is read, the second fails
  let calls = 0
  const failing = {
    query: async (...args: unknown[]) => {
      if (++calls === 3) throw lost()
      return await (ctx.app.pool.query as (...a: unknown[]) => Promise<unknown>)(...args)
    },
  }
  await t.rejects(text(reconciliation(failing as never, c, undefined, 1)), /Connection terminated/, 'the stream errors')

  // the route: the read pool fails on its first query of the file
  const pool = ctx.app.readPool
  const query = pool.query
  t.teardown(() => { pool.query = query })
  pool.query = (async () => { throw lost() }) as never
  // (ctx.call fails any 5xx: this one is the answer wanted)
  const r = await ctx.app.inject({ method: 'GET', url: `/v1/currencies/${s.code}/reserve?format=csv`, headers: { authorization: `Bearer ${ctx.issuerToken}` } })
  pool.query = query
  t.equal(r.statusCode, 503, r.body)
  t.equal(r.json().code, 'SERVICE_UNAVAILABLE')
  const after = await ctx.call('GET', `/v1/currencies/${s.code}/reserve?format=csv`, { token: ctx.issuerToken })
  t.equal(after.status, 200, 'the service still answers')
})

// Fastify answers HEAD with the GET's handler and drains a streamed body: the whole history would be read for a
// body nobody receives. A HEAD makes the same checks (who may read it) and reads no movement.
t.test('a HEAD of the CSV checks access and reads no movement', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  for (const amount of ['10.00', '2.50']) await issue(ctx, s.code, s.member.accountId, amount)
  const pool = ctx.app.readPool
  const query = pool.query
  t.teardown(() => { pool.query = query })
  const seen: string[] = []
  pool.query = ((...args: unknown[]) => {
    const q = args[0]
    seen.push(typeof q === 'string' ? q : (q as { text: string }).text)
    return (query as (...a: unknown[]) => unknown).apply(pool, args)
  }) as never
  // (HEAD is not in openapi.yaml, which ctx.call checks against)
  const head = await ctx.app.inject({ method: 'HEAD', url: `/v1/currencies/${s.code}/reserve?format=csv`, headers: { authorization: `Bearer ${ctx.issuerToken}` } })
  t.equal(head.statusCode, 200)
  t.match(head.headers['content-type'], /^text\/csv/)
  t.equal(head.body, '')
  await new Promise(resolve => setTimeout(resolve, 200))
  t.same(seen.filter(q => q.includes('reserve_movement')), [], 'no movement read')
  const get = await ctx.call('GET', `/v1/currencies/${s.code}/reserve?format=csv`, { token: ctx.issuerToken })
  t.equal(get.text.trim().split('\n').length, 3, 'the GET still sends the file')
  t.ok(seen.some(q => q.includes('reserve_movement')))
})

t.test('a database failure after the first bytes cuts the connection: the file never looks whole', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '10.00')
  const pool = ctx.app.readPool
  const query = pool.query
  let pages = 0
  pool.query = (async (...args: unknown[]) => {
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text
    if (text.includes('reserve_movement m JOIN')) {
      if (++pages === 1) {
        // a first page that is full (5,000 rows, the one real movement repeated), so a second page is read
        const row = (await (query as (...a: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>).apply(pool, args)).rows[0]
        return { rows: Array.from({ length: 5000 }, (_, i) => ({ ...row, id: String(i + 1) })) }
      }
      throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' })
    }
    return await (query as (...a: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>).apply(pool, args)
  }) as never
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const port = (ctx.app.server.address() as { port: number }).port
  const out = await new Promise<{ status: number, bytes: number, aborted: boolean, ended: boolean }>((resolve) => {
    http.get({ port, host: '127.0.0.1', path: `/v1/currencies/${s.code}/reserve?format=csv`, headers: { authorization: `Bearer ${ctx.issuerToken}` } }, (res) => {
      let bytes = 0; let aborted = false; let ended = false
      res.on('data', (c: Buffer) => { bytes += c.length })
      res.on('aborted', () => { aborted = true })
      res.on('error', () => { aborted = true })
      res.on('end', () => { ended = true })
      res.on('close', () => resolve({ status: res.statusCode!, bytes, aborted, ended }))
    })
  })
  pool.query = query
  t.equal(out.status, 200)
  t.ok(out.bytes > 0)
  t.ok(out.aborted, 'aborted')
  t.notOk(out.ended, 'not ended cleanly')
})

// The file streams 5,000 movements a page for as long as its client reads it. The caller's right to it was checked
// once, when the request came in: issuer staff suspended while it streamed received the rest of it (sterling
// references, which are bank details), however long a slow reader made that last. Now checked again before each
// further page, as an event stream checks before each event.
t.test('issuer staff suspended while the reconciliation streams get no further page', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const currencyId = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [s.code])).rows[0].id
  const total = 12_000
  await ctx.tooling().query(`WITH t AS (
      INSERT INTO transfer (currency_id, kind, from_account_id, to_account_id, amount, created_by, created_at)
      SELECT $1, 'issuance', $2, $3, 1, 'test', now() - make_interval(secs => g) FROM generate_series(1, ${total}) g
      RETURNING id, amount, created_at)
    INSERT INTO reserve_movement (currency_id, transfer_id, amount, sterling_reference, created_at)
    SELECT $1, id, amount, 'bank ref', created_at FROM t`, [currencyId, s.currency.systemAccounts.issuance, s.member.accountId])
  const staff = await ctx.call('POST', `/v1/currencies/${s.code}/issuers`, { token: ctx.issuerToken, body: { name: 'Desk', username: 'desk-1', password: 'staff-password-1' } })
  t.equal(staff.status, 201, staff.text)
  const token = await ctx.token('desk-1', 'staff-password-1')

  // suspended by the platform issuer just after the file's first page is read
  const watch = betweenPages(t, ctx.app.readPool, 'FROM reserve_movement m JOIN transfer t', async () => {
    const suspended = await ctx.call('PUT', `/v1/staff/${staff.body.id}/suspension`, { token: ctx.issuerToken, body: { reason: 'left the scheme' } })
    t.equal(suspended.status, 200, suspended.text)
  })
  // (ctx.call checks a whole answer against openapi.yaml; this one is cut off)
  const r = await ctx.app.inject({ method: 'GET', url: `/v1/currencies/${s.code}/reserve?format=csv`, headers: { authorization: `Bearer ${token}` } })
    .then(r => ({ rows: r.body.trim().split('\n').length - 1 }), () => ({ rows: -1 }))
  watch.restore()
  const pages = watch.pages()
  t.ok(pages >= 1, 'the file was read in pages')
  t.ok(r.rows < total, `the file was cut off after its first page (${r.rows === -1 ? 'the answer failed' : `${r.rows} rows`} of ${total})`)
  t.equal(pages, 1, 'no page was read after the suspension')

  const whole = await ctx.call('GET', `/v1/currencies/${s.code}/reserve?format=csv`, { token: ctx.issuerToken })
  t.equal(whole.text.trim().split('\n').length - 1, total, 'an issuer still in post gets the whole file')
})
