import t from 'tap'
import { betweenPages, buildTestApp, scenario } from '../helper.js'
import { createResearcher } from './ledger.js'

// A transfers export streams for as long as the client reads it, page after page (5,000 transfers each). Its
// caller's right to it was checked once, when the request came in: a researcher suspended (or whose password was
// changed) while the file streamed went on receiving every page of it, however long a slow reader made that
// last, where an event stream ends before its next event. The export now checks the caller's right again
// before each further page, as the event stream does before each event, and cuts the file off once it is gone.

t.test('a researcher suspended while the transfers export streams gets no further page', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const s = await scenario(ctx)
  const currencyId = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [s.code])).rows[0].id
  // two pages and more of transfers (a page is 5,000)
  const total = 12_000
  await ctx.tooling().query(`INSERT INTO transfer (currency_id, kind, channel, from_account_id, to_account_id, amount, created_by, created_at)
    SELECT $1, 'payment', 'app', $2, $3, 0.01, 'test', now() - make_interval(secs => g) FROM generate_series(1, ${total}) g`,
  [currencyId, s.member.accountId, s.business.accountId])
  await createResearcher(ctx.app.pool, currencyId, 'res-suspended', 'researcher-password')
  const researcherId = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM app_user WHERE username = $1', ['res-suspended'])).rows[0].id
  const token = await ctx.token('res-suspended', 'researcher-password')

  // the researcher is suspended just after the file's first page is read
  const watch = betweenPages(t, ctx.app.readPool, 'FROM transfer t LEFT JOIN transfer o', async () => {
    const suspended = await ctx.call('PUT', `/v1/staff/${researcherId}/suspension`, { token: ctx.issuerToken, body: { reason: 'study ended' } })
    t.equal(suspended.status, 200, suspended.text)
  })

  // (ctx.call checks a whole answer against openapi.yaml; this one is cut off)
  const r = await ctx.app.inject({ method: 'GET', url: `/v1/currencies/${s.code}/exports/transfers`, headers: { authorization: `Bearer ${token}` } })
    .then(r => ({ rows: r.body.trim().split('\n').length - 1, error: null as unknown }), (err: unknown) => ({ rows: -1, error: err }))
  watch.restore()
  const pages = watch.pages()
  t.ok(pages >= 1, 'the file was read in pages')
  t.ok(r.rows < total, `the file was cut off after its first page (${r.rows === -1 ? 'the answer failed' : `${r.rows} rows`} of ${total})`)
  t.ok(pages <= 2, `no page was read after the suspension was seen (${pages} page queries)`)

  // the token is refused from then on, as it was before the change
  const again = await ctx.call('GET', `/v1/currencies/${s.code}/exports/transfers`, { token })
  t.equal(again.status, 401)

  // a researcher who is not suspended gets every row, over as many pages
  await createResearcher(ctx.app.pool, currencyId, 'res-fine', 'researcher-password')
  const fine = await ctx.call('GET', `/v1/currencies/${s.code}/exports/transfers`, { token: await ctx.token('res-fine', 'researcher-password') })
  t.equal(fine.status, 200)
  t.equal(fine.text.trim().split('\n').length - 1, total, 'the whole file')
})
