import { readFileSync } from 'node:fs'
import t from 'tap'
import { Money } from '../../src/domain/money.js'
import { maintain } from '../../src/reports/aggregate.js'
import { buildTestApp, registerMember } from '../helper.js'
import { business, member, reportBook } from './fixture.js'
import { createResearcher } from './ledger.js'
import { parseCsv } from './recompute-exports.js'

const parse = (csv: string) => csv.trim().split('\n').map(l => l.split(','))

const hex20 = /^[0-9a-f]{20}$/

t.test('research exports: pseudonyms only, microsecond times, fee and reversal links, status, areas, fresh pseudonyms per export', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  // five of a kind in each place, so that k-anonymity (k = 5) lets their area through
  const locals = []
  for (let i = 0; i < 5; i++) locals.push(await member(ctx, 'BRS', 'BS6 5AB'))
  const aways = []
  for (let i = 0; i < 5; i++) aways.push(await member(ctx, 'BRS', 'BA1 1AA'))
  const shops = []
  for (let i = 0; i < 5; i++) shops.push(await business(ctx, 'BRS', 'food', 'BS1 4DJ'))
  const [m, away, b] = [locals[0], aways[0], shops[0]]
  await book.ledger.issue('2026-03-01T09:15:42.123Z', m.accountId, '100')
  const pay = await book.ledger.pay('2026-03-02T14:59:59.999Z', m.accountId, b.accountId, '12.60', '0.13')
  await book.ledger.pay('2026-03-03T08:00:00Z', m.accountId, away.accountId, '5')
  await book.ledger.redeem('2026-03-04T17:30:00Z', b.accountId, '12.00', '0.37')
  const one = await book.ledger.pay('2026-03-05T10:00:00Z', m.accountId, b.accountId, '1')
  await book.ledger.reverse('2026-03-05T10:10:00.25Z', one)
  await createResearcher(ctx.app.pool, book.currencyId, 'res-brs', 'researcher-password')
  const token = await ctx.token('res-brs', 'researcher-password')

  const tr = await ctx.call('GET', '/v1/currencies/BRS/exports/transfers', { token })
  t.equal(tr.status, 200)
  t.match(tr.headers['content-type'], /^text\/csv/)
  const exportId = String(tr.headers['x-export-id'])
  t.match(exportId, /^[0-9a-f-]{36}$/)
  const rows = parse(tr.text)
  t.same(rows[0], ['id', 'timeset', 'transfer_subtype', 'source', 'target', 'weight', 'token_name', 'parent_id', 'reverses_id'])
  t.equal(rows.length - 1, 8, 'every transfer')
  t.ok(rows.slice(1).every(r => hex20.test(r[0])), 'transfer ids are 20-hex-digit pseudonyms')
  t.equal(new Set(rows.slice(1).map(r => r[0])).size, 8, 'one pseudonym per transfer')
  const times = rows.slice(1).map(r => r[1])
  t.same(times, [...times].sort(), 'rows in time order')
  // legs of one movement share their time; sort them by subtype to compare
  const body = rows.slice(1).map(r => [r[1], r[2], r[5], r[6]]).sort((x, y) => `${x[0]}${x[1]}` < `${y[0]}${y[1]}` ? -1 : 1)
  t.same(body, [
    ['2026-03-01 09:15:42.123000', 'DISBURSEMENT', '100.00', 'BRS'],
    ['2026-03-02 14:59:59.999000', 'STANDARD', '12.60', 'BRS'],
    ['2026-03-02 14:59:59.999000', 'FEE', '0.13', 'BRS'],
    ['2026-03-03 08:00:00.000000', 'STANDARD', '5.00', 'BRS'],
    ['2026-03-04 17:30:00.000000', 'FEE', '0.37', 'BRS'],
    ['2026-03-04 17:30:00.000000', 'RECLAMATION', '12.00', 'BRS'],
    ['2026-03-05 10:00:00.000000', 'STANDARD', '1.00', 'BRS'],
    ['2026-03-05 10:10:00.250000', 'REVERSAL', '1.00', 'BRS'],
  ].sort((x, y) => `${x[0]}${x[1]}` < `${y[0]}${y[1]}` ? -1 : 1), 'every transfer, times as the ledger keeps them (to the microsecond), the project\'s own kinds as subtypes')
  const row = (prefix: string, subtype: string) => rows.find(r => r[1].startsWith(prefix) && r[2] === subtype)!
  const coffee = row('2026-03-02 14', 'STANDARD')
  const coffeeFee = row('2026-03-02 14', 'FEE')
  const toBath = row('2026-03-03', 'STANDARD')
  t.equal(coffee[3], toBath[3], 'one account, one pseudonym within an export')
  t.equal(coffee[4], coffeeFee[3], 'the payee of a payment pays its fee')
  t.equal(coffeeFee[7], coffee[0], 'a fee names the payment it belongs to')
  t.equal(row('2026-03-04', 'FEE')[7], row('2026-03-04', 'RECLAMATION')[0], 'and the redemption')
  t.equal(row('2026-03-05 10:10', 'REVERSAL')[8], row('2026-03-05 10:00', 'STANDARD')[0], 'a reversal names the transfer it reverses')
  t.ok(rows.slice(1).filter(r => r[2] !== 'FEE').every(r => r[7] === ''), 'only fees have a parent')
  t.ok(rows.slice(1).filter(r => r[2] !== 'REVERSAL').every(r => r[8] === ''), 'only reversals reverse')
  t.not(coffee[0], coffee[3], 'transfer and account pseudonyms differ')

  const ac = await ctx.call('GET', `/v1/currencies/BRS/exports/accounts?export=${exportId}`, { token })
  t.equal(ac.status, 200)
  t.equal(ac.headers['x-export-id'], exportId, 'the same export')
  const accounts = parse(ac.text)
  t.same(accounts[0], ['id', 'start', 'final_bal', 'area_name', 'area_type', 'held_roles', 'business_type', 'status'])
  const byId = new Map(accounts.slice(1).map(a => [a[0], a]))
  t.same(byId.get(coffee[3])?.slice(1), ['2025-12', '82.40', 'BS', 'local', 'BENEFICIARY', '', 'open'], 'the member, joined to its transfers: the month it joined, the postcode area, not the district')
  t.same(byId.get(coffee[4])?.slice(1), ['2025-12', '0.10', 'BS', 'local', 'VENDOR', '', 'open'], 'the business: no sector (with the district it would name many)')
  t.same(byId.get(toBath[4])?.slice(3, 7), ['BA', 'non-local', 'BENEFICIARY', ''], 'the area BA, not the district BA1')
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

  // a closed account: its combination (closed member in BS) is alone, so it and the four left in its group lose
  // their area and status (k = 5); the Bath members and the businesses keep theirs
  const closed = await ctx.call('PATCH', `/v1/accounts/${locals[4].accountId}`, { token: ctx.issuerToken, body: { status: 'closed' } })
  t.equal(closed.status, 200)
  const after = parse((await ctx.call('GET', `/v1/currencies/BRS/exports/accounts?export=${exportId}`, { token })).text)
  const mine = after.find(a => a[0] === coffee[3])!
  t.same(mine.slice(1), ['2025-12', '82.40', '', 'local', 'BENEFICIARY', '', ''], 'area and status withheld')
  t.equal(after.filter(a => a[3] === '' && a[7] === '' && a[5] === 'BENEFICIARY').length, 5, 'for the five local members alike')
  t.same(after.find(a => a[0] === toBath[4])?.slice(3, 8), ['BA', 'non-local', 'BENEFICIARY', '', 'open'])

  // a second export: new pseudonyms for every account and transfer
  const tr2 = await ctx.call('GET', '/v1/currencies/BRS/exports/transfers', { token })
  t.not(tr2.headers['x-export-id'], exportId)
  const ac2 = await ctx.call('GET', '/v1/currencies/BRS/exports/accounts', { token })
  t.not(ac2.headers['x-export-id'], tr2.headers['x-export-id'], 'without ?export= each file starts a new export')
  const pseudonyms = (csv: string, cols: number[]) => new Set(parse(csv).slice(1).flatMap(r => cols.map(c => r[c])).filter(p => p !== ''))
  const first = new Set([...pseudonyms(tr.text, [0, 3, 4, 7, 8]), ...pseudonyms(ac.text, [0])])
  for (const csv of [tr2.text, ac2.text]) {
    for (const p of pseudonyms(csv, csv === tr2.text ? [0, 3, 4, 7, 8] : [0])) t.notOk(first.has(p), 'two exports share no pseudonym')
  }

  const later = await ctx.call('GET', '/v1/currencies/BRS/exports/transfers?from=2026-03-03&to=2026-03-05', { token })
  t.same(parse(later.text).slice(1).map(r => r[2]).sort(), ['FEE', 'RECLAMATION', 'STANDARD'], 'from and to bound the transfers')
  const bad = await ctx.call('GET', '/v1/currencies/BRS/exports/transfers?dialect=excel', { token })
  t.equal(bad.status, 400, 'an unknown dialect is a 400')
})

t.test('?dialect=sarafu: the Sarafu data set\'s columns and codes, against a fixture written from its README', async (t) => {
  const format = JSON.parse(readFileSync(new URL('./sarafu-format.json', import.meta.url), 'utf8'))
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  const ms = []
  for (let i = 0; i < 6; i++) ms.push(await member(ctx, 'BRS', 'BS6 5AB'))
  const bs = []
  for (let i = 0; i < 5; i++) bs.push(await business(ctx, 'BRS', 'food', 'BS1 4DJ'))
  for (const x of ms) await book.ledger.issue('2026-03-01T09:15:42.123Z', x.accountId, '50')
  const gift = await book.ledger.issue('2026-03-01T09:20:00Z', ms[5].accountId, '20')
  await book.ledger.reverse('2026-03-01T09:25:00Z', gift)
  for (const [i, x] of ms.entries()) await book.ledger.pay(`2026-03-02T1${i}:00:00Z`, x.accountId, bs[i % 5].accountId, '12.60', '0.13')
  await book.ledger.pay('2026-03-02T18:00:00Z', ms[0].accountId, ms[1].accountId, '5')
  await book.ledger.pay('2026-03-02T18:30:00Z', ms[0].accountId, ms[1].accountId, '5')
  await book.ledger.redeem('2026-03-04T17:30:00Z', bs[0].accountId, '12.00', '0.37')
  await book.ledger.reverse('2026-03-05T10:00:00Z', await book.ledger.pay('2026-03-05T09:00:00Z', ms[2].accountId, bs[1].accountId, '1'))
  await createResearcher(ctx.app.pool, book.currencyId, 'res-brs', 'researcher-password')
  const token = await ctx.token('res-brs', 'researcher-password')

  const tr = await ctx.call('GET', '/v1/currencies/BRS/exports/transfers?dialect=sarafu', { token })
  t.equal(tr.status, 200)
  const exportId = String(tr.headers['x-export-id'])
  const ac = await ctx.call('GET', `/v1/currencies/BRS/exports/accounts?dialect=sarafu&export=${exportId}`, { token })
  t.equal(ac.status, 200)
  const own = await ctx.call('GET', `/v1/currencies/BRS/exports/accounts?export=${exportId}`, { token })
  const txns = parseCsv(tr.text)
  const users = parseCsv(ac.text)
  t.same(parse(tr.text)[0], format.transactions.columns, 'the transaction file\'s columns, in order')
  t.same(parse(ac.text)[0], format.users.columns, 'the user file\'s columns, in order')

  const F = format.transactions
  t.equal(txns.length, 6 + 2 + 12 + 2 + 2 + 2, 'every transfer')
  t.same(txns.map(r => r.id), txns.map((_, i) => String(i + 1)), 'id: an integer index in time order, as the data set\'s')
  for (const r of txns) {
    t.match(r.id, new RegExp(F.id))
    t.match(r.timeset, new RegExp(F.timeset), 'timeset to the microsecond')
    t.ok(F.vocabularies.transfer_subtype.includes(r.transfer_subtype), `transfer_subtype ${r.transfer_subtype} is a code of the data set`)
    t.match(r.source, new RegExp(F.address))
    t.match(r.target, new RegExp(F.address))
    t.equal(r.token_name, 'BRS')
    t.match(r.token_address, new RegExp(F.address))
  }
  t.equal(new Set(txns.map(r => r.token_address)).size, 1, 'one token')
  t.equal(txns.find(r => r.timeset === '2026-03-01 09:15:42.123000')?.transfer_subtype, 'DISBURSEMENT')
  t.equal(txns.find(r => r.timeset.startsWith('2026-03-01 09:25'))?.transfer_subtype, 'RECLAMATION', 'a reversed issuance dissolves currency')
  t.same(txns.filter(r => r.timeset.startsWith('2026-03-04')).map(r => r.transfer_subtype).sort(), ['RECLAMATION', 'STANDARD'], 'a redemption and its fee')
  t.same(txns.filter(r => r.timeset.startsWith('2026-03-05')).map(r => r.transfer_subtype), ['STANDARD', 'STANDARD'], 'a payment and its reversal')

  const U = format.users
  const keys = users.map(u => u[U.key])
  t.equal(new Set(keys).size, users.length, `${U.key} is unique`)
  for (const r of txns) t.ok(keys.includes(r.source) && keys.includes(r.target), 'transfers join the users on their key')
  for (const u of users) {
    for (const [col, codes] of Object.entries(U.vocabularies) as Array<[string, string[]]>) {
      t.ok(codes.includes(u[col]) || (col === 'held_roles' && u[col] === U.withheld), `${col} ${u[col]} is a code of the data set`)
    }
    t.ok(u.start === U.withheld || /^\d{4}-\d{2}-01$/.test(u.start), 'start: the month of registration')
    t.equal(u.old_POA_blockchain_address, '', 'no earlier chain')
  }
  const system = users.filter(u => u.held_roles === U.system.held_roles)
  t.equal(system.length, 3, 'the scheme\'s three accounts')
  t.ok(system.every(u => u.business_type === U.system.business_type), 'marked as the data set marks them')
  t.ok(users.filter(u => u.held_roles !== 'ADMIN').every(u => u.business_type !== 'system'), 'and only they')
  const issuer = txns.find(r => r.transfer_subtype === 'DISBURSEMENT')!.source
  t.ok(system.some(u => u[U.key] === issuer), 'currency comes from a system account')

  // the summary totals, recomputed from the transaction file as the README defines them
  for (const u of users) {
    const a = u[U.key]
    for (const [prefix, std] of [['o', false], ['s', true]] as const) {
      for (const [side, mine, other] of [['in', 'target', 'source'], ['out', 'source', 'target']] as const) {
        const rows = txns.filter(r => r[mine] === a && (r.transfer_subtype === 'STANDARD') === std)
        t.equal(u[`${prefix}vol_${side}`], rows.reduce((s, r) => s.plus(r.weight), new Money(0)).toFixed(2), `${prefix}vol_${side}`)
        t.equal(u[`${prefix}txns_${side}`], String(rows.length), `${prefix}txns_${side}`)
        t.equal(u[`${prefix}unique_${side}`], String(new Set(rows.map(r => r[other])).size), `${prefix}unique_${side}`)
      }
    }
  }
  // the same export in the project's own dialect: its pseudonyms are the addresses' first 20 digits
  const ownIds = new Set(parseCsv(own.text).map(r => r.id))
  t.ok(keys.every(k => ownIds.has(k.slice(2, 22))), 'the two dialects of one export join')
  const final = new Map(parseCsv(own.text).map(r => [r.id, r.final_bal]))
  t.ok(users.every(u => final.get(u[U.key].slice(2, 22)) === u.final_bal), 'final_bal as in the own dialect')
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

t.test('the transfers export of a London currency: bare from/to dates are London days, in summer an hour before UTC\'s', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx, 'LDN')
  t.equal((await ctx.call('PATCH', '/v1/currencies/LDN', { token: ctx.issuerToken, body: { timeZone: 'Europe/London' } })).status, 200)
  const m = await member(ctx, 'LDN', 'BS6 5AB')
  const b = await business(ctx, 'LDN', 'food', 'BS1 4DJ')
  await book.ledger.issue('2026-06-01T12:00:00Z', m.accountId, '100')
  // British Summer Time (UTC+1): London's 1 July is 23:00 UTC on 30 June to 23:00 UTC on 1 July; amounts name them
  const at = {
    '1.00': '2026-06-30T22:59:59.999Z', //  30 June 23:59:59.999 BST: out
    '2.00': '2026-06-30T23:00:00Z', //          1 July 00:00 BST, still 30 June in UTC: in
    '3.00': '2026-06-30T23:30:00Z', //          1 July 00:30 BST: in
    '4.00': '2026-07-01T12:00:00Z', //          in
    '5.00': '2026-07-01T22:59:59.999Z', //  1 July 23:59:59.999 BST: in
    '6.00': '2026-07-01T23:00:00Z', //          2 July 00:00 BST, still 1 July in UTC: out
    '7.00': '2026-07-01T23:30:00Z', //          out
  }
  for (const [amount, when] of Object.entries(at)) {
    await book.ledger.pay(when, m.accountId, b.accountId, amount)
  }
  await createResearcher(ctx.app.pool, book.currencyId, 'res-ldn', 'researcher-password')
  const token = await ctx.token('res-ldn', 'researcher-password')
  const weights = async (q: string, dialect = 'circulate') => {
    const r = await ctx.call('GET', `/v1/currencies/LDN/exports/transfers?${q}&dialect=${dialect}`, { token })
    t.equal(r.status, 200, q)
    return parse(r.text).slice(1).map(x => [x[1], x[5]])
  }
  const july = [
    ['2026-06-30 23:00:00.000000', '2.00'], ['2026-06-30 23:30:00.000000', '3.00'],
    ['2026-07-01 12:00:00.000000', '4.00'], ['2026-07-01 22:59:59.999000', '5.00'],
  ]
  t.same(await weights('from=2026-07-01&to=2026-07-02'), july, 'London\'s 1 July, its times written in UTC')
  t.same(await weights('from=2026-07-01&to=2026-07-02', 'sarafu'), july, 'the Sarafu dialect alike')
  t.same((await weights('from=2026-07-02&to=2026-07-03')).map(x => x[1]), ['6.00', '7.00'], 'the hour after London\'s midnight is the next London day')
  t.same((await weights('from=2026-06-30&to=2026-07-01')).map(x => x[1]), ['1.00'], 'and the hour before UTC\'s midnight that is already 1 July in London is not 30 June')
  t.same((await weights('from=2026-07-01T00:00:00Z&to=2026-07-02T00:00:00Z')).map(x => x[1]), ['4.00', '5.00', '6.00', '7.00'],
    'a time with its offset is that instant: UTC\'s 1 July')
  t.same((await weights('from=2026-07-01T00:00:00%2B01:00&to=2026-07-02')).map(x => x[1]), ['2.00', '3.00', '4.00', '5.00'], 'the same as London midnight written with its offset')
})

t.test('export salts are deleted once past RESEARCH_EXPORT_RETENTION_HOURS (injected clock); a HEAD records no export', async (t) => {
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0 })
  const book = await reportBook(ctx)
  const m = await member(ctx, 'BRS', 'BS6 5AB')
  await book.ledger.issue('2026-03-01T09:15:42.123Z', m.accountId, '100')
  await createResearcher(ctx.app.pool, book.currencyId, 'res-brs', 'researcher-password')
  const token = await ctx.token('res-brs', 'researcher-password')
  const exports = async () => (await ctx.app.pool.query<{ id: string }>('SELECT id FROM research_export ORDER BY id')).rows.map(r => r.id)

  // HEAD: the GET's checks and headers, no export made, no file read (Fastify's HEAD of each GET route, which
  // openapi.yaml does not list, so not through ctx.call's contract check)
  const head = async (url: string, bearer: string) => {
    const r = await ctx.app.inject({ method: 'HEAD', url, headers: { authorization: `Bearer ${bearer}` } })
    return { status: r.statusCode, headers: r.headers, body: r.body }
  }
  const h = await head('/v1/currencies/BRS/exports/transfers', token)
  t.equal(h.status, 200)
  t.match(h.headers['content-type'], /^text\/csv/)
  t.equal(h.body, '')
  t.equal(h.headers['x-export-id'], undefined, 'no export to name')
  t.equal((await head('/v1/currencies/BRS/exports/accounts?dialect=sarafu', token)).status, 200)
  t.same(await exports(), [], 'a HEAD records nothing')
  t.equal((await head('/v1/currencies/BRS/exports/accounts', ctx.issuerToken)).status, 403, 'as the GET: researchers only')
  t.equal((await head('/v1/currencies/BRS/exports/transfers?from=yesterday', token)).status, 400)
  t.equal((await head('/v1/currencies/BRS/exports/transfers?from=2026-02-01&to=2026-01-01', token)).status, 400, 'a backward range, as the GET')

  const tr = await ctx.call('GET', '/v1/currencies/BRS/exports/transfers', { token })
  const id = String(tr.headers['x-export-id'])
  t.same(await exports(), [id])
  const again = await head(`/v1/currencies/BRS/exports/accounts?export=${id}`, token)
  t.equal(again.status, 200)
  t.equal(again.headers['x-export-id'], id, 'a HEAD naming an open export names it')
  t.equal((await head('/v1/currencies/BRS/exports/accounts?export=01900000-0000-7000-8000-000000000000', token)).status, 404)
  t.same(await exports(), [id], 'still one export')

  // retention, on the aggregator's clock: kept while it may be continued and the retention lasts, then deleted
  const made = Date.now()
  const after = (hours: number) => ({ clock: () => new Date(made + hours * 3_600_000), hours: 24 })
  t.equal((await maintain(ctx.app.pool, after(23))).exportsDeleted, 0, 'within its 24 hours: kept')
  t.equal((await ctx.call('GET', `/v1/currencies/BRS/exports/accounts?export=${id}`, { token })).status, 200, 'and continued')
  t.equal((await maintain(ctx.app.pool, { ...after(25), hours: 48 })).exportsDeleted, 0, 'a longer retention keeps it')
  t.equal((await maintain(ctx.app.pool, after(25))).exportsDeleted, 1, 'past the retention: deleted')
  t.same(await exports(), [], 'salt and all')
  t.equal((await ctx.call('GET', `/v1/currencies/BRS/exports/accounts?export=${id}`, { token })).status, 404, 'it can no longer be continued')
})

t.test('a researcher starts at most RESEARCH_EXPORTS_PER_DAY new exports in 24 hours', async (t) => {
  // Attack: each export without ?export= keeps a row with its salt for RESEARCH_EXPORT_RETENTION_HOURS, and a
  // transfers export of one millisecond costs next to nothing: a researcher looping on it made some 300 a second, a
  // million rows (233 MB) an hour, and the aggregator's deletion of expired exports reads them all on every run.
  const ctx = await buildTestApp(t, { REPORTS_AGGREGATE_INTERVAL_MS: 0, RESEARCH_EXPORTS_PER_DAY: 3 })
  const book = await reportBook(ctx)
  await createResearcher(ctx.app.pool, book.currencyId, 'res-a', 'researcher-password')
  await createResearcher(ctx.app.pool, book.currencyId, 'res-b', 'researcher-password')
  const a = await ctx.token('res-a', 'researcher-password')
  const b = await ctx.token('res-b', 'researcher-password')
  const tiny = '/v1/currencies/BRS/exports/transfers?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00.001Z'
  const first = await ctx.call('GET', tiny, { token: a })
  t.equal(first.status, 200)
  t.equal((await ctx.call('GET', '/v1/currencies/BRS/exports/accounts', { token: a })).status, 200)
  t.equal((await ctx.call('GET', `${tiny}&dialect=sarafu`, { token: a })).status, 200, 'three new exports, of either file')
  const refused = await ctx.call('GET', tiny, { token: a })
  t.equal(refused.status, 429, 'a fourth new one in 24 hours is refused')
  t.equal(refused.body.code, 'RATE_LIMITED')
  const wait = Number(refused.headers['retry-after'])
  t.ok(wait > 86_000 && wait <= 86_400, `Retry-After until the oldest is a day old (${wait} s)`)
  t.equal((await ctx.call('GET', '/v1/currencies/BRS/exports/accounts', { token: a })).status, 429, 'the accounts file too')
  const id = String(first.headers['x-export-id'])
  t.equal((await ctx.call('GET', `/v1/currencies/BRS/exports/accounts?export=${id}`, { token: a })).status, 200, 'continuing an export is no new one')
  const head = async (url: string) => await ctx.app.inject({ method: 'HEAD', url, headers: { authorization: `Bearer ${a}` } })
  t.equal((await head('/v1/currencies/BRS/exports/transfers')).statusCode, 429, 'a HEAD says what its GET would')
  t.equal((await head(`/v1/currencies/BRS/exports/transfers?export=${id}`)).statusCode, 200, 'and starts none')
  t.equal((await ctx.call('GET', tiny, { token: b })).status, 200, 'another researcher has exports of its own')
  t.equal((await ctx.app.pool.query('SELECT count(*)::int AS n FROM research_export')).rows[0].n, 4, 'no row for a refused export')
  await ctx.app.pool.query(`UPDATE research_export SET created_at = created_at - interval '24 hours 1 minute'
    WHERE id = $1`, [id])
  t.equal((await ctx.call('GET', tiny, { token: a })).status, 200, 'once the oldest is a day old, one more')
  t.equal((await ctx.call('GET', tiny, { token: a })).status, 429)
})
