import { createHash } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { buildTestApp, issue, PROBLEM, registerBusiness, registerMember, scenario } from './fixtures/index.js'

const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, unknown>

t.test('API key lifecycle: shown once, stored hashed, scoped, last use recorded, revoked', async (t) => {
  const ctx = await buildTestApp(t, { API_KEY_CHECK_MS: 0 })
  const s = await scenario(ctx)
  await issue(ctx, s.code, s.business.accountId, '50.00')

  const created = await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'till 1', scopes: ['payments:write', 'statements:read', 'payments:write'] } })
  t.equal(created.headers['cache-control'], 'no-store', 'the key, shown once, is kept by no cache')
  t.equal(created.status, 201)
  const key = created.body.key as string
  t.match(key, /^circ_[A-Za-z0-9_-]{43}$/, 'a 256-bit key with a recognisable prefix')
  t.match(created.body, { name: 'till 1', prefix: key.slice(0, 11), scopes: ['payments:write', 'statements:read'], lastUsedAt: null, revokedAt: null })

  const db = new pg.Client({ connectionString: ctx.db.url })
  await db.connect()
  t.teardown(async () => { await db.end() })
  const row = (await db.query('SELECT * FROM api_key WHERE id = $1', [created.body.id])).rows[0]
  t.equal(row.secret_hash, createHash('sha256').update(key).digest('hex'), 'stored as its sha256')
  t.notOk(Object.values(row).some(v => String(v).includes(key.slice(5))), 'the key itself is stored nowhere')

  const list = await ctx.call('GET', '/v1/api-keys', { token: s.business.token })
  t.equal(list.status, 200)
  t.equal(list.body.items.length, 1)
  t.notOk('key' in list.body.items[0], 'a listing never shows the key again')

  const exchanged = await ctx.call('POST', '/v1/auth/token', { body: { apiKey: key } })
  t.equal(exchanged.status, 200)
  const tok = exchanged.body.accessToken as string
  t.match(claims(tok), { role: 'business', akid: created.body.id, scope: 'payments:write statements:read' })
  const used1 = (await ctx.call('GET', '/v1/api-keys', { token: s.business.token })).body.items[0].lastUsedAt
  t.not(used1, null, 'the exchange records the last use')

  // Scopes: what the key was given, nothing more, even though the business itself may do more.
  const pay = await ctx.call('POST', `/v1/currencies/${s.code}/payments`, {
    token: tok, key: 'ak-1', body: { fromAccount: s.business.accountId, toAccount: s.member.accountId, amount: '2.00', channel: 'api' },
  })
  t.equal(pay.status, 201, 'payments:write pays')
  const createdBy = (await db.query('SELECT created_by FROM transfer WHERE id = $1', [pay.body.id])).rows[0].created_by
  t.equal(createdBy, created.body.id, 'the ledger records the key as the payer\'s agent')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.business.accountId}/statement`, { token: tok })).status, 200, 'statements:read reads the statement')
  t.equal((await ctx.call('GET', `/v1/transfers/${pay.body.id as string}`, { token: tok })).status, 200, 'and its transfers')
  for (const [method, url, body] of [
    ['GET', `/v1/accounts/${s.business.accountId}`, undefined],
    ['GET', `/v1/participants/${s.business.id}`, undefined],
    ['POST', `/v1/currencies/${s.code}/redemptions`, { fromAccount: s.business.accountId, amount: '1.00' }],
    ['POST', '/v1/api-keys', { name: 'more', scopes: ['accounts:read'] }],
    ['GET', '/v1/api-keys', undefined],
  ] as const) {
    const r = await ctx.call(method, url, { token: tok, body, key: 'ak-x' })
    t.equal(r.status, 403, `${method} ${url} without its scope: 403`)
    t.match(r.headers['content-type'], PROBLEM)
    t.equal(r.body.code, 'INSUFFICIENT_SCOPE')
  }
  t.equal((await ctx.call('GET', `/v1/currencies/${s.code}`, { token: tok })).status, 200, 'public routes stay open to a key')

  // compared in the database, to the microsecond: no need to wait for the millisecond the API shows to change
  const lastUse = `SELECT last_used_at::text AS at FROM api_key WHERE id = $1`
  const before = (await db.query(lastUse, [created.body.id])).rows[0].at as string
  await ctx.call('GET', `/v1/accounts/${s.business.accountId}/statement`, { token: tok })
  const moved = await db.query('SELECT last_used_at > $2::timestamptz AS later, floor(extract(epoch FROM last_used_at) * 1000)::text AS ms FROM api_key WHERE id = $1', [created.body.id, before])
  t.equal(moved.rows[0].later, true, 'a request with the key\'s token moves the last use on')
  const used2 = (await ctx.call('GET', '/v1/api-keys', { token: s.business.token })).body.items[0].lastUsedAt
  t.equal(Date.parse(used2), Number(moved.rows[0].ms), 'and the API shows it, to the millisecond')

  // Only the owner manages its keys.
  const other = await registerBusiness(ctx, s.code, { tradingName: 'Other Shop', sector: 'retail', postcode: 'BS2 0AA' })
  const stolen = await ctx.call('DELETE', `/v1/api-keys/${created.body.id as string}`, { token: other.token })
  t.equal(stolen.status, 404, 'another business cannot revoke it')
  t.equal(stolen.body.code, 'API_KEY_NOT_FOUND')
  t.same((await ctx.call('GET', '/v1/api-keys', { token: other.token })).body.items, [], 'nor see it')
  const member = await registerMember(ctx, s.code)
  t.equal((await ctx.call('POST', '/v1/api-keys', { token: member.token, body: { name: 'x', scopes: ['accounts:read'] } })).status, 403, 'members have no API keys')
  for (const body of [{ name: 'x', scopes: [] }, { name: 'x', scopes: ['admin'] }, { name: '', scopes: ['accounts:read'] }, { name: 'x' }]) {
    t.equal((await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body })).status, 422, `refuses ${JSON.stringify(body)}`)
  }

  t.equal((await ctx.call('DELETE', `/v1/api-keys/${created.body.id as string}`, { token: s.business.token })).status, 204)
  t.equal((await ctx.call('DELETE', `/v1/api-keys/${created.body.id as string}`, { token: s.business.token })).status, 204, 'revoking twice is fine')
  const revoked = (await ctx.call('GET', '/v1/api-keys', { token: s.business.token })).body.items[0]
  t.match(revoked.revokedAt, /^\d{4}-\d\d-\d\dT/, 'the listing shows it revoked')
  t.equal((await ctx.call('POST', '/v1/auth/token', { body: { apiKey: key } })).status, 401, 'a revoked key gets no token')
  t.equal((await ctx.call('GET', `/v1/accounts/${s.business.accountId}/statement`, { token: tok })).status, 401, 'its outstanding token stops working')
  const rows = (await db.query(`SELECT outcome, error_code, actor_id FROM audit_event WHERE action = 'api_key.revoke' AND target = $1 ORDER BY id`, [created.body.id])).rows
  t.same(rows.map(r => [r.outcome, r.error_code]), [['failure', 'API_KEY_NOT_FOUND'], ['success', null]], 'the other business\'s attempt, then one revocation')
})

t.test('revocation reaches every instance: another instance refuses the key\'s token on its next check', async (t) => {
  const a = await buildTestApp(t, { API_KEY_CHECK_MS: 0 })
  const s = await scenario(a)
  const b = await buildTestApp(t, { API_KEY_CHECK_MS: 0 }, { keys: a.keys, db: a.db })
  const k = await a.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: 'shop', scopes: ['accounts:read'] } })
  const tok = (await a.call('POST', '/v1/auth/token', { body: { apiKey: k.body.key } })).body.accessToken
  t.equal((await b.call('GET', `/v1/accounts/${s.business.accountId}`, { token: tok })).status, 200, 'instance B accepts the token')
  t.equal((await a.call('DELETE', `/v1/api-keys/${k.body.id as string}`, { token: s.business.token })).status, 204, 'instance A revokes the key')
  const refused = await b.call('GET', `/v1/accounts/${s.business.accountId}`, { token: tok })
  t.equal(refused.status, 401, 'instance B refuses it')
  t.match(refused.body, { code: 'UNAUTHENTICATED', detail: 'the API key this token was issued for has been revoked' }, 'and says why')
})

t.test('API keys are listed oldest first, a page at a time', async (t) => {
  const ctx = await buildTestApp(t)
  const s = await scenario(ctx)
  const ids: string[] = []
  for (let i = 0; i < 5; i++) {
    ids.push((await ctx.call('POST', '/v1/api-keys', { token: s.business.token, body: { name: `k${i}`, scopes: ['accounts:read'] } })).body.id)
  }
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const r: { body: { items: Array<{ id: string }>, nextCursor: string | null } } =
      await ctx.call('GET', `/v1/api-keys?limit=2${cursor != null ? `&cursor=${cursor}` : ''}`, { token: s.business.token })
    t.ok(r.body.items.length <= 2)
    seen.push(...r.body.items.map(k => k.id))
    cursor = r.body.nextCursor
  } while (cursor != null)
  t.same(seen, ids, 'every key once, in creation order')
  t.equal((await ctx.call('GET', '/v1/api-keys?cursor=bogus', { token: s.business.token })).body.code, 'INVALID_CURSOR')
})

t.test('a business holds at most API_KEYS_PER_BUSINESS keys that are not revoked, also when it asks for many at once', async (t) => {
  const ctx = await buildTestApp(t, { API_KEYS_PER_BUSINESS: 3 })
  const s = await scenario(ctx)
  const other = await registerBusiness(ctx, s.code, { tradingName: 'Next Door', sector: 'retail', postcode: 'BS2 0AA' })
  const make = async (token: string, name: string) => await ctx.call('POST', '/v1/api-keys', { token, body: { name, scopes: ['statements:read'] } })
  // eight at once: the count is taken under a lock, so exactly three are made
  const burst = await Promise.all(Array.from({ length: 8 }, async (_, i) => await make(s.business.token, `k${i}`)))
  t.same(burst.map(r => r.status).sort(), [201, 201, 201, 409, 409, 409, 409, 409])
  const refused = burst.find(r => r.status === 409)!
  t.equal(refused.body.code, 'API_KEY_LIMIT')
  t.match(refused.headers['content-type'], PROBLEM)
  t.equal((await ctx.call('GET', '/v1/api-keys', { token: s.business.token })).body.items.length, 3, 'three keys, no more')
  // another business has its own three
  t.equal((await make(other.token, 'theirs')).status, 201)
  // a revoked key frees a place
  const first = burst.find(r => r.status === 201)!
  t.equal((await ctx.call('DELETE', `/v1/api-keys/${first.body.id}`, { token: s.business.token })).status, 204)
  t.equal((await make(s.business.token, 'after a revocation')).status, 201)
  t.equal((await make(s.business.token, 'one too many')).status, 409)
})
