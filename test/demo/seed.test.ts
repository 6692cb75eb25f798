import Fastify from 'fastify'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import app, { serverOptions } from '../../src/app.js'
import { generateJwk, keySetFromJwks } from '../../src/auth/keys.js'
import { loadConfig } from '../../src/config.js'
import { banner } from '../../src/demo/banner.js'
import { demoIssuer, type DemoLogins } from '../../src/demo/credentials.js'
import { hasCurrency, postedMovements, readDemoState, rememberedDemo, startDemoSeed, type DemoState } from '../../src/demo/seed.js'
import { createTestDb } from '../../support/postgres.js'
import { assertInvariants, invariantViolations } from '../../support/invariants.js'

t.test('the demo load: a simulated year, logins for every role, remembered in the data folder', async (t) => {
  const db = await createTestDb()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-demo-'))
  const pool = new pg.Pool({ connectionString: db.url, max: 2 })
  t.teardown(async () => { await pool.end(); await db.drop(); fs.rmSync(dataDir, { recursive: true, force: true }) })
  t.notOk(await hasCurrency(pool), 'an empty database: the server would load the demo')

  let ready: { logins: DemoLogins, state: DemoState } | null = null
  let finished: DemoState | null = null
  const warnings: string[] = []
  const seed = startDemoSeed({
    databaseUrl: db.url, dataDir, scryptCost: 1024, seed: 2, scale: 0.02,
    onReady: (logins, state) => { ready = { logins, state: { ...state } } },
    onDone: (state) => { finished = state },
    warn: (msg, err) => { warnings.push(`${msg} ${String(err ?? '')}`) },
  })
  await seed.done
  t.same(warnings, [])
  t.ok(ready != null, 'the logins were ready before the movements')
  const { logins, state } = ready!
  t.equal(state.status, 'loading')
  t.equal(finished!.status, 'complete')
  t.equal(finished!.posted, finished!.total)
  t.same(readDemoState(dataDir), finished, 'the data folder remembers the load')
  t.equal(await postedMovements(pool, 'BRS'), finished!.total, 'every movement is in the ledger')
  t.ok(await hasCurrency(pool), 'a second start finds the currency and loads nothing')
  t.equal(fs.statSync(path.join(dataDir, 'demo-logins.json')).mode & 0o777, 0o600, 'passwords kept readable by the owner only')
  const passwords = Object.values(logins).map(l => l.password)
  t.equal(new Set(passwords).size, 4, 'a password of its own for each role')
  t.ok(passwords.every(p => p.length >= 16), 'random passwords, not defaults')
  assertInvariants(t, await invariantViolations(pool), 'after the demo load')

  const text = banner({ base: 'http://127.0.0.1:3000', dataDir, issuer: { username: 'issuer', password: 'pw' }, logins, state: finished })
  for (const l of Object.values(logins)) t.match(text, `${l.username} / ${l.password}`, `the banner shows ${l.username}`)
  t.match(text, 'http://127.0.0.1:3000/dashboard')

  // every demo login works, and sees what its role may see
  const config = loadConfig({}, {
    DATABASE_URL: db.url, SCRYPT_COST: 1024, LOG_LEVEL: 'silent',
    // load shedding is not what this test is about, and a busy test machine lags past its limit
    PRESSURE_MAX_EVENT_LOOP_DELAY_MS: 0,
  })
  const server = Fastify({ ...serverOptions(config), logger: false })
  await server.register(app, { config, databaseUrl: db.url, keys: await keySetFromJwks([await generateJwk()]) })
  t.teardown(() => server.close())
  const token = async (l: { username: string, password: string }) => {
    const r = await server.inject({ method: 'POST', url: '/v1/auth/token', payload: l })
    t.equal(r.statusCode, 200, `${l.username} logs in`)
    return { authorization: `Bearer ${r.json().accessToken as string}` }
  }
  const issuer = await token(logins.currencyIssuer)
  const search = await server.inject({ method: 'GET', url: '/v1/currencies/BRS/transfers?limit=5', headers: issuer })
  t.equal(search.statusCode, 200, `the currency issuer searches its transfers (${search.body.slice(0, 300)})`)
  t.equal(search.json().items?.length, 5)

  const member = await token(logins.member)
  const memberId = (await pool.query(`SELECT participant_id FROM app_user WHERE username = $1`, [logins.member.username])).rows[0].participant_id as string
  const me = await server.inject({ method: 'GET', url: `/v1/participants/${memberId}`, headers: member })
  t.equal(me.statusCode, 200, 'the member reads itself')
  t.equal(me.json().kind, 'member')
  t.match(state.member, me.json().name, 'the banner names the member')
  const statement = await server.inject({ method: 'GET', url: `/v1/accounts/${me.json().accounts[0].id as string}/statement`, headers: member })
  t.ok(statement.json().items.length > 0, 'with a statement full of simulated movements')

  const business = await token(logins.business)
  const businessId = (await pool.query(`SELECT participant_id FROM app_user WHERE username = $1`, [logins.business.username])).rows[0].participant_id as string
  const biz = await server.inject({ method: 'GET', url: `/v1/participants/${businessId}`, headers: business })
  t.equal(biz.json().sector, 'cafes-pubs', 'the business is a cafe')
  // wages and rates go out by standing order: the currency issuer reads a paying business's orders and their
  // paid occurrences (the showcase cafe at this small scale pays no wages)
  const payer = (await pool.query(`SELECT from_account_id FROM standing_order GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`)).rows[0].from_account_id as string
  const inDb = (await pool.query(`SELECT id, (SELECT count(*)::int FROM standing_order_occurrence o WHERE o.standing_order_id = so.id AND o.status = 'paid') AS paid
    FROM standing_order so WHERE from_account_id = $1 ORDER BY id`, [payer])).rows
  const listed = await server.inject({ method: 'GET', url: `/v1/accounts/${payer}/standing-orders?limit=100`, headers: issuer })
  t.equal(listed.statusCode, 200)
  t.same(listed.json().items.map((o: { id: string }) => o.id), inDb.map(r => r.id), `the business's ${inDb.length} standing orders`)
  t.ok(inDb.some(r => r.paid > 0), 'with paid occurrences')
  for (const o of inDb) {
    const occ = await server.inject({ method: 'GET', url: `/v1/standing-orders/${o.id as string}/occurrences?limit=100`, headers: issuer })
    t.equal(occ.json().items.filter((x: { status: string, transferId: string | null }) => x.status === 'paid' && x.transferId != null).length, o.paid)
  }
  const other = await server.inject({ method: 'GET', url: `/v1/participants/${memberId}`, headers: business })
  t.equal(other.statusCode, 404, 'and cannot see the member')

  const researcher = await token(logins.researcher)
  const denied = await server.inject({ method: 'GET', url: `/v1/participants/${memberId}`, headers: researcher })
  t.equal(denied.statusCode, 403, 'the researcher sees no participant')
})

t.test('stopping the load stops it between two movements', async (t) => {
  const db = await createTestDb()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-demo-'))
  const pool = new pg.Pool({ connectionString: db.url, max: 1 })
  t.teardown(async () => { await pool.end(); await db.drop(); fs.rmSync(dataDir, { recursive: true, force: true }) })
  let stopping: Promise<void> | null = null
  const seed = startDemoSeed({
    databaseUrl: db.url, dataDir, scryptCost: 1024, seed: 4, scale: 0.02,
    onReady: () => { stopping = seed.stop() },
    onDone: () => { t.fail('should not finish') },
    warn: () => {},
  })
  await seed.done
  await stopping
  const state = readDemoState(dataDir)!
  t.equal(state.status, 'loading', 'the data folder says the load did not finish')
  t.ok(state.posted < state.total)
  t.equal(await postedMovements(pool, 'BRS'), state.posted, 'what it says it posted is what the ledger holds')
  assertInvariants(t, await invariantViolations(pool), 'after a stopped load')
})

t.test('a demo state or logins file that cannot be read: the start says which file, why and what to do, and goes on', async (t) => {
  // Before, a second `npm start` over a data folder whose demo-seed.json was cut short (a full disk, a crash while
  // it was written) or edited threw from JSON.parse after the service listened, and the process died with a
  // SyntaxError naming no file.
  const db = await createTestDb()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-demo-'))
  const pool = new pg.Pool({ connectionString: db.url, max: 1 })
  t.teardown(async () => { await pool.end(); await db.drop(); fs.rmSync(dataDir, { recursive: true, force: true }) })
  const stateFile = path.join(dataDir, 'demo-seed.json')
  const loginsFile = path.join(dataDir, 'demo-logins.json')
  const cred = (username: string) => ({ username, password: `${username}-pw` })
  const logins: DemoLogins = { currencyIssuer: cred('brs-issuer'), researcher: cred('researcher'), member: cred('member'), business: cred('business') }
  const good: DemoState = { status: 'loading', currency: 'BRS', total: 100, posted: 40, member: 'Ann, BS1 1AA', business: 'Cafe, BS1 1AB, cafes-pubs' }
  fs.writeFileSync(loginsFile, JSON.stringify(logins))
  const remembered = async () => {
    const warnings: string[] = []
    const r = await rememberedDemo(pool, dataDir, (m) => { warnings.push(m) })
    return { ...r, warnings }
  }

  fs.writeFileSync(stateFile, JSON.stringify(good))
  const ok = await remembered()
  t.same(ok, { state: { ...good, posted: 0 }, logins, warnings: [] }, 'a good file: read, an interrupted load counted in the database (none here)')

  for (const [what, text, why] of [
    ['cut short', JSON.stringify(good).slice(0, 30), /JSON/],
    ['empty', '', /JSON/],
    ['not the demo\'s state', JSON.stringify({ status: 'done', currency: 7 }), /not the demo's state/],
    ['null', 'null', /not the demo's state/],
  ] as const) {
    fs.writeFileSync(stateFile, text)
    const r = await remembered()
    t.equal(r.state, null, `${what}: taken as no state`)
    t.same(r.logins, logins, `${what}: the logins are still printed`)
    t.equal(r.warnings.length, 1, `${what}: one warning`)
    t.match(r.warnings[0], why, `${what}: says why`)
    t.ok(r.warnings[0].includes(stateFile) && r.warnings[0].includes(`delete the data folder ${dataDir}`) && r.warnings[0].includes('the data in the database is as it was'),
      `${what}: names the file and what to do: ${r.warnings[0]}`)
    const printed = banner({ base: 'http://127.0.0.1:3000', dataDir, issuer: null, logins: r.logins, state: r.state })
    t.match(printed, /member {12}member \/ member-pw/, `${what}: the summary is printed`)
  }

  // the logins' file cut short: the state is still shown, the passwords are not
  fs.writeFileSync(stateFile, JSON.stringify(good))
  fs.writeFileSync(loginsFile, '{"currencyIssuer": {"username": "brs-iss')
  const noLogins = await remembered()
  t.same(noLogins.state, { ...good, posted: 0 })
  t.equal(noLogins.logins, null)
  t.equal(noLogins.warnings.length, 1)
  t.ok(noLogins.warnings[0].includes(loginsFile) && noLogins.warnings[0].includes(`delete the data folder ${dataDir}`), noLogins.warnings[0])
  t.equal(readDemoState(dataDir)?.currency, 'BRS', 'readDemoState without a warn still reads a good file')

  // the platform issuer's file is the one a start cannot do without (its password is nowhere else): the start stops,
  // saying which file and what to do, rather than with a bare SyntaxError
  const issuerFile = path.join(dataDir, 'demo-credentials.json')
  t.same(demoIssuer(dataDir), demoIssuer(dataDir), 'made once, then read back')
  fs.writeFileSync(issuerFile, '{"username": "iss')
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  t.throws(() => demoIssuer(dataDir), { message: new RegExp(`^the demo's platform issuer file ${esc(issuerFile)} cannot be read \\(.*JSON.*\\): ` +
    `it holds that login's password, which is kept nowhere else\\. Restore it from a copy, or, for a fresh demo, stop and delete the data folder ${esc(dataDir)}\\.$`) })
})
