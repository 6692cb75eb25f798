import Fastify, { type FastifyInstance, type InjectOptions } from 'fastify'
import pg from 'pg'
import type { Test } from 'tap'
import app, { serverOptions } from '../src/app.js'
import { generateJwk, keySetFromJwks, type KeySet } from '../src/auth/keys.js'
import { loadConfig, type Config } from '../src/config.js'
import { SIMULATOR_APPLICATION_NAME } from '../src/simulator/run.js'
import { createTestDb, type TestDb } from '../support/postgres.js'
import { loadOpenApi, responseValidator } from './openapi-validator.js'

export const ISSUER = { username: 'platform', password: 'platform-password-1' }
const checkResponse = responseValidator(loadOpenApi())

export interface Res<T = any> { status: number, body: T, text: string, headers: Record<string, unknown> }

export interface TestContext {
  app: FastifyInstance
  db: TestDb
  keys: KeySet
  /** Calls the app in memory; every response is checked against openapi.yaml. */
  call: <T = any>(method: string, url: string, opts?: { token?: string | null, body?: unknown, headers?: Record<string, string>, key?: string, raw?: string, remoteAddress?: string }) => Promise<Res<T>>
  token: (username: string, password: string) => Promise<string>
  issuerToken: string
  /** A pool on the test database named like the seeding tool, the only kind of session the ledger clock serves
   *  (test ledgers that post at past times); made on first use, closed at teardown. */
  tooling: () => pg.Pool
}

/** opts.db: share another context's database (that context drops it), e.g. to restart with other keys. */
/** opts.loginClock: the time the login throttle reads (default: the database's clock). */
/** opts.clock: the time standing orders read (the scheduler, and today for a new order). */
/** opts.tokenClock: the time access tokens are dated by and checked against (expiry, revocation). */
/** opts.noIssuer: no platform issuer is made (issuerToken is empty). */
export async function buildTestApp (t: Test, overrides: Partial<Config> = {}, opts: { keys?: KeySet, db?: TestDb, loginClock?: () => Date, smsClock?: () => Date, smsCodes?: () => string, requestClock?: () => Date, clock?: () => Date, tokenClock?: () => Date, reportClock?: () => Date, auditClock?: () => Date, noIssuer?: boolean } = {}): Promise<TestContext> {
  const db = opts.db ?? await createTestDb()
  const config = loadConfig({}, { DATABASE_URL: db.url, SCRYPT_COST: 1024, LOG_LEVEL: 'silent',
    // The test runner loads both cores; event-loop load shedding is the faults suite's to test, not every file's.
    PRESSURE_MAX_EVENT_LOOP_DELAY_MS: 0, ...overrides })
  const keys = opts.keys ?? await keySetFromJwks([await generateJwk()])
  const server = Fastify({ ...serverOptions(config), logger: config.LOG_LEVEL === 'silent' ? false : { level: config.LOG_LEVEL } })
  await server.register(app, { config, databaseUrl: db.url, keys, loginClock: opts.loginClock, smsClock: opts.smsClock, smsCodes: opts.smsCodes, requestClock: opts.requestClock, clock: opts.clock, tokenClock: opts.tokenClock, reportClock: opts.reportClock, auditClock: opts.auditClock })
  await server.ready()
  if (opts.noIssuer !== true) await server.services.auth.ensurePlatformIssuer(ISSUER.username, ISSUER.password)
  let tooling: pg.Pool | null = null
  t.teardown(async () => { await tooling?.end(); await server.close(); if (opts.db == null) await db.drop() })

  const call: TestContext['call'] = async (method, url, o = {}) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) }
    if (o.token != null) headers.authorization = `Bearer ${o.token}`
    if (o.key != null) headers['idempotency-key'] = o.key
    const req: InjectOptions = { method: method as InjectOptions['method'], url, headers, ...(o.remoteAddress != null ? { remoteAddress: o.remoteAddress } : {}) }
    if (o.raw != null) { req.payload = o.raw; headers['content-type'] ??= 'application/json' } else if (o.body !== undefined) req.payload = o.body as object
    const r = await server.inject(req)
    const ct = String(r.headers['content-type'] ?? '')
    const body = ct.includes('json') && r.body !== '' ? JSON.parse(r.body) : r.body
    const problem = checkResponse(method, url, r.statusCode, r.headers['content-type'] as string | undefined, body)
    if (problem != null) t.fail(`response disagrees with openapi.yaml: ${problem}`, { body })
    if (r.statusCode >= 500) t.fail(`${method} ${url} answered ${r.statusCode}`, { body })
    return { status: r.statusCode, body, text: r.body, headers: r.headers }
  }
  // Each test login comes from an address of its own, as logins of different people do: the login throttle
  // (test/access/throttle.test.ts) lets only a few attempts per address be checked at once.
  let logins = 0
  const token = async (username: string, password: string) => {
    const n = logins++
    const r = await call('POST', '/v1/auth/token', { body: { username, password }, remoteAddress: `127.1.${(n >> 8) & 255}.${n & 255}` })
    if (r.status !== 200) throw new Error(`login ${username} failed: ${r.text}`)
    return r.body.accessToken as string
  }
  const toolingPool = () => {
    if (tooling == null) {
      tooling = new pg.Pool({ connectionString: db.url, max: 2, application_name: SIMULATOR_APPLICATION_NAME })
      // the database is dropped at teardown, possibly while a session of this pool is still closing
      tooling.on('error', () => {})
    }
    return tooling
  }
  return { app: server, db, keys, call, token, issuerToken: opts.noIssuer === true ? '' : await token(ISSUER.username, ISSUER.password), tooling: toolingPool }
}

let seq = 0
const uniq = () => `${Date.now().toString(36)}${(seq++).toString(36)}`

export interface Scenario {
  code: string
  currency: any
  member: { id: string, accountId: string, token: string, username: string }
  business: { id: string, accountId: string, token: string, username: string }
}

/** A currency with Bristol-like fees, one member and one business, each with a login. */
export async function scenario (ctx: TestContext, opts: { code?: string, decimals?: number, fees?: Record<string, string> } = {}): Promise<Scenario> {
  const code = opts.code ?? 'BRS'
  const cur = await ctx.call('POST', '/v1/currencies', {
    token: ctx.issuerToken,
    body: {
      code, name: `${code} Pound`, decimals: opts.decimals ?? 2,
      fees: { text: '0.02', app: '0.02', online: '0.01', api: '0.01', till: '0.01', ...opts.fees }, redemptionFee: '0.03', localAreas: ['BS'],
    },
  })
  if (cur.status !== 201) throw new Error(`currency: ${cur.text}`)
  const member = await registerMember(ctx, code, 'BS6 5AB')
  const business = await registerBusiness(ctx, code, { tradingName: `Cafe ${uniq()}`, sector: 'cafes-pubs', postcode: 'BS1 4DJ' })
  return { code, currency: cur.body, member, business }
}

export async function registerMember (ctx: TestContext, code: string, postcode = 'BS3 1AA') {
  const username = `m-${uniq()}`
  const r = await ctx.call('POST', `/v1/currencies/${code}/members`, {
    token: ctx.issuerToken, body: { name: 'Test Member', postcode, username, password: 'member-password' },
  })
  if (r.status !== 201) throw new Error(`member: ${r.text}`)
  return { ...r.body as { id: string, accountId: string }, username, token: await ctx.token(username, 'member-password') }
}

export async function registerBusiness (ctx: TestContext, code: string, b: { tradingName: string, sector: string, postcode: string, independent?: boolean }) {
  const username = `b-${uniq()}`
  const r = await ctx.call('POST', `/v1/currencies/${code}/businesses`, {
    token: ctx.issuerToken, body: { independent: true, ...b, username, password: 'business-password' },
  })
  if (r.status !== 201) throw new Error(`business: ${r.text}`)
  return { ...r.body as { id: string, accountId: string }, username, token: await ctx.token(username, 'business-password') }
}

export async function issue (ctx: TestContext, code: string, toAccount: string, amount: string) {
  const r = await ctx.call('POST', `/v1/currencies/${code}/issuances`, {
    token: ctx.issuerToken, key: `iss-${uniq()}`, body: { toAccount, amount, sterlingReference: `bank-${uniq()}` },
  })
  if (r.status !== 201) throw new Error(`issue: ${r.text}`)
  return r.body
}

export async function balance (ctx: TestContext, accountId: string): Promise<string> {
  const r = await ctx.call('GET', `/v1/accounts/${accountId}`, { token: ctx.issuerToken })
  return r.body.balance as string
}

/**
 * Calls `between` once, just after the first query on `pool` whose SQL contains `marker` has answered: the first
 * page of a streamed file read, what a test does before the next page. pages() counts those queries; restore()
 * (also at the test's end) puts the pool's query back.
 */
export function betweenPages (t: Test, pool: pg.Pool, marker: string, between: () => Promise<void>): { pages: () => number, restore: () => void } {
  const query = pool.query
  const restore = () => { pool.query = query }
  t.teardown(restore)
  let pages = 0
  pool.query = (async (...args: unknown[]) => {
    const page = typeof args[0] === 'string' && args[0].includes(marker)
    const r = await (query as (...a: unknown[]) => Promise<unknown>).apply(pool, args)
    if (page && ++pages === 1) await between()
    return r
  }) as never
  return { pages: () => pages, restore }
}
