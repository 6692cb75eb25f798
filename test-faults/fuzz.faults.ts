import fc from 'fast-check'
import { SignJWT, base64url, generateKeyPair, exportJWK } from 'jose'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { generateJwk, keyFromJwk } from '../src/auth/keys.js'
import { seedEconomy } from '../support/economy.js'
import { call, pooled } from '../support/http.js'
import { ledgerViolations } from '../support/invariants.js'
import { startPostgres } from '../support/postgres.js'
import { ensureBuilt, startService, type Service } from '../support/service.js'
import { operations, rawGarbage, requestsFor, type Known, type RequestSpec } from './fuzz-gen.js'
import { rawRequest, requestBytes, type RawResponse } from './raw-http.js'

// At least 10,000 hostile requests generated from openapi.yaml across every operation, over real HTTP to the
// production build: no 5xx, every 4xx an RFC 9457 problem+json, the service still ready and the ledger's
// invariants intact afterwards. FUZZ_SEED replays a run; FUZZ_PER_OP changes its size.
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000)
const PER_OP = Number(process.env.FUZZ_PER_OP ?? 520)

t.test('hostile requests from openapi.yaml: no 5xx, every 4xx a problem', async (t) => {
  ensureBuilt()
  t.comment(`seed ${SEED} (FUZZ_SEED=${SEED} replays this run)`)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'circulate-fuzz-'))
  const server = await startPostgres({ embedded: true })
  let svc: Service | null = null
  t.teardown(async () => { await svc?.kill(); await server.stop(); if (process.env.KEEP_WORK == null) fs.rmSync(work, { recursive: true, force: true }); else t.comment(`kept ${work}`) })

  const jwk = await generateJwk()
  const databaseUrl = await server.createDatabase('circulate_fuzz')
  svc = await startService({
    databaseUrl, logFile: path.join(work, 'service.log'), dataDir: path.join(work, 'data'),
    env: { JWT_PRIVATE_KEYS: JSON.stringify([jwk]), LOG_LEVEL: 'warn' },
  })
  const base = svc.url
  const e = await seedEconomy(base, { code: 'FUZ', members: 4, funds: '1000.00' })
  const biz = await call(base, 'POST', '/v1/currencies/FUZ/businesses', { token: e.issuerToken, body: { tradingName: 'Fuzz Cafe', sector: 'cafes-pubs', postcode: 'BS1 4DJ', independent: true, username: 'fuzz-biz', password: 'business-password' } })
  t.equal(biz.status, 201)
  const bizToken = (await call(base, 'POST', '/v1/auth/token', { body: { username: 'fuzz-biz', password: 'business-password' } })).body.accessToken as string
  const cur = (await call(base, 'GET', '/v1/currencies/FUZ')).body
  const transfers: string[] = []
  for (let i = 0; i < 3; i++) {
    const p = await call(base, 'POST', '/v1/currencies/FUZ/payments', { token: e.members[i].token, key: `seed-pay-${i}`, body: { fromAccount: e.members[i].accountId, toAccount: biz.body.accountId, amount: '5.00', channel: 'app' } })
    transfers.push(p.body.id, p.body.related[0].id)
  }

  const key = await keyFromJwk(jwk)
  const sign = async (claims: Record<string, unknown>, o: { exp?: number, iss?: string, aud?: string, nbf?: number } = {}) => {
    const now = Math.floor(Date.now() / 1000)
    return await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: key.kid }).setIssuedAt()
      .setIssuer(o.iss ?? 'circulate').setAudience(o.aud ?? 'circulate-api').setNotBefore(o.nbf ?? now - 5)
      .setExpirationTime(o.exp ?? now + 3600).sign(key.privateKey)
  }
  const other = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  const now = Math.floor(Date.now() / 1000)
  const member0 = JSON.parse(Buffer.from(e.members[0].token.split('.')[1], 'base64url').toString())
  const badTokens = [
    await sign({ ...member0 }, { exp: now - 10 }), // expired
    await sign({ ...member0 }, { aud: 'someone-else' }),
    await sign({ ...member0 }, { iss: 'evil' }),
    await sign({ ...member0 }, { nbf: now + 3600 }),
    await sign({ ...member0, role: 'admin' }),
    await sign({ role: 'issuer', cur: cur.code }), // no subject
    await sign({ ...member0, sub: 'not-a-uuid', pid: 'x' }),
    await sign({ ...member0, sub: '0190aaaa-0000-7000-8000-000000000000', role: 'platform_issuer' }), // a forged but validly signed unknown user
    await new SignJWT({ ...member0 }).setProtectedHeader({ alg: 'EdDSA', kid: 'unknown' }).setIssuer('circulate').setAudience('circulate-api').setExpirationTime('1h').sign(other.privateKey),
    `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify({ ...member0, role: 'platform_issuer' }))}.`,
    `${base64url.encode(JSON.stringify({ alg: 'HS256', kid: key.kid }))}.${base64url.encode(JSON.stringify(member0))}.${base64url.encode('sig')}`,
    e.members[0].token.replace(/\.[^.]+\./, `.${base64url.encode(JSON.stringify({ ...member0, role: 'platform_issuer' }))}.`), // tampered payload
    'a.b.c', 'eyJhbGciOiJFZERTQSJ9.e30.', JSON.stringify(await exportJWK(other.publicKey)),
  ]
  const known: Known = {
    codes: ['FUZ', 'fuz', 'ZZZ'],
    accounts: [...e.members.map(m => m.accountId), biz.body.accountId, cur.systemAccounts.fees, cur.systemAccounts.issuance, cur.systemAccounts.paper],
    participants: [...e.members.map(m => m.id), biz.body.id],
    transfers,
    tokens: [e.issuerToken, e.members[0].token, e.members[1].token, bizToken],
    badTokens,
  }

  // Suspending a participant revokes its tokens for good (docs/api.md), and a frozen or closed account refuses every
  // payment: run the operations that do that to the fuzzer's own logins and accounts last, or every operation after
  // them in openapi.yaml's order is fuzzed with dead tokens (measured: 3 of the 4 valid tokens, for 38 of 65 operations).
  const spoils = (o: { method: string, path: string }) => /suspension$/.test(o.path) || (o.method === 'PATCH' && o.path === '/v1/accounts/{id}')
  const ops = operations(new URL('../openapi.yaml', import.meta.url)).sort((a, b) => Number(spoils(a)) - Number(spoils(b)))
  const specs: RequestSpec[] = ops.flatMap((op, i) => fc.sample(requestsFor(op, known), { numRuns: PER_OP, seed: SEED + i }))
  // Well-formed payments mixed in among the hostile ones. The generator rarely makes a payment that posts (a funded
  // payer, a payee of the same currency, a valid amount, token and key at once: 2 to 8 in 520, by seed), so these
  // make sure money moves during the fuzz and show that a valid payment amid it is still posted. Their payer's token
  // is not among the fuzz's, and they go before the operations that suspend logins and freeze accounts.
  const payer = e.members[3]
  const control: RequestSpec[] = Array.from({ length: 12 }, (_, i) => ({
    op: 'control payment', method: 'POST', path: '/v1/currencies/FUZ/payments',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${payer.token}`, 'idempotency-key': `control-${SEED}-${i}` },
    body: JSON.stringify({ fromAccount: payer.accountId, toAccount: biz.body.accountId, amount: '1.00', channel: 'app' }),
    wellFormed: true,
  }))
  // the spoiling operations are sorted last, so the requests before theirs are PER_OP for each of the others
  const room = ops.filter(o => !spoils(o)).length * PER_OP
  for (const [k, c] of control.entries()) specs.splice(Math.floor((k + 1) * room * 0.9 / control.length) + k, 0, c)
  const raw = rawGarbage(known)
  t.ok(specs.length + raw.length >= 10_000, `${specs.length} generated requests over ${ops.length} operations, and ${raw.length} raw malformed ones`)

  const failures: Array<{ what: string, status?: number, why: string, body?: string }> = []
  const byStatus = new Map<number, number>()
  const byOp = new Map<string, Map<string, number>>()
  let wellFormed = 0; let wellFormed401 = 0
  const check = (what: string, r: RawResponse | { error: string }, mustAnswer: boolean) => {
    if ('error' in r) { if (mustAnswer) failures.push({ what, why: r.error }); return }
    byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1)
    if (r.status >= 500) { failures.push({ what, status: r.status, why: '5xx', body: r.body.slice(0, 300) }); return }
    if (r.status >= 400) {
      if (!/^application\/problem\+json/.test(r.headers['content-type'] ?? '')) { failures.push({ what, status: r.status, why: `4xx with content-type ${r.headers['content-type']}`, body: r.body.slice(0, 300) }); return }
      let p: Record<string, unknown>
      try { p = JSON.parse(r.body) } catch { failures.push({ what, status: r.status, why: 'problem is not JSON', body: r.body.slice(0, 300) }); return }
      if (p.status !== r.status || typeof p.type !== 'string' || typeof p.title !== 'string' || typeof p.detail !== 'string' || typeof p.code !== 'string') {
        failures.push({ what, status: r.status, why: 'not an RFC 9457 problem with a code', body: r.body.slice(0, 300) })
      }
    }
  }
  const started = Date.now()
  const slow: Array<[number, string]> = []
  await pooled(specs, 16, async (s) => {
    const t0 = Date.now()
    const r = await rawRequest(svc!.port, requestBytes(s.method, s.path, s.headers, s.body))
    const ms = Date.now() - t0
    if (ms > 1000) slow.push([ms, `${s.op} ${'status' in r ? r.status : r.error} ${s.path.slice(0, 80)} ${JSON.stringify(s.headers).slice(0, 200)} ${String(s.body).slice(0, 100)}`])
    if (!('error' in r)) {
      let code = ''
      try { code = r.status >= 400 ? JSON.parse(r.body).code ?? '' : '' } catch {}
      const seen = byOp.get(s.op) ?? new Map<string, number>()
      seen.set(`${r.status} ${code}`.trim(), (seen.get(`${r.status} ${code}`.trim()) ?? 0) + 1)
      byOp.set(s.op, seen)
      if (s.wellFormed) { wellFormed++; if (r.status === 401) wellFormed401++ }
    }
    check(`${s.op} <- ${s.method} ${s.path.slice(0, 200)} ${JSON.stringify(s.headers).slice(0, 300)} ${String(s.body).slice(0, 300)}`, r, true)
  })
  await pooled(raw, 4, async (bytes) => {
    const r = await rawRequest(svc!.port, Buffer.from(bytes, 'latin1'))
    check(`raw ${JSON.stringify(bytes.slice(0, 160))}`, r, false)
  })
  t.comment(`${specs.length + raw.length} requests in ${((Date.now() - started) / 1000).toFixed(1)} s; by status: ${JSON.stringify(Object.fromEntries([...byStatus].sort((a, b) => a[0] - b[0])))}`)
  slow.sort((a, b) => b[0] - a[0])
  t.comment(`${slow.length} requests took over 1 s${slow.length > 0 ? `; slowest: ${slow.slice(0, 5).map(([ms, w]) => `${ms} ms ${w}`).join(' | ')}` : ''}`)
  const kinds = new Map<string, number>()
  for (const f of failures) kinds.set(`${f.status ?? '-'} ${f.why}`, (kinds.get(`${f.status ?? '-'} ${f.why}`) ?? 0) + 1)
  t.same(Object.fromEntries(kinds), {}, 'no 5xx, no 4xx without a problem+json body')
  for (const f of failures.slice(0, 15)) t.comment(JSON.stringify(f).slice(0, 1200))
  t.ok([...byStatus.keys()].some(s => s >= 200 && s < 300), 'some requests got through, so the fuzz reached the ledger')
  // the generator's own checks: every money route reached the ledger's own checks, payments both posted and were
  // refused for funds, and the valid tokens stayed valid throughout
  const got = (op: string, what: RegExp) => [...(byOp.get(op)?.keys() ?? [])].some(k => what.test(k))
  const ledger = /^201$|INSUFFICIENT_FUNDS|CEILING_EXCEEDED|RESERVE_EXCEEDED|ALREADY_REVERSED|ACCOUNT_FROZEN|ACCOUNT_CLOSED|SAME_ACCOUNT/
  for (const op of ['/v1/currencies/{code}/payments', '/v1/currencies/{code}/issuances', '/v1/currencies/{code}/redemptions', '/v1/transfers/{id}/reversal']) {
    t.ok(got(`POST ${op}`, ledger), `POST ${op}: some requests reached the ledger's own checks (${JSON.stringify(Object.fromEntries(byOp.get(`POST ${op}`) ?? []))})`)
  }
  t.same(Object.fromEntries(byOp.get('control payment') ?? []), { 201: control.length }, 'every well-formed payment amid the fuzz was posted')
  t.ok(got('POST /v1/currencies/{code}/payments', /INSUFFICIENT_FUNDS/), 'a payment reached the ledger\'s funds check')
  t.ok(wellFormed401 < wellFormed * 0.05, `well-formed requests with a valid token answered 401: ${wellFormed401} of ${wellFormed}`)

  t.equal((await call(base, 'GET', '/ready')).status, 200, 'still ready')
  t.equal(svc.proc.exitCode, null, 'the service process never exited')
  t.same(await ledgerViolations(databaseUrl), [], 'ledger invariants hold')
})
