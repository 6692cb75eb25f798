import t from 'tap'
import { buildTestApp, issue, scenario } from '../helper.js'
import { createResearcher } from './ledger.js'

// Routes that answer JSON or CSV take either ?format or the Accept header: ?format wins; without it, CSV only when
// Accept prefers text/csv to application/json as RFC 9110 reads the header (and the answer then says it varies by
// Accept). Every other Accept, or none, gets JSON as before.

t.test('JSON or CSV by the Accept header, on every route that answers both', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.member.accountId, '20.00')
  const paid = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: s.member.token, key: 'accept-1', body: { fromAccount: s.member.accountId, toAccount: s.business.accountId, amount: '2.50', channel: 'app' },
  })
  t.equal(paid.status, 201)
  const currencyId = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [s.code])).rows[0].id
  await createResearcher(ctx.app.pool, currencyId, 'res-accept', 'researcher-password')
  const researcher = await ctx.token('res-accept', 'researcher-password')
  const today = new Date().toISOString().slice(0, 10)

  const routes: Array<{ name: string, url: string, token: string }> = [
    { name: 'statement', url: `/v1/accounts/${s.member.accountId}/statement`, token: s.member.token },
    { name: 'circulation', url: `/v1/currencies/${s.code}/reports/circulation?interval=day&from=${today}`, token: researcher },
    { name: 'flows', url: `/v1/currencies/${s.code}/reports/flows?from=${today}`, token: researcher },
    { name: 'reserve', url: `/v1/currencies/${s.code}/reserve`, token: ctx.issuerToken },
  ]
  const isCsv = (ct: unknown) => String(ct).startsWith('text/csv')
  const isJson = (ct: unknown) => String(ct).startsWith('application/json')
  const asOfMasked = (r: { text: string, headers: Record<string, unknown> }) =>
    r.headers['x-as-of'] == null ? r.text : r.text.split(String(r.headers['x-as-of'])).join('<as of>')
  const withQuery = (url: string, q: string) => `${url}${url.includes('?') ? '&' : '?'}${q}`

  for (const r of routes) {
    const byFormat = await ctx.call('GET', withQuery(r.url, 'format=csv'), { token: r.token })
    t.equal(byFormat.status, 200, `${r.name}: ?format=csv`)
    t.ok(isCsv(byFormat.headers['content-type']), `${r.name}: ?format=csv is CSV`)

    const none = await ctx.call('GET', r.url, { token: r.token })
    t.equal(none.status, 200)
    t.ok(isJson(none.headers['content-type']), `${r.name}: no Accept is JSON`)
    t.match(String(none.headers.vary ?? ''), /accept/i, `${r.name}: an answer the header could have changed says so`)

    // nothing CSV can be: another charset than the one sent, q=0, a type CSV is not; or JSON preferred
    for (const accept of ['*/*', 'application/json', 'application/xml', 'text/csv;q=0.5, application/json', 'application/problem+json',
      'text/csv; charset=latin1', 'text/csv;q=0', 'text/html, */*;q=0.1', 'APPLICATION/JSON, text/*;q=0.9']) {
      const res = await ctx.call('GET', r.url, { token: r.token, headers: { accept } })
      t.equal(res.status, 200, `${r.name}: Accept ${accept}`)
      t.ok(isJson(res.headers['content-type']), `${r.name}: Accept ${accept} is JSON`)
    }
    // RFC 9110: types in any case, parameters that match what is sent, wildcards, q-values (JSON at q=0 is refused)
    for (const accept of ['text/csv', 'text/csv, */*', 'application/json;q=0.1, text/csv', 'text/*', 'TEXT/CSV', 'text/csv; charset="utf-8"',
      'Text/Csv;Charset=UTF-8;q=0.9, application/json;q=0.8', 'text/csv;q=0.001, application/json;q=0', 'application/*;q=0.2, text/*;q=0.8']) {
      const res = await ctx.call('GET', r.url, { token: r.token, headers: { accept } })
      t.equal(res.status, 200, `${r.name}: Accept ${accept}`)
      t.ok(isCsv(res.headers['content-type']), `${r.name}: Accept ${accept} is CSV`)
      t.match(String(res.headers.vary ?? ''), /accept/i, `${r.name}: a CSV chosen by Accept varies by it`)
      // the same document as ?format=csv, but for the time it was read as of
      t.equal(asOfMasked(res), asOfMasked(byFormat), `${r.name}: Accept ${accept} gives what ?format=csv gives`)
    }
    const jsonWins = await ctx.call('GET', withQuery(r.url, 'format=json'), { token: r.token, headers: { accept: 'text/csv' } })
    t.ok(isJson(jsonWins.headers['content-type']), `${r.name}: ?format=json wins over Accept: text/csv`)
    t.notOk(/accept/i.test(String(jsonWins.headers.vary ?? '')), `${r.name}: with ?format the header did not choose`)
    const csvWins = await ctx.call('GET', withQuery(r.url, 'format=csv'), { token: r.token, headers: { accept: 'application/json' } })
    t.ok(isCsv(csvWins.headers['content-type']), `${r.name}: ?format=csv wins over Accept: application/json`)
    const bad = await ctx.call('GET', withQuery(r.url, 'format=xml'), { token: r.token, headers: { accept: 'text/csv' } })
    t.equal(bad.status, 400, `${r.name}: an unknown ?format is still refused`)
  }
})
