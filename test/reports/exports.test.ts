import t from 'tap'
import { buildTestApp, registerMember } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { createResearcher } from './ledger.js'

const parse = (csv: string) => csv.trim().split('\n').map(l => l.split(','))

t.test('research exports: Sarafu columns, pseudonyms only, coarse times, districts, fresh pseudonyms per export', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  const m = await member(ctx, 'BRS', 'BS6 5AB')
  const away = await member(ctx, 'BRS', 'BA1 1AA')
  const b = await business(ctx, 'BRS', 'food', 'BS1 4DJ')
  await book.ledger.issue('2026-03-01T09:15:42.123Z', m.accountId, '100')
  const pay = await book.ledger.pay('2026-03-02T14:59:59.999Z', m.accountId, b.accountId, '12.60', '0.13')
  await book.ledger.pay('2026-03-03T08:00:00Z', m.accountId, away.accountId, '5')
  await book.ledger.redeem('2026-03-04T17:30:00Z', b.accountId, '12.00', '0.37')
  await book.ledger.reverse('2026-03-05T10:10:00Z', await book.ledger.pay('2026-03-05T10:00:00Z', m.accountId, b.accountId, '1'))
  await createResearcher(ctx.app.pool, book.currencyId, 'res-brs', 'researcher-password')
  const token = await ctx.token('res-brs', 'researcher-password')

  const tr = await ctx.call('GET', '/v1/currencies/BRS/exports/transfers', { token })
  t.equal(tr.status, 200)
  t.match(tr.headers['content-type'], /^text\/csv/)
  const exportId = String(tr.headers['x-export-id'])
  t.match(exportId, /^[0-9a-f-]{36}$/)
  const rows = parse(tr.text)
  t.same(rows[0], ['id', 'timeset', 'transfer_subtype', 'source', 'target', 'weight', 'token_name'])
  t.same(rows.slice(1).map(r => r[0]), ['1', '2', '3', '4', '5', '6', '7', '8'], 'rows are numbered in time order')
  // legs of one movement share their time; sort them by subtype to compare
  const body = rows.slice(1).map(r => [r[1], r[2], r[5], r[6]]).sort((x, y) => `${x[0]}${x[1]}` < `${y[0]}${y[1]}` ? -1 : 1)
  t.same(body, [
    ['2026-03-01 09:00:00', 'DISBURSEMENT', '100.00', 'BRS'],
    ['2026-03-02 14:00:00', 'FEE', '0.13', 'BRS'],
    ['2026-03-02 14:00:00', 'STANDARD', '12.60', 'BRS'],
    ['2026-03-03 08:00:00', 'STANDARD', '5.00', 'BRS'],
    ['2026-03-04 17:00:00', 'FEE', '0.37', 'BRS'],
    ['2026-03-04 17:00:00', 'RECLAMATION', '12.00', 'BRS'],
    ['2026-03-05 10:00:00', 'REVERSAL', '1.00', 'BRS'],
    ['2026-03-05 10:00:00', 'STANDARD', '1.00', 'BRS'],
  ], 'every transfer, times cut to the hour, the project\'s own kinds as subtypes')
  const row = (timeset: string, subtype: string) => rows.find(r => r[1] === timeset && r[2] === subtype)!
  const coffee = row('2026-03-02 14:00:00', 'STANDARD')
  const coffeeFee = row('2026-03-02 14:00:00', 'FEE')
  const toBath = row('2026-03-03 08:00:00', 'STANDARD')
  t.equal(coffee[3], toBath[3], 'one account, one pseudonym within an export')
  t.equal(coffee[4], coffeeFee[3], 'the payee of a payment pays its fee')

  const ac = await ctx.call('GET', `/v1/currencies/BRS/exports/accounts?export=${exportId}`, { token })
  t.equal(ac.status, 200)
  t.equal(ac.headers['x-export-id'], exportId, 'the same export')
  const accounts = parse(ac.text)
  t.same(accounts[0], ['id', 'start', 'final_bal', 'area_name', 'area_type', 'held_roles', 'business_type'])
  const byId = new Map(accounts.slice(1).map(a => [a[0], a]))
  t.same(byId.get(coffee[3])?.slice(1), ['2025-12-01 00:00:00', '82.40', 'BS', 'local', 'BENEFICIARY', ''], 'the member, joined to its transfers; the postcode area, not the district')
  t.same(byId.get(coffee[4])?.slice(1), ['2025-12-01 00:00:00', '0.10', 'BS', 'local', 'VENDOR', ''], 'the business: no sector (with the district it would name many)')
  t.same(byId.get(toBath[4])?.slice(3, 6), ['BA', 'non-local', 'BENEFICIARY'], 'the area BA, not the district BA1')
  t.same(accounts.slice(1).filter(a => a[5] === 'ADMIN').map(a => a[6]).sort(), ['fees', 'issuance', 'paper'], 'system accounts')

  // nothing that names anyone: no names, usernames, full postcodes, account, participant or transfer ids
  const users = (await ctx.app.pool.query<{ username: string, name: string }>('SELECT username, name FROM app_user')).rows
  const ids = (await ctx.app.pool.query<{ id: string }>(`SELECT id FROM account UNION ALL SELECT id FROM participant UNION ALL SELECT id FROM transfer`)).rows
  for (const text of [tr.text, ac.text]) {
    for (const u of users) {
      t.notOk(text.includes(u.username), `no username ${u.username}`)
      t.notOk(text.includes(u.name), `no name ${u.name}`)
    }
    for (const x of ids) t.notOk(text.toLowerCase().includes(x.id), 'no ids')
    t.notMatch(text, /[A-Z]{1,2}[0-9][0-9A-Z]? ?[0-9][A-Z]{2}/, 'no full postcode')
    t.notMatch(text, pay[0].id)
  }

  // a second export: new pseudonyms for every account
  const tr2 = await ctx.call('GET', '/v1/currencies/BRS/exports/transfers', { token })
  t.not(tr2.headers['x-export-id'], exportId)
  const ac2 = await ctx.call('GET', '/v1/currencies/BRS/exports/accounts', { token })
  t.not(ac2.headers['x-export-id'], tr2.headers['x-export-id'], 'without ?export= each file starts a new export')
  const pseudonyms = (csv: string, cols: number[]) => new Set(parse(csv).slice(1).flatMap(r => cols.map(c => r[c])))
  const first = new Set([...pseudonyms(tr.text, [3, 4]), ...pseudonyms(ac.text, [0])])
  for (const csv of [tr2.text, ac2.text]) {
    for (const p of pseudonyms(csv, csv === tr2.text ? [3, 4] : [0])) t.notOk(first.has(p), 'two exports share no pseudonym')
  }

  const later = await ctx.call('GET', '/v1/currencies/BRS/exports/transfers?from=2026-03-03&to=2026-03-05', { token })
  t.same(parse(later.text).slice(1).map(r => r[2]).sort(), ['FEE', 'RECLAMATION', 'STANDARD'], 'from and to bound the transfers')
})

t.test('exports are for the currency\'s researchers only; reports for its researchers and issuers', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  const other = await reportBook(ctx, 'OTH')
  await createResearcher(ctx.app.pool, book.currencyId, 'res-brs', 'researcher-password')
  await createResearcher(ctx.app.pool, other.currencyId, 'res-oth', 'researcher-password')
  const researcher = await ctx.token('res-brs', 'researcher-password')
  const otherResearcher = await ctx.token('res-oth', 'researcher-password')
  const m = await registerMember(ctx, 'BRS', 'BS6 5AB')
  const issuerOfOther = await (async () => {
    await ctx.app.pool.query(`INSERT INTO app_user (username, password_hash, role, name, currency_id)
      SELECT 'iss-oth', password_hash, 'issuer', 'Issuer', $1 FROM app_user WHERE username = 'res-oth'`, [other.currencyId])
    return await ctx.token('iss-oth', 'researcher-password')
  })()
  const report = '/v1/currencies/BRS/reports/circulation?from=2026-01-01&to=2026-02-01'
  const cases: Array<[string, string | null, string, number]> = [
    ['anonymous', null, report, 401],
    ['a member', m.token, report, 403],
    ['a researcher of another currency', otherResearcher, report, 403],
    ['an issuer of another currency', issuerOfOther, report, 403],
    ['the researcher', researcher, report, 200],
    ['the platform issuer', ctx.issuerToken, report, 200],
    ['anonymous', null, '/v1/currencies/BRS/exports/transfers', 401],
    ['the platform issuer', ctx.issuerToken, '/v1/currencies/BRS/exports/transfers', 403],
    ['a member', m.token, '/v1/currencies/BRS/exports/accounts', 403],
    ['a researcher of another currency', otherResearcher, '/v1/currencies/BRS/exports/accounts', 403],
    ['the researcher', researcher, '/v1/currencies/BRS/exports/accounts', 200],
  ]
  for (const [who, token, url, status] of cases) {
    const r = await ctx.call('GET', url, { token })
    t.equal(r.status, status, `${who}: ${url.split('?')[0]} -> ${status}`)
  }
  const foreign = await ctx.call('GET', '/v1/currencies/BRS/exports/accounts', { token: researcher })
  const stolen = await ctx.call('GET', `/v1/currencies/OTH/exports/accounts?export=${String(foreign.headers['x-export-id'])}`, { token: otherResearcher })
  t.equal(stolen.status, 404, 'an export id works only for the researcher and currency that made it')
})

t.test('bad report queries are 400 problems, not 500s', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  await reportBook(ctx)
  for (const q of ['from=yesterday', 'from=2026-02-01&to=2026-01-01', 'interval=year', 'from=1900-01-01', 'from=2020-01-01&to=2026-01-01&interval=day', 'by=city']) {
    const path = q.startsWith('by=') ? 'flows' : 'circulation'
    const r = await ctx.call('GET', `/v1/currencies/BRS/reports/${path}?${q}`, { token: ctx.issuerToken })
    t.equal(r.status, 400, q)
    t.match(r.headers['content-type'], /problem\+json/)
  }
  const missing = await ctx.call('GET', '/v1/currencies/NOPE/reports/circulation', { token: ctx.issuerToken })
  t.equal(missing.status, 404)
})
